"""The durable inbox of webhook deliveries: the store's `deliveries` table (its SQL and
values live in `contexten.store.inbox`, re-exported here) and `InboxWriter`, which
group-commits a process's inbox writes (the receiver's inserts, the dispatcher's claims
and settlements) from one thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contexten.store.inbox import (
    CLAIMED,
    DISPATCHED,
    FAILED,
    IGNORED,
    MAX_ERROR_CHARS,
    PENDING,
    STATUSES,
    BatchResult,
    ClaimRequest,
    Inbox,
    InboxError,
    InboxItem,
    NewDelivery,
    Settlement,
)

__all__ = [
    "CLAIMED",
    "DISPATCHED",
    "FAILED",
    "IGNORED",
    "MAX_ERROR_CHARS",
    "PENDING",
    "STATUSES",
    "BatchResult",
    "ClaimRequest",
    "Inbox",
    "InboxError",
    "InboxItem",
    "InboxWriter",
    "NewDelivery",
    "Settlement",
]

logger = logging.getLogger("contexten.events.inbox")

_Write = NewDelivery | Settlement | ClaimRequest


@dataclass(frozen=True, slots=True)
class _Job:
    write: _Write
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class InboxWriter:
    """Group commit: one thread writes what is queued in batches, one commit per batch.

    The receiver's inserts and, when a dispatcher runs in the same process, its claims and
    settlements all go through here: one connection writes, so no two transactions of the
    process wait on each other's lock (SQLite's busy handler sleeps milliseconds at a time),
    and under load many requests share one commit. Each caller awaits its own result, set
    only after the commit, so a 2xx still means "on disk". At low load a batch is a single
    write and costs one commit, as before. The event loop never runs SQL: it only queues.
    """

    def __init__(self, inbox: Inbox, *, max_batch: int = 256) -> None:
        self.inbox = inbox
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._failed_batches = 0

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.alive:
            return
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def enqueue(self, write: _Write) -> asyncio.Future[Any]:
        """Queue one write; its future resolves after the commit (InboxError if it failed)."""
        if not self.alive:
            raise InboxError("the inbox writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Job(write, loop, future))
        return future

    async def submit(self, item: NewDelivery) -> bool:
        """True when recorded now, False for a duplicate; InboxError when it failed."""
        return bool(await self.enqueue(item))

    async def settle(self, settlement: Settlement) -> bool:
        """Apply a settlement; False when the claim was lost."""
        return bool(await self.enqueue(settlement))

    async def claim(self, worker: str, limit: int) -> list[InboxItem]:
        result: list[InboxItem] = await self.enqueue(ClaimRequest(worker, limit))
        return result

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._write(batch)

    def _write(self, batch: list[_Job]) -> None:
        inserts: list[tuple[_Job, NewDelivery]] = []
        settlements: list[tuple[_Job, Settlement]] = []
        claims: list[tuple[_Job, ClaimRequest]] = []
        for job in batch:
            write = job.write
            if isinstance(write, NewDelivery):
                inserts.append((job, write))
            elif isinstance(write, Settlement):
                settlements.append((job, write))
            else:
                claims.append((job, write))
        outcomes: list[tuple[_Job, Any]]
        try:
            result = self.inbox.write_batch(
                [write for _, write in inserts],
                [write for _, write in settlements],
                [write for _, write in claims],
            )
            outcomes = [
                *zip((job for job, _ in inserts), result.inserted, strict=True),
                *zip((job for job, _ in settlements), result.settled, strict=True),
                *zip((job for job, _ in claims), result.claimed, strict=True),
            ]
        except Exception as exc:
            self._failed_batches += 1
            logger.debug("inbox batch of %d failed (%s): one by one", len(batch), exc)
            # One bad write must not fail the others: each in its own transaction.
            outcomes = [(job, self._write_one(job.write)) for job in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]]
        by_loop = defaultdict(list)
        for job, outcome in outcomes:
            by_loop[job.loop].append((job.future, outcome))
        for loop, results in by_loop.items():  # one wake-up of each loop per batch
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_resolve_all, results)

    def _write_one(self, write: _Write) -> Any:
        try:
            if isinstance(write, NewDelivery):
                return self.inbox.insert(write)
            if isinstance(write, Settlement):
                return self.inbox.settle(write)
            return self.inbox.claim(write.worker, write.limit)
        except Exception as exc:
            return exc


def _resolve_all(results: Sequence[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in results:
        if future.done():  # the caller gave up (cancelled)
            continue
        if isinstance(result, BaseException):
            error = result if isinstance(result, InboxError) else InboxError(str(result))
            future.set_exception(error)
        else:
            future.set_result(result)
