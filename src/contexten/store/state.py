"""Small named state in the `state` table, by kind: the one place its keys are spelled.

A row's key is `<kind>:<name>` (cut to the column's 200 characters); callers say which kind
and which name, never the prefix. Values are small JSON objects.

- `CIRCUIT`, name = integration: a circuit breaker (`recovery.policy.CircuitBreaker`);
- `INTEGRATION_DISABLED`, name = integration: disabled by a configuration reset;
- `ESCALATION`, name = `<repository>:<signature>`: the Linear issue tracking a signature;
- `SETTINGS`, name = `last-known-good`: settings that last validated;
- `HEALTH`, name = `probe`: the store health check's write-then-read probe.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import select

from contexten.store.db import Store
from contexten.store.models import StateEntry

KEY_LENGTH = 200


class StateKind(StrEnum):
    CIRCUIT = "circuit"
    INTEGRATION_DISABLED = "integration-disabled"
    ESCALATION = "escalation"
    SETTINGS = "settings"
    HEALTH = "health"


def state_key(kind: StateKind, name: str) -> str:
    return f"{kind.value}:{name}"[:KEY_LENGTH]


def read_state(store: Store, kind: StateKind, name: str) -> dict[str, Any] | None:
    """The value stored under (kind, name); None when there is none."""
    with store.session() as session:
        entry = session.get(StateEntry, state_key(kind, name))
        return dict(entry.value or {}) if entry is not None else None


def write_state(store: Store, kind: StateKind, name: str, value: dict[str, Any] | None) -> None:
    """Store `value` under (kind, name); None deletes it."""
    key = state_key(kind, name)
    with store.session() as session:
        entry = session.get(StateEntry, key)
        if value is None:
            if entry is not None:
                session.delete(entry)
        elif entry is None:
            session.add(StateEntry(key=key, value=value))
        else:
            entry.value = value


def merge_state(
    store: Store,
    kind: StateKind,
    name: str,
    values: dict[str, Any],
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge `values` into the stored value (`defaults` fill keys it lacks), in one
    transaction; returns the new value."""
    key = state_key(kind, name)
    with store.session() as session:
        entry = session.get(StateEntry, key)
        current = dict(entry.value or {}) if entry is not None else {}
        current.update(values)
        for field, default in (defaults or {}).items():
            current.setdefault(field, default)
        if entry is None:
            session.add(StateEntry(key=key, value=current))
        else:
            entry.value = current
    return current


def list_state(store: Store, kind: StateKind) -> list[tuple[str, dict[str, Any]]]:
    """Every (name, value) of one kind, by name."""
    prefix = state_key(kind, "")
    with store.session() as session:
        entries = session.scalars(
            select(StateEntry)
            .where(StateEntry.key.startswith(prefix, autoescape=True))
            .order_by(StateEntry.key)
        ).all()
        return [(e.key.removeprefix(prefix), dict(e.value or {})) for e in entries]
