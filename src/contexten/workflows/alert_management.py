"""The alert_management workflow body: repeat, escalate and resolve alerts.

Alerts still firing are repeated every `repeat_after_seconds` and escalated to a human
(Linear priority urgent + Slack) after `escalate_after_repeats` repeats; alerts not seen for
`resolve_stale_minutes` are resolved. The table lists what is firing afterwards. `ok` is
False while a critical alert is firing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from contexten.catalog import AlertManagementParameters
from contexten.monitoring.alerts import AlertConfigError, Severity, alert_manager_for
from contexten.monitoring.clients import build_clients
from contexten.workflows.base import Table, WorkflowContext, WorkflowError, WorkflowOutcome


async def run(params: AlertManagementParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    clients = await asyncio.to_thread(build_clients, ctx.settings, ctx.store)
    try:
        try:
            alerts = alert_manager_for(ctx.store, ctx.settings, clients)
        except AlertConfigError as exc:
            raise WorkflowError(str(exc)) from None
        decisions = await alerts.process(
            resolve_stale_after=timedelta(minutes=params.resolve_stale_minutes)
        )
    finally:
        await clients.aclose()
    firing = alerts.list_alerts(status="firing", limit=200)
    table = Table(
        columns=("key", "severity", "count", "first seen", "escalation", "message"),
        rows=tuple(
            (
                a.key,
                a.severity.value,
                a.count,
                a.first_seen.isoformat(timespec="seconds"),
                a.escalation_level,
                a.message[:200],
            )
            for a in firing
        ),
        title=f"{len(firing)} alert(s) firing",
    )
    ctx.publish_table("alerts-firing", table)
    counts: dict[str, int] = {}
    for decision in decisions:
        counts[decision.action] = counts.get(decision.action, 0) + 1
    done = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing due"
    critical = [a for a in firing if a.severity is Severity.CRITICAL]
    return WorkflowOutcome(
        ok=not critical,
        summary=f"{len(firing)} firing ({len(critical)} critical); {done}",
        markdown=table.to_markdown(),
        data={
            "firing": [a.to_dict() for a in firing],
            "decisions": [
                {"key": d.key, "action": d.action, "channels": list(d.channels)} for d in decisions
            ],
        },
    )
