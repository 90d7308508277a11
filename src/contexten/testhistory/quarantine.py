"""The quarantine list in the store: add, release, apply a plan, export, load for a gate.

Every entry keeps an audit trail in `evidence["history"]`: who (auto or a person), when,
what and why. Released entries stay in the table with `released_at` set. The exported
JSON file is what a CI gate reads when it cannot or should not reach the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from contexten.analysis.executions import TestIdentity
from contexten.analysis.flaky import ActiveEntry, QuarantineDecision, QuarantinePlan
from contexten.store.db import Store
from contexten.store.quarantine import MAX_HISTORY as MAX_HISTORY
from contexten.store.quarantine import Entry as Entry
from contexten.store.quarantine import active_ids as active_ids
from contexten.store.quarantine import add as add
from contexten.store.quarantine import list_entries as list_entries
from contexten.store.quarantine import release as release
from contexten.store.test_history import epoch, to_utc

FILE_FORMAT = "contexten-quarantine/1"
MAX_QUARANTINE_FILE_BYTES = 16 * 1024 * 1024


class QuarantineFileError(ValueError):
    """A quarantine JSON file is unreadable or malformed; one line naming the file."""


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
) -> list[QuarantineDecision]:
    """Carry out a plan's decisions; returns the ones applied."""
    applied: list[QuarantineDecision] = []
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
