"""`contexten gha`: event files, routing, running, the step summary, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexten.cli import main
from contexten.config import reload_settings
from contexten.events.gha import RunReport

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "webhooks"
FAILED_JOB = (
    EXAMPLES / "payload-examples/workflow_job/completed.failure.with-organization.payload.json"
)


@pytest.fixture
def gha_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("CONTEXTEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "1")
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/repo")
    reload_settings()
    yield {"summary": summary, "dir": tmp_path}
    monkeypatch.undo()
    reload_settings()


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any], str]]:
    """Replace the orchestrator runner; the list records what ran. Set .ok via a marker."""
    calls: list[tuple[str, dict[str, Any], str]] = []

    def fake_runner(_settings: Any) -> Any:
        async def run(workflow_type: str, parameters: dict[str, Any], key: str) -> RunReport:
            calls.append((workflow_type, parameters, key))
            ok = parameters.get("workflow_run_id") != 666
            return RunReport(
                workflow_type,
                f"run-{len(calls)}",
                "completed" if ok else "failed",
                ok,
                summary="diagnosed: network error" if ok else "",
                error=None if ok else "logs unavailable",
                mode="in-process",
            )

        return run

    monkeypatch.setattr("contexten.events.gha.orchestrator_runner", fake_runner)
    return calls


def _event(monkeypatch: pytest.MonkeyPatch, name: str, path: Path) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", name)
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))


def _write(directory: Path, payload: Any, name: str = "event.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def test_failed_job_event_runs_failure_analysis_and_writes_the_summary(
    gha_env: dict[str, Path],
    runs: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _event(monkeypatch, "workflow_job", FAILED_JOB)
    assert main(["gha"]) == 0
    assert runs == [
        (
            "failure_analysis",
            {"repository": "Codertocat/Hello-World", "workflow_run_id": 2202229078},
            "failure_analysis:Codertocat/Hello-World:2202229078:1",
        )
    ]
    summary = gha_env["summary"].read_text(encoding="utf-8")
    assert "## contexten: `workflow_job` (completed)" in summary
    assert "| failure_analysis | failed-workflow-job | run-1 | in-process |" in summary
    assert "diagnosed: network error" in summary
    assert summary in capsys.readouterr().out


def test_a_failed_workflow_exits_1_and_says_why(
    gha_env: dict[str, Path], runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = json.loads(FAILED_JOB.read_text(encoding="utf-8"))
    payload["workflow_job"]["run_id"] = 666
    _event(monkeypatch, "workflow_job", _write(gha_env["dir"], payload))
    assert main(["gha"]) == 1
    summary = gha_env["summary"].read_text(encoding="utf-8")
    assert "A workflow failed" in summary and "logs unavailable" in summary


def test_nothing_matched_exits_0(
    gha_env: dict[str, Path], runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = EXAMPLES / "payload-examples/workflow_job/queued.payload.json"
    _event(monkeypatch, "workflow_job", queued)
    assert main(["gha"]) == 0
    assert runs == []
    assert "nothing to run" in gha_env["summary"].read_text(encoding="utf-8")


def test_workflow_dispatch_mode_input_picks_the_workflow(
    gha_env: dict[str, Path], runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    event = {"inputs": {"mode": "health-check"}, "repository": {"full_name": "octo/repo"}}
    _event(monkeypatch, "workflow_dispatch", _write(gha_env["dir"], event))
    assert main(["gha"]) == 0
    assert runs == [("health_check", {"repository": "octo/repo"}, "gha:4242:1:health_check")]


def test_explicit_workflow_and_parameters(
    gha_env: dict[str, Path], runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _event(monkeypatch, "schedule", _write(gha_env["dir"], {"schedule": "0 5 * * *"}))
    code = main(
        ["gha", "--workflow", "dependency_management", "--parameters", '{"create_pr": true}']
    )
    assert code == 0
    assert runs[0][:2] == (
        "dependency_management",
        {"create_pr": True, "repository": "octo/repo"},
    )


def test_dry_run_json_runs_nothing(
    gha_env: dict[str, Path],
    runs: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _event(monkeypatch, "workflow_job", FAILED_JOB)
    assert main(["gha", "--dry-run", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["routes"][0]["workflow_type"] == "failure_analysis"
    assert runs == []
    assert not gha_env["summary"].exists()


def test_dry_run_text_is_json_parameters_or_says_nothing_matches(
    gha_env: dict[str, Path],
    runs: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _event(monkeypatch, "workflow_job", FAILED_JOB)
    assert main(["gha", "--dry-run"]) == 0
    assert capsys.readouterr().out == (
        'failure_analysis  {"repository": "Codertocat/Hello-World", "workflow_run_id": '
        "2202229078}  (rule failed-workflow-job)\n"
    )
    _event(monkeypatch, "ping", EXAMPLES / "payload-examples/ping/payload.json")
    assert main(["gha", "--dry-run"]) == 0
    assert capsys.readouterr().out == "no workflow for event 'ping': no routing rule matches\n"
    assert runs == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-name", "GITHUB_EVENT_NAME is not set"),
        ("no-path", "GITHUB_EVENT_PATH is not set"),
        ("missing", "does not exist"),
        ("not-json", "is not valid JSON"),
        ("array", "not an object"),
        ("bad-workflow", "unknown workflow type"),
        ("bad-parameters", "--parameters is not valid JSON"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    gha_env: dict[str, Path],
    runs: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    message: str,
) -> None:
    args = ["gha"]
    directory = gha_env["dir"]
    _event(monkeypatch, "workflow_job", FAILED_JOB)
    if setup == "no-name":
        monkeypatch.delenv("GITHUB_EVENT_NAME")
    elif setup == "no-path":
        monkeypatch.delenv("GITHUB_EVENT_PATH")
    elif setup == "missing":
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(directory / "absent.json"))
    elif setup == "not-json":
        (directory / "broken.json").write_text('{"action": "compl', encoding="utf-8")
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(directory / "broken.json"))
    elif setup == "array":
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(_write(directory, [1, 2])))
    elif setup == "bad-workflow":
        args += ["--workflow", "make_coffee"]
    elif setup == "bad-parameters":
        args += ["--workflow", "health_check", "--parameters", "{oops"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("contexten: error:") and message in err
    assert len(err.splitlines()) == 1
    assert runs == []


def test_runs_in_process_through_the_orchestrator(
    gha_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Prefect server reachable: the real orchestrator runs the body in this process."""
    from contexten.workflows.base import WorkflowOutcome

    seen: list[Any] = []

    async def body(params: Any, ctx: Any) -> WorkflowOutcome:
        seen.append((params.repository, ctx.run_id))
        return WorkflowOutcome(ok=True, summary="3 workflows linted, no findings")

    monkeypatch.setattr("contexten.workflows.workflow_optimization.run", body)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # closed port
    reload_settings()
    _event(monkeypatch, "schedule", _write(gha_env["dir"], {"schedule": "*/15 * * * *"}))
    assert main(["gha", "--workflow", "workflow_optimization"]) == 0
    assert seen and seen[0][0] == "octo/repo"
    summary = gha_env["summary"].read_text(encoding="utf-8")
    assert "3 workflows linted, no findings" in summary and "in-process" in summary


def test_unknown_workflow_is_named_before_the_event_is_read(
    gha_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_EVENT_NAME", raising=False)
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    assert main(["gha", "--workflow", "nope"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(
        "contexten: error: --workflow: unknown workflow type 'nope'; expected one of: "
    )
    assert "GITHUB_EVENT" not in captured.err and len(captured.err.splitlines()) == 1
