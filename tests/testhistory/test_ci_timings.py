"""CI durations: samples from runs, storage, head-vs-baseline comparison, collection, plot."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contexten.analysis.ci_timing import compare_branches, samples_for_run, suggest
from contexten.analysis.regression import RegressionVerdict
from contexten.integrations.interface import (
    CIProviderError,
    ErrorReason,
    Job,
    JobTiming,
    RunTiming,
    Step,
    WorkflowRun,
)
from contexten.store.db import Store, open_store
from contexten.testhistory.ci_timings import (
    TimingImportError,
    collect,
    load_samples,
    samples_from_json,
    store_samples,
)
from contexten.testhistory.plots import plot_trend

T0 = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)


def make_run(
    run_id: int,
    branch: str,
    start: datetime,
    *,
    queue: float = 10.0,
    install: float = 60.0,
    tests: float = 300.0,
    name: str = "CI",
    attempt: int = 1,
) -> tuple[WorkflowRun, list[Job]]:
    job_start = start + timedelta(seconds=queue)
    steps = []
    t = job_start
    for number, (step, seconds) in enumerate(
        (("Set up job", 2.0), ("Install dependencies", install), ("Run pytest", tests)), start=1
    ):
        steps.append(Step(number, step, "completed", "success", t, t + timedelta(seconds=seconds)))
        t += timedelta(seconds=seconds)
    job = Job(
        id=run_id * 10,
        run_id=run_id,
        run_attempt=attempt,
        name="test",
        status="completed",
        conclusion="success",
        head_sha=f"sha{run_id}",
        head_branch=branch,
        workflow_name=name,
        html_url="",
        started_at=job_start,
        completed_at=t,
        steps=tuple(steps),
    )
    run = WorkflowRun(
        id=run_id,
        name=name,
        workflow_id=1,
        repository="o/r",
        head_branch=branch,
        head_sha=f"sha{run_id}",
        run_number=run_id,
        run_attempt=attempt,
        event="push",
        status="completed",
        conclusion="success",
        html_url="",
        display_title="",
        created_at=start,
        updated_at=t,
        run_started_at=start,
    )
    return run, [job]


def history(regress: bool, n: int = 12, seed: int = 0) -> list[tuple[WorkflowRun, list[Job]]]:
    rng = np.random.default_rng(seed)
    runs = []
    for i in range(n):
        runs.append(
            make_run(1000 + i, "develop", T0 + timedelta(hours=i), tests=float(rng.normal(300, 10)))
        )
        slower = 1.5 if regress else 1.0
        runs.append(
            make_run(
                2000 + i,
                "feature",
                T0 + timedelta(hours=i, minutes=30),
                tests=float(rng.normal(300 * slower, 10)),
                queue=float(rng.normal(200, 10)),
            )
        )
    return runs


def test_samples_separate_queue_from_run_time() -> None:
    run, jobs = make_run(1, "main", T0, queue=30, install=60, tests=300)
    samples = samples_for_run(run, jobs)
    by_level = {(s.level, s.step_name): s for s in samples}
    run_sample = by_level[("run", None)]
    assert run_sample.queued_seconds == 30
    assert run_sample.duration_seconds == pytest.approx(362)  # wall clock minus the queue
    assert by_level[("job", None)].duration_seconds == pytest.approx(362)
    assert by_level[("step", "Run pytest")].duration_seconds == pytest.approx(300)
    # GitHub's own run timing wins over the wall clock when given.
    timed = samples_for_run(
        run, jobs, RunTiming(run_duration_ms=400_000, job_runs=(JobTiming(10, 1),))
    )
    assert timed[0].duration_seconds == pytest.approx(370)


def test_json_import_with_duplicate_step_names_and_job_queue() -> None:
    doc = {
        "id": 7,
        "name": "CI",
        "head_branch": "main",
        "head_sha": "abc",
        "run_attempt": 1,
        "event": "push",
        "conclusion": "success",
        "created_at": "2025-05-01T08:00:00Z",
        "run_started_at": "2025-05-01T08:00:00Z",
        "updated_at": "2025-05-01T08:10:00Z",
        "jobs": {
            "total_count": 1,
            "jobs": [
                {
                    "id": 70,
                    "name": "build",
                    "conclusion": "success",
                    "created_at": "2025-05-01T08:00:05Z",
                    "started_at": "2025-05-01T08:01:00Z",
                    "completed_at": "2025-05-01T08:09:00Z",
                    "steps": [
                        {
                            "name": "Run echo",
                            "number": 1,
                            "conclusion": "success",
                            "started_at": "2025-05-01T08:01:00Z",
                            "completed_at": "2025-05-01T08:02:00Z",
                        },
                        {
                            "name": "Run echo",
                            "number": 2,
                            "conclusion": "success",
                            "started_at": "2025-05-01T08:02:00Z",
                            "completed_at": "2025-05-01T08:09:00Z",
                        },
                    ],
                }
            ],
        },
    }
    samples = samples_from_json(json.dumps(doc).encode(), "run.json")
    assert [s.step_name for s in samples] == [None, None, "Run echo", "Run echo #2"]
    assert samples[0].queued_seconds == 60 and samples[0].duration_seconds == 540
    assert samples[1].queued_seconds == 55  # job created → started
    with pytest.raises(TimingImportError, match=r"run\.json: item 0 is not a workflow run"):
        samples_from_json(b'[{"id": 1}]', "run.json")
    with pytest.raises(TimingImportError, match=r"bad\.json: not JSON"):
        samples_from_json(b"{", "bad.json")


def all_samples(runs: list[tuple[WorkflowRun, list[Job]]]) -> list[Any]:
    return [s for run, jobs in runs for s in samples_for_run(run, jobs)]


def test_regression_is_named_down_to_the_step() -> None:
    result = compare_branches(
        all_samples(history(regress=True)),
        workflow="CI",
        baseline_branch="develop",
        head_branch="feature",
    )
    assert result.runs.verdict is RegressionVerdict.REGRESSED
    assert result.regressed
    assert 40 < (result.runs.change_percent or 0) < 60
    assert result.grown[0].label == "test"
    assert [g.label for g in result.grown] == ["test", "test › Run pytest"]
    assert result.queue.verdict is RegressionVerdict.REGRESSED  # 10 s → 200 s: reported on its own
    assert len(result.baseline_series) == 12 and len(result.head_series) == 12


def test_no_regression_and_too_few_runs() -> None:
    same = compare_branches(
        all_samples(history(regress=False)),
        workflow="CI",
        baseline_branch="develop",
        head_branch="feature",
    )
    assert same.runs.verdict is RegressionVerdict.SAME
    assert same.queue.verdict is RegressionVerdict.REGRESSED  # the queue still grew
    few = compare_branches(
        all_samples(history(regress=True, n=5)),
        workflow="CI",
        baseline_branch="develop",
        head_branch="feature",
    )
    assert few.runs.verdict is RegressionVerdict.UNKNOWN
    assert not few.regressed


def test_window_keeps_the_newest_runs_and_the_newest_attempt() -> None:
    runs = history(regress=False, n=12)
    # An older slow attempt 1 of the newest head run, superseded by attempt 2.
    runs.append(make_run(2011, "feature", T0 + timedelta(hours=11, minutes=30), tests=900))
    runs[-1] = make_run(2011, "feature", T0 + timedelta(hours=11, minutes=31), tests=300, attempt=2)
    result = compare_branches(
        all_samples(runs),
        workflow="CI",
        baseline_branch="develop",
        head_branch="feature",
        window_runs=10,
    )
    assert result.runs.baseline_n == 10 and result.runs.head_n == 10


def test_suggestions_point_at_the_slow_steps() -> None:
    runs = [
        make_run(i, "feature", T0 + timedelta(hours=i), install=120, tests=900, queue=120)
        for i in range(5)
    ]
    advice = suggest(all_samples(runs), workflow="CI", branch="feature")
    texts = " | ".join(s.advice for s in advice)
    assert "split them over a matrix of 3 shards" in texts
    assert "cache them" in texts
    assert "wait a median 120 s for a runner" in texts
    assert advice[0].target == "test › Run pytest"  # slowest first


def test_store_replaces_a_run_attempt_and_loads_by_branch(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    run, jobs = make_run(5, "main", T0)
    samples = samples_for_run(run, jobs)
    assert store_samples(store, "o/r", samples) == 5
    assert store_samples(store, "o/r", samples) == 5  # collected again: replaced, not doubled
    loaded = load_samples(store, "o/r", branches=["main"])
    assert len(loaded) == 5
    assert loaded[0].started_at == T0 and loaded[0].queued_seconds == 10
    assert load_samples(store, "o/r", branches=["other"]) == []


class FakeCI:
    """The RunsAndJobs role, as far as ci_timings.collect uses it."""

    """Just the read calls collection uses; the rest are not used here."""

    def __init__(
        self, runs: list[tuple[WorkflowRun, list[Job]]], rate_limit_after: int | None = None
    ) -> None:
        self.runs = {r.id: (r, j) for r, j in runs}
        self.job_calls = 0
        self.rate_limit_after = rate_limit_after

    async def list_workflow_runs(self, repo: str, **kw: Any) -> list[WorkflowRun]:
        branch = kw.get("branch")
        found = [r for r, _ in self.runs.values() if branch is None or r.head_branch == branch]
        if kw.get("event"):
            found = [r for r in found if r.event == kw["event"]]
        return sorted(found, key=lambda r: r.created_at, reverse=True)[
            : kw.get("max_items") or None
        ]

    async def list_jobs(self, repo: str, run_id: int, **kw: Any) -> list[Job]:
        self.job_calls += 1
        if self.rate_limit_after is not None and self.job_calls > self.rate_limit_after:
            raise CIProviderError("API rate limit exceeded", reason=ErrorReason.RATE_LIMITED)
        return self.runs[run_id][1]

    async def get_run_timing(self, repo: str, run_id: int) -> RunTiming:
        raise CIProviderError("not found", reason=ErrorReason.NOT_FOUND)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'perf.db'}")


def test_collect_fetches_new_runs_once(store: Store) -> None:
    fake = FakeCI(history(regress=True, n=10))
    result = asyncio.run(collect(fake, store, "o/r", branches=["develop", "feature"], max_runs=8))
    assert result.runs_seen == 16 and result.runs_collected == 16 and not result.problems
    assert fake.job_calls == 16
    again = asyncio.run(collect(fake, store, "o/r", branches=["develop", "feature"], max_runs=8))
    assert again.runs_collected == 0 and fake.job_calls == 16
    runs = [s for s in load_samples(store, "o/r") if s.level == "run"]
    assert len(runs) == 16


def test_collect_stops_on_rate_limit_and_keeps_what_it_got(store: Store) -> None:
    fake = FakeCI(history(regress=True, n=10), rate_limit_after=3)
    result = asyncio.run(
        collect(fake, store, "o/r", branches=["develop"], max_runs=10, concurrency=1)
    )
    assert result.runs_collected == 3
    assert any("rate limited" in p for p in result.problems)
    assert len([s for s in load_samples(store, "o/r") if s.level == "run"]) == 3


def test_trend_plot_is_a_png(tmp_path: Path) -> None:
    result = compare_branches(
        all_samples(history(regress=True)),
        workflow="CI",
        baseline_branch="develop",
        head_branch="feature",
    )
    path = plot_trend(
        tmp_path / "trend.png",
        title="CI",
        baseline_label="develop",
        baseline=result.baseline_series,
        head_label="feature",
        head=result.head_series,
        threshold_percent=20,
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
