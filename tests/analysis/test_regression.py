"""Mann-Whitney A/B verdicts and change points on seeded synthetic durations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from contexten.analysis.regression import RegressionVerdict, change_points, compare_samples


def normal(mean: float, sd: float, n: int, seed: int) -> list[float]:
    return list(np.random.default_rng(seed).normal(mean, sd, n))


def test_significant_and_large_shift_is_a_regression() -> None:
    result = compare_samples(normal(100, 10, 20, 1), normal(140, 10, 20, 2))
    assert result.verdict is RegressionVerdict.REGRESSED
    assert result.change_percent is not None and 30 < result.change_percent < 50
    assert result.p_value is not None and result.p_value < 0.001
    assert result.ci_low_percent is not None and result.ci_high_percent is not None
    assert result.ci_low_percent < result.change_percent < result.ci_high_percent
    assert result.delta is not None and result.delta > 0


def test_significant_but_small_shift_is_the_same() -> None:
    result = compare_samples(normal(100, 1, 40, 3), normal(105, 1, 40, 4))
    assert result.verdict is RegressionVerdict.SAME
    assert result.p_value is not None and result.p_value < 0.05
    assert "under the 20% threshold" in result.reason


def test_large_but_noisy_shift_is_the_same() -> None:
    base = [10, 200, 15, 180, 12, 190, 14, 170]
    head = [12, 210, 16, 185, 13, 260, 15, 175]
    result = compare_samples(base, head, threshold_percent=10)
    assert result.verdict is RegressionVerdict.SAME
    assert "not significant" in result.reason


def test_faster_is_improved() -> None:
    result = compare_samples(normal(100, 5, 12, 5), normal(60, 5, 12, 6))
    assert result.verdict is RegressionVerdict.IMPROVED


def test_too_few_samples_is_unknown_with_the_medians_still_reported() -> None:
    result = compare_samples([100.0] * 7, [300.0] * 30)
    assert result.verdict is RegressionVerdict.UNKNOWN
    assert result.change_percent == pytest.approx(200.0)
    assert result.p_value is None
    assert "collect more" in result.reason


def test_missing_values_are_ignored_and_constant_samples_are_the_same() -> None:
    result = compare_samples([5.0] * 8 + [None, math.nan], [5.0] * 8)
    assert result.baseline_n == 8
    assert result.verdict is RegressionVerdict.SAME
    assert result.p_value == 1.0


def test_change_point_found_where_the_level_shifts() -> None:
    series = normal(100, 4, 40, 7) + normal(130, 4, 30, 8)
    (point,) = change_points(series)
    assert point.index == 40
    assert 25 < point.change_percent < 35
    assert point.p_value <= 0.001


def test_no_change_point_in_noise_or_under_the_minimum_magnitude() -> None:
    assert change_points(normal(100, 10, 80, 9)) == []
    small = normal(100, 0.5, 40, 10) + normal(103, 0.5, 40, 11)
    assert change_points(small, min_magnitude_percent=10) == []
    assert len(change_points(small, min_magnitude_percent=1)) == 1


def test_two_shifts_are_both_found() -> None:
    series = normal(50, 2, 30, 12) + normal(80, 2, 30, 13) + normal(60, 2, 30, 14)
    assert [p.index for p in change_points(series)] == [30, 60]


def test_constant_segments_do_not_crash() -> None:
    assert [p.index for p in change_points([10.0] * 10 + [20.0] * 10)] == [10]
    assert change_points([1.0] * 30) == []
