"""What an unauthenticated client can make the receiver hold: refused unread, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from intake_helpers import signed_headers

from contexten.config import Settings
from contexten.events.limits import (
    BodyBudget,
    BudgetExhausted,
    header_limited_protocol,
    uvicorn_limits,
)
from contexten.events.receiver import create_app
from contexten.events.signature import well_formed
from contexten.store.db import Store

BODY = json.dumps({"action": "completed", "workflow_job": {"id": 1}}).encode()


async def _call(app: Any, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], int]:
    """One request through the ASGI app; returns (status, headers, body chunks it read)."""
    reads = 0
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads > len(chunks):
            await asyncio.sleep(3600)  # a client that never finishes sending
        return {
            "type": "http.request",
            "body": chunks[reads - 1],
            "more_body": reads < len(chunks),
        }

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhook",
        "raw_path": b"/webhook",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8787),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    answer = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], answer, reads


@pytest.fixture
def app(settings: Settings, store: Store) -> Iterator[Any]:
    application = create_app(settings, store)
    with TestClient(application):  # runs the lifespan (the inbox writer)
        yield application


def _headers(body: bytes, **changes: str | None) -> dict[str, str]:
    headers = signed_headers(body, event="workflow_job", delivery="d-1")
    headers["Content-Length"] = str(len(body))
    for name, value in changes.items():
        header = name.replace("_", "-")
        if value is None:
            headers.pop(header)
        else:
            headers[header] = value
    return headers


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha1=" + "0" * 40, "sha256=xyz", "sha256=" + "0" * 63, "0" * 64],
    ids=["absent", "empty", "sha1", "not hex", "short", "no prefix"],
)
def test_a_request_without_a_signature_is_refused_before_its_body_is_read(
    app: Any, signature: str | None
) -> None:
    big = b"x" * 50_000
    headers = _headers(big, X_Hub_Signature_256=signature)
    status, answer, reads = asyncio.run(_call(app, headers, big))
    assert status == 401
    assert reads == 0  # not one chunk of the body was taken from the connection
    assert answer["connection"] == "close"
    assert app.state.body_budget.peak == 0


def test_an_oversized_declared_body_is_refused_unread(app: Any, settings: Settings) -> None:
    big = b"x" * (settings.webhook_max_body_bytes + 1)
    status, answer, reads = asyncio.run(_call(app, _headers(big), big))
    assert status == 413 and reads == 0 and answer["connection"] == "close"


def test_a_signed_request_is_read_and_accepted(app: Any) -> None:
    status, _answer, reads = asyncio.run(_call(app, _headers(BODY), BODY))
    assert status == 202 and reads == 1
    assert app.state.body_budget.peak == len(BODY)
    assert app.state.body_budget.used == 0  # released after the answer


def test_a_wrong_signature_is_read_then_refused_and_its_budget_released(app: Any) -> None:
    headers = _headers(BODY, X_Hub_Signature_256="sha256=" + "0" * 64)
    status, _answer, reads = asyncio.run(_call(app, headers, BODY))
    assert status == 401 and reads == 1
    assert app.state.body_budget.used == 0


def test_when_the_budget_is_full_a_request_waits_then_is_answered_503(app: Any) -> None:
    budget: BodyBudget = app.state.body_budget
    budget.wait_seconds = 0.05

    async def scenario() -> tuple[int, dict[str, str], int]:
        async with budget.reserve(budget.total):  # other requests fill the budget
            return await _call(app, _headers(BODY), BODY)

    status, answer, reads = asyncio.run(scenario())
    assert status == 503 and reads == 0
    assert answer["retry-after"] == "10" and answer["connection"] == "close"
    assert budget.used == 0


def test_body_budget_admits_up_to_its_total_and_wakes_a_waiter() -> None:
    async def scenario() -> list[str]:
        budget = BodyBudget(100, wait_seconds=5)
        events: list[str] = []
        release = asyncio.Event()

        async def holder(name: str, size: int) -> None:
            async with budget.reserve(size):
                events.append(f"{name} in ({budget.used})")
                await release.wait()
            events.append(f"{name} out")

        first = asyncio.create_task(holder("a", 60))
        await asyncio.sleep(0)
        second = asyncio.create_task(holder("b", 60))  # 60 + 60 > 100: waits
        for _ in range(5):
            await asyncio.sleep(0)
        events.append(f"peak {budget.peak}")
        release.set()
        await asyncio.gather(first, second)
        assert budget.used == 0 and budget.peak == 60
        return events

    events = asyncio.run(scenario())
    assert events[:2] == ["a in (60)", "peak 60"]
    assert events.index("a out") < events.index("b in (60)")


def test_body_budget_gives_up_after_its_wait() -> None:
    async def scenario() -> None:
        budget = BodyBudget(10, wait_seconds=0.01)
        async with budget.reserve(10):
            with pytest.raises(BudgetExhausted, match="10 of 10 body bytes"):
                async with budget.reserve(1):
                    pass
        assert budget.used == 0

    asyncio.run(scenario())


def test_a_body_larger_than_the_budget_is_capped_to_it_not_refused_forever() -> None:
    async def scenario() -> int:
        budget = BodyBudget(10, wait_seconds=0.01)
        async with budget.reserve(1_000):
            return budget.used

    assert asyncio.run(scenario()) == 10


def test_signature_format_check() -> None:
    assert well_formed("sha256=" + "a" * 64) and well_formed("sha256=" + "A" * 64)
    assert not well_formed(None) and not well_formed("sha256=" + "g" * 64)


# ----------------------------------------------------------------------------- uvicorn


def test_uvicorn_limits_come_from_the_settings(settings: Settings) -> None:
    limited = settings.model_copy(
        update={"webhook_max_connections": 7, "webhook_max_header_bytes": 2048}
    )
    options = uvicorn_limits(limited)
    assert options["limit_concurrency"] == 7
    assert options["h11_max_incomplete_event_size"] == 2048
    protocol = options["http"]
    assert protocol is not None and getattr(protocol, "limit", None) == 2048


def _serve(app: Any, max_header_bytes: int) -> tuple[int, Any, threading.Thread]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    protocol = header_limited_protocol(max_header_bytes)
    assert protocol is not None
    config = uvicorn.Config(app, http=protocol, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    return sock.getsockname()[1], server, thread


def _raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        # the server may answer and close while we are still sending
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(head)
        answer = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    return answer


def test_an_oversized_request_head_is_answered_431_and_closed() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    port, server, thread = _serve(app, 4096)
    try:
        small = (
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 1000 + b"\r\nConnection: close\r\n\r\n"
        )
        assert _raw_request(port, small).startswith(b"HTTP/1.1 200")
        # one header with no end in sight: refused once the head passes the limit
        endless = b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 200_000
        assert _raw_request(port, endless).startswith(b"HTTP/1.1 431")
        many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(2000))
        assert _raw_request(port, many + b"\r\n").startswith(b"HTTP/1.1 431")
    finally:
        server.should_exit = True
        thread.join(10)
