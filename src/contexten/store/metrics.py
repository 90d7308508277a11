"""The metrics repository: metric samples (a bounded history per name) and the counts and
recent rows the orchestration metrics and the Prometheus exposition read."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select

from contexten.store.db import Store
from contexten.store.models import AlertRecord, MetricSample, RecoveryRecord, WorkflowExecution

SUCCESS_STATUSES = frozenset({"completed"})
ERROR_STATUSES = frozenset({"failed", "crashed", "timed_out"})


def _now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def record_sample(
    store: Store,
    name: str,
    value: float,
    labels: dict[str, Any] | None = None,
    *,
    history_size: int,
    at: datetime | None = None,
) -> None:
    """Append one sample and drop the oldest beyond `history_size` for that name."""
    if not math.isfinite(value):
        raise ValueError(f"metric {name} must be a finite number, got {value!r}")
    with store.session() as session:
        session.add(
            MetricSample(
                name=name, value=float(value), labels=labels or {}, recorded_at=at or _now()
            )
        )
        session.flush()
        cutoff = session.scalars(
            select(MetricSample.id)
            .where(MetricSample.name == name)
            .order_by(MetricSample.id.desc())
            .offset(max(1, history_size))
            .limit(1)
        ).first()
        if cutoff is not None:
            session.execute(
                delete(MetricSample).where(MetricSample.name == name, MetricSample.id <= cutoff)
            )


@dataclass(frozen=True, slots=True)
class Sample:
    value: float
    recorded_at: datetime
    labels: dict[str, Any] = field(default_factory=dict)


def history(store: Store, name: str, *, limit: int) -> list[Sample]:
    """The newest `limit` samples of a metric, oldest first."""
    with store.session() as session:
        rows = session.scalars(
            select(MetricSample)
            .where(MetricSample.name == name)
            .order_by(MetricSample.id.desc())
            .limit(limit)
        ).all()
        samples = [Sample(r.value, as_utc(r.recorded_at), dict(r.labels or {})) for r in rows]
    samples.reverse()
    return samples


@dataclass(frozen=True, slots=True)
class FinishedRun:
    workflow_type: str
    failed: bool
    duration_seconds: float | None


def finished_runs(store: Store, limit: int) -> list[FinishedRun]:
    """The newest `limit` finished runs, oldest first."""
    statuses = SUCCESS_STATUSES | ERROR_STATUSES
    with store.session() as session:
        rows = session.execute(
            select(
                WorkflowExecution.workflow_type,
                WorkflowExecution.status,
                WorkflowExecution.duration_seconds,
            )
            .where(WorkflowExecution.status.in_(statuses))
            .order_by(WorkflowExecution.id.desc())
            .limit(limit)
        ).all()
    runs = [FinishedRun(r[0], r[1] in ERROR_STATUSES, r[2]) for r in rows]
    runs.reverse()
    return runs


@dataclass(frozen=True, slots=True)
class RecoveryTimes:
    outcome: str
    strategy: str
    failure_seen_at: datetime | None
    started_at: datetime
    finished_at: datetime | None


def recent_recoveries(store: Store, limit: int) -> list[RecoveryTimes]:
    with store.session() as session:
        rows = session.scalars(
            select(RecoveryRecord).order_by(RecoveryRecord.id.desc()).limit(limit)
        ).all()
        return [
            RecoveryTimes(
                r.outcome,
                r.strategy,
                as_utc(r.failure_seen_at) if r.failure_seen_at else None,
                as_utc(r.started_at),
                as_utc(r.finished_at) if r.finished_at else None,
            )
            for r in rows
        ]


def execution_counts(store: Store) -> list[tuple[str, str, int]]:
    """(workflow type, status, runs) over every recorded run."""
    with store.session() as session:
        return [
            (str(t), str(s), int(n))
            for t, s, n in session.execute(
                select(WorkflowExecution.workflow_type, WorkflowExecution.status, func.count())
                .group_by(WorkflowExecution.workflow_type, WorkflowExecution.status)
                .order_by(WorkflowExecution.workflow_type, WorkflowExecution.status)
            )
        ]


def recovery_counts(store: Store) -> list[tuple[str, str, str, int]]:
    """(failure type, final strategy, outcome, recoveries) over every recorded recovery."""
    r = RecoveryRecord
    with store.session() as session:
        return [
            (str(f), str(s), str(o), int(n))
            for f, s, o, n in session.execute(
                select(r.failure_type, r.strategy, r.outcome, func.count())
                .group_by(r.failure_type, r.strategy, r.outcome)
                .order_by(r.failure_type, r.strategy, r.outcome)
            )
        ]


def firing_alert_counts(store: Store) -> dict[str, int]:
    """Alerts firing now, by severity."""
    with store.session() as session:
        return {
            str(severity): int(count)
            for severity, count in session.execute(
                select(AlertRecord.severity, func.count())
                .where(AlertRecord.status == "firing")
                .group_by(AlertRecord.severity)
            )
        }
