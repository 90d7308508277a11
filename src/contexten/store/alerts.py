"""The alerts repository: one AlertRecord per firing (deduplicated while firing, counted,
then resolved), with its notifications in `data["notifications"]`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from contexten.alert_routing import Severity
from contexten.store.db import Store
from contexten.store.metrics import as_utc
from contexten.store.models import AlertRecord

MAX_NOTIFICATIONS_KEPT = 40  # the newest notifications kept before appending more


@dataclass(frozen=True, slots=True)
class AlertView:
    """One AlertRecord as a value."""

    id: int
    key: str
    severity: Severity
    status: str
    message: str
    count: int
    first_seen: datetime
    last_seen: datetime
    last_notified_at: datetime | None
    escalation_level: int
    resolved_at: datetime | None
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "severity": self.severity.value,
            "status": self.status,
            "message": self.message,
            "count": self.count,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "last_notified_at": self.last_notified_at.isoformat()
            if self.last_notified_at
            else None,
            "escalation_level": self.escalation_level,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "notifications": list(self.data.get("notifications", []))[-10:],
        }


def _view(row: AlertRecord) -> AlertView:
    return AlertView(
        id=row.id,
        key=row.key,
        severity=Severity(row.severity),
        status=row.status,
        message=row.message,
        count=row.count,
        first_seen=as_utc(row.first_seen),
        last_seen=as_utc(row.last_seen),
        last_notified_at=as_utc(row.last_notified_at) if row.last_notified_at else None,
        escalation_level=row.escalation_level,
        resolved_at=as_utc(row.resolved_at) if row.resolved_at else None,
        data=dict(row.data or {}),
    )


def list_alerts(store: Store, *, status: str | None = None, limit: int = 100) -> list[AlertView]:
    """Newest first (by last seen)."""
    with store.session() as session:
        query = select(AlertRecord).order_by(AlertRecord.last_seen.desc(), AlertRecord.id.desc())
        if status is not None:
            query = query.where(AlertRecord.status == status)
        return [_view(r) for r in session.scalars(query.limit(limit)).all()]


def get_alert(store: Store, alert_id: int) -> AlertView | None:
    with store.session() as session:
        row = session.get(AlertRecord, alert_id)
        return _view(row) if row is not None else None


def upsert_firing(
    store: Store,
    *,
    key: str,
    severity: Severity,
    message: str,
    data: Mapping[str, Any],
    now: datetime,
) -> tuple[AlertView, bool, bool]:
    """Insert the firing record of a key, or count one more fire; (view, new, raised)."""
    with store.session() as session:
        row = session.scalars(
            select(AlertRecord)
            .where(AlertRecord.key == key, AlertRecord.status == "firing")
            .order_by(AlertRecord.id.desc())
        ).first()
        if row is None:
            row = AlertRecord(
                key=key,
                severity=severity.value,
                status="firing",
                message=message,
                count=1,
                data=dict(data),
                first_seen=now,
                last_seen=now,
                escalation_level=0,
            )
            session.add(row)
            session.flush()
            return _view(row), True, False
        raised = severity.rank > Severity(row.severity).rank
        row.count += 1
        row.last_seen = now
        row.message = message
        if raised:
            row.severity = severity.value
        row.data = {**(row.data or {}), **data}
        return _view(row), False, raised


def resolve_firing(store: Store, key: str, *, now: datetime, reason: str = "") -> AlertView | None:
    """Resolve the firing record of a key; None when none is firing."""
    with store.session() as session:
        row = session.scalars(
            select(AlertRecord).where(AlertRecord.key == key, AlertRecord.status == "firing")
        ).first()
        if row is None:
            return None
        row.status = "resolved"
        row.resolved_at = now
        if reason:
            row.data = {**(row.data or {}), "resolution": reason[:500]}
        return _view(row)


def notified_since(
    store: Store, since: datetime, *, key: str | None = None, exclude_id: int | None = None
) -> int:
    """How many alerts (of `key`, other than `exclude_id`) were notified since `since`."""
    with store.session() as session:
        query = select(func.count()).where(AlertRecord.last_notified_at >= since)
        if key is not None:
            query = query.where(AlertRecord.key == key)
        if exclude_id is not None:
            query = query.where(AlertRecord.id != exclude_id)
        return int(session.scalar(query) or 0)


def bump_escalation_level(store: Store, alert_id: int) -> AlertView | None:
    with store.session() as session:
        row = session.get(AlertRecord, alert_id)
        if row is None:
            return None
        row.escalation_level += 1
        return _view(row)


def mark_escalated(store: Store, alert_id: int, *, level: int, reached: bool) -> None:
    """Raise the escalation level to at least `level`; `reached`: a person was told."""
    with store.session() as session:
        row = session.get(AlertRecord, alert_id)
        if row is not None:
            row.escalation_level = max(row.escalation_level, level)
            row.data = {**(row.data or {}), "escalated": reached}


def record_notifications(
    store: Store,
    alert_id: int,
    entries: Sequence[dict[str, Any]],
    *,
    notified_at: datetime | None,
) -> None:
    """Append notification entries (keeping the newest); set `last_notified_at` if given."""
    with store.session() as session:
        row = session.get(AlertRecord, alert_id)
        if row is not None:
            history = list((row.data or {}).get("notifications", []))[-MAX_NOTIFICATIONS_KEPT:]
            row.data = {**(row.data or {}), "notifications": [*history, *entries]}
            if notified_at is not None:
                row.last_notified_at = notified_at
