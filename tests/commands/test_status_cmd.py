from __future__ import annotations

import json
from pathlib import Path

import pytest

from contexten.cli import main


def test_status_json_in_process(contexten_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "in-process"
    assert data["prefect_api_url"] is None
    assert data["config_problems"] == []
    assert data["store"].startswith("sqlite:///")


def test_status_shows_config_problems(
    contexten_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.config import reload_settings

    monkeypatch.setenv("CODEGEN_TOKEN", "cg-secret-token-value")
    monkeypatch.setenv("ALERT_CPU_PERCENT", "140")
    reload_settings()
    # An invalid value is an error: status lists every problem and exits 2.
    assert main(["status"]) == 2
    captured = capsys.readouterr()
    assert "CODEGEN_ORG_ID is missing" in captured.out
    assert "config error: ALERT_CPU_PERCENT=140.0 must be between 0 and 100" in captured.out
    assert "cg-secret-token-value" not in captured.out + captured.err
    assert captured.err.startswith("contexten: error: 1 configuration error(s) listed above")
    assert len(captured.err.splitlines()) == 1


def test_status_with_only_warnings_exits_0(
    contexten_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.config import reload_settings

    monkeypatch.setenv("CODEGEN_TOKEN", "cg-secret-token-value")
    reload_settings()
    assert main(["status"]) == 0
    captured = capsys.readouterr()
    assert "config: CODEGEN_TOKEN is set but CODEGEN_ORG_ID is missing" in captured.out
    assert "recent runs" in captured.out and captured.err == ""


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("HTTP_TIMEOUT_SECONDS", "-5", "HTTP_TIMEOUT_SECONDS=-5.0 must be a positive number"),
        ("MAX_CONCURRENT_WORKFLOWS", "0", "MAX_CONCURRENT_WORKFLOWS=0 must be at least 1"),
        ("CONTEXTEN_HOME", "{file}", "is not a directory"),
        ("DATABASE_URL", "garbage", "DATABASE_URL is not a database URL"),
    ],
)
def test_status_json_with_config_errors_exits_2_without_touching_the_store(
    contexten_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    problem: str,
) -> None:
    from contexten.config import reload_settings

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.setenv(name, value.replace("{file}", str(a_file)))
    reload_settings()
    assert main(["status", "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert len(data["config_errors"]) == 1 and problem in data["config_errors"][0]
    assert data["store"] is None and data["mode"] is None
    assert not (contexten_home / "contexten.db").exists()


def test_status_says_why_it_runs_in_process(
    contexten_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.config import reload_settings

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9")  # closed port, no /api
    reload_settings()
    assert main(["status", "--json"]) == 0
    reason = json.loads(capsys.readouterr().out)["in_process_reason"]
    assert reason == (
        "PREFECT_API_URL http://127.0.0.1:9 does not answer http://127.0.0.1:9/health; "
        "it must end in /api"
    )
    monkeypatch.delenv("PREFECT_API_URL")
    reload_settings()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "PREFECT_API_URL is not set and no `contexten server` is running" in out
    assert "recent runs: none yet" in out


def test_status_lists_runs_whole_with_their_errors_and_problems(
    contexten_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.orchestration.execution import record_execution
    from contexten.store import open_store

    store = open_store()
    record_execution(
        store,
        "run-failed",
        workflow_type="codegen_task_execution",
        mode="in-process",
        status="failed",
        parameters={},
        error="WorkflowError: [/] no prompt",  # rich markup in a message must not break it
    )
    record_execution(
        store,
        "run-not-ok",
        workflow_type="health_check",
        mode="in-process",
        status="completed",
        parameters={},
        result={"ok": False, "summary": "health unhealthy: score 40/100", "data": {}},
    )
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    failed = next(i for i, line in enumerate(lines) if "run-fail" in line)
    assert "codegen_task_execution" in lines[failed] and "failed" in lines[failed]
    assert lines[failed + 1].strip() == "WorkflowError: [/] no prompt"
    not_ok = next(i for i, line in enumerate(lines) if "run-not-" in line)
    assert lines[not_ok + 1].strip() == "health unhealthy: score 40/100"
