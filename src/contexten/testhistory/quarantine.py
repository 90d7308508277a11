"""The quarantine list in the store: add, release, apply a plan, export, load for a gate.

Every entry keeps an audit trail in `evidence["history"]`: who (auto or a person), when,
what and why. Released entries stay in the table with `released_at` set. The exported
JSON file is what a CI gate reads when it cannot or should not reach the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from contexten.analysis.executions import TestIdentity
from contexten.analysis.flaky import ActiveEntry, Decision, QuarantinePlan
from contexten.store.db import Store
from contexten.store.models import QuarantineEntry
from contexten.store.test_history import TestHistoryError, epoch, to_utc

FILE_FORMAT = "contexten-quarantine/1"
MAX_QUARANTINE_FILE_BYTES = 16 * 1024 * 1024
MAX_HISTORY = 50


class QuarantineFileError(ValueError):
    """A quarantine JSON file is unreadable or malformed; one line naming the file."""


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


def planner_view(entries: Iterable[Entry]) -> list[ActiveEntry]:
    return [
        ActiveEntry(
            e.test_id,
            e.name,
            epoch(e.added_at),
            epoch(e.expires_at) if e.expires_at else None,
            e.manual,
        )
        for e in entries
        if e.released_at is None
    ]


def apply_plan(
    store: Store,
    plan: QuarantinePlan,
    identities: Mapping[str, TestIdentity],
    *,
    now: datetime,
    repository: str | None,
) -> list[Decision]:
    """Carry out a plan's decisions; returns the ones applied."""
    applied: list[Decision] = []
    for decision in plan.decisions:
        expires = datetime.fromtimestamp(decision.expires_at, UTC) if decision.expires_at else None
        if decision.action in ("add", "renew"):
            identity = identities.get(decision.test_id) or TestIdentity(
                decision.test_id, None, None, decision.test_id
            )
            add(
                store,
                identity,
                reason=decision.reason,
                now=now,
                expires_at=expires,
                actor="auto",
                manual=False,
                repository=repository,
                evidence=decision.evidence,
            )
            applied.append(decision)
        elif release(store, decision.test_id, reason=decision.reason, now=now, actor="auto"):
            applied.append(decision)
    return applied


def export_document(entries: Iterable[Entry], now: datetime) -> dict[str, Any]:
    """The quarantine file: active entries only, with reasons and evidence."""
    moment = to_utc(now)
    active = [e for e in entries if e.active(moment)]
    return {
        "format": FILE_FORMAT,
        "generated_at": moment.isoformat(),
        "tests": [e.to_json() for e in sorted(active, key=lambda e: e.name)],
    }


def parse_quarantine_document(data: bytes, source: str, now: datetime) -> frozenset[str]:
    """Active test ids from an exported quarantine file (expired entries ignored)."""
    if len(data) > MAX_QUARANTINE_FILE_BYTES:
        raise QuarantineFileError(f"{source}: over {MAX_QUARANTINE_FILE_BYTES} bytes")
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QuarantineFileError(f"{source}: not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
        raise QuarantineFileError(
            f"{source}: not a quarantine file (expected format {FILE_FORMAT})"
        )
    tests = document.get("tests")
    if not isinstance(tests, list):
        raise QuarantineFileError(f"{source}: 'tests' must be a list")
    moment = to_utc(now)
    ids: set[str] = set()
    for item in tests:
        if not isinstance(item, dict) or not isinstance(item.get("test_id"), str):
            raise QuarantineFileError(f"{source}: every test needs a string test_id")
        expires = item.get("expires_at")
        if expires:
            try:
                if to_utc(datetime.fromisoformat(str(expires))) <= moment:
                    continue
            except ValueError:
                raise QuarantineFileError(
                    f"{source}: bad expires_at {str(expires)[:40]!r} for {item['test_id']}"
                ) from None
        if item.get("released_at"):
            continue
        ids.add(item["test_id"])
    return frozenset(ids)
