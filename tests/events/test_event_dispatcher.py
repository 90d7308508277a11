"""The dispatcher: routing to triggers, retries, crash safety, concurrency, shutdown."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from intake_helpers import load_example

from contexten.config import Settings
from contexten.events.dispatcher import Dispatcher, DispatchOutcome
from contexten.events.inbox import (
    CLAIMED,
    DISPATCHED,
    FAILED,
    IGNORED,
    PENDING,
    Inbox,
    InboxError,
    NewDelivery,
    Settlement,
)
from contexten.store.db import Store

FAILED_JOB = "workflow_job/completed.failure.with-organization.payload.json"


class IdempotentOrchestrator:
    """Stands in for PrefectOrchestrator.trigger_workflow: one run per idempotency key."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[str, dict[str, Any]]] = {}
        self.calls: list[str] = []
        self._lock = threading.Lock()

    async def __call__(self, workflow_type: str, parameters: dict[str, Any], key: str) -> str:
        with self._lock:
            self.calls.append(key)
            if key not in self.runs:
                self.runs[key] = (f"run-{len(self.runs) + 1}", dict(parameters, _t=workflow_type))
            return self.runs[key][0]


def _job_failure(examples: Path, run_id: int) -> str:
    payload = load_example(examples, FAILED_JOB)
    payload["workflow_job"]["run_id"] = run_id
    return json.dumps(payload)


def _insert(store: Store, items: list[tuple[str, str, str]]) -> Inbox:
    inbox = Inbox(store)
    inbox.insert_many([NewDelivery(d, event, body) for d, event, body in items])
    return inbox


async def test_routes_are_triggered_with_their_keys(
    store: Store, settings: Settings, examples: Path
) -> None:
    inbox = _insert(store, [("d1", "workflow_job", _job_failure(examples, 11))])
    orchestrator = IdempotentOrchestrator()
    outcomes = await Dispatcher(inbox, orchestrator, settings).run_once()
    assert outcomes == [
        DispatchOutcome("d1", "workflow_job", DISPATCHED, ("failure_analysis",), ("run-1",))
    ]
    assert orchestrator.calls == ["failure_analysis:Codertocat/Hello-World:11:1"]
    assert orchestrator.runs[orchestrator.calls[0]][1] == {
        "repository": "Codertocat/Hello-World",
        "workflow_run_id": 11,
        "_t": "failure_analysis",
    }


async def test_two_deliveries_for_one_run_start_one_analysis(
    store: Store, settings: Settings, examples: Path
) -> None:
    body = _job_failure(examples, 77)
    inbox = _insert(store, [("job-a", "workflow_job", body), ("job-b", "workflow_job", body)])
    orchestrator = IdempotentOrchestrator()
    outcomes = await Dispatcher(inbox, orchestrator, settings).run_once()
    assert [o.status for o in outcomes] == [DISPATCHED, DISPATCHED]
    assert len(orchestrator.runs) == 1
    assert outcomes[0].run_ids == outcomes[1].run_ids


async def test_route_without_key_uses_the_delivery_id(store: Store, examples: Path) -> None:
    payload = load_example(examples, "push/with-new-branch.payload.json")
    inbox = _insert(store, [("push-1", "push", json.dumps(payload))])
    orchestrator = IdempotentOrchestrator()
    await Dispatcher(inbox, orchestrator, Settings(baseline_branch="master")).run_once()
    assert orchestrator.calls == [
        "github-delivery:push-1:performance_monitoring",
        f"security_audit:Codertocat/Hello-World:{payload['after']}",
    ]


async def test_unmatched_bad_and_unroutable_deliveries(store: Store, settings: Settings) -> None:
    no_id = {
        "action": "completed",
        "workflow_run": {"conclusion": "failure"},
        "repository": {"full_name": "o/r"},
    }
    inbox = _insert(
        store,
        [
            ("queued", "workflow_job", json.dumps({"action": "queued"})),
            ("garbled", "workflow_run", "{not json"),
            ("no-id", "workflow_run", json.dumps(no_id)),
        ],
    )
    orchestrator = IdempotentOrchestrator()
    outcomes = await Dispatcher(inbox, orchestrator, settings).run_once()
    assert [o.status for o in outcomes] == [IGNORED, FAILED, FAILED]
    assert orchestrator.calls == []
    row = inbox.get("no-id")
    assert row is not None and "workflow_run_id" in row["error"]
    assert inbox.claim("again", 10) == []  # permanent failures are not retried


async def test_trigger_errors_are_retried_later_then_given_up(
    store: Store, settings: Settings, examples: Path
) -> None:
    inbox = Inbox(store, max_attempts=2)
    inbox.insert(NewDelivery("d1", "workflow_job", _job_failure(examples, 5)))
    attempts: list[str] = []

    async def prefect_down(_t: str, _p: dict[str, Any], key: str) -> str:
        attempts.append(key)
        raise ConnectionError("connection refused")

    dispatcher = Dispatcher(inbox, prefect_down, settings, retry_delay=0)
    (first,) = await dispatcher.run_once()
    assert first.status == PENDING
    assert "connection refused" in (first.error or "")
    (second,) = await dispatcher.run_once()
    assert second.status == FAILED
    assert await dispatcher.run_once() == []
    assert len(attempts) == 2 and attempts[0] == attempts[1]


async def test_retry_delay_backs_off(store: Store, settings: Settings, examples: Path) -> None:
    inbox = _insert(store, [("d1", "workflow_job", _job_failure(examples, 5))])

    async def down(_t: str, _p: dict[str, Any], _k: str) -> str:
        raise TimeoutError

    dispatcher = Dispatcher(inbox, down, settings, retry_delay=600)
    (outcome,) = await dispatcher.run_once()
    assert outcome.status == PENDING
    assert await dispatcher.run_once() == []  # not due for ten minutes


class CrashAfterTrigger(Inbox):
    """Dies (like kill -9) between triggering and recording the dispatch, once."""

    crashed = False

    def settle(self, settlement: Settlement) -> bool:
        if settlement.settled == DISPATCHED and not self.crashed:
            self.crashed = True
            raise InboxError("process killed")
        return super().settle(settlement)


async def test_crash_between_trigger_and_mark_never_dispatches_twice(
    store: Store, settings: Settings, examples: Path
) -> None:
    crashing = CrashAfterTrigger(store, lease_seconds=0.2)
    crashing.insert(NewDelivery("d1", "workflow_job", _job_failure(examples, 9)))
    orchestrator = IdempotentOrchestrator()
    (lost,) = await Dispatcher(crashing, orchestrator, settings, worker_id="a").run_once()
    assert lost.status == "lost"
    assert crashing.counts()[CLAIMED] == 1
    await asyncio.sleep(0.3)  # the lease of the dead dispatcher expires
    survivor = Inbox(store, lease_seconds=0.2)
    (done,) = await Dispatcher(survivor, orchestrator, settings, worker_id="b").run_once()
    assert done.status == DISPATCHED
    assert len(orchestrator.calls) == 2  # triggered twice ...
    assert len(orchestrator.runs) == 1  # ... but one run exists
    assert done.run_ids == ("run-1",)


async def test_concurrency_is_bounded(store: Store, settings: Settings, examples: Path) -> None:
    inbox = _insert(
        store, [(f"d{n}", "workflow_job", _job_failure(examples, 100 + n)) for n in range(12)]
    )
    in_flight = 0
    peak = 0
    done = asyncio.Event()
    triggered: list[str] = []

    async def slow(_t: str, _p: dict[str, Any], key: str) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        triggered.append(key)
        if len(triggered) == 12:
            done.set()
        return key

    dispatcher = Dispatcher(inbox, slow, settings, concurrency=3, batch_size=10, poll_interval=0.01)
    runner = asyncio.create_task(dispatcher.run())
    await asyncio.wait_for(done.wait(), 30)
    dispatcher.stop()
    await asyncio.wait_for(runner, 30)
    assert 1 <= peak <= 3
    assert len(set(triggered)) == 12
    assert inbox.counts()[DISPATCHED] == 12


async def test_wake_dispatches_without_waiting_for_the_poll(
    store: Store, settings: Settings, examples: Path
) -> None:
    inbox = Inbox(store)
    orchestrator = IdempotentOrchestrator()
    seen = asyncio.Event()
    dispatcher = Dispatcher(
        inbox, orchestrator, settings, poll_interval=3600, on_outcome=lambda _o: seen.set()
    )
    runner = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(0.05)  # the loop is idle now, for an hour
    inbox.insert(NewDelivery("late", "workflow_job", _job_failure(examples, 3)))
    dispatcher.wake()
    await asyncio.wait_for(seen.wait(), 10)
    dispatcher.stop()
    await asyncio.wait_for(runner, 10)
    assert inbox.counts()[DISPATCHED] == 1


async def test_clean_shutdown_releases_what_it_could_not_finish(
    store: Store, settings: Settings, examples: Path
) -> None:
    inbox = _insert(store, [("stuck", "workflow_job", _job_failure(examples, 1))])
    started = asyncio.Event()

    async def hangs(_t: str, _p: dict[str, Any], _k: str) -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    dispatcher = Dispatcher(inbox, hangs, settings, poll_interval=0.01)
    runner = asyncio.create_task(dispatcher.run(grace_seconds=0.1))
    await asyncio.wait_for(started.wait(), 10)
    dispatcher.stop()
    await asyncio.wait_for(runner, 10)
    row = inbox.get("stuck")
    assert row is not None
    assert (row["status"], row["attempts"], row["claimed_by"]) == (PENDING, 0, None)


def test_two_dispatchers_on_one_sqlite_inbox_never_double_dispatch(
    tmp_path: Path, settings: Settings, examples: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    setup = Store(url)
    setup.migrate()
    total = 120
    # Distinct runs so that each delivery has its own key: a double dispatch would show.
    Inbox(setup).insert_many(
        [
            NewDelivery(f"d{n}", "workflow_job", _job_failure(examples, 1000 + n))
            for n in range(total)
        ]
    )
    orchestrator = IdempotentOrchestrator()
    by_worker: dict[str, int] = {}

    def run_dispatcher(name: str) -> None:
        own = Store(url)  # separate engine and connections, like another process

        async def main() -> None:
            dispatcher = Dispatcher(
                Inbox(own), orchestrator, settings, worker_id=name, batch_size=5, concurrency=4
            )
            while True:
                outcomes = await dispatcher.run_once()
                if not outcomes:
                    return
                by_worker[name] = by_worker.get(name, 0) + len(outcomes)

        asyncio.run(main())
        own.dispose()

    threads = [threading.Thread(target=run_dispatcher, args=(n,)) for n in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sum(by_worker.values()) == total
    assert len(orchestrator.calls) == total  # every delivery triggered exactly once
    assert len(set(orchestrator.calls)) == total
    assert Inbox(setup).counts()[DISPATCHED] == total
    setup.dispose()


@pytest.mark.parametrize("attempts", [8])
async def test_poison_delivery_is_given_up(store: Store, settings: Settings, attempts: int) -> None:
    inbox = Inbox(store, lease_seconds=0.01, max_attempts=5, max_claims=7)
    inbox.insert(NewDelivery("poison", "workflow_job", "{}"))
    for _ in range(attempts - 1):  # dispatchers that died while holding it
        inbox.claim("dying", 1)
        await asyncio.sleep(0.02)
    orchestrator = IdempotentOrchestrator()
    (outcome,) = await Dispatcher(inbox, orchestrator, settings).run_once()
    assert outcome.status == FAILED
    assert "gave up after 7 attempts" in (outcome.error or "")
    assert orchestrator.calls == []


async def test_more_crashed_claims_than_error_retries_still_dispatch(
    store: Store, settings: Settings
) -> None:
    # Five dispatchers killed while holding the delivery, more than the error retries (5):
    # the acknowledged delivery is still dispatched by the sixth.
    inbox = Inbox(store, lease_seconds=0.01, max_attempts=5)
    inbox.insert(NewDelivery("survivor", "workflow_job", "{}"))
    for _ in range(5):
        inbox.claim("killed", 1)
        await asyncio.sleep(0.02)
    orchestrator = IdempotentOrchestrator()
    (outcome,) = await Dispatcher(inbox, orchestrator, settings).run_once()
    assert outcome.status != FAILED
    assert "gave up" not in (outcome.error or "")


class WarmingOrchestrator(IdempotentOrchestrator):
    """A trigger with warm_up(), like the orchestrator's (imports, server, clients)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.events: list[str] = []

    async def warm_up(self) -> None:
        self.events.append("warm-up")
        if self.fail:
            raise RuntimeError("Prefect server unreachable")

    async def __call__(self, workflow_type: str, parameters: dict[str, Any], key: str) -> str:
        self.events.append("trigger")
        return await super().__call__(workflow_type, parameters, key)


@pytest.mark.parametrize("fail", [False, True])
async def test_the_trigger_warms_up_before_the_first_claim(
    store: Store, settings: Settings, examples: Path, fail: bool
) -> None:
    inbox = _insert(store, [("d1", "workflow_job", _job_failure(examples, 31))])
    orchestrator = WarmingOrchestrator(fail=fail)
    dispatcher = Dispatcher(inbox, orchestrator, settings, poll_interval=0.01)
    runner = asyncio.create_task(dispatcher.run())
    for _ in range(500):
        if inbox.counts()[DISPATCHED] == 1:
            break
        await asyncio.sleep(0.01)
    dispatcher.stop()
    await asyncio.wait_for(runner, 30)
    # warmed first; a failed warm-up is logged and dispatching goes on
    assert orchestrator.events == ["warm-up", "trigger"]
    assert inbox.counts()[DISPATCHED] == 1
