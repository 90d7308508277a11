"""The action ledger: once per key, across retries, crashes, concurrent callers and processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from contexten.integrations.idempotency import (
    ActionInProgress,
    ActionLedger,
    Result,
    has_marker,
    idempotency_key,
    marker,
)
from contexten.integrations.interface import CIProviderError, ErrorReason
from contexten.sandbox.testing import ManualClock, fast_policy
from contexten.store.db import Store

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.migrate()
    return store


def ledger(store: Store, **kwargs: object) -> ActionLedger:
    return ActionLedger(store, policy=fast_policy(ManualClock()), **kwargs)  # type: ignore[arg-type]


def test_key_is_stable_and_specific() -> None:
    a = idempotency_key("github", "rerun", "o/r", 1, 1)
    assert a == idempotency_key("github", "rerun", "o/r", 1, 1)
    assert a != idempotency_key("github", "rerun", "o/r", 1, 2)
    assert len(a) == 64
    assert has_marker(f"text\n{marker(a)}", a) and not has_marker("text", a)


async def test_second_call_returns_recorded_result(store: Store) -> None:
    calls = []

    async def perform() -> Result:
        calls.append(1)
        return {"id": 7}

    book = ledger(store)
    assert await book.once("k1", "comment", "o/r#1", perform) == {"id": 7}
    assert await book.once("k1", "comment", "o/r#1", perform) == {"id": 7}
    # Another process (a new ledger over the same database) sees it too.
    assert await ledger(store).once("k1", "comment", "o/r#1", perform) == {"id": 7}
    assert len(calls) == 1
    state = book.get("k1")
    assert state is not None and state.status == "done" and state.attempts == 1


async def test_failure_is_recorded_and_retried_later_after_a_lookup(store: Store) -> None:
    book = ledger(store)

    async def broken() -> Result:
        raise CIProviderError("github: boom", reason=ErrorReason.INVALID)

    with pytest.raises(CIProviderError):
        await book.once("k2", "rerun", None, broken)
    state = book.get("k2")
    assert state is not None and state.status == "failed" and "boom" in (state.error or "")

    looked: list[int] = []

    async def find_existing() -> Result | None:
        looked.append(1)
        return None

    async def works() -> Result:
        return {"ok": True}

    assert await book.once("k2", "rerun", None, works, find_existing) == {"ok": True}
    assert looked == [1]  # the second attempt first checked whether the first had succeeded
    assert book.get("k2").attempts == 2  # type: ignore[union-attr]


async def test_ambiguous_failure_is_looked_up_instead_of_repeated(store: Store) -> None:
    remote: list[str] = []

    async def perform() -> Result:
        remote.append("comment")  # it happened remotely...
        raise CIProviderError(  # ...but the response was lost
            "github: connection dropped", reason=ErrorReason.UNAVAILABLE, maybe_processed=True
        )

    async def find_existing() -> Result | None:
        return {"id": 1} if remote else None

    result = await ledger(store).once("k3", "comment", None, perform, find_existing)
    assert result == {"id": 1}
    assert remote == ["comment"]


async def test_ambiguous_failure_retried_when_lookup_finds_nothing(store: Store) -> None:
    attempts: list[int] = []

    async def perform() -> Result:
        attempts.append(1)
        if len(attempts) == 1:  # lost before it reached the server
            raise CIProviderError(
                "github: timeout", reason=ErrorReason.UNAVAILABLE, maybe_processed=True
            )
        return {"id": 2}

    async def find_existing() -> Result | None:
        return None

    assert await ledger(store).once("k4", "comment", None, perform, find_existing) == {"id": 2}
    assert len(attempts) == 2


async def test_concurrent_callers_perform_once(store: Store) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    calls: list[str] = []

    async def perform() -> Result:
        calls.append("x")
        started.set()
        await release.wait()
        return {"id": 42}

    first = ledger(store, poll_interval=0.01)
    second = ActionLedger(store, poll_interval=0.01)  # real sleep: it polls the database

    async def later() -> Result:
        await started.wait()
        task = asyncio.create_task(second.once("k5", "pr", None, perform))
        await asyncio.sleep(0.05)
        release.set()
        return await task

    results = await asyncio.gather(first.once("k5", "pr", None, perform), later())
    assert results == [{"id": 42}, {"id": 42}]
    assert calls == ["x"]


async def test_busy_claim_times_out_with_a_clear_error(store: Store) -> None:
    gate = asyncio.Event()

    async def slow() -> Result:
        await gate.wait()
        return {}

    holder = asyncio.create_task(ledger(store).once("k6", "pr", "o/r:branch", slow))
    await asyncio.sleep(0.05)
    waiter = ActionLedger(store, poll_interval=0.01, max_wait_seconds=0.05)
    with pytest.raises(ActionInProgress, match="in progress elsewhere"):
        await waiter.once("k6", "pr", "o/r:branch", slow)
    gate.set()
    await holder


async def test_a_dead_owner_lease_is_taken_over_after_a_lookup(store: Store) -> None:
    # A process claimed the action and died mid-way: the claim stays pending, lease expired.
    crashed = ActionLedger(store, lease_seconds=0.0)
    claim = crashed._claim_sync("k7", "rerun", "o/r")
    assert claim.outcome == "claimed"
    looked: list[int] = []

    async def find_existing() -> Result | None:
        looked.append(1)
        return {"run_attempt": 2}  # the crashed process's re-run did happen

    async def perform() -> Result:
        raise AssertionError("must not re-run")

    result = await ledger(store).once("k7", "rerun", "o/r", perform, find_existing)
    assert result == {"run_attempt": 2} and looked == [1]


def test_processes_race_and_only_one_performs(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    Store(f"sqlite:///{db}").migrate()
    marks = tmp_path / "performed.txt"
    script = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from contexten.integrations.idempotency import ActionLedger
        from contexten.store.db import Store

        async def main():
            store = Store({f"sqlite:///{db}"!r})
            async def perform():
                with open({str(marks)!r}, "a") as fh:
                    fh.write("performed\\n")
                await asyncio.sleep(0.2)
                return {{"by": sys.argv[1]}}
            ledger = ActionLedger(store, poll_interval=0.02)
            result = await ledger.once("race-key", "comment", None, perform)
            print(result["by"])

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(i)], stdout=subprocess.PIPE, text=True, env=env
        )
        for i in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert marks.read_text().count("performed") == 1
    assert len(set(outputs)) == 1  # everyone got the one result
