"""The health_check workflow body: check, score, record, alert, and optionally recover.

Every component and the machine's resources are checked (monitoring.health); the score is
recorded in the metrics history; a table is published. With `alert_on_degradation`, each
failing component fires an alert `health:<component>` (critical when unhealthy, warning
when degraded) and each recovered one resolves its alert. With `auto_recovery` (and
RECOVERY_ENABLED) the failures go to the recovery manager. A healthy run remembers the
settings as last-known-good for configuration reset. `ok` is False when unhealthy.
"""

from __future__ import annotations

import asyncio
from typing import Any

from contexten.catalog import HealthCheckParameters
from contexten.monitoring.alerts import Alert, Severity, alert_manager_for
from contexten.monitoring.clients import (
    ClientUnavailable,
    IntegrationClients,
    build_clients,
)
from contexten.monitoring.health import (
    INTEGRATIONS,
    WEIGHTS,
    ComponentHealth,
    HealthChecker,
    HealthReport,
)
from contexten.monitoring.metrics import COMPONENT_LATENCY, HEALTH_SCORE, record_sample
from contexten.workflows.base import Table, WorkflowContext, WorkflowOutcome

TABLE_COLUMNS = ("component", "status", "latency", "weight", "detail")


def health_table(report: HealthReport) -> Table:
    return Table(
        columns=TABLE_COLUMNS,
        rows=tuple(report.rows()),
        title=f"Health {report.score:.0f}/100: {report.status}",
    )


def health_markdown(report: HealthReport) -> str:
    lines = [f"## Health: {report.status} ({report.score:.0f}/100)", ""]
    if report.problems:
        lines += ["Problems:", *[f"- {p}" for p in report.problems], ""]
    lines.append(health_table(report).to_markdown())
    return "\n".join(lines)


def client_lookup(clients: IntegrationClients) -> Any:
    """The HealthChecker's client factory over already built clients."""

    async def lookup(name: str) -> Any:
        if name in clients.errors:
            raise ClientUnavailable(clients.errors[name])
        return clients.client(name)

    return lookup


def record_report(ctx: WorkflowContext, report: HealthReport) -> None:
    size = ctx.settings.performance_history_size
    record_sample(
        ctx.store, HEALTH_SCORE, report.score, {"status": report.status}, history_size=size
    )
    for component in report.components:
        if component.latency_ms is not None:
            record_sample(
                ctx.store,
                COMPONENT_LATENCY,
                component.latency_ms,
                {"component": component.name},
                history_size=size,
            )


async def raise_alerts(
    ctx: WorkflowContext, report: HealthReport, clients: IntegrationClients
) -> list[dict[str, Any]]:
    """Fire an alert per failing component, resolve those that are fine now."""
    alerts = alert_manager_for(ctx.store, ctx.settings, clients)
    decisions = []
    for component in report.components:
        key = f"health:{component.name}"
        if component.status in ("degraded", "unhealthy"):
            severity = Severity.CRITICAL if component.status == "unhealthy" else Severity.WARNING
            decision = await alerts.fire(
                Alert(key, severity, f"{component.name} {component.status}: {component.detail}")
            )
        else:
            decision = await alerts.resolve(key, reason=f"{component.name} {component.status}")
            if decision.action == "not_firing":
                continue
        decisions.append(
            {"key": key, "action": decision.action, "channels": list(decision.channels)}
        )
    # The overall alert pages only when no single component does: an unhealthy score made
    # of several degraded parts. Otherwise the component alerts say it more precisely.
    critical_part = any(c.status == "unhealthy" for c in report.components)
    if report.status == "unhealthy" and not critical_part:
        decision = await alerts.fire(
            Alert(
                "health:overall",
                Severity.CRITICAL,
                f"contexten unhealthy: score {report.score:.0f}/100; " + "; ".join(report.problems),
            )
        )
    else:
        decision = await alerts.resolve("health:overall", reason=f"score {report.score:.0f}")
    if decision.action != "not_firing":
        decisions.append(
            {
                "key": "health:overall",
                "action": decision.action,
                "channels": list(decision.channels),
            }
        )
    return decisions


async def recover(
    ctx: WorkflowContext, report: HealthReport, clients: IntegrationClients
) -> list[dict[str, Any]]:
    from contexten.recovery.failures import failures_from_health
    from contexten.recovery.manager import RecoveryManager

    failures = failures_from_health(report)
    stuck = report.component("workers")
    manager = RecoveryManager(
        ctx.settings,
        ctx.store,
        clients=clients,
        alerts=alert_manager_for(ctx.store, ctx.settings, clients),
        flow_runs=None,
    )
    if stuck is not None and stuck.data.get("stuck"):
        from contexten.workflows.system_recovery import stuck_run_failures

        stuck_failures, control = await stuck_run_failures(ctx.settings)
        failures.extend(stuck_failures)
        manager.flow_runs = control
    reports = await manager.recover_many(failures)
    return [r.to_dict() for r in reports]


def not_checked(names: tuple[str, ...]) -> list[ComponentHealth]:
    return [ComponentHealth(n, "disabled", "not checked (integrations off)") for n in names]


async def run(params: HealthCheckParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    settings = ctx.settings
    clients = (
        await asyncio.to_thread(build_clients, settings, ctx.store)
        if params.check_all_integrations
        else IntegrationClients()
    )
    try:
        checker = HealthChecker(
            settings,
            ctx.store,
            clients=client_lookup(clients),
            check_integrations=params.check_all_integrations,
        )
        report = await checker.run()
        if not params.check_all_integrations:
            from contexten.monitoring.health import evaluate

            components = [*report.components, *not_checked(INTEGRATIONS)]
            order = {name: i for i, name in enumerate(WEIGHTS)}
            components.sort(key=lambda c: order.get(c.name, len(order)))
            report = evaluate(
                components,
                report.resources,
                settings.alert_thresholds,
                checked_at=report.checked_at,
            )
        await asyncio.to_thread(record_report, ctx, report)
        if report.status == "healthy":
            from contexten.recovery.last_known_good import save_last_known_good

            await asyncio.to_thread(save_last_known_good, ctx.store, settings)
        ctx.publish_table("health-check", health_table(report))
        data: dict[str, Any] = report.to_dict()
        if params.alert_on_degradation and settings.monitoring_enabled:
            data["alerts"] = await raise_alerts(ctx, report, clients)
        if params.auto_recovery and settings.recovery_enabled and report.status != "healthy":
            data["recoveries"] = await recover(ctx, report, clients)
    finally:
        await clients.aclose()
    summary = f"health {report.status}: score {report.score:.0f}/100"
    if report.problems:
        summary += f"; {len(report.problems)} problem(s): " + "; ".join(report.problems[:3])
    ctx.logger.info("%s", summary)
    return WorkflowOutcome(
        ok=report.status != "unhealthy",
        summary=summary,
        markdown=health_markdown(report),
        data=data,
    )
