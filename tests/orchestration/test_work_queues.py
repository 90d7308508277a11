"""Type priorities become work-queue priorities of the work pool (a real Prefect server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect_helpers import prefect_settings

from contexten.orchestration.deploy import register_deployments, work_queue_name
from contexten.orchestration.workflows import REGISTRY, AutonomousWorkflowType

pytestmark = pytest.mark.prefect_server


async def test_deployments_go_to_the_queue_of_their_priority(
    prefect_server: str, contexten_home: Path
) -> None:
    from prefect.client.orchestration import get_client

    from contexten.config import reload_settings

    settings = reload_settings()
    with prefect_settings(prefect_server):
        await register_deployments(settings, "prio-pool")
        await register_deployments(settings, "prio-pool")  # again: nothing new, same order
        async with get_client() as client:
            queues = {
                q.name: q.priority
                for q in await client.read_work_queues(work_pool_name="prio-pool")
            }
            deployments = {
                AutonomousWorkflowType(spec.type): await client.read_deployment_by_name(
                    f"{spec.flow_name}/{spec.deployment_name}"
                )
                for spec in REGISTRY.values()
            }
    ours = {name: p for name, p in queues.items() if name.startswith("priority-")}
    assert sorted(ours) == ["priority-1", "priority-2", "priority-3", "priority-4", "priority-5"]
    # served in the types' order: a lower number is polled first
    assert sorted(ours, key=ours.__getitem__) == sorted(ours)
    for wtype, deployment in deployments.items():
        assert deployment.work_queue_name == work_queue_name(REGISTRY[wtype].priority)
    assert deployments[AutonomousWorkflowType.FAILURE_ANALYSIS].work_queue_name == "priority-1"
