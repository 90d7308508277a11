"""Duration regressions: A/B comparison of two samples, and change points in a series.

A/B (baseline branch vs head branch): Mann-Whitney U, which assumes nothing about the
shape of CI durations (skewed, with outliers), with a three-way verdict — regressed or
improved only when the shift is significant AND larger than the alert threshold; "same"
when it is not; "unknown" when either side has too few samples to say (collect more).
The change is reported as the change of medians, with a bootstrap confidence interval.

Series (one branch over time): binary segmentation with Welch's t-test, in the manner of
Hunter / Apache Otava's E-divisive: a split is a change point only when p ≤ 0.001 and the
medians differ by at least a minimum magnitude, within bounded segments.

SciPy and NumPy are imported inside the functions that use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from contexten.analysis.executions import median

DEFAULT_MIN_SAMPLES = 8


class RegressionVerdict(StrEnum):
    REGRESSED = "regressed"
    IMPROVED = "improved"
    SAME = "same"
    UNKNOWN = "unknown"  # not enough data: collect more runs


@dataclass(frozen=True, slots=True)
class Comparison:
    verdict: RegressionVerdict
    baseline_n: int
    head_n: int
    baseline_median: float | None
    head_median: float | None
    change_percent: float | None  # of the medians, head vs baseline
    p_value: float | None  # two-sided Mann-Whitney U
    ci_low_percent: float | None  # 95 % bootstrap interval of change_percent
    ci_high_percent: float | None
    reason: str

    @property
    def delta(self) -> float | None:
        if self.baseline_median is None or self.head_median is None:
            return None
        return self.head_median - self.baseline_median


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def compare_samples(
    baseline: Sequence[float | None],
    head: Sequence[float | None],
    *,
    threshold_percent: float = 20.0,
    alpha: float = 0.05,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    bootstrap: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Did `head` get slower (or faster) than `baseline` by more than the threshold?"""
    base = _finite(baseline)
    new = _finite(head)
    base_median = median(base) if base else None
    head_median = median(new) if new else None
    change = _change_percent(base_median, head_median)
    if len(base) < min_samples or len(new) < min_samples:
        return Comparison(
            RegressionVerdict.UNKNOWN,
            len(base),
            len(new),
            base_median,
            head_median,
            change,
            None,
            None,
            None,
            f"need at least {min_samples} samples per side, have {len(base)} baseline"
            f" and {len(new)} head: collect more runs",
        )
    from scipy.stats import mannwhitneyu

    if len(set(base) | set(new)) == 1:
        p_value = 1.0  # all equal: no shift at all
    else:
        p_value = float(mannwhitneyu(new, base, alternative="two-sided").pvalue)
    low, high = _bootstrap_ci(base, new, bootstrap, seed) if bootstrap > 0 else (None, None)
    significant = p_value < alpha
    assert change is not None  # both sides have samples here
    if significant and change >= threshold_percent:
        verdict = RegressionVerdict.REGRESSED
        reason = (
            f"median {change:+.1f}% (p={p_value:.3g}) over the {threshold_percent:g}% threshold"
        )
    elif significant and change <= -threshold_percent:
        verdict = RegressionVerdict.IMPROVED
        reason = f"median {change:+.1f}% (p={p_value:.3g})"
    elif significant:
        verdict = RegressionVerdict.SAME
        reason = (
            f"median {change:+.1f}% is significant (p={p_value:.3g}) but under the"
            f" {threshold_percent:g}% threshold"
        )
    else:
        verdict = RegressionVerdict.SAME
        reason = f"median {change:+.1f}% is not significant (p={p_value:.3g})"
    return Comparison(
        verdict, len(base), len(new), base_median, head_median, change, p_value, low, high, reason
    )


def _change_percent(base: float | None, head: float | None) -> float | None:
    if base is None or head is None:
        return None
    if base == 0:
        return 0.0 if head == 0 else math.inf
    return (head / base - 1.0) * 100.0


def _bootstrap_ci(
    base: list[float], head: list[float], rounds: int, seed: int
) -> tuple[float | None, float | None]:
    import numpy as np

    rng = np.random.default_rng(seed)
    b = np.asarray(base)
    h = np.asarray(head)
    b_medians = np.median(rng.choice(b, size=(rounds, b.size), replace=True), axis=1)
    h_medians = np.median(rng.choice(h, size=(rounds, h.size), replace=True), axis=1)
    valid = b_medians > 0
    if not valid.any():
        return None, None
    changes = (h_medians[valid] / b_medians[valid] - 1.0) * 100.0
    low, high = np.percentile(changes, [2.5, 97.5])
    return float(low), float(high)


# ----- change points ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangePoint:
    index: int  # first point of the new level
    before_median: float
    after_median: float
    change_percent: float
    p_value: float


def change_points(
    series: Sequence[float],
    *,
    p_threshold: float = 0.001,
    min_magnitude_percent: float = 10.0,
    min_segment: int = 5,
    window: int = 60,
) -> list[ChangePoint]:
    """Level shifts in a series (oldest first), by binary segmentation.

    Each segment is searched for the split with the largest Welch t statistic; it counts
    when p ≤ `p_threshold` and the medians differ by at least `min_magnitude_percent`.
    The test looks at most `window` points either side of a candidate split.
    """
    values = _finite(series)
    if len(values) < 2 * min_segment:
        return []
    found: list[ChangePoint] = []
    _segment(values, 0, len(values), p_threshold, min_magnitude_percent, min_segment, window, found)
    found.sort(key=lambda c: c.index)
    return found


def _segment(
    values: list[float],
    start: int,
    end: int,
    p_threshold: float,
    min_magnitude: float,
    min_segment: int,
    window: int,
    found: list[ChangePoint],
) -> None:
    if end - start < 2 * min_segment:
        return
    best = _best_split(values, start, end, min_segment)
    if best is None:
        return
    split, _t = best
    left = values[max(start, split - window) : split]
    right = values[split : min(end, split + window)]
    if len(set(left)) == 1 and len(set(right)) == 1:
        if left[0] == right[0]:
            return
        p_value = 0.0  # two flat levels: the t statistic is infinite
    else:
        from scipy.stats import ttest_ind

        p_value = float(ttest_ind(left, right, equal_var=False).pvalue)
    before, after = median(left), median(right)
    change = _change_percent(before, after)
    if (
        math.isfinite(p_value)
        and p_value <= p_threshold
        and change is not None
        and abs(change) >= min_magnitude
    ):
        found.append(ChangePoint(split, before, after, change, p_value))
        _segment(values, start, split, p_threshold, min_magnitude, min_segment, window, found)
        _segment(values, split, end, p_threshold, min_magnitude, min_segment, window, found)


def _best_split(
    values: list[float], start: int, end: int, min_segment: int
) -> tuple[int, float] | None:
    """The split maximising Welch's t, from running sums: O(n) per segment."""
    n = end - start
    total = math.fsum(values[start:end])
    total_sq = math.fsum(v * v for v in values[start:end])
    left_sum = left_sq = 0.0
    best: tuple[int, float] | None = None
    for i in range(start, end - min_segment):
        v = values[i]
        left_sum += v
        left_sq += v * v
        n_left = i - start + 1
        if n_left < min_segment:
            continue
        n_right = n - n_left
        mean_l = left_sum / n_left
        mean_r = (total - left_sum) / n_right
        var_l = max(left_sq / n_left - mean_l * mean_l, 0.0) * n_left / max(n_left - 1, 1)
        var_r = (
            max((total_sq - left_sq) / n_right - mean_r * mean_r, 0.0)
            * n_right
            / max(n_right - 1, 1)
        )
        denom = math.sqrt(var_l / n_left + var_r / n_right)
        t = abs(mean_l - mean_r) / denom if denom > 0 else (math.inf if mean_l != mean_r else 0.0)
        if best is None or t > best[1]:
            best = (i + 1, t)
    return best
