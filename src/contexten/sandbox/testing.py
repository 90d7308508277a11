"""Helpers for tests that use the sandbox: a running server, a fake clock, a fast policy.

    # conftest.py
    from contexten.sandbox.testing import running_sandbox

    @pytest.fixture(scope="session")
    def sandbox():
        with running_sandbox() as server:
            yield server

Tests that change faults or seed state should undo it (`server.faults[name].clear()`), or
use their own `running_sandbox()`; starting one takes well under a second.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from contexten.integrations.http import RetryPolicy
from contexten.sandbox.server import SandboxServer, serve_asgi
from contexten.sandbox.state import SERVICES, SandboxState


@contextmanager
def running_sandbox(
    *,
    services: tuple[str, ...] = SERVICES,
    seed_demo: bool = False,
    fault_seed: int = 0,
    state: SandboxState | None = None,
) -> Iterator[SandboxServer]:
    """A started SandboxServer on ephemeral ports; stopped on exit."""
    server = SandboxServer(state, services=services, fault_seed=fault_seed, seed_demo=seed_demo)
    with server:
        yield server


class ManualClock:
    """A clock that only moves when something sleeps on it: back-offs take no real time.

    `sleeps` records every requested wait, so tests can assert what was honoured.
    """

    def __init__(self, start_wall: float = 1_700_000_000.0) -> None:
        self.elapsed = 0.0
        self.start_wall = start_wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.elapsed

    def wall(self) -> float:
        return self.start_wall + self.elapsed

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += max(0.0, seconds)


def fast_policy(clock: ManualClock | None = None, **overrides: Any) -> RetryPolicy:
    """A RetryPolicy whose sleeps go to `clock` (a new ManualClock by default).

    The wall clock stays real unless overridden, because rate-limit reset headers from a
    running sandbox are real epoch seconds.
    """
    clock = clock or ManualClock()
    values: dict[str, Any] = {
        "max_attempts": 5,
        "base_delay": 0.5,
        "max_delay": 8.0,
        "max_total_seconds": 120.0,
        "timeout_seconds": 10.0,
        "sleep": clock.sleep,
        "monotonic": clock.monotonic,
        "rng": random.Random(0),
    }
    values.update(overrides)
    return RetryPolicy(**values)


class RecordingEndpoint:
    """An HTTP endpoint that records every request (e.g. webhook deliveries)."""

    def __init__(self, status: int = 202) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = status
        self.url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(
            {"method": scope["method"], "path": scope["path"], "headers": headers, "body": body}
        )
        reply = b"accepted"
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"8")],
            }
        )
        await send({"type": "http.response.body", "body": reply})


@contextmanager
def recording_endpoint(status: int = 202) -> Iterator[RecordingEndpoint]:
    """A RecordingEndpoint served on 127.0.0.1; its `.url` accepts any path."""
    endpoint = RecordingEndpoint(status)
    with serve_asgi(endpoint, name="recorder") as url:
        endpoint.url = url
        yield endpoint
