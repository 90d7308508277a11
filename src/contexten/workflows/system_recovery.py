"""The system_recovery workflow body: find what is failing, then recover it.

With `component` (and optionally `failure_type`) it recovers that one component; without,
it runs a health check and recovers every unhealthy component, degraded resource and flow
run stuck in Running past its timeout. `dry_run` only shows the plans. `ok` is False when
something is still not recovered (failed, or handed to a human).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from contexten.catalog import SystemRecoveryParameters
from contexten.config import Settings
from contexten.monitoring.alerts import alert_manager_for
from contexten.monitoring.clients import IntegrationClients, build_clients
from contexten.monitoring.health import WEIGHTS, HealthChecker
from contexten.recovery.failures import (
    Failure,
    category_from_detail,
    failures_from_health,
    failures_from_stuck_runs,
)
from contexten.recovery.hooks import current_supervisor
from contexten.recovery.manager import RecoveryManager
from contexten.recovery.policy import FailureCategory, parse_category
from contexten.recovery.results import RecoveryReport
from contexten.workflows.base import Table, WorkflowContext, WorkflowError, WorkflowOutcome

COMPONENTS = tuple(WEIGHTS)
UNRESOLVED = ("failed", "escalated")


async def stuck_run_failures(settings: Settings) -> tuple[list[Failure], Any]:
    """Failures for flow runs stuck in Running, and the FlowRunControl to act on them;
    ([], None) when no Prefect server is configured or reachable."""
    from contexten.monitoring.flow_runs import (
        FlowRunControlError,
        PrefectFlowRunControl,
        find_stuck,
    )
    from contexten.monitoring.health import check_prefect

    prefect = await check_prefect(settings, timeout=10.0)
    if prefect.status != "healthy":
        return [], None
    key = settings.prefect_api_key
    control = PrefectFlowRunControl(
        str(prefect.data["api_url"]), key.get_secret_value() if key else None
    )
    try:  # Cancelling too: a dead worker leaves its runs there for good
        running = await control.list_runs(["RUNNING", "CANCELLING"])
    except FlowRunControlError:
        return [], control
    stuck = find_stuck(
        running, datetime.now(UTC), default_timeout_seconds=settings.workflow_default_timeout
    )
    return failures_from_stuck_runs(stuck), control


def parse_failure_type(value: str) -> FailureCategory:
    category = parse_category(value)
    if category is FailureCategory.UNKNOWN and value.strip().lower() != "unknown":
        choices = ", ".join(c.value for c in FailureCategory)
        raise WorkflowError(f"unknown failure_type {value!r}; expected one of: {choices}")
    return category


async def failures_for(
    params: SystemRecoveryParameters, ctx: WorkflowContext, manager: RecoveryManager
) -> list[Failure]:
    if params.component is not None:
        if params.component not in COMPONENTS:
            raise WorkflowError(
                f"unknown component {params.component!r}; expected one of: {', '.join(COMPONENTS)}"
            )
        if params.failure_type is not None:
            category = parse_failure_type(params.failure_type)
            return [
                Failure(
                    key=params.component,
                    category=category,
                    component=params.component,
                    detail=f"requested: {category.value}",
                    seen_at=datetime.now(UTC),
                )
            ]
        health = await manager.check(params.component)
        if health.status not in ("unhealthy", "degraded"):
            return []
        if params.component == "workers" and health.data.get("stuck"):
            stuck, control = await stuck_run_failures(ctx.settings)
            if stuck:  # every stuck run, each restarted
                manager.flow_runs = control
                return stuck
        category = category_from_detail(health.detail, params.component)
        if params.component in ("cpu", "memory", "disk"):
            category = FailureCategory.RESOURCE_EXHAUSTION
        return [
            Failure(
                key=params.component,
                category=category,
                component=params.component,
                detail=health.detail,
                seen_at=datetime.now(UTC),
            )
        ]
    if params.failure_type is not None:
        raise WorkflowError("failure_type needs a component")
    checker = HealthChecker(ctx.settings, ctx.store, clients=_lookup(manager.clients))
    report = await checker.run()
    failures = failures_from_health(report)
    workers = report.component("workers")
    if workers is not None and workers.data.get("stuck"):
        stuck, control = await stuck_run_failures(ctx.settings)
        failures.extend(stuck)
        manager.flow_runs = control
    return failures


def _lookup(clients: IntegrationClients) -> Any:
    from contexten.workflows.health_check import client_lookup

    return client_lookup(clients)


def recovery_table(reports: list[RecoveryReport]) -> Table:
    rows = []
    for r in reports:
        last = r.attempts[-1].detail if r.attempts else r.plan.reason
        rows.append(
            (
                r.key,
                r.category.value,
                " → ".join(s.value for s in r.plan.strategies),
                "dry run" if r.dry_run else r.outcome,
                last,
            )
        )
    return Table(
        columns=("key", "failure", "plan", "outcome", "detail"),
        rows=tuple(rows),
        title="System recovery",
    )


async def run(params: SystemRecoveryParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    clients = await asyncio.to_thread(build_clients, ctx.settings, ctx.store)
    try:
        manager = RecoveryManager(
            ctx.settings,
            ctx.store,
            clients=clients,
            alerts=alert_manager_for(ctx.store, ctx.settings, clients),
            supervisor=current_supervisor(),
        )
        failures = await failures_for(params, ctx, manager)
        if not ctx.settings.recovery_enabled and not params.dry_run:
            plans = [await manager.recover(f, dry_run=True) for f in failures]
            return WorkflowOutcome(
                ok=not failures,
                summary=f"RECOVERY_ENABLED is false: {len(failures)} failure(s) not recovered",
                data={"recoveries": [p.to_dict() for p in plans], "recovery_enabled": False},
            )
        if params.dry_run:
            reports = [await manager.recover(f, dry_run=True) for f in failures]
        else:
            reports = await manager.recover_many(failures)
    finally:
        await clients.aclose()
    table = recovery_table(reports)
    if reports:
        ctx.publish_table("system-recovery", table)
    unresolved = [r for r in reports if r.outcome in UNRESOLVED]
    if not reports:
        summary = "nothing to recover"
    elif params.dry_run:
        summary = f"dry run: {len(reports)} recovery plan(s)"
    else:
        counts: dict[str, int] = {}
        for r in reports:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        summary = "recoveries: " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    return WorkflowOutcome(
        ok=not unresolved,
        summary=summary,
        markdown=table.to_markdown() if reports else "",
        data={"recoveries": [r.to_dict() for r in reports], "dry_run": params.dry_run},
    )
