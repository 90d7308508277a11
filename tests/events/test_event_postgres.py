"""The inbox on a real PostgreSQL: two dispatchers, SKIP LOCKED claims, no double dispatch.

A throw-away server is started on 127.0.0.1 in a temp dir (as the `postgres` user when
running as root); the tests skip with a message when no PostgreSQL is installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from intake_helpers import load_example

from contexten.config import Settings
from contexten.events.dispatcher import Dispatcher
from contexten.events.inbox import DISPATCHED, Inbox, NewDelivery
from contexten.store.db import Store


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for version in ("17", "16", "15", "14", "13"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found)")
    base = Path(tempfile.mkdtemp(prefix="contexten-pg-"))
    data = base / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL")
        os.chown(base, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off"
        log = str(base / "log")
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-o", options, "-w", "-l", log, "start"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL server: {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    store = Store(postgres_url)
    store.migrate()
    with store.engine.begin() as connection:
        connection.exec_driver_sql("TRUNCATE deliveries")
    yield store
    store.dispose()


def test_claim_statement_skips_locked_rows_on_postgresql(tmp_path: Path) -> None:
    """Compiled for PostgreSQL the claim takes row locks and skips locked ones (no server)."""
    from sqlalchemy.dialects import postgresql

    inbox = Inbox(Store(f"sqlite:///{tmp_path / 'x.db'}"))
    inbox._postgres = True  # compile as the PostgreSQL inbox would
    sql = str(inbox.claim_statement().compile(dialect=postgresql.dialect()))
    assert "FOR UPDATE SKIP LOCKED" in sql
    assert sql.startswith("UPDATE deliveries SET")
    assert "RETURNING" in sql


@pytest.mark.postgres
def test_insert_dedupes_on_postgresql(pg_store: Store) -> None:
    inbox = Inbox(pg_store)
    first = [NewDelivery(f"d{n}", "push", "{}") for n in range(3)]
    assert inbox.insert_many(first) == [True, True, True]
    again = [NewDelivery("d1", "push", "{}"), NewDelivery("d9", "push", "{}")]
    assert inbox.insert_many(again) == [False, True]


@pytest.mark.postgres
def test_two_dispatchers_share_a_postgresql_inbox_without_double_dispatch(
    pg_store: Store, postgres_url: str, examples: Path
) -> None:
    template = load_example(
        examples, "workflow_job/completed.failure.with-organization.payload.json"
    )
    total = 150
    deliveries = []
    for n in range(total):
        payload = dict(template, workflow_job=dict(template["workflow_job"], run_id=5000 + n))
        deliveries.append(NewDelivery(f"pg-{n}", "workflow_job", json.dumps(payload)))
    Inbox(pg_store).insert_many(deliveries)
    calls: list[str] = []
    lock = threading.Lock()
    by_worker: dict[str, int] = {}

    async def trigger(_t: str, _p: dict[str, Any], key: str) -> str:
        with lock:
            calls.append(key)
        await asyncio.sleep(0.001)  # hold the claim a moment, like a real trigger
        return key

    def run_dispatcher(name: str) -> None:
        own = Store(postgres_url)  # its own pool, like another replica

        async def main() -> None:
            dispatcher = Dispatcher(
                Inbox(own), trigger, Settings(), worker_id=name, batch_size=4, concurrency=4
            )
            while outcomes := await dispatcher.run_once():
                by_worker[name] = by_worker.get(name, 0) + len(outcomes)

        asyncio.run(main())
        own.dispose()

    threads = [threading.Thread(target=run_dispatcher, args=(n,)) for n in ("r1", "r2", "r3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sum(by_worker.values()) == total
    assert len(calls) == total and len(set(calls)) == total
    assert Inbox(pg_store).counts()[DISPATCHED] == total
