"""The action ledger's table: one row per idempotent action (claim, done, failed).

The rules (who may claim, when a claim is stale) live in `integrations.idempotency`; this
module only reads and writes rows, with conditional updates so that two processes racing
for the same action never both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from contexten.store.db import Store
from contexten.store.models import ActionRecord, utcnow


@dataclass(frozen=True, slots=True)
class ActionState:
    key: str
    kind: str
    target: str | None
    status: str  # pending | done | failed
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    owner: str | None
    lease_until: float | None


def read(store: Store, key: str) -> ActionState | None:
    with store.session() as session:
        row = session.scalar(select(ActionRecord).where(ActionRecord.idempotency_key == key))
        return None if row is None else _state(row)


def insert_claim(
    store: Store, key: str, kind: str, target: str | None, claim: dict[str, Any]
) -> bool:
    """A new pending row for `key` (attempt 1); False when the key already has one."""
    try:
        with store.session() as session:
            session.add(
                ActionRecord(
                    idempotency_key=key,
                    kind=kind,
                    target=target[:500] if target else None,
                    status="pending",
                    result=claim,
                    attempts=1,
                )
            )
    except IntegrityError:
        return False
    return True


def take_over(store: Store, key: str, attempts: int, claim: dict[str, Any]) -> bool:
    """Claim a row that is not done, if it is still at `attempts` (nobody else took it)."""
    with store.session() as session:
        taken = session.execute(
            update(ActionRecord)
            .where(
                ActionRecord.idempotency_key == key,
                ActionRecord.attempts == attempts,
                ActionRecord.status != "done",
            )
            .values(
                status="pending",
                attempts=attempts + 1,
                result=claim,
                error=None,
                updated_at=utcnow(),
            )
        )
        return getattr(taken, "rowcount", 0) == 1


def mark_done(store: Store, key: str, attempts: int, result: dict[str, Any]) -> bool:
    """Record the result; False when another owner took the action over meanwhile."""
    with store.session() as session:
        done = session.execute(
            update(ActionRecord)
            .where(ActionRecord.idempotency_key == key, ActionRecord.attempts == attempts)
            .values(status="done", result=result, error=None, updated_at=utcnow())
        )
        return getattr(done, "rowcount", 0) == 1


def mark_failed(store: Store, key: str, attempts: int, message: str) -> None:
    with store.session() as session:
        session.execute(
            update(ActionRecord)
            .where(
                ActionRecord.idempotency_key == key,
                ActionRecord.attempts == attempts,
                ActionRecord.status == "pending",
            )
            .values(status="failed", result=None, error=message, updated_at=utcnow())
        )


def _state(row: ActionRecord) -> ActionState:
    owner: str | None = None
    lease_until: float | None = None
    result = row.result
    if row.status == "pending" and isinstance(result, dict):
        claim = result.get("claim")
        if isinstance(claim, dict):
            owner = claim.get("owner")
            lease = claim.get("lease_until")
            lease_until = float(lease) if isinstance(lease, int | float) else None
        result = None
    return ActionState(
        key=row.idempotency_key,
        kind=row.kind,
        target=row.target,
        status=row.status,
        attempts=row.attempts,
        result=result,
        error=row.error,
        owner=owner,
        lease_until=lease_until,
    )
