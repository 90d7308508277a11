"""The shared retry policy: classification of every service's failures and the retry loop."""

from __future__ import annotations

import email.utils
import json
import random

import httpx
import pytest

from contexten.integrations.http import (
    AttemptFailure,
    RetryPolicy,
    classify_exception,
    classify_response,
    parse_retry_after,
    request_with_retries,
)
from contexten.integrations.interface import (
    CIProviderError,
    ErrorReason,
    IssueTrackerError,
    NotifierError,
)
from contexten.sandbox.testing import ManualClock, fast_policy

NOW = 1_700_000_000.0


def body(data: object) -> bytes:
    return json.dumps(data).encode()


# ----------------------------------------------------------------------------- Retry-After


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after(date, NOW) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(NOW - 30, usegmt=True), NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


# ----------------------------------------------------------------------------- classification


@pytest.mark.parametrize("status", [403, 429])
def test_github_primary_limit_waits_for_reset(status: int) -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 120)}
    failure = classify_response(
        status, headers, body({"message": "API rate limit exceeded for user ID 1."}), NOW
    )
    assert failure is not None
    assert failure.reason is ErrorReason.RATE_LIMITED
    assert failure.reset_at == NOW + 120
    assert failure.wait_seconds == pytest.approx(121.0)
    assert not failure.secondary


@pytest.mark.parametrize("status", [403, 429])
def test_github_secondary_limit_with_retry_after(status: int) -> None:
    message = "You have exceeded a secondary rate limit. Please wait a few minutes."
    headers = {"retry-after": "30", "x-ratelimit-remaining": "4000"}
    failure = classify_response(status, headers, body({"message": message}), NOW)
    assert failure is not None and failure.reason is ErrorReason.RATE_LIMITED
    assert failure.secondary
    policy = RetryPolicy(jitter=False, rng=random.Random(0))
    # At least a minute even though the header says 30 s, then exponential on top.
    assert policy.delay_for(failure, 1) == pytest.approx(60.0 + 1.0)
    assert policy.delay_for(failure, 3) == pytest.approx(60.0 + 4.0)


def test_github_secondary_limit_by_message_only_waits_a_minute() -> None:
    message = "You have exceeded a secondary rate limit and have been temporarily blocked."
    failure = classify_response(403, {}, body({"message": message}), NOW)
    assert failure is not None and failure.secondary
    assert RetryPolicy(jitter=False).delay_for(failure, 1) >= 60.0


def test_plain_403_is_an_auth_error_not_a_rate_limit() -> None:
    failure = classify_response(
        403, {"x-ratelimit-remaining": "4999"}, body({"message": "Resource not accessible"}), NOW
    )
    assert failure is not None
    assert failure.reason is ErrorReason.AUTH and not failure.retryable


@pytest.mark.parametrize("status", [400, 429])
def test_linear_ratelimited_in_both_forms(status: int) -> None:
    data = {
        "errors": [
            {
                "message": "Rate limit exceeded",
                "extensions": {"code": "RATELIMITED", "statusCode": 429},
            }
        ]
    }
    reset_ms = int((NOW + 45) * 1000)
    headers = {"x-ratelimit-requests-remaining": "0", "x-ratelimit-requests-reset": str(reset_ms)}
    failure = classify_response(status, headers, body(data), NOW)
    assert failure is not None and failure.reason is ErrorReason.RATE_LIMITED
    assert failure.reset_at == pytest.approx(NOW + 45)  # milliseconds understood
    assert failure.wait_seconds == pytest.approx(46.0)


def test_linear_400_without_ratelimited_is_invalid() -> None:
    data = {
        "errors": [
            {"message": "Argument Validation Error", "extensions": {"code": "INVALID_INPUT"}}
        ]
    }
    failure = classify_response(400, {}, body(data), NOW)
    assert failure is not None
    assert failure.reason is ErrorReason.INVALID and not failure.retryable


def test_slack_429_retry_after_on_plain_text() -> None:
    failure = classify_response(429, {"Retry-After": "3"}, b"rate_limited", NOW)
    assert failure is not None and failure.reason is ErrorReason.RATE_LIMITED
    assert failure.wait_seconds == 3.0
    assert RetryPolicy().delay_for(failure, 2) == 3.0


@pytest.mark.parametrize(
    ("status", "text", "reason", "retryable"),
    [
        (500, b"", ErrorReason.UNAVAILABLE, True),
        (502, b"bad gateway", ErrorReason.UNAVAILABLE, True),
        (401, b'{"message":"Bad credentials"}', ErrorReason.AUTH, False),
        (404, b'{"message":"Not Found"}', ErrorReason.NOT_FOUND, False),
        (410, b'{"message":"Gone"}', ErrorReason.NOT_FOUND, False),
        (409, b'{"message":"conflict"}', ErrorReason.CONFLICT, False),
        (422, b'{"message":"Reference already exists"}', ErrorReason.CONFLICT, False),
        (422, b'{"message":"Validation Failed"}', ErrorReason.INVALID, False),
    ],
)
def test_status_classification(
    status: int, text: bytes, reason: ErrorReason, retryable: bool
) -> None:
    failure = classify_response(status, {}, text, NOW)
    assert failure is not None
    assert (failure.reason, failure.retryable) == (reason, retryable)


def test_success_is_not_a_failure() -> None:
    assert classify_response(200, {}, b"{}", NOW) is None
    assert classify_response(302, {"location": "x"}, b"", NOW) is None


def test_exception_classification() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:1/")
    connect = classify_exception(httpx.ConnectError("refused", request=request))
    assert connect is not None and not connect.maybe_processed
    read = classify_exception(httpx.ReadTimeout("slow", request=request))
    assert read is not None and read.maybe_processed
    dropped = classify_exception(httpx.RemoteProtocolError("peer closed", request=request))
    assert dropped is not None and dropped.maybe_processed
    assert classify_exception(ValueError("bug")) is None


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, rng=random.Random(1))
    samples = [policy.backoff(attempt) for attempt in range(1, 9) for _ in range(50)]
    assert all(0.0 <= s <= 8.0 for s in samples)
    assert max(samples) > 4.0  # large attempts reach towards the cap
    unjittered = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=False)
    assert [unjittered.backoff(a) for a in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_policy_from_settings() -> None:
    from contexten.config import Settings

    settings = Settings(http_max_attempts=3, http_max_total_seconds=42, http_timeout_seconds=7)
    policy = RetryPolicy.from_settings(settings)
    assert (policy.max_attempts, policy.max_total_seconds, policy.timeout_seconds) == (3, 42, 7)


# ----------------------------------------------------------------------------- the loop


def scripted(responses: list[httpx.Response | Exception]) -> tuple[httpx.AsyncClient, list[str]]:
    """A client whose requests get `responses` in order; records the methods it saw."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        item = responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


@pytest.mark.parametrize("status", [403, 429])
async def test_honours_ratelimit_reset_then_succeeds(status: int) -> None:
    clock = ManualClock(start_wall=NOW)
    policy = fast_policy(clock, wall_clock=clock.wall)
    limited = httpx.Response(
        status,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 20)},
        json={"message": "API rate limit exceeded"},
    )
    client, seen = scripted([limited, httpx.Response(200, json={"ok": True})])
    response = await request_with_retries(
        client,
        "GET",
        "http://api.test/x",
        policy=policy,
        error_type=CIProviderError,
        service="github",
    )
    assert response.json() == {"ok": True}
    assert clock.sleeps == [pytest.approx(21.0)]
    assert seen == ["GET", "GET"]


async def test_honours_retry_after_on_429() -> None:
    clock = ManualClock()
    client, _ = scripted(
        [
            httpx.Response(429, headers={"Retry-After": "4"}, text="rate_limited"),
            httpx.Response(200, text="ok"),
        ]
    )
    await request_with_retries(
        client,
        "POST",
        "http://hooks.test/services/x",
        policy=fast_policy(clock),
        error_type=NotifierError,
        service="slack",
    )
    assert clock.sleeps == [4.0]


async def test_primary_limit_beyond_budget_fails_at_once_with_reset_time() -> None:
    clock = ManualClock(start_wall=NOW)
    policy = fast_policy(clock, wall_clock=clock.wall, max_total_seconds=60)
    limited = httpx.Response(
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3000)},
        json={"message": "API rate limit exceeded"},
    )
    client, seen = scripted([limited])
    with pytest.raises(CIProviderError) as caught:
        await request_with_retries(
            client,
            "GET",
            "http://api.test/x",
            policy=policy,
            error_type=CIProviderError,
            service="github",
        )
    err = caught.value
    assert err.rate_limited and err.reason is ErrorReason.RATE_LIMITED
    assert err.reset_at == NOW + 3000
    assert clock.sleeps == []  # did not sleep for 50 minutes
    assert seen == ["GET"]


async def test_gives_up_after_max_attempts_with_typed_error() -> None:
    clock = ManualClock()
    client, seen = scripted([httpx.Response(503, text="down")] * 3)
    with pytest.raises(IssueTrackerError) as caught:
        await request_with_retries(
            client,
            "GET",
            "http://linear.test/graphql",
            policy=fast_policy(clock, max_attempts=3),
            error_type=IssueTrackerError,
            service="linear",
        )
    assert caught.value.unavailable and caught.value.status_code == 503
    assert len(seen) == 3 and len(clock.sleeps) == 2


async def test_total_time_bounds_retries() -> None:
    clock = ManualClock()
    client, seen = scripted([httpx.Response(503, headers={"Retry-After": "40"})] * 10)
    with pytest.raises(CIProviderError):
        await request_with_retries(
            client,
            "GET",
            "http://api.test/x",
            policy=fast_policy(clock, max_attempts=10, max_total_seconds=100),
            error_type=CIProviderError,
            service="github",
        )
    assert sum(clock.sleeps) <= 100
    assert len(seen) == 3  # 0, 40, 80 s; the next wait would pass 100 s


async def test_post_is_not_retried_after_an_ambiguous_failure() -> None:
    clock = ManualClock()
    client, seen = scripted([httpx.Response(502, text="bad gateway"), httpx.Response(201)])
    with pytest.raises(CIProviderError) as caught:
        await request_with_retries(
            client,
            "POST",
            "http://api.test/x",
            policy=fast_policy(clock),
            error_type=CIProviderError,
            service="github",
        )
    assert caught.value.maybe_processed
    assert seen == ["POST"]


async def test_post_is_retried_when_it_certainly_did_not_happen() -> None:
    clock = ManualClock()
    request = httpx.Request("POST", "http://api.test/x")
    client, seen = scripted(
        [
            httpx.ConnectError("refused", request=request),
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(201, json={"id": 1}),
        ]
    )
    response = await request_with_retries(
        client,
        "POST",
        "http://api.test/x",
        policy=fast_policy(clock),
        error_type=CIProviderError,
        service="github",
    )
    assert response.status_code == 201 and seen == ["POST", "POST", "POST"]


async def test_get_is_retried_after_timeouts_and_5xx() -> None:
    clock = ManualClock()
    request = httpx.Request("GET", "http://api.test/x")
    client, seen = scripted(
        [
            httpx.ReadTimeout("slow", request=request),
            httpx.Response(500),
            httpx.Response(200, text="ok"),
        ]
    )
    response = await request_with_retries(
        client,
        "GET",
        "http://api.test/x",
        policy=fast_policy(clock),
        error_type=CIProviderError,
        service="github",
    )
    assert response.text == "ok" and len(seen) == 3 and len(clock.sleeps) == 2


async def test_custom_classifier_can_fail_a_200() -> None:
    def graphql(
        status: int, headers: object, content: bytes | str | None, now: float
    ) -> AttemptFailure | None:
        data = json.loads(content or b"{}")
        if data.get("errors"):
            return AttemptFailure(
                ErrorReason.INVALID, data["errors"][0]["message"], retryable=False
            )
        return None

    client, _ = scripted([httpx.Response(200, json={"errors": [{"message": "Entity not found"}]})])
    with pytest.raises(IssueTrackerError, match="Entity not found"):
        await request_with_retries(
            client,
            "POST",
            "http://linear.test/graphql",
            policy=fast_policy(),
            error_type=IssueTrackerError,
            service="linear",
            classify=graphql,  # type: ignore[arg-type]
            idempotent=True,
        )


def test_delay_after_a_response_or_an_exception() -> None:
    policy = RetryPolicy(jitter=False, wall_clock=lambda: NOW, max_attempts=3)
    limited = httpx.Response(429, headers={"Retry-After": "9"})
    assert policy.delay_after(limited, 1) == 9.0
    assert policy.delay_after(limited, 3) is None  # out of attempts
    assert policy.delay_after(httpx.Response(404), 1) is None
    assert policy.delay_after(httpx.Response(200), 1) is None
    request = httpx.Request("GET", "http://x/")
    assert policy.delay_after(httpx.ConnectError("no", request=request), 2) == 2.0
    assert policy.delay_after(ValueError("bug"), 1) is None
