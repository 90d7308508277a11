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

import functools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Table, and_, bindparam, delete, func, or_, select, update
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


def _settlement(item: InboxItem, settled: str, **values: Any) -> Settlement:
    return Settlement(item, tuple(values.items()), settled)


@functools.cache
def _settle_statement(names: tuple[str, ...], decrement_attempts: bool) -> Any:
    """UPDATE of one claimed row, if its claim still holds; built once per set of columns.

    Parameters `w_id`, `w_token` and `v_<column>`: a statement built once is executed
    without SQLAlchemy constructing and coercing a new one per row.
    """
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in names}
    if decrement_attempts:
        values["attempts"] = _table.c.attempts - 1
    return (
        update(_table)
        .where(
            _table.c.id == bindparam("w_id"),
            _table.c.status == CLAIMED,
            _table.c.claimed_by == bindparam("w_token"),
        )
        .values(values)
    )


def _oldest(condition: Any, limit: Any) -> Any:
    return select(_table.c.id).where(condition).order_by(_table.c.id).limit(limit).subquery()


@functools.cache
def _claim_template(postgres: bool) -> Any:
    """The claim, built once: parameters `c_token`, `c_now`, `c_stale` (now minus the
    lease) and `c_limit`.

    PostgreSQL: FOR UPDATE SKIP LOCKED on the candidates, so replicas never claim one row
    twice. SQLite: one OR over both states would make it collect and sort every pending
    row on each claim (MULTI-INDEX OR + temp B-tree), O(backlog) per claim, so dispatch
    fell further behind the longer the backlog grew; each state on its own walks the status
    index in id order and stops after `c_limit` rows.
    """
    now: Any = bindparam("c_now")
    limit: Any = bindparam("c_limit", type_=Integer)
    pending_due = and_(
        _table.c.status == PENDING,
        or_(_table.c.claimed_at.is_(None), _table.c.claimed_at <= now),
    )
    lease_expired = and_(_table.c.status == CLAIMED, _table.c.claimed_at <= bindparam("c_stale"))
    candidates: Any
    if postgres:
        candidates = (
            select(_table.c.id)
            .where(or_(pending_due, lease_expired))
            .order_by(_table.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    else:
        pending = _oldest(pending_due, limit)
        expired = _oldest(lease_expired, limit)
        both = select(pending.c.id).union_all(select(expired.c.id)).subquery()
        candidates = select(both.c.id).order_by(both.c.id).limit(limit)
    return (
        update(_table)
        .where(_table.c.id.in_(candidates.scalar_subquery()))
        .values(
            status=CLAIMED,
            claimed_by=bindparam("c_token"),
            claimed_at=bindparam("c_now"),
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


@dataclass(frozen=True, slots=True)
class Settlement:
    """How to settle one claimed row: the values to set while its claim still holds.

    `settled` is the status it ends in when the claim held; when the claim was lost (its
    lease expired and another dispatcher took it) the row is left alone.
    """

    item: InboxItem
    values: tuple[tuple[str, Any], ...]
    settled: str
    decrement_attempts: bool = False  # a release: the claim did not count as an attempt


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """Claim up to `limit` due rows for `worker`."""

    worker: str
    limit: int


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one write_batch did, in the order asked: inserted?, settled?, rows claimed."""

    inserted: list[bool]
    settled: list[bool]
    claimed: list[list[InboxItem]]


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
        """Record deliveries in one transaction; True = new, False = a duplicate delivery id."""
        if not items:
            return []
        try:
            with self.store.session() as session:
                return self._insert_in(session, items)
        except SQLAlchemyError as exc:
            raise InboxError(f"cannot record deliveries: {type(exc).__name__}") from exc

    def _insert_in(self, session: Any, items: Sequence[NewDelivery]) -> list[bool]:
        """The inserts, inside the caller's transaction.

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
    def claim_statement(self) -> Any:
        """The one-statement claim for this database, executed with _claim_parameters()
        (PostgreSQL: FOR UPDATE SKIP LOCKED on the candidates)."""
        return _claim_template(self._postgres)

    def _claim_parameters(self, token: str, limit: int, now: datetime) -> dict[str, Any]:
        stale = now - timedelta(seconds=self.lease_seconds)
        return {"c_token": token, "c_now": now, "c_stale": stale, "c_limit": max(1, limit)}

    def claim(self, worker: str, limit: int = 10) -> list[InboxItem]:
        """Atomically claim up to `limit` due rows (pending, or claimed with an expired lease)."""
        try:
            with self.store.session() as session:
                return self._claim_in(session, worker, limit)
        except SQLAlchemyError as exc:
            raise InboxError(f"cannot claim deliveries: {type(exc).__name__}") from exc

    def _claim_in(self, session: Any, worker: str, limit: int) -> list[InboxItem]:
        token = f"{worker[:150]}:{uuid.uuid4().hex[:16]}"
        parameters = self._claim_parameters(token, limit, _now())
        rows = session.execute(self.claim_statement(), parameters).all()
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
    def dispatched(
        self, item: InboxItem, workflow_types: Sequence[str], run_ids: Sequence[str]
    ) -> Settlement:
        return _settlement(
            item,
            DISPATCHED,
            status=DISPATCHED,
            workflow_type=",".join(workflow_types)[:50] or None,
            flow_run_id=",".join(run_ids)[:100] or None,
            dispatched_at=_now(),
            error=None,
        )

    def ignored(self, item: InboxItem, reason: str) -> Settlement:
        return _settlement(
            item, IGNORED, status=IGNORED, dispatched_at=_now(), error=reason[:MAX_ERROR_CHARS]
        )

    def failed(self, item: InboxItem, error: str, *, retry_in: float | None = None) -> Settlement:
        """An error; back to pending after `retry_in` seconds while attempts remain."""
        if retry_in is not None and item.attempts < self.max_attempts:
            due = _now() + timedelta(seconds=max(0.0, retry_in))
            return _settlement(
                item,
                PENDING,
                status=PENDING,
                claimed_by=None,
                claimed_at=due,
                error=error[:MAX_ERROR_CHARS],
            )
        return _settlement(item, FAILED, status=FAILED, error=error[:MAX_ERROR_CHARS])

    def released(self, item: InboxItem) -> Settlement:
        """Give a claimed row back untouched (clean shutdown before it was handled)."""
        settlement = _settlement(item, PENDING, status=PENDING, claimed_by=None, claimed_at=None)
        return replace(settlement, decrement_attempts=True)

    def settle(self, settlement: Settlement) -> bool:
        """Apply one settlement; False when the claim was lost (the row is left alone)."""
        try:
            with self.store.session() as session:
                return self._settle_in(session, settlement)
        except SQLAlchemyError as exc:
            raise InboxError(
                f"cannot update delivery {settlement.item.delivery_id}: {type(exc).__name__}"
            ) from exc

    def _settle_in(self, session: Any, settlement: Settlement) -> bool:
        item = settlement.item
        names = tuple(name for name, _ in settlement.values)
        parameters = {f"v_{name}": value for name, value in settlement.values}
        parameters.update(w_id=item.id, w_token=item.claim_token)
        statement = _settle_statement(names, settlement.decrement_attempts)
        if getattr(session.execute(statement, parameters), "rowcount", 0) != 1:
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
        return self.settle(self.dispatched(item, workflow_types, run_ids))

    def mark_ignored(self, item: InboxItem, reason: str) -> bool:
        return self.settle(self.ignored(item, reason))

    def mark_failed(self, item: InboxItem, error: str, *, retry_in: float | None = None) -> str:
        """Record an error; the status it ends in (pending, failed), or claimed if lost."""
        settlement = self.failed(item, error, retry_in=retry_in)
        return settlement.settled if self.settle(settlement) else CLAIMED

    def release(self, item: InboxItem) -> bool:
        return self.settle(self.released(item))

    # ----- many writes, one transaction -----
    def write_batch(
        self,
        inserts: Sequence[NewDelivery] = (),
        settlements: Sequence[Settlement] = (),
        claims: Sequence[ClaimRequest] = (),
    ) -> BatchResult:
        """Inserts, then settlements, then claims, all in one transaction (one commit).

        The group commit of a process's inbox writes (see events.inbox.InboxWriter): one
        writer, so no two transactions of this process wait on each other's lock, and
        one commit for many requests. All or nothing: InboxError when it failed.
        """
        try:
            with self.store.session() as session:
                inserted = self._insert_in(session, inserts)
                settled = [self._settle_in(session, s) for s in settlements]
                claimed = [self._claim_in(session, c.worker, c.limit) for c in claims]
        except SQLAlchemyError as exc:
            raise InboxError(f"cannot write the inbox: {type(exc).__name__}") from exc
        return BatchResult(inserted, settled, claimed)

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
