"""The columnar fast path gives exactly the TestStats of the row-by-row definition."""

from __future__ import annotations

import random

import pytest

from contexten.analysis.executions import CaseExecution, summarize_history
from contexten.analysis.history_columns import OUTCOME_CODES, HistoryAccumulator


def random_history(seed: int, tests: int = 40, runs: int = 60) -> list[CaseExecution]:
    rng = random.Random(seed)
    rows: list[CaseExecution] = []
    at = 1_700_000_000.0
    for run in range(runs):
        commit = (
            None if run % 7 == 3 else f"c{run // 2}"
        )  # some runs share a commit, some have none
        for attempt in (1, 2):
            for t in range(tests):
                if attempt == 2 and rng.random() < 0.9:
                    continue
                kind = t % 5
                outcome = "passed"
                if kind == 1 and rng.random() < 0.1:
                    outcome = rng.choice(["failed", "error", "flaky"])
                elif kind == 2 and rng.random() < 0.3:
                    outcome = "skipped"
                elif kind == 3 and t == 3:
                    outcome = "failed"
                duration = (
                    None
                    if (outcome == "skipped" or rng.random() < 0.05)
                    else rng.lognormvariate(0, 1)
                )
                at += rng.random()
                rows.append(
                    CaseExecution(
                        f"test-{t:03d}",
                        outcome,
                        duration,
                        commit,
                        str(run),
                        attempt,
                        f"job{t % 2}",
                        at,
                    )
                )
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("chunk", [7, 500, 100_000])
def test_columnar_path_equals_row_path(seed: int, chunk: int) -> None:
    rows = random_history(seed)
    # Small windows so that pruning happens inside the run.
    expected = {
        s.test_id: s
        for s in summarize_history(
            sorted(rows, key=lambda e: (e.test_id, e.at)), max_duration_samples=20
        )
    }
    acc = HistoryAccumulator(max_duration_samples=20)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        acc.add(
            [e.test_id for e in part],
            [OUTCOME_CODES[e.outcome] for e in part],
            [e.duration_seconds for e in part],
            [e.at for e in part],
            [e.commit or f"{e.run_id}#{e.run_attempt}#{e.job}" for e in part],
        )
    assert acc.rows == len(rows)
    candidates = set(acc.candidates())
    details = {t: [e for e in rows if e.test_id == t] for t in candidates}
    got = {s.test_id: s for s in acc.stats(details)}
    assert set(got) == set(expected)
    assert 0 < len(candidates) < len(expected)  # both paths are exercised
    for test_id, stats in expected.items():
        assert got[test_id] == stats, test_id


def test_pruning_keeps_memory_bounded() -> None:
    acc = HistoryAccumulator(max_duration_samples=10, timeline_length=5)
    tests = [f"t{i}" for i in range(100)]
    for block in range(300):  # 300 blocks of 10 runs: 300,000 executions
        runs = range(block * 10, block * 10 + 10)
        acc.add(
            tests * 10,
            [0] * 1000,
            [1.0] * 1000,
            [float(r) for r in runs for _ in tests],
            [f"c{r}" for r in runs for _ in tests],
        )
    assert acc.rows == 300_000
    # Buffers are pruned to the newest samples per test, not kept for every row.
    assert acc._duration_rows < 2 * 100 * 10 + 200_000 + 1000
    assert acc._outcome_rows < 2 * 100 * 5 + 200_000 + 1000
    assert acc.buffer_bytes < 24 * 2 * (2 * 100 * 10 + 200_000 + 1000) + 1_000_000
    stats = {s.test_id: s for s in acc.stats({})}
    t0 = stats["t0"]
    assert t0.duration_samples == 10 and t0.executions == 3000 and t0.groups == 3000
    assert t0.timeline == "✓✓✓✓✓" and t0.last_seen == 2999.0 and t0.first_seen == 0.0
