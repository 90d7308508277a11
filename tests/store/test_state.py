"""store.state: small named state by kind, keys spelled in one place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from contexten.store.db import Store
from contexten.store.models import StateEntry
from contexten.store.state import (
    StateKind,
    list_state,
    merge_state,
    read_state,
    state_key,
    write_state,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    yield store
    store.dispose()


def test_rows_keep_the_keys_earlier_versions_wrote(store: Store) -> None:
    write_state(store, StateKind.CIRCUIT, "github", {"state": "open"})
    write_state(store, StateKind.SETTINGS, "last-known-good", {"values": {}})
    with store.session() as session:
        keys = sorted(session.scalars(select(StateEntry.key)).all())
    assert keys == ["circuit:github", "settings:last-known-good"]
    assert (
        state_key(StateKind.ESCALATION, "o/r:" + "x" * 300) == ("escalation:o/r:" + "x" * 300)[:200]
    )


def test_write_read_delete(store: Store) -> None:
    assert read_state(store, StateKind.CIRCUIT, "slack") is None
    write_state(store, StateKind.CIRCUIT, "slack", {"state": "half_open"})
    write_state(store, StateKind.CIRCUIT, "slack", {"state": "closed"})
    assert read_state(store, StateKind.CIRCUIT, "slack") == {"state": "closed"}
    write_state(store, StateKind.CIRCUIT, "slack", None)
    assert read_state(store, StateKind.CIRCUIT, "slack") is None


def test_list_is_by_kind_and_name_and_escapes_wildcards(store: Store) -> None:
    write_state(store, StateKind.CIRCUIT, "linear", {"state": "open"})
    write_state(store, StateKind.CIRCUIT, "github", {"state": "closed"})
    write_state(store, StateKind.INTEGRATION_DISABLED, "github", {"reason": "401"})
    assert list_state(store, StateKind.CIRCUIT) == [
        ("github", {"state": "closed"}),
        ("linear", {"state": "open"}),
    ]
    assert [n for n, _ in list_state(store, StateKind.INTEGRATION_DISABLED)] == ["github"]


def test_merge_keeps_other_fields_and_fills_defaults(store: Store) -> None:
    first = merge_state(store, StateKind.ESCALATION, "o/r:sig", {"issue": "L-1"}, {"generation": 1})
    assert first == {"issue": "L-1", "generation": 1}
    second = merge_state(
        store, StateKind.ESCALATION, "o/r:sig", {"generation": 2}, {"generation": 9, "x": 0}
    )
    assert second == {"issue": "L-1", "generation": 2, "x": 0}
    assert read_state(store, StateKind.ESCALATION, "o/r:sig") == second
