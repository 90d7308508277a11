"""Alerts about workflow runs themselves (a run that hit its timeout)."""

from __future__ import annotations

from contexten.config import Settings
from contexten.monitoring.alerts import Alert, AlertDecision, Severity, alert_manager_for
from contexten.monitoring.clients import build_clients
from contexten.store.db import Store


def timeout_alert_key(workflow_type: str) -> str:
    return f"workflow-timeout:{workflow_type}"


async def alert_run_timed_out(
    settings: Settings, store: Store, workflow_type: str, run_id: str, timeout_seconds: int
) -> AlertDecision:
    """Fire a warning for a run stopped at its timeout, through the configured channels.

    One key per workflow type: repeated timeouts of a type count on one firing alert.
    """
    clients = build_clients(settings, store)
    try:
        manager = alert_manager_for(store, settings, clients)
        return await manager.fire(
            Alert(
                key=timeout_alert_key(workflow_type),
                severity=Severity.WARNING,
                message=(
                    f"{workflow_type} run {run_id} timed out after {timeout_seconds}s; "
                    "raise WORKFLOW_DEFAULT_TIMEOUT if such runs are expected to take longer"
                ),
                data={"run_id": run_id, "timeout_seconds": timeout_seconds},
            )
        )
    finally:
        await clients.aclose()
