"""store.ledger: the action rows; conditional updates decide races between processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.store import ledger
from contexten.store.db import Store

CLAIM = {"claim": {"owner": "host:1:aaaa", "lease_until": 2_000_000_000.0}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    the_store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    the_store.migrate()
    yield the_store
    the_store.dispose()


def test_a_key_is_claimed_once(store: Store) -> None:
    assert ledger.insert_claim(store, "k1", "pr_comment", "octo/repo#1", CLAIM)
    assert not ledger.insert_claim(store, "k1", "pr_comment", "octo/repo#1", CLAIM)
    state = ledger.read(store, "k1")
    assert state is not None
    assert (state.status, state.attempts, state.owner) == ("pending", 1, "host:1:aaaa")
    assert state.lease_until == 2_000_000_000.0 and state.result is None


def test_only_one_takeover_wins_and_a_stale_finish_is_refused(store: Store) -> None:
    ledger.insert_claim(store, "k2", "rerun", None, CLAIM)
    assert ledger.take_over(store, "k2", 1, CLAIM)
    assert not ledger.take_over(store, "k2", 1, CLAIM)  # the other racer saw attempt 1 too
    assert not ledger.mark_done(store, "k2", 1, {"id": 7})  # the superseded owner
    assert ledger.mark_done(store, "k2", 2, {"id": 8})
    state = ledger.read(store, "k2")
    assert state is not None and (state.status, state.result) == ("done", {"id": 8})
    assert not ledger.take_over(store, "k2", 2, CLAIM)  # done is final


def test_a_failure_is_recorded_only_for_the_current_attempt(store: Store) -> None:
    ledger.insert_claim(store, "k3", "slack_message", "C1", CLAIM)
    ledger.mark_failed(store, "k3", 5, "stale attempt")
    state = ledger.read(store, "k3")
    assert state is not None and state.status == "pending"
    ledger.mark_failed(store, "k3", 1, "HTTPError: 500")
    state = ledger.read(store, "k3")
    assert state is not None and (state.status, state.error) == ("failed", "HTTPError: 500")
    assert ledger.read(store, "missing") is None
