"""The pure recovery policy: the taxonomy table (docs/failure-taxonomy.md), escalation,
classification, circuit breaker."""

from __future__ import annotations

import errno

import httpx
import pytest

from contexten.integrations.interface import (
    CIProviderError,
    ErrorReason,
    NotifierError,
)
from contexten.recovery.policy import (
    BreakerConfig,
    CircuitBreaker,
    FailureCategory,
    RecoveryStrategy,
    backoff_delay,
    breaker_allows,
    breaker_failure,
    breaker_success,
    classify_exception,
    parse_category,
    plan_recovery,
)

C = FailureCategory
S = RecoveryStrategy


@pytest.mark.parametrize(
    ("category", "expected", "automatic"),
    [
        (C.TIMEOUT, (S.RETRY_WITH_BACKOFF, S.RESOURCE_CLEANUP), "yes"),
        (C.RESOURCE_EXHAUSTION, (S.RESOURCE_CLEANUP, S.SYSTEM_RESTART), "yes"),
        (C.INTEGRATION, (S.RETRY_WITH_BACKOFF, S.FALLBACK_EXECUTION), "yes"),
        (C.RATE_LIMIT, (S.RETRY_WITH_BACKOFF,), "yes"),
        (C.AUTH, (S.CONFIGURATION_RESET, S.HUMAN_ESCALATION), "partly"),
        (C.NETWORK, (S.RETRY_WITH_BACKOFF,), "yes"),
        (C.UNKNOWN, (S.HUMAN_ESCALATION,), "no"),
    ],
)
def test_system_table_matches_design(
    category: FailureCategory, expected: tuple[RecoveryStrategy, ...], automatic: str
) -> None:
    plan = plan_recovery(category, scope="system")
    assert plan.strategies == expected
    assert plan.automatic == automatic
    assert not plan.escalated


@pytest.mark.parametrize(
    ("category", "first"),
    [
        (C.FLAKY_TEST, S.RETRY_WITH_BACKOFF),
        (C.INFRASTRUCTURE, S.RETRY_WITH_BACKOFF),
        (C.TEST, S.HUMAN_ESCALATION),
        (C.COMPILE, S.HUMAN_ESCALATION),
        (C.LINT, S.HUMAN_ESCALATION),
        (C.DEPENDENCY, S.HUMAN_ESCALATION),
        (C.CONFIG, S.HUMAN_ESCALATION),
        (C.RESOURCE_EXHAUSTION, S.RESOURCE_CLEANUP),
    ],
)
def test_ci_categories(category: FailureCategory, first: RecoveryStrategy) -> None:
    plan = plan_recovery(category, scope="ci")
    assert plan.strategies[0] is first


def test_deterministic_ci_failures_are_agent_candidates_and_never_rerun() -> None:
    for category in (C.TEST, C.COMPILE, C.LINT):
        plan = plan_recovery(category, scope="ci")
        assert plan.agent_fix_candidate
        assert S.RETRY_WITH_BACKOFF not in plan.strategies
        assert S.WORKFLOW_RESTART not in plan.strategies
    assert not plan_recovery(C.FLAKY_TEST, scope="ci").agent_fix_candidate
    # a system failure is never handed to the coding agent
    assert not plan_recovery(C.TEST, scope="system").agent_fix_candidate


def test_escalation_after_threshold_of_failed_recoveries() -> None:
    assert plan_recovery(C.NETWORK, failed_recoveries=2, escalation_threshold=3).strategies == (
        S.RETRY_WITH_BACKOFF,
    )
    plan = plan_recovery(C.NETWORK, failed_recoveries=3, escalation_threshold=3)
    assert plan.escalated
    assert plan.strategies == (S.HUMAN_ESCALATION,)
    assert "3 earlier recoveries failed" in plan.reason


def test_hints_put_cleanup_first() -> None:
    plan = plan_recovery(C.DEPENDENCY, scope="ci", hints=["cache_corrupt"])
    assert plan.strategies[:2] == (S.RESOURCE_CLEANUP, S.WORKFLOW_RESTART)
    assert plan.strategies[-1] is S.HUMAN_ESCALATION
    plan = plan_recovery(C.DEPENDENCY, scope="ci", hints=["transient"])
    assert plan.strategies == (S.RETRY_WITH_BACKOFF, S.HUMAN_ESCALATION)
    # auth is never retried, even when someone marks it transient
    assert plan_recovery(C.AUTH, scope="ci", hints=["transient"]).strategies == (
        S.HUMAN_ESCALATION,
    )


def test_parse_category_aliases() -> None:
    assert parse_category("test_failure") is C.TEST
    assert parse_category("OOM") is C.RESOURCE_EXHAUSTION
    assert parse_category("rate-limited") is C.RATE_LIMIT
    assert parse_category("flaky_test") is C.FLAKY_TEST
    assert parse_category("something else") is C.UNKNOWN


def test_backoff_is_exponential_capped_and_respects_retry_after() -> None:
    assert [backoff_delay(n, base_seconds=2) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff_delay(30, base_seconds=2, cap_seconds=60) == 60
    assert backoff_delay(1, base_seconds=2, retry_after=45) == 45
    assert backoff_delay(1, base_seconds=2, jitter=0.5) == 3
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(0)


def _status_error(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/x")
    return httpx.HTTPStatusError(
        "boom", request=request, response=httpx.Response(code, request=request)
    )


def test_classify_our_own_exceptions() -> None:
    assert classify_exception(TimeoutError()).category is C.TIMEOUT
    assert classify_exception(httpx.ReadTimeout("slow")).category is C.TIMEOUT
    assert classify_exception(httpx.ConnectTimeout("no route")).category is C.NETWORK
    assert classify_exception(httpx.ConnectError("refused")).category is C.NETWORK
    assert classify_exception(ConnectionResetError()).category is C.NETWORK
    assert classify_exception(MemoryError()).category is C.RESOURCE_EXHAUSTION
    disk = OSError(errno.ENOSPC, "No space left on device")
    assert classify_exception(disk).category is C.RESOURCE_EXHAUSTION
    assert classify_exception(_status_error(503)).category is C.INTEGRATION
    assert classify_exception(_status_error(429)).category is C.RATE_LIMIT
    assert classify_exception(_status_error(401)).category is C.AUTH
    assert classify_exception(ValueError("bad")).category is C.UNKNOWN


def test_classify_integration_errors_by_reason() -> None:
    limited = CIProviderError(
        "rate limited", reason=ErrorReason.RATE_LIMITED, service="github", reset_at=1234.0
    )
    found = classify_exception(limited)
    assert (found.category, found.service, found.retry_at) == (C.RATE_LIMIT, "github", 1234.0)
    auth = NotifierError("invalid_auth", reason=ErrorReason.AUTH, service="slack", status_code=200)
    assert classify_exception(auth).category is C.AUTH
    down = CIProviderError("503", reason=ErrorReason.UNAVAILABLE, service="github", status_code=503)
    assert classify_exception(down).category is C.INTEGRATION
    try:
        try:
            raise httpx.ConnectError("refused")
        except httpx.ConnectError as cause:
            raise CIProviderError("cannot connect", reason=ErrorReason.UNAVAILABLE) from cause
    except CIProviderError as exc:
        assert classify_exception(exc).category is C.NETWORK
    try:
        try:
            raise httpx.ReadTimeout("slow")
        except httpx.ReadTimeout as cause:
            raise CIProviderError("timed out", reason=ErrorReason.UNAVAILABLE) from cause
    except CIProviderError as exc:
        assert classify_exception(exc).category is C.TIMEOUT
    invalid = CIProviderError("422", reason=ErrorReason.INVALID, status_code=422)
    assert classify_exception(invalid).category is C.UNKNOWN
    # wrapped in something else: the cause decides
    try:
        try:
            raise auth
        except NotifierError as cause:
            raise RuntimeError("notify failed") from cause
    except RuntimeError as exc:
        assert classify_exception(exc).category is C.AUTH


CFG = BreakerConfig(
    failure_threshold=3, open_seconds=10, max_open_seconds=40, probe_timeout_seconds=5
)


def test_breaker_opens_after_threshold_then_half_open_then_closes() -> None:
    b = CircuitBreaker()
    for t in (0.0, 1.0):
        b = breaker_failure(b, t, CFG)
        assert b.state == "closed"
    b = breaker_failure(b, 2.0, CFG, error="503")
    assert (b.state, b.trips, b.retry_at()) == ("open", 1, 12.0)
    allowed, b = breaker_allows(b, 5.0, CFG)
    assert not allowed and b.state == "open"
    allowed, b = breaker_allows(b, 12.0, CFG)
    assert allowed and b.state == "half_open"
    # a second caller during the probe is refused
    allowed, _ = breaker_allows(b, 13.0, CFG)
    assert not allowed
    b = breaker_success(b, 14.0)
    assert (b.state, b.consecutive_failures, b.trips) == ("closed", 0, 1)
    assert breaker_allows(b, 14.0, CFG)[0]


def test_failed_probe_doubles_the_cool_down_up_to_the_cap() -> None:
    b = breaker_failure(CircuitBreaker(), 0.0, CFG, open_now=True)
    assert b.open_seconds == 10
    cool_downs = []
    now = 0.0
    for _ in range(4):
        now = b.retry_at() or now
        allowed, b = breaker_allows(b, now, CFG)
        assert allowed
        b = breaker_failure(b, now, CFG)
        cool_downs.append(b.open_seconds)
    assert cool_downs == [20, 40, 40, 40]


def test_stale_probe_frees_the_slot() -> None:
    b = breaker_failure(CircuitBreaker(), 0.0, CFG, open_now=True)
    _, b = breaker_allows(b, 10.0, CFG)
    assert not breaker_allows(b, 12.0, CFG)[0]
    assert breaker_allows(b, 15.0, CFG)[0]


def test_rate_limit_opens_until_reset() -> None:
    b = breaker_failure(CircuitBreaker(), 100.0, CFG, retry_at=160.0)
    assert b.state == "open" and b.retry_at() == 160.0
    assert not breaker_allows(b, 159.0, CFG)[0]
    assert breaker_allows(b, 160.0, CFG)[0]


def test_breaker_round_trips_through_dict() -> None:
    b = breaker_failure(CircuitBreaker(), 3.0, CFG, open_now=True, error="x" * 500)
    again = CircuitBreaker.from_dict(b.to_dict())
    assert again == b
    assert len(again.last_error) == 300
    assert CircuitBreaker.from_dict({"state": "bogus"}).state == "closed"
    assert CircuitBreaker.from_dict(None) == CircuitBreaker()
