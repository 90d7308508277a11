"""Deployments, schedules, the global concurrency limit and secret blocks on a Prefect server."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from contexten.config import Settings
from contexten.orchestration.flows import CONCURRENCY_LIMIT_NAME, FLOWS
from contexten.orchestration.workflows import REGISTRY, AutonomousWorkflowType, WorkflowSpec

SECRET_FIELDS = (
    "codegen_token",
    "github_token",
    "github_app_private_key",
    "github_webhook_secret",
    "slack_webhook_url",
    "slack_bot_token",
    "linear_api_key",
)


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    workflow_type: AutonomousWorkflowType
    name: str  # "<flow name>/<deployment name>"
    schedule: str


def deployment_full_name(spec: WorkflowSpec) -> str:
    return f"{spec.flow_name}/{spec.deployment_name}"


async def build_deployments(settings: Settings, *, work_pool: str | None = None) -> list[Any]:
    """RunnerDeployments for all 13 flows, with their schedules (none paused)."""
    from prefect.deployments.runner import EntrypointType

    deployments = []
    for workflow_type, spec in REGISTRY.items():
        schedule_kwargs: dict[str, Any] = {}
        if workflow_type is AutonomousWorkflowType.HEALTH_CHECK:
            # HEALTH_CHECK_INTERVAL (seconds) sets how often the system checks itself.
            schedule_kwargs["interval"] = settings.health_check_interval
        elif spec.schedule is not None and spec.schedule.cron:
            schedule_kwargs["cron"] = spec.schedule.cron
        elif spec.schedule is not None and spec.schedule.interval_seconds:
            schedule_kwargs["interval"] = spec.schedule.interval_seconds
        if work_pool is not None:
            # a worker takes runs from higher-priority queues first (see ensure_work_queues)
            schedule_kwargs["work_queue_name"] = work_queue_name(spec.priority)
        deployments.append(
            await FLOWS[workflow_type].ato_deployment(
                name=spec.deployment_name,
                description=spec.description,
                tags=["contexten", *spec.tags],
                work_pool_name=work_pool,
                entrypoint_type=EntrypointType.MODULE_PATH,
                enforce_parameter_schema=False,
                **schedule_kwargs,
            )
        )
    return deployments


async def ensure_concurrency_limit(limit: int) -> None:
    """Create or update the global limit every flow takes a slot of."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            existing = await client.read_global_concurrency_limit_by_name(CONCURRENCY_LIMIT_NAME)
        except ObjectNotFound:
            existing = None
        if existing is None:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=CONCURRENCY_LIMIT_NAME, limit=limit)
            )
        elif existing.limit != limit:
            await client.update_global_concurrency_limit(
                CONCURRENCY_LIMIT_NAME, GlobalConcurrencyLimitUpdate(limit=limit)
            )


ZOMBIE_AUTOMATION_NAME = "contexten: crash flow runs without heartbeats"
# Flow-run processes send a heartbeat every HEARTBEAT_SECONDS (PREFECT_FLOWS_HEARTBEAT_
# FREQUENCY, at least 30); a Running run with none for ZOMBIE_AFTER_SECONDS lost its
# process (a worker host or container died) and is marked Crashed, as Prefect documents.
# A run a worker took to Pending must reach Running in that time too: a worker killed with
# its flow-run process before the engine started leaves it Pending, with no heartbeat ever.
HEARTBEAT_SECONDS = 30
ZOMBIE_AFTER_SECONDS = 120
ZOMBIE_AFTER = frozenset(
    {
        "prefect.flow-run.heartbeat",
        "prefect.flow-run.Pending",
        "prefect.flow-run.Submitting",  # the Pending state a worker sets before it starts one
        "prefect.flow-run.Running",
    }
)
ZOMBIE_EXPECT = frozenset(
    {
        "prefect.flow-run.heartbeat",
        "prefect.flow-run.Running",
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Cancelled",
        "prefect.flow-run.Crashed",
    }
)


def heartbeat_env() -> dict[str, str]:
    """Environment for processes that execute flow runs (runner, workers)."""
    return {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}


async def ensure_zombie_automation() -> bool:
    """Create the automation that marks a flow run Crashed when its heartbeats stop (or it
    never leaves Pending); True when it was created or brought up to date now (False: it
    exists as it should)."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    trigger = EventTrigger(
        after=set(ZOMBIE_AFTER),
        expect=set(ZOMBIE_EXPECT),
        match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=timedelta(seconds=ZOMBIE_AFTER_SECONDS),
    )
    try:
        existing = await Automation.aread(name=ZOMBIE_AUTOMATION_NAME)
    except ValueError:  # not found
        existing = None
    # Not forced: Prefect refuses to crash a run that already ended (a late or lost event
    # must never turn a Completed run into a Crashed one, which would be started again);
    # Pending, Running and Cancelling (where a dead worker leaves runs) are not final.
    action = ChangeFlowRunState(
        name=None,
        state=StateType.CRASHED,
        message=f"no heartbeat for {ZOMBIE_AFTER_SECONDS} s: its process died",
        force=False,
    )
    if existing is not None:
        current = existing.trigger
        if (
            isinstance(current, EventTrigger)
            and set(current.after) == ZOMBIE_AFTER
            and set(current.expect) == ZOMBIE_EXPECT
            and [a.model_dump() for a in existing.actions] == [action.model_dump()]
        ):
            return False
        # made by an earlier version (heartbeats only, forced): bring it up to date
        existing.trigger = trigger
        existing.actions = [action]
        await existing.aupdate()
        return True
    automation = Automation(
        name=ZOMBIE_AUTOMATION_NAME,
        description="A flow run whose heartbeats stopped, or that never left Pending, "
        "lost its process.",
        trigger=trigger,
        actions=[action],
    )
    await automation.acreate()
    return True


async def save_secret_blocks(settings: Settings) -> list[str]:
    """Store each configured secret as a Prefect Secret block; return the block names."""
    from prefect.blocks.system import Secret

    saved = []
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if value is None:
            continue
        block_name = f"contexten-{name.replace('_', '-')}"
        await Secret(value=value.get_secret_value()).save(block_name, overwrite=True)
        saved.append(block_name)
    return saved


async def ensure_work_pool(name: str) -> str:
    """The type of work pool `name`; a `process` pool is created when there is none yet."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    async with get_client() as client:
        try:
            pool = await client.read_work_pool(name)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            try:
                pool = await client.create_work_pool(
                    WorkPoolCreate(name=name, type="process", base_job_template=template)
                )
            except ObjectAlreadyExists:  # a worker starting meanwhile created it
                pool = await client.read_work_pool(name)
    return str(pool.type)


def work_queue_name(priority: int) -> str:
    return f"priority-{priority}"


async def ensure_work_queues(work_pool: str) -> dict[str, int]:
    """One work queue per type priority in the pool, with that Prefect priority (1 is
    served first), so a worker picks failure_analysis (1) before release_management (5).
    Returns {queue name: priority} as the server holds them."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    priorities = sorted({spec.priority for spec in REGISTRY.values()})
    async with get_client() as client:
        for priority in priorities:
            name = work_queue_name(priority)
            try:
                queue = await client.read_work_queue_by_name(name, work_pool_name=work_pool)
            except ObjectNotFound:
                with contextlib.suppress(ObjectAlreadyExists):  # another initialize meanwhile
                    await client.create_work_queue(
                        name=name,
                        work_pool_name=work_pool,
                        priority=priority,
                        description=f"contexten workflow types of priority {priority}",
                    )
                continue
            if queue.priority != priority:
                await client.update_work_queue(queue.id, priority=priority)
        queues = await client.read_work_queues(work_pool_name=work_pool)
    return {q.name: q.priority for q in queues}


async def register_deployments(settings: Settings, work_pool: str) -> list[DeploymentInfo]:
    """Register deployments for workers of `work_pool` (flows loaded from the installed package).

    Each deployment is applied directly rather than through `prefect.deploy()`, which
    refuses a missing pool and prints tables and hints on stdout (breaking `--json`).
    """
    await ensure_work_pool(work_pool)
    await ensure_work_queues(work_pool)
    for deployment in await build_deployments(settings, work_pool=work_pool):
        await deployment.aapply(work_pool_name=work_pool)
    return [
        DeploymentInfo(t, deployment_full_name(s), s.schedule.describe() if s.schedule else "-")
        for t, s in REGISTRY.items()
    ]
