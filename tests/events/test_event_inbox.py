"""The durable inbox: dedupe, atomic claims, leases, retries, two concurrent claimers."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from contexten.events.inbox import (
    CLAIMED,
    DISPATCHED,
    FAILED,
    IGNORED,
    PENDING,
    ClaimRequest,
    Inbox,
    InboxWriter,
    NewDelivery,
)
from contexten.store.db import Store


def _delivery(n: int, event: str = "workflow_run", status: str = PENDING) -> NewDelivery:
    return NewDelivery(f"d-{n}", event, json.dumps({"n": n}), action="completed", status=status)


def test_insert_dedupes_by_delivery_id(store: Store) -> None:
    inbox = Inbox(store)
    assert inbox.insert_many([_delivery(1), _delivery(2), _delivery(1)]) == [True, True, False]
    assert inbox.insert(_delivery(2)) is False
    assert inbox.counts()[PENDING] == 2


def test_ignored_rows_are_never_claimed(store: Store) -> None:
    inbox = Inbox(store)
    inbox.insert(_delivery(1, event="pull_request", status=IGNORED))
    assert inbox.claim("w", 10) == []
    assert inbox.counts()[IGNORED] == 1


def test_claim_marks_rows_and_counts_attempts(store: Store) -> None:
    inbox = Inbox(store)
    inbox.insert_many([_delivery(n) for n in range(5)])
    first = inbox.claim("a", 3)
    assert [i.delivery_id for i in first] == ["d-0", "d-1", "d-2"]
    assert all(i.attempts == 1 for i in first)
    second = inbox.claim("b", 10)
    assert [i.delivery_id for i in second] == ["d-3", "d-4"]
    assert first[0].claim_token != second[0].claim_token
    assert inbox.claim("c", 10) == []
    assert inbox.counts()[CLAIMED] == 5
    assert inbox.mark_dispatched(first[0], ["failure_analysis"], ["run-1"])
    row = inbox.get("d-0")
    assert row is not None
    assert (row["status"], row["workflow_type"], row["flow_run_id"]) == (
        DISPATCHED,
        "failure_analysis",
        "run-1",
    )


def test_expired_lease_is_reclaimed_and_the_old_claim_refused(store: Store) -> None:
    inbox = Inbox(store, lease_seconds=0.2)
    inbox.insert(_delivery(1))
    (old,) = inbox.claim("dead-worker", 1)
    assert inbox.claim("other", 1) == []  # lease still held
    time.sleep(0.3)
    (new,) = inbox.claim("other", 1)
    assert new.attempts == 2
    assert not inbox.mark_dispatched(old, ["x"], ["late"])  # the dead worker lost its lease
    assert inbox.mark_dispatched(new, ["x"], ["r"])
    row = inbox.get("d-1")
    assert row is not None and row["flow_run_id"] == "r"


def test_retry_waits_until_due(store: Store) -> None:
    inbox = Inbox(store, max_attempts=2)
    inbox.insert(_delivery(1))
    (item,) = inbox.claim("w", 1)
    assert inbox.mark_failed(item, "prefect down", retry_in=60) == PENDING
    assert inbox.claim("w", 1) == []  # not due for a minute
    row = inbox.get("d-1")
    assert row is not None and row["error"] == "prefect down"


def test_retry_in_zero_is_claimable_and_attempts_are_bounded(store: Store) -> None:
    inbox = Inbox(store, max_attempts=2)
    inbox.insert(_delivery(1))
    (item,) = inbox.claim("w", 1)
    assert inbox.mark_failed(item, "boom", retry_in=0) == PENDING
    (item,) = inbox.claim("w", 1)
    assert item.attempts == 2
    assert inbox.mark_failed(item, "boom again", retry_in=0) == FAILED
    assert inbox.claim("w", 1) == []
    row = inbox.get("d-1")
    assert row is not None and (row["status"], row["error"]) == (FAILED, "boom again")


def test_release_gives_the_row_back_untouched(store: Store) -> None:
    inbox = Inbox(store)
    inbox.insert(_delivery(1))
    (item,) = inbox.claim("w", 1)
    assert inbox.release(item)
    (again,) = inbox.claim("w", 1)
    assert again.attempts == 1


def test_purge_removes_only_old_settled_rows(store: Store) -> None:
    inbox = Inbox(store)
    inbox.insert_many([_delivery(1), _delivery(2, status=IGNORED), _delivery(3)])
    (item, _) = inbox.claim("w", 2)
    inbox.mark_dispatched(item, ["x"], ["r"])
    assert inbox.purge_finished(timedelta(days=1)) == 0
    assert inbox.purge_finished(timedelta(seconds=-1)) == 2
    assert inbox.counts() == {
        PENDING: 0,
        CLAIMED: 1,
        DISPATCHED: 0,
        IGNORED: 0,
        FAILED: 0,
    }


def test_two_claimers_on_separate_connections_never_share_a_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    setup = Store(url)
    setup.migrate()
    total = 400
    Inbox(setup).insert_many([_delivery(n) for n in range(total)])
    claimed: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claimer(name: str) -> None:
        own = Store(url)  # its own engine and connections, like another process
        inbox = Inbox(own)
        start.wait()
        try:
            while True:
                items = inbox.claim(name, 7)
                if not items:
                    return
                claimed[name].extend(i.delivery_id for i in items)
        finally:
            own.dispose()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    both = claimed["a"] + claimed["b"]
    assert len(both) == total
    assert set(both) == {f"d-{n}" for n in range(total)}
    assert not set(claimed["a"]) & set(claimed["b"])
    setup.dispose()


async def test_writer_group_commits_and_reports_duplicates(store: Store) -> None:
    import asyncio

    inbox = Inbox(store)
    writer = InboxWriter(inbox, max_batch=16)
    writer.start()
    try:
        results = await asyncio.gather(*(writer.submit(_delivery(n % 50)) for n in range(100)))
    finally:
        writer.stop()
    assert sum(results) == 50  # each id new exactly once
    assert inbox.counts()[PENDING] == 50
    assert not writer.alive


@pytest.mark.parametrize("bad", [0, -1])
def test_inbox_rejects_nonsense_settings(store: Store, bad: int) -> None:
    with pytest.raises(ValueError):
        Inbox(store, lease_seconds=bad)


def test_write_batch_inserts_settles_and_claims_in_one_transaction(store: Store) -> None:
    inbox = Inbox(store, lease_seconds=60)
    inbox.insert_many([_delivery(1), _delivery(2)])
    first, second = inbox.claim("a", 2)
    thief = Inbox(store, lease_seconds=60)
    thief.release(second)  # the second claim is no longer held by its token
    result = inbox.write_batch(
        [_delivery(3), _delivery(1)],
        [inbox.dispatched(first, ["failure_analysis"], ["run-1"]), inbox.ignored(second, "x")],
        [ClaimRequest("b", 10)],
    )
    assert result.inserted == [True, False]  # d-1 is a duplicate
    assert result.settled == [True, False]  # the lost claim is left alone
    # the claim sees the row inserted and the row released in the same transaction
    assert [i.delivery_id for i in result.claimed[0]] == ["d-2", "d-3"]
    assert inbox.get("d-1")["status"] == DISPATCHED  # type: ignore[index]
    assert inbox.get("d-2")["attempts"] == 1  # type: ignore[index]  # released: not counted


async def test_writer_claims_and_settles_for_the_dispatcher(store: Store) -> None:
    inbox = Inbox(store)
    inbox.insert_many([_delivery(n) for n in range(3)])
    writer = InboxWriter(inbox)
    writer.start()
    try:
        claimed = await writer.claim("w", 2)
        assert [i.delivery_id for i in claimed] == ["d-0", "d-1"]
        assert await writer.settle(inbox.failed(claimed[0], "boom", retry_in=60)) is True
        assert await writer.settle(inbox.failed(claimed[0], "again")) is False  # not claimed
        assert await writer.settle(inbox.failed(claimed[1], "broken")) is True
    finally:
        writer.stop()
    counts = inbox.counts()
    assert (counts[PENDING], counts[FAILED], counts[CLAIMED]) == (2, 1, 0)
    assert inbox.claim("w", 5)[0].delivery_id == "d-2"  # d-0 waits for its retry time
