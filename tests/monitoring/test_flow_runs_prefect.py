"""A flow run stuck in Running, found and fixed through a real Prefect server.

Prefect stamps a run's start time itself, so "stuck" is shown by checking at a moment two
hours after the run started (the checker's and finder's `now`), not by waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contexten.config import Settings
from contexten.monitoring.flow_runs import PrefectFlowRunControl, find_late, find_stuck
from contexten.monitoring.health import check_workers
from contexten.recovery.failures import failures_from_stuck_runs
from contexten.recovery.manager import RecoveryManager
from contexten.store.db import Store

pytestmark = pytest.mark.prefect_server


async def _stuck_run(api_url: str) -> tuple[str, str]:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import StateType
    from prefect.states import State

    async with PrefectClient(api=api_url) as client:
        flow_id = await client.create_flow_from_name("health-check")
        deployment = await client.create_deployment(
            flow_id, "health-check-stuck-test", entrypoint="contexten_tests.py:health_check"
        )
        run = await client.create_flow_run_from_deployment(
            deployment, parameters={"check_all_integrations": False}
        )
        await client.set_flow_run_state(run.id, State(type=StateType.PENDING), force=True)
        await client.set_flow_run_state(run.id, State(type=StateType.RUNNING), force=True)
    return str(run.id), str(deployment)


async def _state(api_url: str, run_id: str) -> tuple[str, dict[str, object]]:
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api=api_url) as client:
        run = await client.read_flow_run(run_id)
    return run.state.type.value if run.state else "", dict(run.parameters)


async def test_stuck_run_is_found_cancelled_and_restarted(
    prefect_api: str, store: Store, tmp_path: Path
) -> None:
    run_id, _ = await _stuck_run(prefect_api)
    settings = Settings(contexten_home=tmp_path / "home", prefect_api_url=prefect_api)
    control = PrefectFlowRunControl(prefect_api)
    later = datetime.now(UTC) + timedelta(hours=2)  # health-check's timeout is 300 s

    now_result = await check_workers(control, settings, now=datetime.now(UTC))
    assert run_id not in now_result.data["stuck"]
    result = await check_workers(control, settings, now=later)
    assert result.status == "degraded" and run_id in result.data["stuck"]

    running = await control.list_runs(["RUNNING"])
    stuck = [r for r in find_stuck(running, later, default_timeout_seconds=3600) if r.id == run_id]
    [failure] = failures_from_stuck_runs(stuck)
    assert failure.key == "flow-stuck:health-check"
    manager = RecoveryManager(settings, store, flow_runs=control)
    report = await manager.recover(failure)
    assert report.outcome == "succeeded", report.attempts
    new_id = report.attempts[0].data["restarted_as"]
    assert (await _state(prefect_api, run_id))[0] == "CANCELLING"
    state, parameters = await _state(prefect_api, new_id)
    assert state == "SCHEDULED" and parameters == {"check_all_integrations": False}
    # restarting the same stuck run again does not start a second copy
    assert await control.restart(stuck[0]) == new_id
    # the new run is scheduled, so it is late only once it should have started long ago
    waiting = await control.list_runs(["SCHEDULED"])
    assert new_id not in [r.id for r in find_late(waiting, datetime.now(UTC))]
    assert new_id in [r.id for r in find_late(waiting, later)]
