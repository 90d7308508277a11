from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from contexten.config import Settings
from contexten.orchestration import (
    AutonomousWorkflowType,
    OrchestratorError,
    PrefectOrchestrator,
    WorkflowParameterError,
)
from contexten.workflows.base import WorkflowOutcome


@pytest.fixture
def orchestrator(tmp_path: Path) -> PrefectOrchestrator:
    settings = Settings(contexten_home=tmp_path, prefect_api_url=None)
    return PrefectOrchestrator(settings=settings, github_token="ghp_secretvalue123")


@pytest.fixture
def counting_body(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    state = types.SimpleNamespace(calls=0)
    module = types.ModuleType("contexten.workflows.release_management")

    async def run(params: object, ctx: object) -> WorkflowOutcome:
        state.calls += 1
        return WorkflowOutcome(ok=True, summary=f"call {state.calls}", data={"n": state.calls})

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "contexten.workflows.release_management", module)
    return state


def test_seed_constructor_and_no_secret_in_repr(orchestrator: PrefectOrchestrator) -> None:
    assert orchestrator.settings.github_token is not None
    assert orchestrator.settings.github_token.get_secret_value() == "ghp_secretvalue123"
    assert "ghp_secretvalue123" not in repr(orchestrator)
    assert "ghp_secretvalue123" not in repr(orchestrator.settings)


async def test_in_process_fallback_without_server(
    orchestrator: PrefectOrchestrator, counting_body: types.SimpleNamespace, tmp_path: Path
) -> None:
    # PREFECT_API_URL points at a closed port in the test session: not reachable.
    orchestrator.settings = orchestrator.settings.model_copy(
        update={"prefect_api_url": "http://127.0.0.1:9/api"}
    )
    assert orchestrator.mode == "in-process"
    run_id = await orchestrator.trigger_workflow(AutonomousWorkflowType.RELEASE_MANAGEMENT, {})
    status = await orchestrator.get_workflow_status(run_id)
    assert status.mode == "in-process"
    assert status.status == "completed" and status.ok
    assert status.result == {"ok": True, "summary": "call 1", "data": {"n": 1}}


async def test_idempotency_key_runs_once(
    orchestrator: PrefectOrchestrator, counting_body: types.SimpleNamespace
) -> None:
    first = await orchestrator.trigger_workflow("release_management", {}, idempotency_key="d-1")
    second = await orchestrator.trigger_workflow("release_management", {}, idempotency_key="d-1")
    third = await orchestrator.trigger_workflow("release_management", {}, idempotency_key="d-2")
    assert first == second != third
    assert counting_body.calls == 2


async def test_bad_parameters_raise(orchestrator: PrefectOrchestrator) -> None:
    with pytest.raises(WorkflowParameterError):
        await orchestrator.trigger_workflow("failure_analysis", {"workflow_run_id": "abc"})


async def test_unknown_run(orchestrator: PrefectOrchestrator) -> None:
    with pytest.raises(OrchestratorError, match="unknown workflow run"):
        await orchestrator.get_workflow_status("does-not-exist")


async def test_initialize_without_server_migrates_and_says_so(
    orchestrator: PrefectOrchestrator,
) -> None:
    report = await orchestrator.initialize()
    assert report.prefect_api_url is None
    assert report.problems == ()
    assert any("in-process" in note for note in report.notes)
    assert (orchestrator.settings.data_dir / "contexten.db").exists()


async def test_recent_runs_listed(
    orchestrator: PrefectOrchestrator, counting_body: types.SimpleNamespace
) -> None:
    ids = [await orchestrator.trigger_workflow("release_management", {}) for _ in range(3)]
    recent = await orchestrator.list_recent(2)
    assert [r.run_id for r in recent] == ids[::-1][:2]
