"""The recoveries repository: one RecoveryRecord per recovery (outcome, deciding strategy,
every attempt in `detail`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from contexten.store.db import Store
from contexten.store.models import RecoveryRecord


def start_recovery(
    store: Store,
    *,
    key: str,
    failure_type: str,
    strategy: str,
    detail: dict[str, Any],
    failure_seen_at: datetime,
    started_at: datetime,
) -> int:
    """Record a recovery that starts now (outcome "started"); its record id."""
    with store.session() as session:
        row = RecoveryRecord(
            key=key[:200],
            failure_type=failure_type,
            strategy=strategy,
            outcome="started",
            detail=detail,
            failure_seen_at=failure_seen_at,
            started_at=started_at,
        )
        session.add(row)
        session.flush()
        return row.id


def finish_recovery(
    store: Store,
    record_id: int,
    *,
    outcome: str,
    strategy: str,
    finished_at: datetime | None,
    detail: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """Record how a recovery ended; `detail` maps the stored detail to the new one."""
    with store.session() as session:
        saved = session.get(RecoveryRecord, record_id)
        if saved is not None:
            saved.outcome = outcome
            saved.strategy = strategy
            saved.finished_at = finished_at
            saved.detail = detail(dict(saved.detail or {}))


def failed_recoveries(store: Store, key: str) -> int:
    """Failed recoveries of `key` since its last success."""
    with store.session() as session:
        outcomes = session.scalars(
            select(RecoveryRecord.outcome)
            .where(RecoveryRecord.key == key)
            .order_by(RecoveryRecord.id.desc())
            .limit(100)
        ).all()
    count = 0
    for outcome in outcomes:
        if outcome == "succeeded":
            break
        if outcome in ("failed", "escalated"):
            count += 1
    return count


def count_recoveries(store: Store, key: str, outcome: str) -> int:
    """How many recoveries of `key` ended with `outcome`."""
    with store.session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(RecoveryRecord)
            .where(RecoveryRecord.key == key, RecoveryRecord.outcome == outcome)
        )
    return int(count or 0)


def settle_awaiting(
    store: Store, key: str, outcome: str, now: datetime, *, run_id: int | None = None
) -> int:
    """Mark the key's recoveries still awaiting a result as `outcome`; how many.

    With `run_id`, only the recoveries of that CI run: the same signature failing in another
    run (another pull request) says nothing about whether this run's re-run worked.
    """
    with store.session() as session:
        rows = session.scalars(
            select(RecoveryRecord).where(
                RecoveryRecord.key == key, RecoveryRecord.outcome == "awaiting_result"
            )
        ).all()
        settled = 0
        for row in rows:
            recorded_run = (row.detail or {}).get("run_id")
            if run_id is not None and recorded_run is not None and recorded_run != run_id:
                continue
            row.outcome = outcome
            row.finished_at = now
            row.detail = {**(row.detail or {}), "settled": outcome}
            settled += 1
        return settled
