"""store.executions: claims under a lease, renewal, takeover of a dead process's run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from contexten.store import executions as runs
from contexten.store.db import Store
from contexten.store.models import WorkflowExecution

DEAD = "deadhost:4242:0123456789ab"
ME = "thishost:1:aaaaaaaaaaaa"
OTHER = "otherhost:2:bbbbbbbbbbbb"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    the_store = Store(f"sqlite:///{tmp_path / 'runs.db'}")
    the_store.migrate()
    yield the_store
    the_store.dispose()


def _expire(store: Store, run_id: str, *, ago: float = 5.0) -> None:
    with store.session() as session:
        session.execute(
            update(WorkflowExecution)
            .where(WorkflowExecution.run_id == run_id)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=ago))
        )


def _claim(store: Store, key: str, run_id: str, owner: str, mode: str = "in-process") -> runs.Claim:
    return runs.claim(
        store,
        key,
        run_id,
        "linear_sync",
        mode,
        parameters={"team": "x"},
        owner=owner,
        lease_seconds=60,
    )


def test_a_new_key_is_owned_and_a_live_one_is_not(store: Store) -> None:
    first = _claim(store, "k", "run-1", DEAD)
    assert first == runs.Claim("run-1", owned=True)
    second = _claim(store, "k", "run-2", ME)
    assert second.run_id == "run-1" and not second.owned and not second.taken_over
    row = runs.load(store, "run-1")
    assert row is not None and row.lease_owner == DEAD and row.parameters == {"team": "x"}
    assert row.lease_expires_at is not None and row.lease_expires_at > datetime.now(UTC)
    assert runs.load(store, "run-2") is None


def test_the_run_of_a_dead_process_is_taken_over_under_its_key(store: Store) -> None:
    _claim(store, "k", "run-1", DEAD)
    runs.record(store, "run-1", status="running")
    _expire(store, "run-1")
    claim = _claim(store, "k", "run-2", ME)
    assert claim.run_id == "run-1" and claim.owned and claim.taken_over
    row = runs.load(store, "run-1")
    assert row is not None
    assert (row.status, row.lease_owner, row.takeovers) == ("scheduled", ME, 1)
    assert row.taken_over_from == DEAD and row.taken_over_at is not None
    assert runs.owner_superseded(store, DEAD) and not runs.owner_superseded(store, ME)
    # the taker holds a fresh lease now: a third caller gets the run, not a takeover
    third = _claim(store, "k", "run-3", OTHER)
    assert third.run_id == "run-1" and not third.owned


@pytest.mark.parametrize("status", sorted(runs.FINAL_STATUSES))
def test_a_finished_run_is_never_taken_over(store: Store, status: str) -> None:
    _claim(store, "k", "run-1", DEAD)
    runs.record(store, "run-1", status=status)
    _expire(store, "run-1")
    claim = _claim(store, "k", "run-2", ME)
    assert claim == runs.Claim("run-1", owned=False, status=status)
    assert runs.stale(store, lease_seconds=60) == []


def test_prefect_deployment_runs_are_left_to_prefect(store: Store) -> None:
    runs.record(store, "flow-run", workflow_type="linear_sync", mode="prefect", status="running")
    _expire(store, "flow-run")
    assert runs.stale(store, lease_seconds=0) == []


def test_only_one_of_two_takers_wins(store: Store) -> None:
    _claim(store, "k", "run-1", DEAD)
    _expire(store, "run-1")
    (stale,) = runs.stale(store, lease_seconds=60)
    assert runs.take_over(store, stale, owner=ME, lease_seconds=60)
    assert not runs.take_over(store, stale, owner=OTHER, lease_seconds=60)
    row = runs.load(store, "run-1")
    assert row is not None and row.lease_owner == ME and row.takeovers == 1


def test_renewal_keeps_a_run_alive_and_reports_a_lost_lease(store: Store) -> None:
    _claim(store, "k", "run-1", DEAD)
    _expire(store, "run-1")
    assert runs.renew(store, ["run-1"], owner=DEAD, lease_seconds=60) == set()
    assert runs.stale(store, lease_seconds=60) == []  # renewed: alive again
    _expire(store, "run-1")
    (stale,) = runs.stale(store, lease_seconds=60)
    assert runs.take_over(store, stale, owner=ME, lease_seconds=60)
    assert runs.renew(store, ["run-1"], owner=DEAD, lease_seconds=60) == {"run-1"}


def test_the_record_fence_keeps_a_replaced_process_from_writing(store: Store) -> None:
    _claim(store, "k", "run-1", DEAD)
    _expire(store, "run-1")
    (stale,) = runs.stale(store, lease_seconds=60)
    runs.take_over(store, stale, owner=ME, lease_seconds=60)
    assert not runs.record(store, "run-1", owner=DEAD, status="completed")
    assert runs.record(store, "run-1", owner=ME, status="running")
    row = runs.load(store, "run-1")
    assert row is not None and row.status == "running"


def test_stale_lists_expired_and_lease_less_old_runs_only(store: Store) -> None:
    _claim(store, "alive", "run-alive", OTHER)
    _claim(store, "dead", "run-dead", DEAD)
    _expire(store, "run-dead")
    old = datetime.now(UTC) - timedelta(hours=1)
    # a row from before leases (or a claim that never got one), old: its process is gone
    runs.record(
        store,
        "run-legacy",
        workflow_type="health_check",
        mode="prefect-local",
        status="running",
        created_at=old,
    )
    runs.record(
        store, "run-young", workflow_type="health_check", mode="in-process", status="scheduled"
    )
    stale = runs.stale(store, lease_seconds=60)
    assert [r.run_id for r in stale] == ["run-dead", "run-legacy"]
    assert runs.taken_over(store) == []


def test_a_released_run_is_taken_over_by_the_next_claim(store: Store) -> None:
    _claim(store, "k", "run-1", ME)
    assert not runs.release(store, "run-1", owner=OTHER)  # not the holder's: refused
    assert runs.release(store, "run-1", owner=ME)
    claim = _claim(store, "k", "run-2", OTHER)
    assert claim.run_id == "run-1" and claim.owned and claim.taken_over


def test_a_run_that_keeps_dying_fails_after_max_takeovers(store: Store) -> None:
    _claim(store, "k", "run-1", DEAD)
    for n in range(runs.MAX_TAKEOVERS):
        _expire(store, "run-1")
        claim = _claim(store, "k", f"run-x{n}", f"host:{n}:x")
        assert claim.owned and claim.taken_over
    _expire(store, "run-1")
    claim = _claim(store, "k", "run-last", ME)
    assert claim == runs.Claim("run-1", owned=False, status="failed")
    row = runs.load(store, "run-1")
    assert (
        row is not None
        and row.status == "failed"
        and "gave up after 5 takeovers" in (row.error or "")
    )
