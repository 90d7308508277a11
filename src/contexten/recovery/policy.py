"""Recovery policy: which strategies to try for which failure, and when to stop. Pure.

The table is the failure taxonomy of docs/failure-taxonomy.md. Our own failures
(exceptions from the store, the Prefect API or an integration) are classified by
`classify_exception`; CI-level failures arrive with the category the log analysis gave
them. `plan_recovery` turns a category into an ordered list of strategies; after
ESCALATION_THRESHOLD failed recoveries of the same signature the plan is human escalation
only. A circuit breaker per integration (a pure state machine with an injected clock) keeps
a dead service from being hammered.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from contexten.analysis.taxonomy import AUTOMATIC_CATEGORIES, FailureCategory, RecoveryStrategy
from contexten.analysis.taxonomy import RECOVERY_STRATEGIES as CI_STRATEGIES

# Where the failure happened: our own process/components, or a customer's CI run.
Scope = Literal["system", "ci"]
Automatic = Literal["yes", "partly", "no"]

# Hints the analysis or the classifier can attach; they add a strategy in front.
HINT_CACHE_CORRUPT = "cache_corrupt"
HINT_DISK_FULL = "disk_full"
HINT_TRANSIENT = "transient"

# Other names for the same categories (log analysis, GitHub conclusions, people).
_ALIASES: dict[str, FailureCategory] = {
    "timed_out": FailureCategory.TIMEOUT,
    "workflow_timeout": FailureCategory.TIMEOUT,
    "oom": FailureCategory.RESOURCE_EXHAUSTION,
    "out_of_memory": FailureCategory.RESOURCE_EXHAUSTION,
    "disk_full": FailureCategory.RESOURCE_EXHAUSTION,
    "resource": FailureCategory.RESOURCE_EXHAUSTION,
    "resources": FailureCategory.RESOURCE_EXHAUSTION,
    "integration_failure": FailureCategory.INTEGRATION,
    "service_unavailable": FailureCategory.INTEGRATION,
    "rate_limited": FailureCategory.RATE_LIMIT,
    "ratelimit": FailureCategory.RATE_LIMIT,
    "authentication": FailureCategory.AUTH,
    "authentication_error": FailureCategory.AUTH,
    "credentials": FailureCategory.AUTH,
    "permission": FailureCategory.AUTH,
    "network_error": FailureCategory.NETWORK,
    "tests": FailureCategory.TEST,
    "test_failure": FailureCategory.TEST,
    "testing": FailureCategory.TEST,
    "flaky": FailureCategory.FLAKY_TEST,
    "dependencies": FailureCategory.DEPENDENCY,
    "dependency_resolution": FailureCategory.DEPENDENCY,
    "build": FailureCategory.COMPILE,
    "compilation": FailureCategory.COMPILE,
    "compile_error": FailureCategory.COMPILE,
    "quality": FailureCategory.LINT,
    "format": FailureCategory.LINT,
    "formatting": FailureCategory.LINT,
    "lint_error": FailureCategory.LINT,
    "infra": FailureCategory.INFRASTRUCTURE,
    "runner": FailureCategory.INFRASTRUCTURE,
    "runner_lost": FailureCategory.INFRASTRUCTURE,
    "cancelled": FailureCategory.INFRASTRUCTURE,
    "configuration": FailureCategory.CONFIG,
    "environment": FailureCategory.CONFIG,
    "setup": FailureCategory.CONFIG,
}


def parse_category(value: str) -> FailureCategory:
    """A category from its value or a common alias; unknown names give UNKNOWN."""
    name = value.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return FailureCategory(name)
    except ValueError:
        return _ALIASES.get(name, FailureCategory.UNKNOWN)


S = RecoveryStrategy
C = FailureCategory

# category -> (strategies in order, automatic), per docs/failure-taxonomy.md.
# "system" scope = our own.
_SYSTEM_TABLE: dict[FailureCategory, tuple[tuple[RecoveryStrategy, ...], Automatic]] = {
    C.TIMEOUT: ((S.RETRY_WITH_BACKOFF, S.RESOURCE_CLEANUP), "yes"),
    C.RESOURCE_EXHAUSTION: ((S.RESOURCE_CLEANUP, S.SYSTEM_RESTART), "yes"),
    C.INTEGRATION: ((S.RETRY_WITH_BACKOFF, S.FALLBACK_EXECUTION), "yes"),
    C.RATE_LIMIT: ((S.RETRY_WITH_BACKOFF,), "yes"),
    C.AUTH: ((S.CONFIGURATION_RESET, S.HUMAN_ESCALATION), "partly"),
    C.NETWORK: ((S.RETRY_WITH_BACKOFF,), "yes"),
    C.UNKNOWN: ((S.HUMAN_ESCALATION,), "no"),
    C.CONFIG: ((S.CONFIGURATION_RESET, S.HUMAN_ESCALATION), "partly"),
    # CI-level categories never come from our own components; treat them as unknown.
}

# "ci" scope: retry = re-run the failed jobs after a back-off; workflow restart = re-run
# the whole run; resource cleanup = delete the repository's Actions caches.
_CI_TABLE: dict[FailureCategory, tuple[tuple[RecoveryStrategy, ...], Automatic]] = {
    category: (strategies, "yes" if category in AUTOMATIC_CATEGORIES else "no")
    for category, strategies in CI_STRATEGIES.items()
}

# Categories whose fix is a code change the AI coding agent could propose.
AGENT_FIXABLE: frozenset[FailureCategory] = frozenset({C.TEST, C.COMPILE, C.LINT, C.DEPENDENCY})


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    category: FailureCategory
    scope: Scope
    strategies: tuple[RecoveryStrategy, ...]
    automatic: Automatic
    escalated: bool  # the escalation threshold was reached: only a human is asked
    agent_fix_candidate: bool
    reason: str


def strategy_table(scope: Scope) -> dict[FailureCategory, tuple[tuple[RecoveryStrategy, ...], str]]:
    """The table for a scope, for documentation and `contexten recover --dry-run`."""
    table = _SYSTEM_TABLE if scope == "system" else _CI_TABLE
    return {category: (strategies, auto) for category, (strategies, auto) in table.items()}


def plan_recovery(
    category: FailureCategory,
    *,
    scope: Scope = "system",
    failed_recoveries: int = 0,
    escalation_threshold: int = 3,
    hints: Iterable[str] = (),
) -> RecoveryPlan:
    """The strategies to try, in order, for one failure.

    `failed_recoveries` counts earlier recoveries of the same signature that did not fix
    it; at `escalation_threshold` the plan is human escalation only. Hints: `cache_corrupt`
    and `disk_full` put resource cleanup first; `transient` lets a deterministic CI category
    (e.g. a dependency download that timed out) be retried once before escalation.
    """
    hint_set = frozenset(hints)
    agent = scope == "ci" and category in AGENT_FIXABLE
    if failed_recoveries >= max(1, escalation_threshold):
        return RecoveryPlan(
            category,
            scope,
            (S.HUMAN_ESCALATION,),
            "no",
            escalated=True,
            agent_fix_candidate=agent,
            reason=(
                f"{failed_recoveries} earlier recoveries failed "
                f"(threshold {escalation_threshold}): escalating to a human"
            ),
        )
    table = _SYSTEM_TABLE if scope == "system" else _CI_TABLE
    strategies, automatic = table.get(category, table[C.UNKNOWN])
    reason = f"{category.value} ({scope}): table order"
    if HINT_TRANSIENT in hint_set and strategies == (S.HUMAN_ESCALATION,) and category != C.AUTH:
        strategies = (S.RETRY_WITH_BACKOFF, S.HUMAN_ESCALATION)
        automatic = "partly"
        reason += "; marked transient, retried once first"
    if hint_set & {HINT_CACHE_CORRUPT, HINT_DISK_FULL} and S.RESOURCE_CLEANUP not in strategies:
        restart = S.WORKFLOW_RESTART if scope == "ci" else S.RETRY_WITH_BACKOFF
        strategies = (S.RESOURCE_CLEANUP, restart, *[s for s in strategies if s != restart])
        automatic = "yes" if automatic != "no" else "partly"
        reason += "; cache corrupt or disk full: clean up first"
    return RecoveryPlan(
        category, scope, strategies, automatic, False, agent_fix_candidate=agent, reason=reason
    )


# ----------------------------------------------------------------------------- back-off


def backoff_delay(
    attempt: int,
    *,
    base_seconds: float = 1.0,
    cap_seconds: float = 300.0,
    retry_after: float | None = None,
    jitter: float = 0.0,
) -> float:
    """Seconds to wait before retry number `attempt` (1-based).

    Exponential (base · 2^(attempt-1)) capped at `cap_seconds`; a server's Retry-After (or
    seconds until a rate-limit reset) wins when longer. `jitter` in [0, 1) is a random
    fraction the caller draws, so this stays deterministic: it adds up to that share.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, got {attempt}")
    exponential = min(cap_seconds, base_seconds * 2 ** min(attempt - 1, 62))
    delay = exponential * (1.0 + max(0.0, min(jitter, 1.0)))
    if retry_after is not None and retry_after > delay:
        delay = float(retry_after)
    return max(0.0, delay)


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
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return False  # never connected: a network problem
    return isinstance(exc, TimeoutError | httpx.TimeoutException)


def _is_network(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, ConnectionError | httpx.NetworkError | httpx.ConnectTimeout) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
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
    import httpx

    for link in _chain(exc):
        found = _classify_integration_error(link)
        if found is not None:
            return found
        detail = f"{type(link).__name__}: {link}"[:300]
        if isinstance(link, httpx.HTTPStatusError):
            category = _from_status(link.response.status_code)
            if category is not None:
                return Classification(category, None, link.response.status_code, None, detail)
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
