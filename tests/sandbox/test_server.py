"""SandboxServer lifecycle, addresses and environment; the `contexten sandbox` command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from contexten.config import Settings
from contexten.sandbox.server import SandboxError, SandboxServer
from contexten.sandbox.state import SandboxState
from contexten.sandbox.testing import recording_endpoint

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_serves_requested_services_and_env_points_at_them() -> None:
    with SandboxServer(services=("github",)) as server:
        env = server.env()
        assert env["GITHUB_API_URL"] == server.github_url
        assert not any(key.startswith(("LINEAR", "SLACK", "CODEGEN")) for key in env)
        with pytest.raises(SandboxError, match="linear"):
            _ = server.linear_url
        response = httpx.get(
            f"{server.github_url}/rate_limit",
            headers={"Authorization": f"Bearer {env['GITHUB_TOKEN']}"},
        )
        assert response.status_code == 200 and response.json()["rate"]["limit"] == 5000
        settings = Settings(**{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
        assert settings.github_api_url == server.github_url
        assert settings.enabled_integrations()["github"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.github_url}/rate_limit")


def test_all_services_each_on_its_own_port() -> None:
    with SandboxServer() as server:
        assert set(server.ports) <= {"github", "linear", "slack", "codegen"}
        assert len(set(server.ports.values())) == len(server.ports)
        env = server.env()
        if "slack" in server.ports:
            assert env["SLACK_WEBHOOK_URL"].startswith(server.url("slack") + "/services/")
            assert env["SLACK_API_URL"].endswith("/api/")
        if "linear" in server.ports:
            assert env["LINEAR_API_URL"].endswith("/graphql")
        assert all(v.startswith("http://127.0.0.1:") for k, v in env.items() if k.endswith("_URL"))


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = SandboxServer(services=("github",), port_base=port)
        with pytest.raises(SandboxError, match=f"127.0.0.1:{port}"):
            server.start()
        assert server.ports == {}


def test_unknown_service_is_rejected() -> None:
    with pytest.raises(ValueError, match="jira"):
        SandboxServer(services=("jira",))


def test_demo_seed_has_failing_passing_and_flaky_runs() -> None:
    state = SandboxState.create(seed_demo=True)
    github = state.github
    repo = github.default_repository
    assert repo == "contexten-demo/app"
    conclusions = [github.run_status(run)[1] for run in github.runs.values()]
    assert "failure" in conclusions and "success" in conclusions
    assert any(run.rerun_outcomes == ["success"] for run in github.runs.values())
    assert any(run.artifacts for run in github.runs.values())
    logs = [job.log for run in github.runs.values() for job in run.attempt.jobs]
    assert any(b"Interrupted: 11 errors during collection" in log for log in logs)  # real log


def test_demo_seed_runs_are_diagnosed_as_their_titles_say() -> None:
    from contexten.analysis.logs import diagnose

    github = SandboxState.create(seed_demo=True).github
    failing = {
        run.display_title: [job.log for job in run.attempt.jobs if job.conclusion == "failure"]
        for run in github.runs.values()
    }
    (network_log,) = failing["Flaky network test"]
    assert diagnose(network_log).category == "network"  # transient: re-run, not escalated
    (test_log,) = failing["Make compute() faster"]
    assert diagnose(test_log).category == "test"  # missing modules, not a DNS failure


def test_command_lists_the_seeded_runs_to_analyse() -> None:
    from contexten.commands.sandbox import seeded_runs

    runs = seeded_runs(SandboxState.create(seed_demo=True))
    assert [run["conclusion"] for run in runs] == ["success", "failure", "failure"]
    assert {run["repository"] for run in runs} == {"contexten-demo/app"}
    assert runs[1]["title"] == "Make compute() faster"
    assert seeded_runs(SandboxState.create()) == []


def test_command_prints_one_json_document_and_stops_on_sigint() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    with recording_endpoint() as hook:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "contexten.cli",
                "sandbox",
                "--service",
                "github",
                "--seed-demo",
                "--json",
                "--webhook-url",
                f"{hook.url}/hook",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            lines = []
            while True:
                line = proc.stdout.readline()
                assert line, proc.stderr.read() if proc.stderr else "no output"
                lines.append(line)
                if line.startswith("}"):
                    break
            document = json.loads("".join(lines))
            url = document["urls"]["github"]
            token = document["env"]["GITHUB_TOKEN"]
            runs = httpx.get(
                f"{url}/repos/contexten-demo/app/actions/runs",
                headers={"Authorization": f"token {token}"},
            ).json()
            assert runs["total_count"] == 3
            assert [r["workflow_run_id"] for r in document["runs"]] == sorted(
                r["id"] for r in runs["workflow_runs"]
            )
            for _ in range(600):  # the deliveries follow the announcement (busy machines: 30 s)
                if len(hook.requests) == 3:
                    break
                time.sleep(0.05)
            assert {r["headers"]["x-github-event"] for r in hook.requests} == {"workflow_run"}
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == ""  # nothing after the one JSON document


def test_command_rejects_bad_input() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    for args, needle in (
        (["--port-base", "80"], "--port-base 80"),
        (["--service", "jira"], "--service 'jira'"),
        (["--webhook-url", "ftp://x"], "--webhook-url"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "contexten.cli", "sandbox", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 2
        assert needle in done.stderr and len(done.stderr.strip().splitlines()) == 1
