"""Per-integration circuit breakers and disabled integrations, persisted in the state table.

Every process (CLI, flows, the receiver) sees the same state, so a dead or rate-limited
service is not hammered from several places at once (`store.state`, by integration):

- `StateKind.CIRCUIT`: the breaker (see `recovery.policy.CircuitBreaker`);
- `StateKind.INTEGRATION_DISABLED`: set by configuration reset when the service rejects
  our credentials; holds a short fingerprint of the credentials, so the integration comes
  back by itself once its token is changed (and is not called again until then).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import SecretStr

from contexten.config import Settings
from contexten.recovery.policy import (
    BreakerConfig,
    CircuitBreaker,
    FailureCategory,
    breaker_allows,
    breaker_failure,
    breaker_success,
    classify_exception,
)
from contexten.store.db import Store
from contexten.store.state import StateKind, read_state, write_state

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
