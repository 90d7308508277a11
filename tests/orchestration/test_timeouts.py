"""Timeouts that hold: each type's timeout from its spec and WORKFLOW_DEFAULT_TIMEOUT,
enforced in-process and in a Prefect flow; a timed-out run is recorded and alerts."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect_helpers import prefect_settings

from contexten.config import Settings
from contexten.monitoring.alerts import AlertManager
from contexten.monitoring.flow_runs import timeout_for_flow
from contexten.monitoring.run_alerts import timeout_alert_key
from contexten.orchestration.execution import TIMED_OUT, execute_workflow, load_execution
from contexten.orchestration.flows import FLOWS, flow_timeout_seconds
from contexten.orchestration.workflows import REGISTRY, AutonomousWorkflowType
from contexten.sandbox.testing import running_sandbox
from contexten.store.db import Store
from contexten.workflows.base import WorkflowOutcome

T = AutonomousWorkflowType


def test_short_types_are_capped_and_long_types_follow_the_default() -> None:
    health, audit = REGISTRY[T.HEALTH_CHECK], REGISTRY[T.SECURITY_AUDIT]
    assert health.effective_timeout(3600) == 300
    assert health.effective_timeout(60) == 60  # capped
    assert audit.effective_timeout(3600) == 3600
    assert audit.effective_timeout(7200) == 7200  # raising the default raises long audits
    assert audit.effective_timeout(600) == 600
    assert REGISTRY[T.DEPENDENCY_MANAGEMENT].effective_timeout(9000) == 9000
    assert REGISTRY[T.FAILURE_ANALYSIS].effective_timeout(9000) == 1800
    assert timeout_for_flow("health-check", 60) == 60
    assert timeout_for_flow("security-audit", 7200) == 7200


def test_prefect_flows_carry_a_backstop_past_the_enforced_timeout() -> None:
    for wtype, flow in FLOWS.items():
        expected = flow_timeout_seconds(REGISTRY[wtype], 3600)
        assert flow.timeout_seconds == expected > REGISTRY[wtype].effective_timeout(3600)


@pytest.fixture
def hanging_body(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """health_check's body waits forever (until cancelled)."""
    state = types.SimpleNamespace(calls=0, cancelled=False)
    module = types.ModuleType("contexten.workflows.health_check")

    async def run(params: object, ctx: object) -> WorkflowOutcome:
        state.calls += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            state.cancelled = True
            raise
        return WorkflowOutcome(ok=True, summary="never")

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "contexten.workflows.health_check", module)
    return state


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    the_store = Store(f"sqlite:///{tmp_path / 'timeouts.db'}")
    the_store.migrate()
    yield the_store
    the_store.dispose()


async def test_an_in_process_run_times_out_is_recorded_and_alerts_slack(
    tmp_path: Path, store: Store, hanging_body: types.SimpleNamespace
) -> None:
    with running_sandbox(services=("slack",)) as sandbox:
        env = {k.lower(): v for k, v in sandbox.env().items()}
        settings = Settings(
            **env,
            contexten_home=tmp_path / "home",
            workflow_default_timeout=1,
            http_max_attempts=1,
        )
        result = await execute_workflow("health_check", {}, settings=settings, store=store)
        messages = sandbox.state.slack.messages()
    assert result.status == TIMED_OUT and not result.ok
    assert hanging_body.calls == 1 and hanging_body.cancelled
    row = load_execution(store, result.run_id)
    assert row is not None and row.status == TIMED_OUT
    assert row.error is not None and "timed out after 1s" in row.error
    [alert] = AlertManager(store, settings).list_alerts(status="firing")
    assert alert.key == timeout_alert_key("health_check") and result.run_id in alert.message
    assert any(result.run_id in m.text and "health_check" in m.text for m in messages)


async def test_a_timed_out_run_is_not_retried(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    module = types.ModuleType("contexten.workflows.linear_sync")

    async def run(params: object, ctx: object) -> WorkflowOutcome:
        nonlocal calls
        calls += 1
        await asyncio.sleep(30)
        return WorkflowOutcome(ok=True, summary="late")

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "contexten.workflows.linear_sync", module)
    settings = Settings(contexten_home=tmp_path / "home", workflow_default_timeout=1)
    result = await execute_workflow("linear_sync", {}, settings=settings, store=store)
    assert result.status == TIMED_OUT and calls == 1


@pytest.mark.prefect_server
async def test_a_prefect_flow_run_times_out_the_same_way(
    prefect_server: str,
    contexten_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    hanging_body: types.SimpleNamespace,
) -> None:
    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator

    monkeypatch.setenv("WORKFLOW_DEFAULT_TIMEOUT", "1")
    settings = reload_settings().model_copy(update={"dispatch_mode": "local"})
    with prefect_settings(prefect_server):
        orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
        run_id = await orchestrator.trigger_workflow("health_check", {}, idempotency_key="t-1")
        status = await orchestrator.get_workflow_status(run_id)
    assert status.mode == "prefect-local" and status.status == TIMED_OUT, status
    assert hanging_body.cancelled
    alerts = AlertManager(orchestrator.store, settings).list_alerts(status="firing")
    assert [a.key for a in alerts] == [timeout_alert_key("health_check")]
