"""The `workflow_executions` table: every workflow run we started, and who runs it.

A run is held by a lease: `lease_owner` (one id per process, see `process_owner`) until
`lease_expires_at`, renewed by the owner's heartbeat while it waits for a slot and while
the body runs. A run that is not final and whose lease expired lost its process (killed,
host gone): `take_over` hands it to another process atomically (a compare-and-swap on
the lease), which re-runs it from the start under the same run id and idempotency key.
`takeovers`, `taken_over_at` and `taken_over_from` say it happened and whom it replaced.

Runs of mode `prefect` (deployment runs executed by Prefect workers) carry no lease here:
Prefect's own heartbeats and zombie detection govern them. Their row names the process
that ran them (`lease_owner`, no expiry); when Prefect marks one Crashed, `mark_crashed`
ends the row and records that process as superseded, and a new run takes its key.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from contexten.store.db import Store
from contexten.store.models import WorkflowExecution

FINAL_STATUSES = frozenset({"completed", "failed", "crashed", "cancelled", "timed_out"})
LEASED_MODES = ("in-process", "prefect-local")
MAX_TAKEOVERS = 5  # a run taken over this often fails for good instead

_owners: dict[int, str] = {}


def process_owner() -> str:
    """This process's lease owner id: host, pid and a random part (new after a fork)."""
    pid = os.getpid()
    if pid not in _owners:
        _owners[pid] = f"{socket.gethostname()[:100]}:{pid}:{uuid.uuid4().hex[:12]}"
    return _owners[pid]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Execution:
    """One row of workflow_executions."""

    run_id: str
    workflow_type: str
    mode: str
    status: str
    idempotency_key: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    takeovers: int = 0
    taken_over_at: datetime | None = None
    taken_over_from: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def lease_expired(self, now: datetime, grace: timedelta) -> bool:
        """Not final and nobody renews it: its lease ran out, or (a row from before leases,
        or one whose claim never got a lease) it is older than `grace` without one."""
        if self.is_final or self.mode not in LEASED_MODES:
            return False
        if self.lease_expires_at is not None:
            return self.lease_expires_at <= now
        created = self.created_at or now
        return created <= now - grace


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming an idempotency key."""

    run_id: str
    owned: bool  # this caller holds the lease and must run it
    taken_over: bool = False  # it was the stale run of a process that died
    status: str = "scheduled"


def _execution(row: WorkflowExecution) -> Execution:
    return Execution(
        run_id=row.run_id,
        workflow_type=row.workflow_type,
        mode=row.mode,
        status=row.status,
        idempotency_key=row.idempotency_key,
        parameters=dict(row.parameters or {}),
        result=row.result,
        error=row.error,
        created_at=_aware(row.created_at),
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at),
        duration_seconds=row.duration_seconds,
        lease_owner=row.lease_owner,
        lease_expires_at=_aware(row.lease_expires_at),
        takeovers=int(row.takeovers or 0),
        taken_over_at=_aware(row.taken_over_at),
        taken_over_from=row.taken_over_from,
    )


def record(store: Store, run_id: str, *, owner: str | None = None, **fields: Any) -> bool:
    """Insert or update the row for run_id (safe against a racing insert).

    With `owner`, an existing row is only updated while `owner` holds its lease: a process
    whose run was taken over cannot overwrite what the new owner records. Returns False
    when that fence refused the update.
    """
    for _ in range(3):
        try:
            with store.session() as session:
                row = session.scalars(
                    select(WorkflowExecution).where(WorkflowExecution.run_id == run_id)
                ).first()
                if row is None:
                    session.add(WorkflowExecution(run_id=run_id, **fields))
                    return True
                if owner is not None and row.lease_owner not in (None, owner):
                    return False
                for name, value in fields.items():
                    setattr(row, name, value)
            return True
        except IntegrityError:
            continue
    raise RuntimeError(f"could not record workflow execution {run_id}")


def load(store: Store, run_id: str) -> Execution | None:
    with store.session() as session:
        row = session.scalars(
            select(WorkflowExecution).where(WorkflowExecution.run_id == run_id)
        ).first()
        return None if row is None else _execution(row)


def find_by_key(store: Store, key: str) -> Execution | None:
    with store.session() as session:
        row = session.scalars(
            select(WorkflowExecution).where(WorkflowExecution.idempotency_key == key)
        ).first()
        return None if row is None else _execution(row)


def recent(store: Store, limit: int = 20) -> list[Execution]:
    with store.session() as session:
        rows = session.scalars(
            select(WorkflowExecution).order_by(WorkflowExecution.id.desc()).limit(limit)
        ).all()
        return [_execution(row) for row in rows]


def count(store: Store, *, workflow_type: str | None = None, status_not: str | None = None) -> int:
    """How many runs (of `workflow_type`; not in status `status_not`)."""
    table = WorkflowExecution
    statement = select(func.count()).select_from(table)
    if workflow_type is not None:
        statement = statement.where(table.workflow_type == workflow_type)
    if status_not is not None:
        statement = statement.where(table.status != status_not)
    with store.session() as session:
        return int(session.scalar(statement) or 0)


def claim(
    store: Store,
    key: str,
    run_id: str,
    workflow_type: str,
    mode: str,
    *,
    parameters: dict[str, Any],
    owner: str,
    lease_seconds: float,
) -> Claim:
    """Reserve `key` for a new run held by `owner`; or report the run that has it.

    When the key's run is not final and its lease expired (its process died), it is taken
    over: the caller then owns it and must re-run it from the start (same run id).
    """
    now = _now()
    try:
        with store.session() as session:
            session.add(
                WorkflowExecution(
                    run_id=run_id,
                    idempotency_key=key,
                    workflow_type=workflow_type,
                    mode=mode,
                    status="scheduled",
                    parameters=parameters,
                    lease_owner=owner,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    created_at=now,
                )
            )
        return Claim(run_id, owned=True)
    except IntegrityError:
        pass
    existing = find_by_key(store, key)
    if existing is None:  # deleted meanwhile: nothing to return but a fresh claim
        return claim(
            store,
            key,
            run_id,
            workflow_type,
            mode,
            parameters=parameters,
            owner=owner,
            lease_seconds=lease_seconds,
        )
    grace = timedelta(seconds=lease_seconds)
    if existing.lease_expired(_now(), grace):
        if existing.takeovers >= MAX_TAKEOVERS:
            give_up(store, existing)
            return Claim(existing.run_id, owned=False, status="failed")
        if take_over(store, existing, owner=owner, lease_seconds=lease_seconds):
            return Claim(existing.run_id, owned=True, taken_over=True, status="scheduled")
    return Claim(existing.run_id, owned=False, status=existing.status)


def give_up(store: Store, stale: Execution) -> bool:
    """Fail a run that was taken over MAX_TAKEOVERS times and died again."""
    table = WorkflowExecution
    statement = (
        update(table)
        .where(
            table.run_id == stale.run_id,
            table.status.not_in(FINAL_STATUSES),
            table.takeovers == stale.takeovers,
        )
        .values(
            status="failed",
            error=f"gave up after {stale.takeovers} takeovers: its process kept dying",
            finished_at=_now(),
        )
    )
    with store.session() as session:
        return getattr(session.execute(statement), "rowcount", 0) == 1


def release(store: Store, run_id: str, *, owner: str) -> bool:
    """Give up `owner`'s lease at once (the run could not start or went wrong outside its
    body): the next trigger of its key, or the next sweep, takes it over and runs it."""
    table = WorkflowExecution
    statement = (
        update(table)
        .where(
            table.run_id == run_id,
            table.lease_owner == owner,
            table.status.not_in(FINAL_STATUSES),
        )
        .values(status="scheduled", lease_expires_at=_now())
    )
    with store.session() as session:
        return getattr(session.execute(statement), "rowcount", 0) == 1


def take_over(store: Store, stale: Execution, *, owner: str, lease_seconds: float) -> bool:
    """Atomically move a stale run's lease to `owner` (False: someone else was first, or it
    finished or was renewed meanwhile). The run goes back to `scheduled`."""
    now = _now()
    table = WorkflowExecution
    # The same holder as read, not renewed since: its lease still ran out (or never began).
    same_lease = and_(
        table.lease_owner.is_(None)
        if stale.lease_owner is None
        else table.lease_owner == stale.lease_owner,
        table.takeovers == stale.takeovers,
        or_(table.lease_expires_at.is_(None), table.lease_expires_at <= now),
    )
    statement = (
        update(table)
        .where(
            table.run_id == stale.run_id,
            table.status.not_in(FINAL_STATUSES),
            table.mode.in_(LEASED_MODES),
            same_lease,
        )
        .values(
            status="scheduled",
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            takeovers=table.takeovers + 1,
            taken_over_at=now,
            taken_over_from=stale.lease_owner or "(unknown)",
            error=None,
        )
    )
    with store.session() as session:
        return getattr(session.execute(statement), "rowcount", 0) == 1


def mark_crashed(store: Store, run_id: str, *, error: str) -> bool:
    """End a deployment run whose process died (Prefect marked it Crashed): `crashed` here
    too, and its process recorded as superseded (`taken_over_from`), so the action claims it
    left pending are taken over at once by the run that replaces it. False: already final."""
    now = _now()
    table = WorkflowExecution
    statement = (
        update(table)
        .where(table.run_id == run_id, table.status.not_in(FINAL_STATUSES))
        .values(
            status="crashed",
            error=error[:2000],
            finished_at=now,
            takeovers=table.takeovers + 1,
            taken_over_at=now,
            taken_over_from=func.coalesce(table.lease_owner, "(unknown)"),
        )
    )
    with store.session() as session:
        return getattr(session.execute(statement), "rowcount", 0) == 1


def renew(store: Store, run_ids: list[str], *, owner: str, lease_seconds: float) -> set[str]:
    """Extend the leases `owner` holds on `run_ids`; returns the ids it no longer holds."""
    if not run_ids:
        return set()
    now = _now()
    table = WorkflowExecution
    with store.session() as session:
        session.execute(
            update(table)
            .where(
                table.run_id.in_(run_ids),
                table.lease_owner == owner,
                table.status.not_in(FINAL_STATUSES),
            )
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        )
        held = set(
            session.scalars(
                select(table.run_id).where(table.run_id.in_(run_ids), table.lease_owner == owner)
            )
        )
    return set(run_ids) - held


def stale(store: Store, *, lease_seconds: float, limit: int = 50) -> list[Execution]:
    """Runs that are not final and whose process stopped renewing their lease, oldest first."""
    now = _now()
    table = WorkflowExecution
    grace = now - timedelta(seconds=lease_seconds)
    with store.session() as session:
        rows = session.scalars(
            select(table)
            .where(
                table.status.not_in(FINAL_STATUSES),
                table.mode.in_(LEASED_MODES),
                or_(
                    table.lease_expires_at <= now,
                    and_(table.lease_expires_at.is_(None), table.created_at <= grace),
                ),
            )
            .order_by(table.id)
            .limit(limit)
        ).all()
        return [_execution(row) for row in rows]


def taken_over(store: Store, limit: int = 20) -> list[Execution]:
    """Runs that were taken over from a dead process, most recent takeover first."""
    table = WorkflowExecution
    with store.session() as session:
        rows = session.scalars(
            select(table)
            .where(table.takeovers > 0)
            .order_by(table.taken_over_at.desc())
            .limit(limit)
        ).all()
        return [_execution(row) for row in rows]


def owner_superseded(store: Store, owner: str) -> bool:
    """True when a run held by `owner` was taken over: that process is gone, and claims it
    left elsewhere (pending actions) need not be waited for."""
    with store.session() as session:
        found = session.scalar(
            select(WorkflowExecution.id).where(WorkflowExecution.taken_over_from == owner).limit(1)
        )
    return found is not None
