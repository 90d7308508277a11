"""The fast path from a large test history to TestStats: columnar, NumPy, bounded memory.

Most tests in a window only ever pass (or are skipped). For those, everything TestStats
says follows from a few per-test aggregates: counts, first and last time seen, the commits
they ran on, the newest N durations and outcomes. `HistoryAccumulator` keeps exactly that,
chunk by chunk, in NumPy arrays:

- counts per (test, outcome), first/last seen per test;
- a (test × commit) "ran here" bit matrix (bounded by tests × commits in the window);
- the newest `max_duration_samples` durations and `timeline_length` outcomes per test,
  pruned whenever the buffer outgrows a few times that.

Tests that failed, errored or passed on a retry are "candidates": their executions are
read again in full (few rows) and folded by `summarize_test`, the exact, row-by-row
definition of flakiness. Both paths produce identical TestStats (a test checks that).

Pure: columns in, TestStats out; NumPy is imported when the class is used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from contexten.analysis.executions import (
    MAX_DURATION_SAMPLES,
    TIMELINE_LENGTH,
    TIMELINE_SYMBOLS,
    CaseExecution,
    TestStats,
    duration_fields,
    summarize_test,
)

OUTCOME_CODES: dict[str, int] = {"passed": 0, "failed": 1, "error": 2, "skipped": 3, "flaky": 4}
CODE_NAMES = ("passed", "failed", "error", "skipped", "flaky")
_PASSED, _FAILED, _ERROR, _SKIPPED, _FLAKY = range(5)


class HistoryAccumulator:
    """Per-test aggregates of a stream of executions, given in time order, in chunks."""

    def __init__(
        self,
        *,
        max_duration_samples: int = MAX_DURATION_SAMPLES,
        timeline_length: int = TIMELINE_LENGTH,
        slower_min_percent: float = 20.0,
    ) -> None:
        import numpy as np

        self._np = np
        self.max_duration_samples = max(1, max_duration_samples)
        self.timeline_length = max(1, timeline_length)
        self.slower_min_percent = slower_min_percent
        self._tests: dict[str, int] = {}
        self._groups: dict[str, int] = {}
        self._counts = np.zeros((0, 5), np.int64)
        self._first = np.zeros(0)
        self._last = np.zeros(0)
        self._ran = np.zeros((0, 0), bool)
        self._durations: list[tuple[Any, Any, Any]] = []
        self._duration_rows = 0
        self._outcomes: list[tuple[Any, Any, Any]] = []
        self._outcome_rows = 0
        self.rows = 0

    # ----- feeding --------------------------------------------------------------------------

    def add(
        self,
        test_ids: Sequence[str],
        outcomes: Sequence[int],
        durations: Sequence[float | None],
        times: Sequence[float],
        groups: Sequence[str],
    ) -> None:
        """One chunk of executions, as columns (sequences or NumPy arrays).

        Outcomes are OUTCOME_CODES values; a duration that is None, NaN or negative means
        the report gave none.
        """
        np = self._np
        n = len(test_ids)
        if n == 0:
            return
        tests = self._tests
        codes = self._codes(tests, test_ids, n)
        group_index = self._groups
        group_codes = self._codes(group_index, groups, n)
        outcome = np.array(outcomes, np.int64)
        outcome[(outcome < 0) | (outcome > _FLAKY)] = _PASSED  # unknown outcomes pass
        at = np.asarray(times, np.float64)
        if isinstance(durations, np.ndarray):
            duration = durations.astype(np.float64, copy=False)  # negative: no duration
        else:
            duration = np.array([math.nan if d is None else d for d in durations], np.float64)
        self._grow(len(tests), len(group_index))
        size = len(tests)
        self._counts[:size] += np.bincount(codes * 5 + outcome, minlength=size * 5).reshape(size, 5)
        np.minimum.at(self._first, codes, at)
        np.maximum.at(self._last, codes, at)
        ran = outcome != _SKIPPED
        self._ran[codes[ran], group_codes[ran]] = True
        timed = ran & np.isfinite(duration) & (duration >= 0)
        self._durations.append((codes[timed], at[timed], duration[timed]))
        self._duration_rows += int(timed.sum())
        self._outcomes.append((codes, at, outcome))
        self._outcome_rows += n
        self.rows += n
        if self._duration_rows > 2 * size * self.max_duration_samples + 200_000:
            self._durations = [self._newest(self._durations, self.max_duration_samples)]
            self._duration_rows = len(self._durations[0][0])
        if self._outcome_rows > 2 * size * self.timeline_length + 200_000:
            self._outcomes = [self._newest(self._outcomes, self.timeline_length)]
            self._outcome_rows = len(self._outcomes[0][0])

    def _codes(self, index: dict[str, int], values: Sequence[str], n: int) -> Any:
        """Dense integer codes for strings; new strings get the next codes."""
        for value in set(values).difference(index):
            index[value] = len(index)
        return self._np.fromiter(map(index.__getitem__, values), self._np.int64, n)

    def _grow(self, tests: int, groups: int) -> None:
        """Make room for `tests` tests and `groups` commits (capacity doubles)."""
        np = self._np
        cap_tests, cap_groups = self._ran.shape
        if tests <= cap_tests and groups <= cap_groups:
            return
        new_tests = cap_tests if tests <= cap_tests else max(tests, 2 * cap_tests, 64)
        new_groups = cap_groups if groups <= cap_groups else max(groups, 2 * cap_groups, 64)
        if new_tests > cap_tests:
            extra = new_tests - cap_tests
            self._counts = np.vstack([self._counts, np.zeros((extra, 5), np.int64)])
            self._first = np.concatenate([self._first, np.full(extra, np.inf)])
            self._last = np.concatenate([self._last, np.full(extra, -np.inf)])
        ran = np.zeros((new_tests, new_groups), bool)
        ran[:cap_tests, :cap_groups] = self._ran
        self._ran = ran

    def _newest(self, parts: list[tuple[Any, Any, Any]], keep: int) -> tuple[Any, Any, Any]:
        """The newest `keep` entries per test, ordered by test, then time (ties: arrival)."""
        np = self._np
        codes = np.concatenate([p[0] for p in parts])
        at = np.concatenate([p[1] for p in parts])
        values = np.concatenate([p[2] for p in parts])
        order = np.lexsort((at, codes))
        codes, at, values = codes[order], at[order], values[order]
        group_end = np.searchsorted(codes, codes, side="right")
        mask = (group_end - np.arange(len(codes))) <= keep
        return codes[mask], at[mask], values[mask]

    @property
    def buffer_bytes(self) -> int:
        """Memory held for the window: bounded by tests × (durations + outcomes) kept."""
        parts = [*self._durations, *self._outcomes]
        arrays = [a for part in parts for a in part]
        fixed = (self._counts, self._first, self._last, self._ran)
        return sum(a.nbytes for a in (*arrays, *fixed))

    # ----- results --------------------------------------------------------------------------

    def candidates(self) -> list[str]:
        """Tests that failed, errored or passed on retry: they need their full rows."""
        counts = self._counts
        needs = (counts[:, _FAILED] + counts[:, _ERROR] + counts[:, _FLAKY]) > 0
        ids = list(self._tests)
        return [ids[i] for i in self._np.nonzero(needs[: len(ids)])[0]]

    def stats(self, details: Mapping[str, Sequence[CaseExecution]]) -> Iterator[TestStats]:
        """TestStats for every test; candidates from their `details` (full executions)."""
        np = self._np
        ids = list(self._tests)
        if not ids:
            return
        dur_codes, _, dur_values = self._newest(self._durations, self.max_duration_samples)
        out_codes, _, out_values = self._newest(self._outcomes, self.timeline_length)
        dur_bounds = np.searchsorted(dur_codes, np.arange(len(ids) + 1))
        out_bounds = np.searchsorted(out_codes, np.arange(len(ids) + 1))
        groups_per_test = self._ran[: len(ids)].sum(axis=1)
        counts = self._counts[: len(ids)].tolist()
        needs = set(self.candidates())
        for code, test_id in enumerate(ids):
            if test_id in needs:
                full = summarize_test(
                    test_id,
                    details.get(test_id, ()),
                    max_duration_samples=self.max_duration_samples,
                    slower_min_percent=self.slower_min_percent,
                )
                if full is not None:
                    yield full
                continue
            passed, _, _, skipped, _ = counts[code]
            window = dur_values[dur_bounds[code] : dur_bounds[code + 1]].tolist()
            outcomes = out_values[out_bounds[code] : out_bounds[code + 1]].tolist()
            d = duration_fields(window, self.slower_min_percent)
            yield TestStats(
                test_id=test_id,
                executions=passed,
                passed=passed,
                failed=0,
                skipped=skipped,
                retried_passes=0,
                groups=int(groups_per_test[code]),
                flaky_events=(),
                flaky_event_count=0,
                first_seen=float(self._first[code]),
                last_seen=float(self._last[code]),
                last_failure_at=None,
                last_flaky_at=None,
                passes_since_last_failure=passed,
                last_outcome=CODE_NAMES[outcomes[-1]] if outcomes else "",
                duration_samples=len(window),
                p50=d.p50,
                p90=d.p90,
                p95=d.p95,
                max_duration=d.top,
                older_p50=d.older_p50,
                recent_p50=d.recent_p50,
                older_durations=d.older,
                recent_durations=d.recent,
                timeline="".join(TIMELINE_SYMBOLS[CODE_NAMES[o]] for o in outcomes),
            )
