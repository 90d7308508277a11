"""`contexten webhook serve | dispatch | routes`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contexten.cli import main
from contexten.config import reload_settings
from contexten.events.signature import sign

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tests/data/webhooks/payload-examples"
EXAMPLE = EXAMPLES / "workflow_job/completed.failure.with-organization.payload.json"


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CONTEXTEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    reload_settings()
    yield tmp_path
    monkeypatch.undo()
    reload_settings()


def test_serve_without_secret_exits_2(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhook", "serve", "--port", "9"]) == 2
    err = capsys.readouterr().err
    assert "GITHUB_WEBHOOK_SECRET is not set" in err and "--insecure" in err


def test_bad_rules_file_exits_2(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = clean_env / "rules.json"
    rules.write_text('[{"name": "x", "event": "push", "workflow": "nope"}]', encoding="utf-8")
    monkeypatch.setenv("ROUTING_RULES_FILE", str(rules))
    assert main(["webhook", "routes"]) == 2
    assert "unknown workflow type 'nope'" in capsys.readouterr().err


def test_unrelated_configuration_problem_is_a_warning_not_a_refusal(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.commands.webhook import _setup

    monkeypatch.setenv("LINEAR_API_KEY", "lin_api_x")  # no LINEAR_TEAM_ID: a problem
    reload_settings()
    _settings, _store, rules, _factory = _setup("")
    assert rules
    err = capsys.readouterr().err
    assert "warning: configuration: LINEAR_API_KEY is set but LINEAR_TEAM_ID is missing" in err
    assert "lin_api_x" not in err


def test_serve_on_a_busy_port_is_one_line_exit_1(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "s")
    reload_settings()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["webhook", "serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"contexten: error: 127.0.0.1:{port} is in use (another receiver?): stop it, "
        "or choose another with --port or WEBHOOK_PORT"
    )


def test_bad_trigger_exits_2(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "s")
    reload_settings()
    assert main(["webhook", "serve", "--trigger", "no_such_module:factory"]) == 2
    assert "cannot import no_such_module" in capsys.readouterr().err


def test_routes_json_lists_the_default_rules(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["webhook", "routes", "--json"]) == 0
    rules = json.loads(capsys.readouterr().out)
    by_name = {rule["name"]: rule for rule in rules}
    assert by_name["failed-workflow-run"]["workflow"] == "failure_analysis"
    assert by_name["push-to-baseline"]["workflow"] == "performance_monitoring"
    assert by_name["workflow-files-changed"]["workflow"] == "workflow_optimization"


def test_dispatch_once_settles_the_inbox(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.events.inbox import Inbox, NewDelivery
    from contexten.store.db import open_store

    store = open_store(f"sqlite:///{clean_env / 'store.db'}")
    Inbox(store).insert(NewDelivery("q-1", "workflow_job", '{"action": "queued"}'))
    assert main(["webhook", "dispatch", "--once", "--json"]) == 0
    (outcome,) = json.loads(capsys.readouterr().out)
    assert (outcome["delivery_id"], outcome["status"]) == ("q-1", "ignored")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)
def test_serve_receives_dispatches_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "GITHUB_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO / "benchmarks"), str(REPO / "src")]),
        CONTEXTEN_HOME=str(tmp_path / "home"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}",
        GITHUB_WEBHOOK_SECRET="serve-secret",
        DURABILITY_RUNS_DB=str(tmp_path / "runs.db"),
    )
    command = [sys.executable, "-m", "contexten.cli", "webhook", "serve", "--port", str(port)]
    command += ["--trigger", "webhook_durability:file_trigger", "--log-level", "warning"]
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.05)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        body = EXAMPLE.read_bytes()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": "serve-1",
            "X-Hub-Signature-256": sign("serve-secret", body),
        }
        response = httpx.post(f"{base}/webhook", content=body, headers=headers)
        assert response.status_code == 202
        import sqlite3

        deadline = time.monotonic() + 30
        rows: list[tuple[str, int]] = []
        while time.monotonic() < deadline and not rows:
            if (tmp_path / "runs.db").exists():
                connection = sqlite3.connect(tmp_path / "runs.db", timeout=10)
                try:
                    rows = connection.execute("SELECT key, calls FROM runs").fetchall()
                except sqlite3.OperationalError:
                    rows = []
                connection.close()
            time.sleep(0.05)
        assert rows == [("failure_analysis:Codertocat/Hello-World:2202229078:1", 1)]
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0
