"""The one exponential back-off formula."""

from __future__ import annotations

from contexten.analysis.backoff import exponential_backoff


def test_doubles_from_the_base_and_stops_at_the_cap() -> None:
    assert [exponential_backoff(a, 1.5, 10.0) for a in range(1, 6)] == [1.5, 3.0, 6.0, 10.0, 10.0]


def test_attempts_below_one_count_as_the_first_and_huge_attempts_stay_finite() -> None:
    assert exponential_backoff(0, 2.0) == exponential_backoff(1, 2.0) == 2.0
    assert exponential_backoff(10_000, 1.0, 900.0) == 900.0
    assert exponential_backoff(10_000, 1.0) == 2.0**62
