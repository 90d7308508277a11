"""A dispatcher trigger for tests: records each call in the store's database, starts nothing.

Used as `contexten webhook serve --trigger recording_trigger:factory` (tests/postgres on
PYTHONPATH). Every call inserts (idempotency key, workflow type, process id) into the table
`trigger_calls`, which the test creates first, so a test can count dispatches across
processes.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from sqlalchemy import text

from contexten.config import Settings
from contexten.store.db import Store

CREATE_TABLE = (
    "CREATE TABLE trigger_calls (id SERIAL PRIMARY KEY, key TEXT NOT NULL, "
    "workflow_type TEXT NOT NULL, pid INTEGER NOT NULL)"
)
HOLD_SECONDS = 0.02  # hold the claim a moment, as a real trigger does


def factory(_settings: Settings, store: Store) -> Any:
    pid = os.getpid()

    def record(workflow_type: str, key: str) -> None:
        with store.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO trigger_calls (key, workflow_type, pid) VALUES (:k, :w, :p)"),
                {"k": key, "w": workflow_type, "p": pid},
            )

    async def trigger(workflow_type: str, _parameters: dict[str, Any], key: str) -> str:
        await asyncio.to_thread(record, workflow_type, key)
        await asyncio.sleep(HOLD_SECONDS)
        return f"run-{key}"

    return trigger
