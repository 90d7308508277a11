"""Queries for the closed loops (internal events, recoveries, conversations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from contexten.store.db import Store
from contexten.store.models import WorkflowExecution

ACTIVE_STATUSES = ("scheduled", "running")
# A row left "running" by a process that died is not counted for ever.
STALE_AFTER = timedelta(hours=6)


def running_count(store: Store, workflow_type: str, *, now: datetime | None = None) -> int:
    """Runs of a type scheduled or running now (started within STALE_AFTER)."""
    since = (now or datetime.now(UTC)) - STALE_AFTER
    with store.session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(WorkflowExecution)
            .where(
                WorkflowExecution.workflow_type == workflow_type,
                WorkflowExecution.status.in_(ACTIVE_STATUSES),
                WorkflowExecution.created_at >= since,
            )
        )
    return int(count or 0)


def acknowledge_alert(store: Store, alert_id: int, by: str, now: datetime) -> bool:
    """Record who acknowledged a firing alert; False when it is not firing (or unknown)."""
    from contexten.store.models import AlertRecord

    with store.session() as session:
        row = session.get(AlertRecord, alert_id)
        if row is None or row.status != "firing":
            return False
        if (row.data or {}).get("acknowledged_by"):
            return True
        row.data = {**(row.data or {}), "acknowledged_by": by, "acknowledged_at": now.isoformat()}
    return True


def latest_execution(store: Store, workflow_type: str) -> dict[str, Any] | None:
    """The newest finished run of a type: status, result, finished_at (or None)."""
    with store.session() as session:
        row = session.scalars(
            select(WorkflowExecution)
            .where(
                WorkflowExecution.workflow_type == workflow_type,
                WorkflowExecution.status.not_in(ACTIVE_STATUSES),
            )
            .order_by(WorkflowExecution.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return {
            "run_id": row.run_id,
            "status": row.status,
            "result": row.result,
            "finished_at": row.finished_at,
        }


def recent_executions(store: Store, limit: int = 5) -> list[dict[str, Any]]:
    """The newest runs (any type), newest first: run id, type, status."""
    with store.session() as session:
        rows = session.scalars(
            select(WorkflowExecution).order_by(WorkflowExecution.id.desc()).limit(limit)
        ).all()
        return [
            {"run_id": r.run_id, "workflow_type": r.workflow_type, "status": r.status} for r in rows
        ]
