"""The durable inbox of webhook deliveries (the `deliveries` table): its SQL.

Life of a row: the receiver inserts it as `pending` (or `ignored` for events no rule
listens to) and only then acknowledges the delivery; a dispatcher claims a batch, which sets
`claimed`, a claim token in `claimed_by`, `claimed_at` and `attempts + 1`; it ends as
`dispatched`, `ignored` or `failed`. A claim is a lease: a row still `claimed` after
`lease_seconds` (its dispatcher died) is claimable again, and the late dispatcher's marks
are refused because its token no longer matches. Dispatching uses an idempotency key
derived from the delivery, so a second dispatch after such a crash starts nothing new.

Claims are one atomic statement: `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`.
SQLite runs it under its single-writer lock; on PostgreSQL the inner SELECT takes
`FOR UPDATE SKIP LOCKED`, so several dispatchers (replicas) never claim the same row.

A retried row goes back to `pending` with `claimed_at` set to the time it may be claimed
again (a not-before time; a pending row with `claimed_at` NULL is due at once).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from contexten.store.db import Store
from contexten.store.models import DeliveryRecord

logger = logging.getLogger("contexten.events.inbox")  # the name operators know

PENDING = "pending"
CLAIMED = "claimed"
DISPATCHED = "dispatched"
IGNORED = "ignored"
FAILED = "failed"
STATUSES = (PENDING, CLAIMED, DISPATCHED, IGNORED, FAILED)

MAX_ERROR_CHARS = 2000
_table: Table = DeliveryRecord.__table__  # type: ignore[assignment]


class InboxError(Exception):
    """The inbox could not be read or written (the store is unreachable or failing)."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A verified delivery to record."""

    delivery_id: str
    event: str
    payload: str
    action: str | None = None
    repository: str | None = None
    status: str = PENDING  # or IGNORED for events nothing listens to
    note: str | None = None  # why it was ignored


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A claimed delivery; `claim_token` proves the claim when marking it."""

    id: int
    delivery_id: str
    event: str
    action: str | None
    repository: str | None
    payload: str
    attempts: int
    claim_token: str


class Inbox:
    """Insert, claim and settle deliveries in the store."""

    def __init__(
        self,
        store: Store,
        *,
        lease_seconds: float = 300.0,
        max_attempts: int = 5,
        max_claims: int = 20,
    ):
        if lease_seconds <= 0 or max_attempts < 1 or max_claims < max_attempts:
            raise ValueError(
                "lease_seconds must be positive, max_attempts at least 1 and max_claims at "
                "least max_attempts"
            )
        self.store = store
        self.lease_seconds = lease_seconds
        # Errors are retried up to max_attempts (mark_failed). A claim whose dispatcher died
        # also counts as an attempt; such claims get the larger max_claims, so that a few
        # crashes in a row do not lose an acknowledged delivery, while a delivery that kills
        # every dispatcher that takes it (a poison message) is still given up.
        self.max_attempts = max_attempts
        self.max_claims = max_claims
        self._postgres = store.engine.dialect.name == "postgresql"

    # ----- intake -----
    def _insert_ignoring_duplicates(self) -> Any:
        """INSERT … ON CONFLICT (delivery_id) DO NOTHING, or None on other databases."""
        dialect = self.store.engine.dialect.name
        dialect_insert: Any
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            dialect_insert = sqlite_insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            dialect_insert = pg_insert
        else:
            return None
        return dialect_insert(_table).on_conflict_do_nothing(index_elements=["delivery_id"])

    @staticmethod
    def _values(item: NewDelivery, now: datetime) -> dict[str, Any]:
        return {
            "delivery_id": item.delivery_id,
            "event": item.event,
            "action": item.action,
            "repository": item.repository,
            "payload": item.payload,
            "received_at": now,
            "status": item.status,
            "workflow_type": None,
            "claimed_by": None,
            "claimed_at": None,
            "dispatched_at": now if item.status != PENDING else None,
            "flow_run_id": None,
            "attempts": 0,
            "error": item.note,
        }

    def insert_many(self, items: Sequence[NewDelivery]) -> list[bool]:
        """Record deliveries in one transaction; True = new, False = a duplicate delivery id.

        One executemany of a cached statement (the cheapest insert SQLAlchemy offers);
        only when the row count says some were duplicates do we ask which: the rows this
        transaction wrote are those with its own `received_at`.
        """
        if not items:
            return []
        now = _now()
        rows = [self._values(item, now) for item in items]
        ids = [item.delivery_id for item in items]
        statement = self._insert_ignoring_duplicates()
        try:
            with self.store.session() as session:
                if statement is None:
                    return self._insert_one_by_one(session, rows)
                written = getattr(session.execute(statement, rows), "rowcount", -1)
                if written == len(ids) and len(set(ids)) == len(ids):
                    return [True] * len(ids)
                new = set(
                    session.execute(
                        select(_table.c.delivery_id).where(
                            _table.c.delivery_id.in_(set(ids)), _table.c.received_at == now
                        )
                    ).scalars()
                )
        except SQLAlchemyError as exc:
            raise InboxError(f"cannot record deliveries: {type(exc).__name__}") from exc
        results: list[bool] = []
        for delivery_id in ids:  # of an id repeated within the batch, the first is new
            results.append(delivery_id in new)
            new.discard(delivery_id)
        return results

    @staticmethod
    def _insert_one_by_one(session: Any, rows: list[dict[str, Any]]) -> list[bool]:
        results: list[bool] = []
        for row in rows:  # databases without ON CONFLICT: a savepoint per row
            try:
                with session.begin_nested():
                    session.execute(_table.insert().values(**row))
                results.append(True)
            except IntegrityError:
                results.append(False)
        return results

    def insert(self, item: NewDelivery) -> bool:
        return self.insert_many([item])[0]

    # ----- claiming -----
    def claim_statement(self, token: str, limit: int, now: datetime) -> Any:
        """The one-statement claim (PostgreSQL: FOR UPDATE SKIP LOCKED on the candidates)."""
        stale = now - timedelta(seconds=self.lease_seconds)
        due = or_(
            and_(
                _table.c.status == PENDING,
                or_(_table.c.claimed_at.is_(None), _table.c.claimed_at <= now),
            ),
            and_(_table.c.status == CLAIMED, _table.c.claimed_at <= stale),
        )
        candidates = select(_table.c.id).where(due).order_by(_table.c.id).limit(max(1, limit))
        if self._postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        return (
            update(_table)
            .where(_table.c.id.in_(candidates.scalar_subquery()))
            .values(
                status=CLAIMED,
                claimed_by=token,
                claimed_at=now,
                attempts=_table.c.attempts + 1,
            )
            .returning(
                _table.c.id,
                _table.c.delivery_id,
                _table.c.event,
                _table.c.action,
                _table.c.repository,
                _table.c.payload,
                _table.c.attempts,
            )
        )

    def claim(self, worker: str, limit: int = 10) -> list[InboxItem]:
        """Atomically claim up to `limit` due rows (pending, or claimed with an expired lease)."""
        token = f"{worker[:150]}:{uuid.uuid4().hex[:16]}"
        statement = self.claim_statement(token, limit, _now())
        try:
            with self.store.session() as session:
                rows = session.execute(statement).all()
        except SQLAlchemyError as exc:
            raise InboxError(f"cannot claim deliveries: {type(exc).__name__}") from exc
        items = [
            InboxItem(
                id=row.id,
                delivery_id=row.delivery_id,
                event=row.event,
                action=row.action,
                repository=row.repository,
                payload=row.payload,
                attempts=row.attempts,
                claim_token=token,
            )
            for row in rows
        ]
        items.sort(key=lambda item: item.id)
        return items

    # ----- settling -----
    def _settle(self, item: InboxItem, **values: Any) -> bool:
        statement = (
            update(_table)
            .where(
                _table.c.id == item.id,
                _table.c.status == CLAIMED,
                _table.c.claimed_by == item.claim_token,
            )
            .values(**values)
        )
        try:
            with self.store.session() as session:
                rowcount = getattr(session.execute(statement), "rowcount", 0)
        except SQLAlchemyError as exc:
            raise InboxError(f"cannot update delivery {item.delivery_id}: {exc}") from exc
        if rowcount != 1:
            logger.warning(
                "delivery %s: claim %s was lost (lease expired); leaving it to its new owner",
                item.delivery_id,
                item.claim_token,
            )
            return False
        return True

    def mark_dispatched(
        self, item: InboxItem, workflow_types: Sequence[str], run_ids: Sequence[str]
    ) -> bool:
        return self._settle(
            item,
            status=DISPATCHED,
            workflow_type=",".join(workflow_types)[:50] or None,
            flow_run_id=",".join(run_ids)[:100] or None,
            dispatched_at=_now(),
            error=None,
        )

    def mark_ignored(self, item: InboxItem, reason: str) -> bool:
        return self._settle(
            item, status=IGNORED, dispatched_at=_now(), error=reason[:MAX_ERROR_CHARS]
        )

    def mark_failed(self, item: InboxItem, error: str, *, retry_in: float | None = None) -> str:
        """Record an error; back to pending after `retry_in` seconds while attempts remain."""
        if retry_in is not None and item.attempts < self.max_attempts:
            due = _now() + timedelta(seconds=max(0.0, retry_in))
            ok = self._settle(
                item,
                status=PENDING,
                claimed_by=None,
                claimed_at=due,
                error=error[:MAX_ERROR_CHARS],
            )
            return PENDING if ok else CLAIMED
        ok = self._settle(item, status=FAILED, error=error[:MAX_ERROR_CHARS])
        return FAILED if ok else CLAIMED

    def release(self, item: InboxItem) -> bool:
        """Give a claimed row back untouched (clean shutdown before it was handled)."""
        return self._settle(
            item,
            status=PENDING,
            claimed_by=None,
            claimed_at=None,
            attempts=_table.c.attempts - 1,
        )

    # ----- reading and housekeeping -----
    def counts(self) -> dict[str, int]:
        statement = select(_table.c.status, func.count()).group_by(_table.c.status)
        with self.store.session() as session:
            found = {status: int(count) for status, count in session.execute(statement).all()}
        return {status: found.get(status, 0) for status in STATUSES}

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        with self.store.session() as session:
            row = session.execute(select(_table).where(_table.c.delivery_id == delivery_id)).first()
        return dict(row._mapping) if row is not None else None

    def purge_finished(self, older_than: timedelta) -> int:
        """Delete dispatched and ignored rows received before now - older_than.

        Keep them longer than GitHub allows manual redelivery (about 3 days), or a late
        redelivery would no longer be recognised as a duplicate.
        """
        cutoff = _now() - older_than
        statement = delete(_table).where(
            _table.c.status.in_((DISPATCHED, IGNORED)), _table.c.received_at < cutoff
        )
        with self.store.session() as session:
            return int(getattr(session.execute(statement), "rowcount", 0) or 0)
