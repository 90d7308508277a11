"""Our integrations' failures and circuit breakers.

- `classify_exception`: what kind of failure one of our own exceptions is (an integration's
  error, an HTTP status, a timeout, the network, exhausted resources), by the failure
  taxonomy (`analysis.taxonomy`).
- A circuit breaker per integration: a pure state machine with an injected clock
  (`CircuitBreaker`, `breaker_allows`/`breaker_success`/`breaker_failure`), persisted in the
  state table (`store.state`, kind CIRCUIT) so every process (CLI, flows, the receiver) sees
  the same state and a dead or rate-limited service is not hammered from several places.
- Disabled integrations (kind INTEGRATION_DISABLED): set by a configuration reset when the
  service rejects our credentials; holds a short fingerprint of the credentials, so the
  integration comes back by itself once its token is changed.

`recovery.policy` re-exports the pure parts; the health check, alerts and the recovery
manager use the gate.
"""

from __future__ import annotations

import errno
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import SecretStr

from contexten.analysis.taxonomy import FailureCategory
from contexten.config import Settings
from contexten.store.db import Store
from contexten.store.state import StateKind, read_state, write_state

C = FailureCategory


# ----------------------------------------------------------------------------- classification


@dataclass(frozen=True, slots=True)
class Classification:
    """What kind of failure an exception is, with what the recovery needs to know."""

    category: FailureCategory
    service: str | None = None  # the integration, when an integration failed
    status_code: int | None = None
    retry_at: float | None = None  # epoch seconds after which a retry may succeed
    detail: str = ""


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_timeout(exc: BaseException) -> bool:
    from contexten.integrations.http import is_transport_timeout

    # a connect timeout never connected: a network problem
    return is_transport_timeout(exc) or isinstance(exc, TimeoutError)


def _is_network(exc: BaseException) -> bool:
    from contexten.integrations.http import is_transport_network_error

    return (
        isinstance(exc, ConnectionError)
        or is_transport_network_error(exc)
        or (isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH))
    )


def _is_resource(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, OSError) and exc.errno in (
        errno.ENOSPC,
        errno.ENOMEM,
        errno.EMFILE,
        errno.ENFILE,
        errno.EDQUOT,
    )


def _from_status(status: int) -> FailureCategory | None:
    if status == 429:
        return C.RATE_LIMIT
    if status in (401, 403):
        return C.AUTH
    if status in (408, 504):
        return C.TIMEOUT
    if status >= 500:
        return C.INTEGRATION
    return None


def _classify_integration_error(exc: Any) -> Classification | None:
    from contexten.integrations.interface import ErrorReason, IntegrationError

    if not isinstance(exc, IntegrationError):
        return None
    service = exc.service or None
    status = exc.status_code
    detail = str(exc)[:300]
    if exc.reason is ErrorReason.RATE_LIMITED:
        return Classification(C.RATE_LIMIT, service, status, exc.reset_at, detail)
    if exc.reason is ErrorReason.AUTH:
        return Classification(C.AUTH, service, status, None, detail)
    if exc.reason is ErrorReason.UNAVAILABLE:
        if status is not None and status >= 500:
            category = C.TIMEOUT if status == 504 else C.INTEGRATION
        else:
            causes = _chain(exc)[1:]
            if any(_is_timeout(c) for c in causes):
                category = C.TIMEOUT
            elif any(_is_network(c) for c in causes) or status is None:
                category = C.NETWORK
            else:
                category = C.INTEGRATION
        return Classification(category, service, status, exc.reset_at, detail)
    if exc.reason is ErrorReason.ERROR:
        return Classification(C.INTEGRATION, service, status, None, detail)
    # NOT_FOUND, CONFLICT, INVALID: our request is wrong; retrying will not help.
    return Classification(C.UNKNOWN, service, status, None, detail)


def classify_exception(exc: BaseException) -> Classification:
    """The failure category of one of our own exceptions (and its causes)."""
    from contexten.integrations.http import http_status_of

    for link in _chain(exc):
        found = _classify_integration_error(link)
        if found is not None:
            return found
        detail = f"{type(link).__name__}: {link}"[:300]
        status = http_status_of(link)
        if status is not None:
            category = _from_status(status)
            if category is not None:
                return Classification(category, None, status, None, detail)
        if _is_resource(link):
            return Classification(C.RESOURCE_EXHAUSTION, detail=detail)
        if _is_timeout(link):
            return Classification(C.TIMEOUT, detail=detail)
        if _is_network(link):
            return Classification(C.NETWORK, detail=detail)
    return Classification(C.UNKNOWN, detail=f"{type(exc).__name__}: {exc}"[:300])


# ----------------------------------------------------------------------------- circuit breaker

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 3  # consecutive failures that open the circuit
    open_seconds: float = 30.0  # first cool-down; doubles on each failed probe
    max_open_seconds: float = 900.0
    probe_timeout_seconds: float = 120.0  # a probe that never reported frees the slot


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """The state of one integration's circuit. `now` is always passed in (epoch seconds)."""

    state: BreakerState = "closed"
    consecutive_failures: int = 0
    opened_at: float | None = None
    open_seconds: float = 0.0  # current cool-down
    probe_started_at: float | None = None
    trips: int = 0  # how many times it opened
    last_error: str = ""

    def retry_at(self) -> float | None:
        if self.state != "open" or self.opened_at is None:
            return None
        return self.opened_at + self.open_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "opened_at": self.opened_at,
            "open_seconds": self.open_seconds,
            "probe_started_at": self.probe_started_at,
            "trips": self.trips,
            "last_error": self.last_error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CircuitBreaker:
        if not data:
            return cls()
        state = data.get("state", "closed")
        if state not in ("closed", "open", "half_open"):
            state = "closed"
        return cls(
            state=state,
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            opened_at=_opt_float(data.get("opened_at")),
            open_seconds=float(data.get("open_seconds", 0.0)),
            probe_started_at=_opt_float(data.get("probe_started_at")),
            trips=int(data.get("trips", 0)),
            last_error=str(data.get("last_error", ""))[:300],
        )


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def breaker_allows(
    breaker: CircuitBreaker, now: float, config: BreakerConfig = BreakerConfig()
) -> tuple[bool, CircuitBreaker]:
    """May a call go through now? Returns the decision and the new state.

    Open → after the cool-down one probe call goes through (half-open); while that probe
    is out, others are refused, unless it has not reported for `probe_timeout_seconds`.
    """
    if breaker.state == "closed":
        return True, breaker
    if breaker.state == "open":
        retry_at = breaker.retry_at()
        if retry_at is not None and now < retry_at:
            return False, breaker
        return True, replace(breaker, state="half_open", probe_started_at=now)
    # half_open
    started = breaker.probe_started_at
    if started is None or now - started >= config.probe_timeout_seconds:
        return True, replace(breaker, probe_started_at=now)
    return False, breaker


def breaker_success(breaker: CircuitBreaker, now: float) -> CircuitBreaker:
    return CircuitBreaker(trips=breaker.trips)


def breaker_failure(
    breaker: CircuitBreaker,
    now: float,
    config: BreakerConfig = BreakerConfig(),
    *,
    retry_at: float | None = None,
    error: str = "",
    open_now: bool = False,
) -> CircuitBreaker:
    """Record a failed call. A failed half-open probe reopens with a doubled cool-down.

    `retry_at` (a rate limit's reset) keeps the circuit open at least until then;
    `open_now` opens it at once (credentials rejected: every call would fail the same way).
    """
    failures = breaker.consecutive_failures + 1
    if breaker.state == "half_open":
        cool_down = min(config.max_open_seconds, max(breaker.open_seconds, config.open_seconds) * 2)
    elif failures >= config.failure_threshold or open_now:
        cool_down = config.open_seconds
    elif retry_at is not None and retry_at > now:
        cool_down = 0.0  # opened only until the reset below
    else:
        return replace(breaker, consecutive_failures=failures, last_error=error[:300])
    if retry_at is not None:
        cool_down = max(cool_down, retry_at - now)
    return CircuitBreaker(
        state="open",
        consecutive_failures=failures,
        opened_at=now,
        open_seconds=cool_down,
        probe_started_at=None,
        trips=breaker.trips + 1,
        last_error=error[:300],
    )


# ----------------------------------------------------------------------------- persisted breakers

INTEGRATION_SECRETS: dict[str, tuple[str, ...]] = {
    "github": ("github_token", "github_app_id", "github_app_private_key"),
    "linear": ("linear_api_key", "linear_team_id"),
    "slack": ("slack_webhook_url", "slack_bot_token"),
    "codegen": ("codegen_token", "codegen_org_id"),
}
T = TypeVar("T")


class CircuitOpen(Exception):
    """A call was refused because the integration's circuit is open or it is disabled."""

    def __init__(self, integration: str, reason: str) -> None:
        super().__init__(f"{integration}: {reason}")
        self.integration = integration
        self.reason = reason


def load_breaker(store: Store, integration: str) -> CircuitBreaker:
    return CircuitBreaker.from_dict(read_state(store, StateKind.CIRCUIT, integration))


def save_breaker(store: Store, integration: str, breaker: CircuitBreaker) -> None:
    write_state(store, StateKind.CIRCUIT, integration, breaker.to_dict())


def credentials_fingerprint(settings: Settings, integration: str) -> str:
    """A short hash of an integration's credentials: tells "changed", reveals nothing."""
    digest = hashlib.sha256()
    for name in INTEGRATION_SECRETS.get(integration, ()):
        value = getattr(settings, name, None)
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        digest.update(f"{name}={plain or ''}\0".encode())
    return digest.hexdigest()[:12]


def disabled_entry(store: Store, integration: str) -> dict[str, Any] | None:
    return read_state(store, StateKind.INTEGRATION_DISABLED, integration)


def disable_integration(store: Store, settings: Settings, integration: str, reason: str) -> None:
    write_state(
        store,
        StateKind.INTEGRATION_DISABLED,
        integration,
        {
            "reason": reason[:300],
            "at": datetime.now(UTC).isoformat(),
            "fingerprint": credentials_fingerprint(settings, integration),
        },
    )


def enable_integration(store: Store, integration: str) -> None:
    write_state(store, StateKind.INTEGRATION_DISABLED, integration, None)


def integration_gate(
    store: Store,
    settings: Settings,
    integration: str,
    *,
    now: float | None = None,
    config: BreakerConfig = BreakerConfig(),
) -> str | None:
    """None when a call may go to the integration now; otherwise why not (one line).

    A disabled integration whose credentials have since changed is re-enabled (the next
    call is the test). An open circuit whose cool-down has passed lets this one call through
    as the half-open probe; report its result with `record_integration_result`.
    """
    entry = disabled_entry(store, integration)
    if entry is not None:
        if entry.get("fingerprint") == credentials_fingerprint(settings, integration):
            return (
                f"disabled since {entry.get('at', '?')}: {entry.get('reason', '')}; "
                "change its credentials to re-enable"
            )
        enable_integration(store, integration)
    moment = time.time() if now is None else now
    breaker = load_breaker(store, integration)
    allowed, updated = breaker_allows(breaker, moment, config)
    if updated != breaker:
        save_breaker(store, integration, updated)
    if allowed:
        return None
    retry_at = updated.retry_at()
    when = (
        datetime.fromtimestamp(retry_at, UTC).isoformat(timespec="seconds")
        if retry_at is not None
        else "after the probe in flight"
    )
    return f"circuit {updated.state} until {when} (last error: {updated.last_error or '-'})"


def record_integration_result(
    store: Store,
    integration: str,
    ok: bool,
    detail: str = "",
    *,
    now: float | None = None,
    retry_at: float | None = None,
    open_now: bool = False,
    config: BreakerConfig = BreakerConfig(),
) -> CircuitBreaker:
    """Feed one call's result into the integration's breaker; returns the new state."""
    moment = time.time() if now is None else now
    breaker = load_breaker(store, integration)
    if ok:
        updated = breaker_success(breaker, moment)
    else:
        updated = breaker_failure(
            breaker, moment, config, retry_at=retry_at, error=detail, open_now=open_now
        )
    if updated != breaker:
        save_breaker(store, integration, updated)
    return updated


def record_exception(
    store: Store, integration: str, exc: BaseException, *, now: float | None = None
) -> FailureCategory:
    """Feed a failed call's exception into the breaker; auth and rate limits open it at once."""
    found = classify_exception(exc)
    record_integration_result(
        store,
        integration,
        False,
        found.detail,
        now=now,
        retry_at=found.retry_at if found.category is FailureCategory.RATE_LIMIT else None,
        open_now=found.category is FailureCategory.AUTH,
    )
    return found.category


async def call_guarded(
    store: Store,
    settings: Settings,
    integration: str,
    call: Callable[[], Awaitable[T]],
    *,
    clock: Callable[[], float] = time.time,
) -> T:
    """Run one call to an integration through its circuit breaker.

    Raises CircuitOpen without calling when the circuit is open or the integration is
    disabled; records the result otherwise (errors are re-raised).
    """
    reason = integration_gate(store, settings, integration, now=clock())
    if reason is not None:
        raise CircuitOpen(integration, reason)
    try:
        result = await call()
    except Exception as exc:
        from contexten.integrations.interface import IntegrationError

        if isinstance(exc, IntegrationError) and not (exc.transient or exc.auth_error):
            # our request was wrong (404, 422): the service itself is fine
            record_integration_result(store, integration, True, now=clock())
        else:
            record_exception(store, integration, exc, now=clock())
        raise
    record_integration_result(store, integration, True, now=clock())
    return result
