"""Fault injection for the sandbox services: errors, latency, rate limits, dropped connections.

One `FaultInjector` per service. `SandboxServer` wraps each service app with
`injector.wrap(app)` (an ASGI middleware), so a service app does not install it itself.
Rules match requests by method and a glob on the path (`fnmatch`, e.g. "*/rerun*"):

- `error_rate`: answer a 5xx before the handler runs (the request has no effect);
- `error_after_rate`: run the handler (the action takes effect), then answer a 502 —
  the client sees a failure although the action happened;
- `drop_rate`: run the handler, then close the connection mid-response (a dropped
  connection after the action took effect);
- `drop_before_rate`: close the connection before the handler runs;
- `late_rate`: the request completes after the client gave up: its body is read at once,
  then after `late_delay` seconds the handler runs (the action takes effect) and answers a
  client that, with a shorter timeout, is long gone ("completes after the client timed
  out": the client sees a timeout although the action happened, later);
- `latency`: added seconds before the handler runs;
- `rate_limit_burst`: the next N matching requests get the service's real rate-limit
  response (`rate_limit_style`: github_primary_403, github_primary_429,
  github_secondary_403, github_secondary_429, linear_400, linear_429, slack_429,
  codegen_429) with its real headers.

`log_url_ttl` is read by the GitHub sandbox: how long a redirect to a log lasts (GitHub:
one minute; a negative value makes every log URL expired on arrival), and
`expire_next_log_urls(n)` makes only the next n handed-out URLs expired. The RNG is
seeded, so a test's faults are the same on every run; `counts` says what was injected.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RateLimitStyle = Literal[
    "github_primary_403",
    "github_primary_429",
    "github_secondary_403",
    "github_secondary_429",
    "linear_400",
    "linear_429",
    "slack_429",
    "codegen_429",
]

DEFAULT_STYLE: dict[str, RateLimitStyle] = {
    "github": "github_primary_403",
    "linear": "linear_400",
    "slack": "slack_429",
    "codegen": "codegen_429",
}

DROP_MARKER = "contexten-sandbox-dropped-connection"


@dataclass
class FaultRule:
    """Faults for the requests matching `path` (glob) and `method` (None: any)."""

    path: str = "*"
    method: str | None = None
    error_rate: float = 0.0
    error_status: int = 502
    error_after_rate: float = 0.0
    drop_rate: float = 0.0
    drop_before_rate: float = 0.0
    late_rate: float = 0.0
    late_delay: float = 4.0
    latency: float = 0.0
    rate_limit_burst: int = 0
    rate_limit_style: RateLimitStyle | None = None
    rate_limit_wait: int = 2  # seconds until the limit resets / Retry-After
    times: int | None = None  # faults this rule may still inject (None: no limit)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)


@dataclass
class FaultInjector:
    """The faults of one service; thread-safe (the server runs in another thread)."""

    service: str = "github"
    seed: int | None = 0
    rules: list[FaultRule] = field(default_factory=list)
    log_url_ttl: float = 60.0
    expired_log_urls: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    clock: Callable[[], float] = field(default=time.time, repr=False)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    # ------------------------------------------------------------ configuration

    def add(self, rule: FaultRule | None = None, **kwargs: Any) -> FaultRule:
        """Add a rule (or build one from keyword arguments); returns it."""
        rule = rule or FaultRule(**kwargs)
        with self._lock:
            self.rules.append(rule)
        return rule

    def rate_limit(
        self,
        count: int = 1,
        *,
        style: RateLimitStyle | None = None,
        path: str = "*",
        method: str | None = None,
        wait: int = 2,
    ) -> FaultRule:
        """The next `count` matching requests are rate limited."""
        return self.add(
            FaultRule(
                path=path,
                method=method,
                rate_limit_burst=count,
                rate_limit_style=style,
                rate_limit_wait=wait,
            )
        )

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.counts.clear()
            self.log_url_ttl = 60.0
            self.expired_log_urls = 0

    def expire_next_log_urls(self, count: int = 1) -> None:
        with self._lock:
            self.expired_log_urls += count

    def log_url_lifetime(self) -> float:
        """Seconds the next log URL stays valid (negative: already expired)."""
        with self._lock:
            if self.expired_log_urls > 0:
                self.expired_log_urls -= 1
                self.counts["expired_log_url"] += 1
                return -60.0
            return self.log_url_ttl

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    # ------------------------------------------------------------ decisions

    def _decide(self, method: str, path: str) -> tuple[str, FaultRule | None, float]:
        """(action, rule, latency): action is one of none, rate_limit, error, drop_before,
        error_after, drop_after."""
        with self._lock:
            latency = 0.0
            for rule in self.rules:
                if not rule.matches(method, path):
                    continue
                latency += rule.latency
                if rule.rate_limit_burst > 0:
                    rule.rate_limit_burst -= 1
                    self.counts["rate_limit"] += 1
                    return "rate_limit", rule, latency
                if rule.times is not None and rule.times <= 0:
                    continue
                roll = self._rng.random()
                for action, rate in (
                    ("error", rule.error_rate),
                    ("drop_before", rule.drop_before_rate),
                    ("error_after", rule.error_after_rate),
                    ("drop_after", rule.drop_rate),
                    ("late", rule.late_rate),
                ):
                    if roll < rate:
                        self.counts[action] += 1
                        if rule.times is not None:
                            rule.times -= 1
                        return action, rule, latency
                    roll -= rate
            return "none", None, latency

    def rate_limit_response(
        self, style: RateLimitStyle | None, wait: int, path: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers and body of a rate-limited answer, as the real service sends it."""
        style = style or DEFAULT_STYLE.get(self.service, "github_primary_403")
        now = int(self.clock())
        reset = now + max(0, wait)
        json_type = (b"content-type", b"application/json; charset=utf-8")
        body: dict[str, Any]
        if style.startswith("github_primary"):
            status = 429 if style.endswith("429") else 403
            body = {
                "message": "API rate limit exceeded for installation ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                "status": str(status),
            }
            headers = [
                json_type,
                (b"x-ratelimit-limit", b"5000"),
                (b"x-ratelimit-remaining", b"0"),
                (b"x-ratelimit-used", b"5000"),
                (b"x-ratelimit-reset", str(reset).encode()),
                (b"x-ratelimit-resource", b"core"),
            ]
            return status, headers, json.dumps(body).encode()
        if style.startswith("github_secondary"):
            status = 429 if style.endswith("429") else 403
            body = {
                "message": "You have exceeded a secondary rate limit. Please wait a few "
                "minutes before you try again. If you reach out to GitHub Support for help, "
                "please include the request ID.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
                "status": str(status),
            }
            headers = [
                json_type,
                (b"retry-after", str(wait).encode()),
                (b"x-ratelimit-limit", b"5000"),
                (b"x-ratelimit-remaining", b"4990"),
                (b"x-ratelimit-used", b"10"),
                (b"x-ratelimit-reset", str(now + 3600).encode()),
                (b"x-ratelimit-resource", b"core"),
            ]
            return status, headers, json.dumps(body).encode()
        if style.startswith("linear"):
            status = 429 if style.endswith("429") else 400
            body = {
                "data": None,
                "errors": [
                    {
                        "message": "Rate limit exceeded",
                        "extensions": {
                            "code": "RATELIMITED",
                            "type": "ratelimited",
                            "statusCode": 429,
                            "userError": False,
                            "userPresentableMessage": (
                                "Rate limit exceeded. Please try again later."
                            ),
                        },
                    }
                ],
            }
            headers = [
                json_type,
                (b"x-ratelimit-requests-limit", b"5000"),
                (b"x-ratelimit-requests-remaining", b"0"),
                (b"x-ratelimit-requests-reset", str(reset * 1000).encode()),
            ]
            if status == 429:
                headers.append((b"retry-after", str(wait).encode()))
            return status, headers, json.dumps(body).encode()
        if style == "slack_429":
            headers = [(b"retry-after", str(wait).encode())]
            if path.startswith("/services/"):
                headers.append((b"content-type", b"text/plain; charset=utf-8"))
                return 429, headers, b"rate_limited"
            headers.append(json_type)
            return 429, headers, json.dumps({"ok": False, "error": "ratelimited"}).encode()
        limited = {"message": "Rate limit exceeded. Please try again later.", "status_code": 429}
        return 429, [json_type, (b"retry-after", str(wait).encode())], json.dumps(limited).encode()

    def error_response(self, status: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if self.service == "slack":
            return status, [(b"content-type", b"text/plain")], b"rollup_error"
        body: dict[str, Any]
        if self.service == "linear":
            body = {"errors": [{"message": "Internal server error"}]}
        elif self.service == "codegen":
            body = {"message": "Internal server error", "status_code": status}
        else:
            body = {"message": "Server Error", "status": str(status)}
        return status, [(b"content-type", b"application/json")], json.dumps(body).encode()

    # ------------------------------------------------------------ ASGI

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """`app` behind this injector's faults."""
        injector = self

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            action, rule, latency = injector._decide(scope["method"], scope["path"])
            if latency > 0:
                injector.counts["latency"] += 1
                await asyncio.sleep(latency)
            if action == "none" or rule is None:
                await app(scope, receive, send)
            elif action == "rate_limit":
                response = injector.rate_limit_response(
                    rule.rate_limit_style, rule.rate_limit_wait, scope["path"]
                )
                await _respond(send, *response)
            elif action == "error":
                await _respond(send, *injector.error_response(rule.error_status))
            elif action == "drop_before":
                await _drop(send)
            elif action == "late":
                # Read the body while the client still waits (after it gives up, the server
                # would only say "disconnected"), then take effect once it has given up.
                replay = await _buffered(receive)
                await asyncio.sleep(rule.late_delay)
                injector.counts["late_completed"] += 1
                await app(scope, replay, _ignore_gone(send))
            else:
                await app(scope, receive, _discard_send)
                if action == "error_after":
                    await _respond(send, *injector.error_response(502))
                else:
                    await _drop(send)

        return middleware


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request now; return a receive() that replays it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            await asyncio.sleep(3600)  # nothing more will come
        replayed = True
        return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    return replay


def _ignore_gone(send: Send) -> Send:
    """A send that does not mind a client which already went away."""

    async def forgiving(message: Message) -> None:
        try:
            await send(message)
        except Exception:  # the connection is gone: the client timed out long ago
            return

    return forgiving


async def _discard_send(message: Message) -> None:
    """Swallow the real response: the client will see the fault instead."""


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _drop(send: Send) -> None:
    """Start a response promising a body, send part of it, then stop: the server closes the
    connection and the client sees it dropped mid-response."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"partial": ', "more_body": True})
    raise DroppedConnection(DROP_MARKER)


class DroppedConnection(Exception):
    """Raised to make the ASGI server close the connection (a deliberate fault)."""


class _QuietDrops(logging.Filter):
    """Hide the server's error log for connections we dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def quiet_deliberate_drops() -> None:
    for name in ("uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietDrops) for f in logger.filters):
            logger.addFilter(_QuietDrops())
