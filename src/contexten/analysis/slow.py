"""Slow tests: the top N by p50 or p95 duration, and tests getting slower. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from contexten.analysis.executions import TestStats
from contexten.analysis.regression import Comparison, compare_samples

RankBy = Literal["p50", "p95"]


@dataclass(frozen=True, slots=True)
class SlowTest:
    stats: TestStats
    p50: float
    p95: float
    share: float  # of the summed p50 of all tests: where the suite's time goes


def slowest(stats: Iterable[TestStats], *, top: int = 20, by: RankBy = "p50") -> list[SlowTest]:
    """The `top` tests by median (or p95) duration, with their share of total time."""
    if top < 1:
        raise ValueError("top must be at least 1")
    timed = [s for s in stats if s.p50 is not None and s.p95 is not None]
    total = sum(s.p50 or 0.0 for s in timed)
    if by == "p50":
        timed.sort(key=lambda s: (-(s.p50 or 0.0), -(s.p95 or 0.0), s.test_id))
    else:
        timed.sort(key=lambda s: (-(s.p95 or 0.0), -(s.p50 or 0.0), s.test_id))
    return [
        SlowTest(s, s.p50 or 0.0, s.p95 or 0.0, (s.p50 or 0.0) / total if total else 0.0)
        for s in timed[:top]
    ]


@dataclass(frozen=True, slots=True)
class SlowerTest:
    stats: TestStats
    comparison: Comparison  # older half of the window vs recent half


def getting_slower(
    stats: Iterable[TestStats],
    *,
    threshold_percent: float = 20.0,
    false_discovery_rate: float = 0.05,
    min_samples: int = 8,
    min_seconds: float = 0.05,
) -> list[SlowerTest]:
    """Tests whose recent durations are significantly slower than their older ones.

    Thousands of tests are tested at once, so a per-test p < 0.05 would flag hundreds by
    chance; the Benjamini-Hochberg procedure keeps the expected share of false alarms
    among the flagged tests at `false_discovery_rate`, counting every test that had
    enough samples. `min_seconds`: 2 ms → 3 ms is +50 % and nobody's problem.
    """
    eligible = 0
    tested: list[SlowerTest] = []
    for s in stats:
        if s.duration_samples < 2 * min_samples:
            continue
        eligible += 1
        if not s.recent_durations or (s.recent_p50 or 0.0) < min_seconds:
            continue
        comparison = compare_samples(
            s.older_durations,
            s.recent_durations,
            threshold_percent=threshold_percent,
            alpha=false_discovery_rate,
            min_samples=min_samples,
            bootstrap=0,
        )
        if (
            comparison.p_value is not None
            and (comparison.change_percent or 0.0) >= threshold_percent
        ):
            tested.append(SlowerTest(s, comparison))
    found = benjamini_hochberg(tested, eligible, false_discovery_rate)
    found.sort(key=lambda t: (-(t.comparison.delta or 0.0), t.stats.test_id))
    return found


def benjamini_hochberg(tested: list[SlowerTest], m: int, q: float) -> list[SlowerTest]:
    """The tests whose p-values pass the Benjamini-Hochberg step-up at rate q over m tests."""
    ranked = sorted(tested, key=lambda t: t.comparison.p_value or 1.0)
    cutoff = 0
    for k, t in enumerate(ranked, start=1):
        if (t.comparison.p_value or 1.0) <= k / max(m, 1) * q:
            cutoff = k
    return ranked[:cutoff]
