"""What orchestration lends recovery, which sits below it: running a workflow in this
process, and finding a `contexten server` on this machine. Registered on import of
`contexten.orchestration`, so recovery never imports orchestration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contexten.config import Settings
from contexten.recovery.manager import Supervisor, register_orchestration
from contexten.store.db import Store


async def run_in_process(
    workflow_type: str, parameters: Mapping[str, Any], settings: Settings, store: Store
) -> bool:
    from contexten.orchestration.execution import execute_workflow

    result = await execute_workflow(workflow_type, dict(parameters), settings=settings, store=store)
    return result.status == "completed"


def find_supervisor(settings: Settings) -> Supervisor | None:
    from contexten.orchestration.supervisor import RemoteSupervisor

    return RemoteSupervisor.discover(settings)


def register() -> None:
    register_orchestration(run_in_process, find_supervisor)
