"""The quarantine repository: entries with their audit trail in `evidence["history"]`.

Who (auto or a person), when, what and why; released entries stay with `released_at` set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from contexten.analysis.executions import TestIdentity
from contexten.store.db import Store
from contexten.store.models import QuarantineEntry
from contexten.store.test_history import TestHistoryError, to_utc

MAX_HISTORY = 50


@dataclass(frozen=True, slots=True)
class Entry:
    test_id: str
    name: str
    reason: str
    added_at: datetime
    expires_at: datetime | None
    released_at: datetime | None
    manual: bool
    repository: str | None
    evidence: dict[str, Any]

    def active(self, now: datetime) -> bool:
        return self.released_at is None and (self.expires_at is None or self.expires_at > now)

    def to_json(self) -> dict[str, Any]:
        return {
            "test_id": self.test_id,
            "name": self.name,
            "reason": self.reason,
            "repository": self.repository,
            "manual": self.manual,
            "added_at": self.added_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "evidence": {k: v for k, v in self.evidence.items() if k != "history"},
            "history": self.evidence.get("history", []),
        }


def _entry(row: QuarantineEntry) -> Entry:
    evidence = dict(row.evidence or {})
    return Entry(
        test_id=row.test_id,
        name=row.name,
        reason=row.reason,
        added_at=to_utc(row.added_at),
        expires_at=to_utc(row.expires_at) if row.expires_at else None,
        released_at=to_utc(row.released_at) if row.released_at else None,
        manual=bool(evidence.get("manual", False)),
        repository=evidence.get("repository"),
        evidence=evidence,
    )


def list_entries(store: Store, *, include_released: bool = False) -> list[Entry]:
    try:
        with store.session() as session:
            query = select(QuarantineEntry).order_by(QuarantineEntry.added_at)
            if not include_released:
                query = query.where(QuarantineEntry.released_at.is_(None))
            return [_entry(row) for row in session.scalars(query)]
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot read the quarantine list from {store.safe_url}: {type(exc).__name__}"
        ) from None


def active_ids(
    store: Store, now: datetime | None = None, repository: str | None = None
) -> frozenset[str]:
    moment = to_utc(now or datetime.now(UTC))
    return frozenset(
        e.test_id
        for e in list_entries(store)
        if e.active(moment) and (repository is None or e.repository in (None, repository))
    )


def _history_item(action: str, reason: str, actor: str, now: datetime) -> dict[str, Any]:
    return {"at": now.isoformat(), "action": action, "by": actor, "reason": reason}


def add(
    store: Store,
    identity: TestIdentity,
    *,
    reason: str,
    now: datetime,
    expires_at: datetime | None,
    actor: str,
    manual: bool,
    repository: str | None,
    evidence: Mapping[str, Any] | None = None,
) -> Entry:
    """Quarantine a test (or re-quarantine a released one), with an audit record."""
    now = to_utc(now)
    try:
        with store.session() as session:
            row = session.get(QuarantineEntry, identity.test_id)
            history: list[Any] = []
            if row is not None:
                history = list((row.evidence or {}).get("history", []))
            action = "renew" if row is not None and row.released_at is None else "add"
            history.append(_history_item(action, reason, actor, now))
            data: dict[str, Any] = dict(evidence or {})
            data.update(
                manual=manual,
                repository=repository,
                file=identity.file,
                classname=identity.classname,
                test_name=identity.name,
                history=history[-MAX_HISTORY:],
            )
            if row is None:
                row = QuarantineEntry(test_id=identity.test_id)
                session.add(row)
            if action == "add":
                row.added_at = now
            row.name = identity.display[:1000]
            row.reason = reason
            row.evidence = data
            row.expires_at = to_utc(expires_at) if expires_at else None
            row.released_at = None
            session.flush()
            return _entry(row)
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot write the quarantine list in {store.safe_url}: {type(exc).__name__}"
        ) from None


def release(store: Store, test_id: str, *, reason: str, now: datetime, actor: str) -> Entry | None:
    """Release an active entry; None when there is no active entry for the test."""
    now = to_utc(now)
    try:
        with store.session() as session:
            row = session.get(QuarantineEntry, test_id)
            if row is None or row.released_at is not None:
                return None
            evidence = dict(row.evidence or {})
            history = list(evidence.get("history", []))
            history.append(_history_item("release", reason, actor, now))
            evidence["history"] = history[-MAX_HISTORY:]
            evidence["release_reason"] = reason
            row.evidence = evidence
            row.released_at = now
            session.flush()
            return _entry(row)
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot write the quarantine list in {store.safe_url}: {type(exc).__name__}"
        ) from None
