"""Awaiting re-runs are settled by their own run's result, not by another run's failure."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from contexten.recovery.manager import confirm_recovered
from contexten.store.db import Store
from contexten.store.models import RecoveryRecord
from contexten.store.recoveries import settle_awaiting


def add_awaiting(store: Store, key: str, run_id: int | None) -> None:
    with store.session() as session:
        session.add(
            RecoveryRecord(
                key=key,
                failure_type="network",
                strategy="workflow_restart",
                outcome="awaiting_result",
                detail={"run_id": run_id},
            )
        )


def outcomes(store: Store) -> list[tuple[int | None, str]]:
    with store.session() as session:
        rows = session.scalars(select(RecoveryRecord).order_by(RecoveryRecord.id)).all()
        return [((r.detail or {}).get("run_id"), r.outcome) for r in rows]


def test_only_the_same_runs_rerun_is_settled(store: Store) -> None:
    add_awaiting(store, "sig", 1)
    add_awaiting(store, "sig", 2)
    add_awaiting(store, "other", 1)
    assert settle_awaiting(store, "sig", "failed", datetime.now(UTC), run_id=1) == 1
    assert outcomes(store) == [(1, "failed"), (2, "awaiting_result"), (1, "awaiting_result")]


def test_without_run_id_every_awaiting_record_of_the_key_settles(store: Store) -> None:
    add_awaiting(store, "sig", 1)
    add_awaiting(store, "sig", None)
    assert confirm_recovered(store, "sig") == 2
    assert [o for _, o in outcomes(store)] == ["succeeded", "succeeded"]
