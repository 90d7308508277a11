"""What orchestration lends the layers below it, registered on import of
`contexten.orchestration` so they never import orchestration: recovery gets how to run a
workflow in this process and how to find a `contexten server` on this machine; workflow
steps get the Prefect task runner (`orchestration.steps.run_step`, loaded when first used).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contexten.config import Settings
from contexten.recovery.hooks import ComponentRestarter, register_orchestration
from contexten.store.db import Store
from contexten.workflows.base import register_step_runner


async def run_in_process(
    workflow_type: str, parameters: Mapping[str, Any], settings: Settings, store: Store
) -> bool:
    from contexten.orchestration.execution import execute_workflow

    result = await execute_workflow(workflow_type, dict(parameters), settings=settings, store=store)
    return result.status == "completed"


def find_supervisor(settings: Settings) -> ComponentRestarter | None:
    from contexten.orchestration.supervisor import RemoteSupervisor

    return RemoteSupervisor.discover(settings)


async def run_step(name: str, fn: Any, **kwargs: Any) -> Any:
    from contexten.orchestration.steps import run_step as prefect_step

    return await prefect_step(name, fn, **kwargs)


def register() -> None:
    register_orchestration(run_in_process, find_supervisor)
    register_step_runner(run_step)
