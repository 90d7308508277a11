"""`contexten server` end to end: with --no-webhook its runner takes over the runs of dead
processes; a kill -9 of the server takes its components with it, and the next server on
the same home starts cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from contexten.store import executions as runs
from contexten.store.db import Store
from contexten.store.server_record import SERVER_FILE

DEAD = "deadhost:4242:0123456789ab"


def _wait_for(condition: Callable[[], Any], timeout: float, what: str, server: Any) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if server is not None and server.poll() is not None:
            raise AssertionError(f"contexten server exited {server.returncode} before {what}")
        time.sleep(0.25)
    raise AssertionError(f"{what}: not after {timeout:.0f} s")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _start_server(home: Path, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    scrubbed = ("PREFECT_", "CONTEXTEN_", "DATABASE_URL", "GITHUB_", "LINEAR_", "SLACK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrubbed)}
    env.update(
        CONTEXTEN_HOME=str(home),
        DATABASE_URL=database_url,
        EXECUTION_LEASE_SECONDS="2",
        WORKFLOW_RETRY_DELAY="0",
        AUTO_RESTART_ENABLED="false",
        PREFECT_SERVER_DATABASE_MIGRATE_ON_START="false",  # from the migrated template
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "contexten.cli", "server", "--port", "0", "--no-webhook"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _children(home: Path) -> dict[str, int]:
    try:
        records = json.loads((home / "children.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name: int(record["pid"]) for name, record in records.items()}


def _serving(home: Path, pid: int) -> bool:
    """The server `pid` recorded itself and both of its components (no receiver)."""
    try:
        record = json.loads((home / SERVER_FILE).read_text())
    except (OSError, ValueError):
        return False
    return record.get("pid") == pid and set(_children(home)) == {"prefect-server", "runner"}


@pytest.mark.timeout(600)
def test_no_webhook_server_takes_over_dead_runs_and_dies_whole_on_kill_9(
    tmp_path: Path, prefect_template_db: Path
) -> None:
    home = tmp_path / "home"
    (home / "prefect").mkdir(parents=True)
    shutil.copyfile(prefect_template_db, home / "prefect" / "prefect.db")
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(database_url)
    store.migrate()
    # What a process killed mid-run leaves: a leased row nobody renews any more.
    runs.record(
        store,
        "dead-run",
        idempotency_key="dead-run-key",
        workflow_type="linear_sync",
        mode="in-process",
        status="running",
        parameters={},
        lease_owner=DEAD,
        lease_expires_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    log = tmp_path / "server.log"
    first = _start_server(home, database_url, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        # 3. no receiver, so no dispatcher: the runner's sweep takes the run over.
        row = _wait_for(
            lambda: (r := runs.load(store, "dead-run")) is not None and r.is_final and r,
            240,
            "the dead run taken over and finished",
            first,
        )
        assert row.takeovers == 1 and row.taken_over_from == DEAD
        assert row.lease_owner != DEAD

        # 2. kill -9 of the server alone: its components follow it.
        _wait_for(lambda: _serving(home, first.pid), 120, "the server recorded", first)
        children = _children(home)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        _wait_for(
            lambda: all(_gone(pid) for pid in children.values()),
            30,
            f"the components {children} died with the server",
            None,
        )

        # The next server on the same home (stale server.json, children.json) starts.
        second = _start_server(home, database_url, log)
        _wait_for(lambda: _serving(home, second.pid), 180, "the second server serving", second)
        assert set(_children(home).values()).isdisjoint(children.values())
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=90) == 0
        assert not (home / SERVER_FILE).exists() and not (home / "children.json").exists()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
        store.dispose()
