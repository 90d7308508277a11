"""The dispatcher: claims inbox rows, routes them, and triggers workflow runs.

`trigger(workflow_type, parameters, idempotency_key) -> run id` is given to it (in the
product, `PrefectOrchestrator.trigger_workflow`). Every route is triggered under a key
derived from the delivery (`github-delivery:<delivery id>:<workflow type>`) or from the
rule's `key` template, so if the process dies between triggering and marking the row,
the next claim triggers again with the same key and the orchestrator returns the run it
already started: nothing is dispatched twice.

Several dispatchers (threads, processes or hosts) may share one inbox: claims are atomic
(see `inbox`). At most `concurrency` deliveries are in flight per dispatcher.

A trigger with a `sweep()` coroutine (the orchestrator's) is also asked, when the
dispatcher starts and every `sweep_interval` seconds (half EXECUTION_LEASE_SECONDS, at
most 30), to take over the runs whose process
died (their lease expired): a run already acknowledged as dispatched is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from contexten.analysis.backoff import exponential_backoff
from contexten.config import Settings
from contexten.events.inbox import (
    CLAIMED,
    DISPATCHED,
    FAILED,
    IGNORED,
    Inbox,
    InboxError,
    InboxItem,
    InboxWriter,
    Settlement,
)
from contexten.events.routing import Route, RoutingError, RoutingRule, load_rules, route
from contexten.orchestration.workflows import WorkflowParameterError

logger = logging.getLogger("contexten.events.dispatcher")

Trigger = Callable[[str, dict[str, Any], str], Awaitable[str]]
Sweep = Callable[[], Awaitable[int]]

MAX_RETRY_DELAY_SECONDS = 3600.0
WARM_UP_SECONDS = 120.0

_loads: Callable[[str], Any] = json.loads
try:  # orjson (a Prefect dependency) parses the stored payloads several times faster
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    pass


@dataclass(frozen=True, slots=True)
class DispatchOutcome:
    """What happened to one claimed delivery."""

    delivery_id: str
    event: str
    status: str  # dispatched | ignored | failed | pending (will retry) | lost (lease lost)
    workflow_types: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class DispatcherStats:
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, status: str) -> None:
        self.outcomes[status] = self.outcomes.get(status, 0) + 1


def idempotency_key(delivery_id: str, selected: Route) -> str:
    """The key a route is triggered under (stable across re-claims of the delivery)."""
    return selected.key or f"github-delivery:{delivery_id}:{selected.workflow_type}"


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


class Dispatcher:
    """Turns inbox rows into workflow runs, with bounded concurrency and clean shutdown."""

    def __init__(
        self,
        inbox: Inbox,
        trigger: Trigger,
        settings: Settings,
        *,
        rules: Sequence[RoutingRule] | None = None,
        worker_id: str | None = None,
        concurrency: int | None = None,
        batch_size: int = 20,
        poll_interval: float = 1.0,
        trigger_timeout: float = 120.0,
        retry_delay: float | None = None,
        retention: timedelta | None = timedelta(days=14),
        wake_delay: float = 0.02,
        on_outcome: Callable[[DispatchOutcome], None] | None = None,
        sweep: Sweep | None = None,
        sweep_interval: float | None = None,
        writer: InboxWriter | None = None,
    ) -> None:
        self.inbox = inbox
        # Claims and settlements go through a group-committing writer thread: the
        # receiver's when both run in one process (it sets this), else run() starts one.
        self.writer = writer
        self.trigger = trigger
        self.settings = settings
        self.rules = list(rules) if rules is not None else load_rules()
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = max(1, concurrency or settings.max_concurrent_workflows)
        self.batch_size = max(1, batch_size)
        self.poll_interval = poll_interval
        self.trigger_timeout = trigger_timeout
        delay = settings.workflow_retry_delay if retry_delay is None else retry_delay
        self.retry_delay = float(delay)
        self.retention = retention
        self.wake_delay = wake_delay
        self.on_outcome = on_outcome
        self.stats = DispatcherStats()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[DispatchOutcome]] = set()
        # Rows whose trigger has not returned yet: `concurrency` bounds these. A row being
        # settled (one write, batched with others) no longer holds a slot.
        self._slots: set[int] = set()
        self._last_purge = 0.0
        self.sweep = sweep if sweep is not None else getattr(trigger, "sweep", None)
        # half a run lease (at most 30 s): a dead run is taken over soon after its lease ends
        self.sweep_interval = (
            sweep_interval
            if sweep_interval is not None
            else min(30.0, max(1.0, settings.execution_lease_seconds / 2))
        )
        self._last_sweep: float | None = None
        self._sweeping: asyncio.Task[None] | None = None
        self.taken_over = 0

    # ----- control -----
    def wake(self) -> None:
        """Look at the inbox now (called by the receiver after recording a delivery)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; `run` returns after the deliveries in flight are settled."""
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # ----- the loop -----
    async def run(self, *, grace_seconds: float = 30.0) -> None:
        """Claim and dispatch until stop(); then wait up to grace_seconds for work in flight.

        Deliveries still in flight after the grace period are cancelled and their claims
        released, so another dispatcher takes them at once (their keys keep it safe).
        """
        await self._warm_up()
        logger.info("dispatcher %s started (concurrency %d)", self.worker_id, self.concurrency)
        own_writer = None
        if self.writer is None:
            own_writer = self.writer = InboxWriter(self.inbox)
            own_writer.start()
        try:
            while not self._stopping.is_set():
                claimed = await self._fill()
                await self._maybe_purge()
                self._maybe_sweep()
                if claimed:
                    continue
                if len(self._slots) >= self.concurrency:
                    await self._wait_for_slot()  # busy: go on the moment a slot frees
                    continue
                await self._idle()
        finally:
            if self._sweeping is not None and not self._sweeping.done():
                self._sweeping.cancel()
                await asyncio.gather(self._sweeping, return_exceptions=True)
            await self._drain(grace_seconds)
            if own_writer is not None:
                await asyncio.to_thread(own_writer.stop)
                self.writer = None
            logger.info("dispatcher %s stopped", self.worker_id)

    async def _warm_up(self) -> None:
        """Let a trigger with `warm_up()` (the orchestrator's) get ready before the first
        claim, so the first deliveries do not wait for imports and connections."""
        warm_up = getattr(self.trigger, "warm_up", None)
        if warm_up is None:
            return
        try:
            await asyncio.wait_for(warm_up(), WARM_UP_SECONDS)
        except Exception as exc:  # the first run will find out again, and say why
            logger.warning("trigger warm-up failed: %s", _describe(exc))

    async def run_once(self) -> list[DispatchOutcome]:
        """Claim one batch and settle it (for tests, scripts and `contexten gha`-like use)."""
        items = await self._claim(self.batch_size)
        semaphore = asyncio.Semaphore(self.concurrency)

        async def bounded(item: InboxItem) -> DispatchOutcome:
            async with semaphore:
                return await self.handle(item)

        return list(await asyncio.gather(*(bounded(item) for item in items)))

    async def _claim(self, limit: int) -> list[InboxItem]:
        writer = self.writer
        try:
            if writer is not None and writer.alive:
                items = await writer.claim(self.worker_id, limit)
            else:
                items = await asyncio.to_thread(self.inbox.claim, self.worker_id, limit)
        except InboxError as exc:
            logger.error("dispatcher cannot claim deliveries: %s", exc)
            return []
        self.stats.claimed += len(items)
        return items

    async def _fill(self) -> int:
        free = self.concurrency - len(self._slots)
        if free <= 0:
            return 0
        items = await self._claim(min(free, self.batch_size))
        for item in items:
            self._slots.add(item.id)
            task = asyncio.create_task(self.handle(item), name=f"dispatch-{item.delivery_id}")
            self._in_flight.add(task)
            task.add_done_callback(functools.partial(self._finished, item.id))
        return len(items)

    def _free_slot(self, item_id: int) -> None:
        if item_id in self._slots:
            self._slots.discard(item_id)
            self._wake.set()

    def _finished(self, item_id: int, task: asyncio.Task[DispatchOutcome]) -> None:
        self._in_flight.discard(task)
        self._free_slot(item_id)

    async def _wait_for_slot(self) -> None:
        self._wake.clear()
        if self._stopping.is_set() or len(self._slots) < self.concurrency:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _idle(self) -> None:
        self._wake.clear()
        if self._stopping.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        if self.wake_delay > 0 and not self._stopping.is_set():
            # Let a burst of deliveries gather so one claim takes many rows: fewer write
            # transactions competing with the receiver's inserts.
            await asyncio.sleep(self.wake_delay)

    async def _drain(self, grace_seconds: float) -> None:
        if not self._in_flight:
            return
        pending = set(self._in_flight)
        _done, late = await asyncio.wait(pending, timeout=grace_seconds)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)

    async def _maybe_purge(self) -> None:
        if self.retention is None or time.monotonic() - self._last_purge < 3600:
            return
        self._last_purge = time.monotonic()
        try:
            removed = await asyncio.to_thread(self.inbox.purge_finished, self.retention)
        except Exception as exc:  # housekeeping must never stop dispatching
            logger.warning("inbox purge failed: %s", _describe(exc))
            return
        if removed:
            logger.info("purged %d settled deliveries older than %s", removed, self.retention)

    def _maybe_sweep(self) -> None:
        """Start a sweep for dead processes' runs (at start, then every sweep_interval)."""
        if self.sweep is None or (self._sweeping is not None and not self._sweeping.done()):
            return
        now = time.monotonic()
        if self._last_sweep is not None and now - self._last_sweep < self.sweep_interval:
            return
        self._last_sweep = now
        self._sweeping = asyncio.create_task(self._sweep_once(self.sweep), name="sweep")

    async def _sweep_once(self, sweep: Sweep) -> None:
        try:
            taken = await sweep()
        except Exception as exc:  # housekeeping must never stop dispatching
            logger.warning("sweep for runs of dead processes failed: %s", _describe(exc))
            return
        if taken:
            self.taken_over += taken
            logger.warning("took over %d run(s) whose process died", taken)

    # ----- one delivery -----
    async def handle(self, item: InboxItem) -> DispatchOutcome:
        """Route and trigger one claimed delivery, then settle its row."""
        try:
            outcome = await self._handle(item)
        except asyncio.CancelledError:
            await asyncio.shield(self._apply(self.inbox.released(item)))
            raise
        self.stats.add(outcome.status)
        log = logger.warning if outcome.status in (FAILED, "pending") else logger.info
        log(
            "delivery %s (%s): %s%s%s",
            outcome.delivery_id,
            outcome.event,
            outcome.status,
            f" -> {', '.join(outcome.workflow_types)}" if outcome.workflow_types else "",
            f" ({outcome.error})" if outcome.error else "",
        )
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    async def _apply(self, settlement: Settlement) -> bool:
        """Settle a row (in the writer's next commit, or on a worker thread); False if lost."""
        writer = self.writer
        if writer is not None and writer.alive:
            return await writer.settle(settlement)
        return await asyncio.to_thread(self.inbox.settle, settlement)

    async def _settle(
        self, item: InboxItem, outcome: DispatchOutcome, *, retry_in: float | None = None
    ) -> DispatchOutcome:
        self._free_slot(item.id)  # its trigger is done: the next row may start meanwhile
        inbox = self.inbox
        if outcome.status == DISPATCHED:
            settlement = inbox.dispatched(item, outcome.workflow_types, outcome.run_ids)
        elif outcome.status == IGNORED:
            settlement = inbox.ignored(item, outcome.error or "")
        else:
            settlement = inbox.failed(item, outcome.error or "failed", retry_in=retry_in)
        try:
            status = settlement.settled if await self._apply(settlement) else CLAIMED
        except InboxError as exc:
            # The lease will expire and the row be claimed again; the key keeps it safe.
            logger.error("delivery %s: cannot record outcome: %s", item.delivery_id, exc)
            status = CLAIMED
        return DispatchOutcome(
            item.delivery_id,
            item.event,
            "lost" if status == CLAIMED else status,
            outcome.workflow_types,
            outcome.run_ids,
            outcome.error,
        )

    async def _handle(self, item: InboxItem) -> DispatchOutcome:
        def result(status: str, error: str | None = None) -> DispatchOutcome:
            return DispatchOutcome(item.delivery_id, item.event, status, error=error)

        if item.attempts > self.inbox.max_claims:
            return await self._settle(
                item, result(FAILED, f"gave up after {item.attempts - 1} attempts")
            )
        try:
            payload = _loads(item.payload)
        except (ValueError, RecursionError):
            return await self._settle(item, result(FAILED, "stored payload is not valid JSON"))
        try:
            routes = route(item.event, payload, self.rules, self.settings)
        except RoutingError as exc:
            return await self._settle(item, result(FAILED, str(exc)))
        if not routes:
            return await self._settle(item, result(IGNORED, "no routing rule matched"))
        run_ids: list[str] = []
        for selected in routes:
            key = idempotency_key(item.delivery_id, selected)
            try:
                run_id = await asyncio.wait_for(
                    self.trigger(selected.workflow_type, dict(selected.parameters), key),
                    self.trigger_timeout,
                )
            except WorkflowParameterError as exc:
                return await self._settle(item, result(FAILED, str(exc)))
            except Exception as exc:
                delay = exponential_backoff(
                    item.attempts, self.retry_delay, MAX_RETRY_DELAY_SECONDS
                )
                error = f"trigger {selected.workflow_type} failed: {_describe(exc)}"
                return await self._settle(item, result(FAILED, error), retry_in=delay)
            run_ids.append(str(run_id))
        outcome = DispatchOutcome(
            item.delivery_id,
            item.event,
            DISPATCHED,
            tuple(r.workflow_type for r in routes),
            tuple(run_ids),
        )
        return await self._settle(item, outcome)
