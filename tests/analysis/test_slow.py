"""Slowest tests and tests getting slower."""

from __future__ import annotations

import numpy as np
import pytest

from contexten.analysis.executions import CaseExecution, TestStats, summarize_test
from contexten.analysis.slow import getting_slower, slowest


def history(test: str, durations: list[float]) -> TestStats:
    rows = [
        CaseExecution(test, "passed", d, f"c{i}", str(i), 1, "test", 1000.0 + i)
        for i, d in enumerate(durations)
    ]
    stats = summarize_test(test, rows)
    assert stats is not None
    return stats


def test_slowest_ranks_by_p50_or_p95_with_share_of_time() -> None:
    steady = history("steady", [3.0] * 20)
    spiky = history("spiky", [1.0] * 18 + [30.0, 30.0])
    quick = history("quick", [0.1] * 20)
    by_p50 = slowest([quick, spiky, steady], top=2)
    assert [s.stats.test_id for s in by_p50] == ["steady", "spiky"]
    assert by_p50[0].share == pytest.approx(3.0 / 4.1)
    by_p95 = slowest([quick, spiky, steady], top=1, by="p95")
    assert [s.stats.test_id for s in by_p95] == ["spiky"]
    with pytest.raises(ValueError):
        slowest([steady], top=0)


def test_getting_slower_needs_a_significant_and_large_slowdown() -> None:
    rng = np.random.default_rng(0)
    slower = history("slower", list(rng.normal(1.0, 0.05, 20)) + list(rng.normal(1.6, 0.05, 20)))
    noisy = history("noisy", list(rng.normal(1.0, 0.05, 20)) + list(rng.normal(1.05, 0.05, 20)))
    tiny = history("tiny", [0.001] * 20 + [0.004] * 20)
    found = getting_slower([slower, noisy, tiny])
    assert [t.stats.test_id for t in found] == ["slower"]
    assert found[0].comparison.change_percent is not None
    assert 50 < found[0].comparison.change_percent < 70


def test_getting_slower_needs_enough_samples() -> None:
    few = history("few", [1.0, 1.0, 1.0, 5.0, 5.0, 5.0])
    assert few.slowdown_percent == pytest.approx(400.0)
    assert getting_slower([few]) == []


def test_many_tests_do_not_raise_false_alarms_by_chance() -> None:
    # 400 tests whose durations never change, 20 samples each side: at p < 0.05 per test
    # about a dozen would be flagged by chance; the false discovery rate control flags none
    # of them, and still finds the one that really got slower.
    rng = np.random.default_rng(42)
    noise = [history(f"t{i}", list(rng.lognormal(0, 0.25, 40))) for i in range(400)]
    real = history("real", list(rng.lognormal(0, 0.25, 20)) + list(rng.lognormal(0.5, 0.25, 20)))
    found = getting_slower([*noise, real])
    assert [t.stats.test_id for t in found] == ["real"]
