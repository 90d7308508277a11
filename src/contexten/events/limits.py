"""Bounds on what one client can make the receiver hold in memory.

- `BodyBudget`: the bytes of request bodies being buffered at once, across requests. A
  request reserves its declared Content-Length (or the body limit when chunked) before it
  reads a byte, and waits for room, or is answered 503 after `wait_seconds`.
- `uvicorn_limits`: the server options that bound the rest: the number of connections and
  tasks (`limit_concurrency`, beyond it uvicorn answers 503) and the size of the request
  line and headers (431 with httptools through `header_limited_protocol`; h11 enforces
  `h11_max_incomplete_event_size` itself).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from contexten.config import Settings


class BudgetExhausted(Exception):
    """No room for another body within the wait: the sender should try again later."""


class BodyBudget:
    """An asynchronous byte budget (one event loop) shared by the requests being read.

    Requests that find room take it at once (no lock, no timer: the common case costs a
    comparison); the others wait in arrival order, woken as bytes are given back.
    """

    def __init__(self, total_bytes: int, *, wait_seconds: float = 10.0) -> None:
        if total_bytes < 1:
            raise ValueError("total_bytes must be at least 1")
        self.total = total_bytes
        self.wait_seconds = wait_seconds
        self.used = 0
        self.peak = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @asynccontextmanager
    async def reserve(self, size: int) -> AsyncIterator[None]:
        """Hold `size` bytes (capped at the total) while the body is read and checked."""
        size = max(0, min(size, self.total))
        if self._waiters or self.used + size > self.total:
            await self._wait_for_room(size)  # counts the bytes as used once admitted
        else:
            self.used += size
        self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            self.used -= size
            self._admit()

    async def _wait_for_room(self, size: int) -> None:
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, admitted)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await admitted
        except TimeoutError:
            if _granted(admitted):
                return  # admitted just as the wait ran out: the bytes are ours
            raise BudgetExhausted(
                f"{self.used} of {self.total} body bytes are being read"
            ) from None
        except BaseException:  # cancelled (the client went away) after all
            if _granted(admitted):
                self.used -= size
                self._admit()
            raise
        finally:
            if not _granted(admitted):
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
                self._admit()  # a smaller request behind this one may fit now

    def _admit(self) -> None:
        """Admit waiters, oldest first, while they fit."""
        while self._waiters and self.used + self._waiters[0][0] <= self.total:
            size, admitted = self._waiters.popleft()
            if not admitted.done():
                self.used += size
                admitted.set_result(None)


def _granted(admitted: asyncio.Future[None]) -> bool:
    return admitted.done() and not admitted.cancelled()


def header_limited_protocol(max_header_bytes: int) -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol answering 431 when a request's head grows past the limit.

    httptools keeps a header it has not seen the end of in its own buffer, so the bytes
    are counted as they arrive, chunk by chunk, until the head is complete. None when
    httptools is not installed (use h11 and its own limit).
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools ships with uvicorn[standard]
        return None

    class HeadTooLarge(Exception):
        pass

    class HeaderLimitedHttpToolsProtocol(HttpToolsProtocol):
        limit = max_header_bytes

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._streamed = 0  # bytes received while the head was incomplete
            self._parsed = 0  # bytes of request line and headers parsed
            self._in_head = True
            self._too_large = False
            super().connection_made(transport)

        def on_message_begin(self) -> None:
            self._streamed = self._parsed = 0
            self._in_head = True
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._parsed += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._parsed += len(name) + len(value) + 4
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            if self._parsed > self.limit:  # a whole head in one read: stop before the app
                self._too_large = True
                raise HeadTooLarge
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._in_head or self.transport.is_closing():
                return
            self._streamed += len(data)
            if self._streamed > self.limit:  # a head still growing: do not wait for its end
                self._too_large = True
                self.send_400_response("")

        def send_400_response(self, msg: str) -> None:
            if not self._too_large:
                super().send_400_response(msg)
                return
            self._in_head = False
            self.logger.warning("request head over %d bytes: answered 431", self.limit)
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: text/plain; charset=utf-8\r\n"
                b"content-length: 31\r\n"
                b"connection: close\r\n\r\n"
                b"Request Header Fields Too Large"
            )
            self.transport.close()

    return HeaderLimitedHttpToolsProtocol


def uvicorn_limits(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.Config bounding connections and request heads."""
    options: dict[str, Any] = {
        "limit_concurrency": settings.webhook_max_connections,
        "h11_max_incomplete_event_size": settings.webhook_max_header_bytes,
    }
    protocol = header_limited_protocol(settings.webhook_max_header_bytes)
    options["http"] = protocol if protocol is not None else "h11"
    return options
