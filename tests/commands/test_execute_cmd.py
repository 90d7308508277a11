from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from contexten.cli import main
from contexten.workflows.base import WorkflowOutcome


@pytest.fixture
def body(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    state = types.SimpleNamespace(ok=True, raises=None, publish=None)
    module = types.ModuleType("contexten.workflows.release_management")

    async def run(params: object, ctx: object) -> WorkflowOutcome:
        if state.raises is not None:
            raise state.raises
        if state.publish is not None:
            ctx.publish_markdown("release notes", state.publish)  # type: ignore[attr-defined]
        return WorkflowOutcome(ok=state.ok, summary="summary text")

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "contexten.workflows.release_management", module)
    return state


def test_execute_json_success(
    contexten_home: Path, body: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["execute", "--operation", "release_management", "--parameters", "{}", "--json"])
    out = capsys.readouterr().out
    data = json.loads(out)
    assert code == 0
    assert data["status"] == "completed" and data["mode"] == "in-process"


def test_execute_exit_1_when_workflow_not_ok(
    contexten_home: Path, body: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    body.ok = False
    assert main(["execute", "-o", "release_management", "--json"]) == 1


def test_execute_text_says_problems_found_when_workflow_not_ok(
    contexten_home: Path, body: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    body.ok = False
    assert main(["execute", "-o", "release_management"]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("(in-process): completed, problems found")


def test_execute_exit_1_when_workflow_fails(
    contexten_home: Path, body: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.workflows.base import WorkflowError

    body.raises = WorkflowError("no tags in repository [/] (see [bold]git tag[/bold])")
    assert main(["execute", "-o", "release_management"]) == 1
    assert "no tags in repository [/] (see [bold]git tag[/bold])" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["execute", "-o", "nope"], "unknown workflow type 'nope'"),
        (["execute", "-o", "health_check", "-p", "{bad"], "--parameters is not valid JSON"),
        (["execute", "-o", "health_check", "-p", "[]"], "must be a JSON object"),
        (["execute", "-o", "failure_analysis", "-p", "{}"], "workflow_run_id: Field required"),
        (["execute"], "Missing option"),
        (["no-such-command"], "unknown command"),
    ],
)
def test_bad_input_exit_2_one_line(
    contexten_home: Path, argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err


def test_help_lists_commands_without_importing_them(capsys: pytest.CaptureFixture[str]) -> None:
    before = set(sys.modules)
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("execute", "analyze-log", "health-check", "server", "workflows"):
        assert name in out
    assert not any(m.startswith("contexten.commands.") for m in set(sys.modules) - before)
    assert "prefect" not in set(sys.modules) - before


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_execute_wait_with_no_concurrency_slots_is_one_line_exit_2(
    contexten_home: Path,
    body: types.SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    limit: str,
) -> None:
    # 0 used to wait forever on an empty semaphore; -1 printed a ValueError traceback.
    from contexten.config import reload_settings

    monkeypatch.setenv("MAX_CONCURRENT_WORKFLOWS", limit)
    reload_settings()
    assert main(["execute", "-o", "release_management", "--wait"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err == f"contexten: error: MAX_CONCURRENT_WORKFLOWS={limit} must be at least 1\n"
    )
    monkeypatch.undo()
    reload_settings()


def test_execute_says_where_its_report_went(
    contexten_home: Path, body: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    body.publish = "# Release notes\n"
    assert main(["execute", "-o", "release_management", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    report = contexten_home / "reports" / data["run_id"] / "release-notes.md"
    assert data["reports"] == [str(report)] and report.read_text() == "# Release notes\n"
    assert main(["execute", "-o", "release_management"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"report: {contexten_home}/reports/") for line in out)
    assert out[-1].endswith("/release-notes.md")


def test_execute_without_a_report_says_none_was_written(
    contexten_home: Path, body: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["execute", "-o", "release_management"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"report: none written to {contexten_home}/reports/")
    assert last.endswith("the run is recorded in the store: `contexten status`")
