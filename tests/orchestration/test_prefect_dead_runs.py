"""Through a real Prefect server: a trigger whose key returns a dead run starts a new one;
the sweep restarts crashed deployment runs under their key, once, freeing the action claims
their dead process left; initialize creates the automation that crashes flow runs whose
heartbeats stop (or that never leave Pending)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect_helpers import prefect_settings

pytestmark = pytest.mark.prefect_server


async def _force_state(run_id: str, state: Any) -> None:
    from uuid import UUID

    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await client.set_flow_run_state(UUID(run_id), state, force=True)


@pytest.mark.parametrize("dead", ["Crashed", "Cancelled", "Cancelling"])
async def test_a_key_whose_run_died_starts_a_new_run_once(
    prefect_server: str, contexten_home: Path, dead: str
) -> None:
    from prefect import states

    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator
    from contexten.orchestration.deploy import build_deployments

    settings = reload_settings().model_copy(update={"dispatch_mode": "deployment"})
    with prefect_settings(prefect_server):
        orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
        (deployment,) = [d for d in await build_deployments(settings) if d.name == "health-check"]
        await deployment.aapply()  # registered, served by nobody: runs stay Scheduled
        key = f"github-delivery:dead-{dead}:health_check"
        first = await orchestrator.trigger_workflow("health_check", {}, idempotency_key=key)
        assert await orchestrator.trigger_workflow("health_check", {}, idempotency_key=key) == (
            first  # alive (Scheduled): the same run
        )
        state = {
            "Crashed": states.Crashed(message="worker host died"),
            "Cancelled": states.Cancelled(),
            "Cancelling": states.Cancelling(),
        }[dead]
        await _force_state(first, state)
        second = await orchestrator.trigger_workflow("health_check", {}, idempotency_key=key)
        third = await orchestrator.trigger_workflow("health_check", {}, idempotency_key=key)
    assert second != first  # a new run for the delivery
    assert third == second  # and only one


async def test_the_sweep_restarts_a_crashed_deployment_run_once_under_its_key(
    prefect_server: str, contexten_home: Path
) -> None:
    from prefect import states

    from contexten.config import reload_settings
    from contexten.integrations.idempotency import ActionLedger
    from contexten.orchestration import PrefectOrchestrator
    from contexten.orchestration.deploy import build_deployments
    from contexten.store import executions as runs
    from contexten.store import ledger

    settings = reload_settings().model_copy(update={"dispatch_mode": "deployment"})
    with prefect_settings(prefect_server):
        orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
        store = orchestrator.store
        (deployment,) = [d for d in await build_deployments(settings) if d.name == "health-check"]
        await deployment.aapply()  # registered, served by nobody: runs stay Scheduled
        key = "github-delivery:sweep-crashed:health_check"
        first = await orchestrator.trigger_workflow("health_check", {}, idempotency_key=key)
        # A worker's flow-run process ran it, claimed an action, and died with its host.
        dead = "worker-host:4242:deadbeef"
        runs.record(store, first, status="running", lease_owner=dead)
        claim = {"claim": {"owner": dead, "lease_until": 4_000_000_000.0}}
        assert ledger.insert_claim(store, "sweep-crashed-comment", "comment", "x", claim)
        assert await orchestrator.restart_crashed_runs() == []  # Scheduled: alive
        await _force_state(first, states.Crashed(message="no heartbeat for 120 s"))

        restarted = await orchestrator.recover_stale_runs()
        again = await orchestrator.recover_stale_runs()
        second = await orchestrator.trigger_workflow("health_check", {}, idempotency_key=key)
    assert [row.run_id for row in restarted] == [first]
    assert again == []  # tagged as restarted: not restarted twice
    assert second != first  # the key now gives the new run
    row = runs.load(store, first)
    assert row is not None and row.status == "crashed" and row.taken_over_from == dead
    # The claim the dead process left is taken over at once (not after its 900 s lease).
    ledger_of_new_run = ActionLedger(store, owner="new-run", max_wait_seconds=0)

    async def perform() -> dict[str, Any]:
        return {"commented": True}

    done = await ledger_of_new_run.once("sweep-crashed-comment", "comment", "x", perform)
    assert done == {"commented": True}
    new_row = runs.load(store, second)
    assert new_row is not None and new_row.status == "scheduled"


async def test_a_run_crashed_after_its_body_finished_is_not_run_again(
    prefect_server: str, contexten_home: Path
) -> None:
    from prefect import states

    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator
    from contexten.orchestration.deploy import build_deployments
    from contexten.store import executions as runs

    settings = reload_settings().model_copy(update={"dispatch_mode": "deployment"})
    with prefect_settings(prefect_server):
        orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
        store = orchestrator.store
        (deployment,) = [d for d in await build_deployments(settings) if d.name == "health-check"]
        await deployment.aapply()
        key = "github-delivery:crashed-after-the-fact:health_check"
        first = await orchestrator.trigger_workflow("health_check", {}, idempotency_key=key)
        runs.record(store, first, status="completed", lease_owner="worker-host:1:abc")
        # A lost state event: Prefect crashed it although its body finished.
        await _force_state(first, states.Crashed(message="no heartbeat for 120 s"))
        restarted = await orchestrator.restart_crashed_runs()
        again = await orchestrator.restart_crashed_runs()
    assert restarted == [] and again == []
    row = runs.load(store, first)
    assert row is not None and row.status == "completed" and row.takeovers == 0


async def test_initialize_creates_the_zombie_automation_once(
    prefect_server: str, contexten_home: Path
) -> None:
    from prefect.automations import Automation

    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator
    from contexten.orchestration.deploy import (
        ZOMBIE_AFTER_SECONDS,
        ZOMBIE_AUTOMATION_NAME,
        ensure_zombie_automation,
    )

    settings = reload_settings()
    with prefect_settings(prefect_server):
        orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
        await orchestrator.initialize()
        automation = await Automation.aread(name=ZOMBIE_AUTOMATION_NAME)
        assert await ensure_zombie_automation() is False  # exists: not created twice
    trigger = automation.trigger
    assert "prefect.flow-run.Submitting" in trigger.after  # type: ignore[union-attr]
    assert "prefect.flow-run.Running" in trigger.expect  # type: ignore[union-attr]
    assert trigger.posture.value == "Proactive"  # type: ignore[union-attr]
    assert trigger.within.total_seconds() == ZOMBIE_AFTER_SECONDS  # type: ignore[union-attr]
    (action,) = automation.actions
    assert action.type == "change-flow-run-state" and action.state.value == "CRASHED"  # type: ignore[union-attr]
    assert action.force is False  # type: ignore[union-attr]  # an ended run stays as it ended
