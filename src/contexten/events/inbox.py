"""The durable inbox of webhook deliveries: the store's `deliveries` table (its SQL and
values live in `contexten.store.inbox`, re-exported here) and `InboxWriter`, which
group-commits the receiver's inserts from one thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading

from contexten.store.inbox import (
    CLAIMED,
    DISPATCHED,
    FAILED,
    IGNORED,
    MAX_ERROR_CHARS,
    PENDING,
    STATUSES,
    Inbox,
    InboxError,
    InboxItem,
    NewDelivery,
)

__all__ = [
    "CLAIMED",
    "DISPATCHED",
    "FAILED",
    "IGNORED",
    "MAX_ERROR_CHARS",
    "PENDING",
    "STATUSES",
    "Inbox",
    "InboxError",
    "InboxItem",
    "InboxWriter",
    "NewDelivery",
]

_Job = tuple[NewDelivery, asyncio.AbstractEventLoop, "asyncio.Future[bool]"]


class InboxWriter:
    """Group commit: one thread writes queued deliveries in batches, one commit per batch.

    Each request awaits its own result, which is set only after the commit, so a 2xx still
    means "on disk". Under load many requests share one commit (the throughput win); at
    low load a batch is a single row and costs one commit, as before.
    """

    def __init__(self, inbox: Inbox, *, max_batch: int = 256) -> None:
        self.inbox = inbox
        self.max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
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

    async def submit(self, item: NewDelivery) -> bool:
        """True when recorded now, False for a duplicate; InboxError when it failed."""
        if not self.alive:
            raise InboxError("the inbox writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put((item, loop, future))
        return await future

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
        try:
            results: list[bool | BaseException] = list(
                self.inbox.insert_many([job[0] for job in batch])
            )
        except Exception:
            self._failed_batches += 1
            # One bad row must not fail the others: retry one by one.
            results = []
            for job in batch:
                try:
                    results.append(self.inbox.insert(job[0]))
                except Exception as exc:
                    results.append(exc)
        for (_, loop, future), result in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_resolve, future, result)


def _resolve(future: asyncio.Future[bool], result: bool | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        error = result if isinstance(result, InboxError) else InboxError(str(result))
        future.set_exception(error)
    else:
        future.set_result(result)
