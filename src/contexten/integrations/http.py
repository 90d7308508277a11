"""The one retry and back-off implementation every client uses.

- `RetryPolicy`: bounded attempts and total time, exponential back-off with full jitter,
  built from Settings (HTTP_MAX_ATTEMPTS, HTTP_MAX_TOTAL_SECONDS, HTTP_TIMEOUT_SECONDS). Sleep
  and clocks are fields so tests inject fakes and never really wait.
- `classify_response(...)`: what a failed response means, for all four services:
  `Retry-After` (seconds or HTTP date); GitHub primary limits (403/429 with
  x-ratelimit-remaining 0: wait for x-ratelimit-reset) and secondary limits ("secondary rate
  limit" or Retry-After: at least 60 s); Linear RATELIMITED (HTTP 400 with
  extensions.code RATELIMITED, or 429); Slack 429; 5xx; auth, not found, conflict, invalid.
- `classify_exception(...)`: connection errors and timeouts.
- `call_with_retries(...)`: run any async call under the policy; when the server asks us to
  wait longer than the remaining budget (a primary limit resetting in an hour), fail at once
  with a RATE_LIMITED error carrying `reset_at` instead of sleeping.
- `request_with_retries(client, method, url, ...)`: the same for a plain httpx client.

Unsafe methods (POST, PATCH, PUT, DELETE) are retried here only when the request certainly
did not take effect (connection refused, rate limited). After an ambiguous failure (timeout
while reading, dropped connection, 5xx) the error has `maybe_processed=True` and the
idempotency ledger decides: look the result up, then try again.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from contexten.analysis.backoff import exponential_backoff
from contexten.integrations.interface import ErrorReason, IntegrationError
from contexten.integrations.redaction import redact

if TYPE_CHECKING:
    from contexten.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECONDARY_LIMIT_MIN_WAIT = 60.0


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry. `sleep`, `monotonic`, `wall_clock`, `rng` are injectable."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_total_seconds: float = 300.0
    timeout_seconds: float = 30.0
    # How long after an ambiguous failure a write may still land at the service (a request
    # the client gave up on can complete later): look it up for at least this long, and at
    # least timeout_seconds, before trying it again.
    late_write_seconds: float = 10.0
    jitter: bool = True
    secondary_min_wait: float = SECONDARY_LIMIT_MIN_WAIT
    sleep: Callable[[float], Awaitable[None]] = field(
        default=_asyncio_sleep, compare=False, repr=False
    )
    monotonic: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    wall_clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> RetryPolicy:
        values: dict[str, Any] = {
            "max_attempts": max(1, settings.http_max_attempts),
            "max_total_seconds": max(0.0, settings.http_max_total_seconds),
            "timeout_seconds": max(0.1, settings.http_timeout_seconds),
            "late_write_seconds": max(0.0, settings.http_late_write_seconds),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def late_write_window(self) -> float:
        """Seconds to keep looking for the result of an ambiguous write before retrying."""
        return max(self.timeout_seconds, self.late_write_seconds)

    def backoff(self, attempt: int) -> float:
        """Exponential back-off before retry number `attempt` (1-based), full jitter."""
        ceiling = exponential_backoff(attempt, self.base_delay, self.max_delay)
        return self.rng.uniform(0, ceiling) if self.jitter else ceiling

    def delay_for(self, failure: AttemptFailure, attempt: int) -> float:
        """Seconds to wait before retrying after `failure` (attempt = retries so far + 1)."""
        if failure.wait_seconds is not None:
            wait = max(0.0, failure.wait_seconds)
            if failure.secondary:
                # GitHub: wait at least a minute, and longer on each further hit.
                wait = max(wait, self.secondary_min_wait) + self.backoff(attempt)
            return wait
        if failure.secondary:
            return self.secondary_min_wait + self.backoff(attempt)
        return self.backoff(attempt)

    def delay_after(self, outcome: httpx.Response | BaseException, attempt: int) -> float | None:
        """Seconds to wait before retrying after a response or exception; None: do not retry.

        The same decision `call_with_retries` makes, for code that runs its own loop.
        """
        if isinstance(outcome, httpx.Response):
            failure = classify_response(
                outcome.status_code, outcome.headers, outcome.content, self.wall_clock()
            )
        else:
            failure = classify_exception(outcome)
        if failure is None or not failure.retryable or attempt >= self.max_attempts:
            return None
        return self.delay_for(failure, attempt)

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout_seconds, connect=min(10.0, self.timeout_seconds))


@dataclass(frozen=True, slots=True)
class AttemptFailure:
    """What went wrong with one attempt, and whether/when to retry."""

    reason: ErrorReason
    detail: str
    retryable: bool
    status_code: int | None = None
    wait_seconds: float | None = None  # the server told us how long to wait
    reset_at: float | None = None  # UTC epoch seconds
    secondary: bool = False  # GitHub secondary rate limit
    maybe_processed: bool = False


# ----------------------------------------------------------------------------- classification


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def _reset_epoch(value: str | None) -> float | None:
    """An x-ratelimit-reset value as epoch seconds (Linear may send milliseconds)."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number > 1e11:  # milliseconds since the epoch
        number /= 1000.0
    return number


def _json_body(body: bytes | str | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _message_of(data: Any, text: str) -> str:
    if isinstance(data, dict):
        message = data.get("message") if isinstance(data.get("message"), str) else None
        if message is None and isinstance(data.get("error"), str):
            message = str(data["error"])
        errors = data.get("errors")
        details = []
        if isinstance(errors, list):
            for error in errors[:3]:
                if isinstance(error, dict):
                    detail = error.get("message") or " ".join(
                        str(error[k]) for k in ("resource", "field", "code") if error.get(k)
                    )
                    if detail:
                        details.append(str(detail))
                elif isinstance(error, str):
                    details.append(error)
        if message and details:
            return f"{message} ({'; '.join(details)})"[:300]
        if message or details:
            return (message or "; ".join(details))[:300]
    return text.strip()[:200]


def _linear_rate_limited(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    errors = data.get("errors")
    if not isinstance(errors, list):
        return False
    for error in errors:
        if not isinstance(error, dict):
            continue
        extensions = error.get("extensions")
        if isinstance(extensions, dict):
            code = str(extensions.get("code", "")).upper()
            kind = str(extensions.get("type", "")).lower()
            if code == "RATELIMITED" or kind == "ratelimited":
                return True
    return False


def classify_response(
    status_code: int, headers: Mapping[str, str], body: bytes | str | None, now: float
) -> AttemptFailure | None:
    """None for a success (2xx/3xx); otherwise what the failure means."""
    if status_code < 400:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    data = _json_body(body)
    message = _message_of(data, text)
    retry_after = parse_retry_after(lower.get("retry-after"), now)
    remaining = lower.get("x-ratelimit-remaining")
    reset_at = _reset_epoch(lower.get("x-ratelimit-reset")) or _reset_epoch(
        lower.get("x-ratelimit-requests-reset")
    )
    detail = f"HTTP {status_code}: {message}" if message else f"HTTP {status_code}"

    secondary = "secondary rate limit" in message.lower()
    rate_limited = (
        status_code == 429
        or (status_code == 403 and (remaining == "0" or secondary or retry_after is not None))
        or (status_code == 400 and _linear_rate_limited(data))
    )
    if rate_limited:
        secondary = secondary or (status_code == 403 and retry_after is not None)
        wait: float | None = retry_after
        if wait is None and reset_at is not None and (remaining == "0" or not secondary):
            wait = max(0.0, reset_at - now) + 1.0  # reset is a whole second: add one
        if secondary and remaining != "0":
            # The primary reset says nothing about a secondary limit.
            reset_at = now + max(wait or 0.0, SECONDARY_LIMIT_MIN_WAIT)
        elif reset_at is None and wait is not None:
            reset_at = now + wait
        return AttemptFailure(
            ErrorReason.RATE_LIMITED,
            detail,
            retryable=True,
            status_code=status_code,
            wait_seconds=wait,
            reset_at=reset_at,
            secondary=secondary,
        )
    if status_code >= 500:
        return AttemptFailure(
            ErrorReason.UNAVAILABLE,
            detail,
            retryable=True,
            status_code=status_code,
            wait_seconds=retry_after,
            maybe_processed=True,
        )
    if status_code in (401, 403):
        return AttemptFailure(ErrorReason.AUTH, detail, retryable=False, status_code=status_code)
    if status_code in (404, 410):
        return AttemptFailure(
            ErrorReason.NOT_FOUND, detail, retryable=False, status_code=status_code
        )
    if status_code == 409 or (status_code == 422 and "already exist" in text.lower()):
        return AttemptFailure(
            ErrorReason.CONFLICT, detail, retryable=False, status_code=status_code
        )
    if status_code == 408:
        return AttemptFailure(
            ErrorReason.UNAVAILABLE, detail, retryable=True, status_code=408, maybe_processed=False
        )
    return AttemptFailure(ErrorReason.INVALID, detail, retryable=False, status_code=status_code)


def classify_exception(exc: BaseException) -> AttemptFailure | None:
    """Connection errors and timeouts from httpx; None for anything else (not retried)."""
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # Nothing reached the server: safe to retry any method.
        return AttemptFailure(ErrorReason.UNAVAILABLE, f"cannot connect ({name})", retryable=True)
    if isinstance(exc, httpx.TimeoutException):
        return AttemptFailure(
            ErrorReason.UNAVAILABLE, f"timed out ({name})", retryable=True, maybe_processed=True
        )
    if isinstance(exc, httpx.TransportError):
        return AttemptFailure(
            ErrorReason.UNAVAILABLE,
            f"connection failed ({name})",
            retryable=True,
            maybe_processed=True,
        )
    return None


# ----------------------------------------------------------------------------- connections


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The process's TLS context for outgoing HTTPS (httpx's defaults, built once).

    httpx builds a new one for every client or transport created without one, loading the
    whole CA bundle: tens of milliseconds of CPU each time, paid per workflow run by
    clients that live as long as a run. An SSLContext is safe to share between threads.
    """
    return httpx.create_ssl_context()


class SharedTransport(httpx.AsyncBaseTransport):
    """One connection pool per event loop, kept across short-lived httpx clients.

    Libraries that open a new AsyncClient per request (githubkit does) pay for a new pool,
    TLS context and connection every time; give them this transport instead. Closing a
    client does not close it; `close()` does. Pools are per event loop because pooled
    connections cannot move between loops.
    """

    def __init__(self, **transport_options: Any) -> None:
        import weakref

        self._options = transport_options
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport]
        self._pools = weakref.WeakKeyDictionary()

    def _pool(self) -> httpx.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(**{"verify": shared_ssl_context(), **self._options})
            self._pools[loop] = pool
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool().handle_async_request(request)

    async def aclose(self) -> None:
        """Kept open on purpose: the clients that share it come and go."""

    async def close(self) -> None:
        """Close the current event loop's pool."""
        loop = asyncio.get_running_loop()
        pool = self._pools.pop(loop, None)
        if pool is not None:
            await pool.aclose()


# ----------------------------------------------------------------------------- the retry loop


class FailedAttempt(Exception):
    """Raised inside a retried call to hand a classified failure to the loop."""

    def __init__(self, failure: AttemptFailure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def make_error(
    error_type: type[IntegrationError], failure: AttemptFailure, *, what: str, service: str
) -> IntegrationError:
    detail = failure.detail
    if failure.reason is ErrorReason.RATE_LIMITED and failure.reset_at is not None:
        detail += f" (rate limited until epoch {int(failure.reset_at)})"
    return error_type(
        f"{service}: {what} failed: {detail}",
        reason=failure.reason,
        service=service,
        status_code=failure.status_code,
        reset_at=failure.reset_at,
        maybe_processed=failure.maybe_processed,
    )


def _may_retry(failure: AttemptFailure, unsafe: bool) -> bool:
    if not failure.retryable:
        return False
    # An unsafe request that may have taken effect is the ledger's decision, not ours.
    return not (unsafe and failure.maybe_processed)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    classify: Callable[[BaseException], AttemptFailure | None],
    error_type: type[IntegrationError],
    what: str,
    service: str,
    unsafe: bool = False,
) -> T:
    """Run `call` until it succeeds, a failure is final, or attempts/time run out.

    `classify` maps an exception raised by `call` to a AttemptFailure (None: not ours, re-raise).
    `unsafe`: the call changes the world, so failures with maybe_processed are not retried.
    """
    started = policy.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except IntegrationError:
            raise
        except Exception as exc:
            failure = exc.failure if isinstance(exc, FailedAttempt) else classify(exc)
            if failure is None:
                raise
            cause = exc
        if not _may_retry(failure, unsafe) or attempt >= policy.max_attempts:
            raise make_error(error_type, failure, what=what, service=service) from cause
        delay = policy.delay_for(failure, attempt)
        elapsed = policy.monotonic() - started
        if elapsed + delay > policy.max_total_seconds:
            # Do not sleep through an hour-long primary limit: say when to come back.
            raise make_error(error_type, failure, what=what, service=service) from cause
        log.warning(
            "%s: %s: %s; retry %d/%d in %.1fs",
            service,
            redact(what),
            failure.detail,
            attempt,
            policy.max_attempts - 1,
            delay,
        )
        await policy.sleep(delay)


def describe_url(url: httpx.URL | str) -> str:
    """Scheme, host and path, without query string; secrets in the path are redacted."""
    parsed = httpx.URL(str(url))
    port = f":{parsed.port}" if parsed.port else ""
    return redact(f"{parsed.scheme}://{parsed.host}{port}{parsed.path}")


async def request_with_retries(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    error_type: type[IntegrationError],
    service: str,
    what: str | None = None,
    classify: Callable[
        [int, Mapping[str, str], bytes | str | None, float], AttemptFailure | None
    ] = classify_response,
    idempotent: bool | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request with timeouts and retries; returns the successful response (read).

    `classify(status, headers, body, now)` decides what a response means (default:
    classify_response, which knows all four services; pass your own to treat e.g. Linear's
    HTTP 200 with errors as a failure). `idempotent` defaults to the method being safe.
    """
    unsafe = (method.upper() not in SAFE_METHODS) if idempotent is None else not idempotent
    label = what or f"{method.upper()} {describe_url(url)}"
    kwargs.setdefault("timeout", policy.timeout())

    async def attempt() -> httpx.Response:
        response = await client.request(method, url, **kwargs)
        failure = classify(
            response.status_code, response.headers, response.content, policy.wall_clock()
        )
        if failure is not None:
            raise FailedAttempt(failure)
        return response

    return await call_with_retries(
        attempt,
        policy=policy,
        classify=classify_exception,
        error_type=error_type,
        what=label,
        service=service,
        unsafe=unsafe,
    )


# ----------------------------------------------------------------------------- for classifiers


def is_transport_timeout(exc: BaseException) -> bool:
    """A timeout after connecting (a connect timeout never reached the server: network)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return False
    return isinstance(exc, httpx.TimeoutException)


def is_transport_network_error(exc: BaseException) -> bool:
    """The network failed: could not connect, or the connection broke."""
    return isinstance(exc, httpx.NetworkError | httpx.ConnectTimeout)


def http_status_of(exc: BaseException) -> int | None:
    """The status code of an `httpx.HTTPStatusError` (raise_for_status), else None."""
    return exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
