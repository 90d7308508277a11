"""The performance_monitoring workflow: collect, compare, name what grew, plot, suggest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contexten.analysis.ci_timing import samples_for_run
from contexten.config import Settings
from contexten.integrations.interface import (
    Job,
    RunTiming,
    Step,
    WorkflowRun,
)
from contexten.orchestration.workflows import PerformanceMonitoringParameters as Params
from contexten.store.db import open_store
from contexten.testhistory.ci_timings import store_samples
from contexten.workflows import performance_monitoring
from contexten.workflows.base import WorkflowContext, WorkflowError

T0 = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)


def make_run(
    run_id: int, branch: str, start: datetime, tests: float, install: float
) -> tuple[WorkflowRun, list[Job]]:
    job_start = start + timedelta(seconds=20)
    setup_end = job_start + timedelta(seconds=install)
    end = setup_end + timedelta(seconds=tests)
    job = Job(
        id=run_id * 10,
        run_id=run_id,
        run_attempt=1,
        name="build-and-test",
        status="completed",
        conclusion="success",
        head_sha="s",
        head_branch=branch,
        workflow_name="CI",
        html_url="",
        started_at=job_start,
        completed_at=end,
        steps=(
            Step(1, "Install dependencies", "completed", "success", job_start, setup_end),
            Step(2, "Run pytest", "completed", "success", setup_end, end),
        ),
    )
    run = WorkflowRun(
        id=run_id,
        name="CI",
        workflow_id=1,
        repository="o/r",
        head_branch=branch,
        head_sha="s",
        run_number=run_id,
        run_attempt=1,
        event="push",
        status="completed",
        conclusion="success",
        html_url="",
        display_title="",
        created_at=start,
        updated_at=end,
        run_started_at=start,
    )
    return run, [job]


def runs(regress: bool) -> list[tuple[WorkflowRun, list[Job]]]:
    rng = np.random.default_rng(5)
    found = []
    for i in range(12):
        found.append(
            make_run(100 + i, "develop", T0 + timedelta(hours=i), float(rng.normal(600, 20)), 90)
        )
        tests = float(rng.normal(900 if regress else 600, 20))
        found.append(make_run(200 + i, "main", T0 + timedelta(hours=i, minutes=10), tests, 90))
    return found


class FakeCI:
    """The RunsAndJobs role, as far as performance_monitoring uses it."""

    def __init__(self, data: list[tuple[WorkflowRun, list[Job]]]) -> None:
        self.data = {r.id: (r, j) for r, j in data}
        self.closed = False

    async def list_workflow_runs(self, repo: str, **kw: Any) -> list[WorkflowRun]:
        found = [r for r, _ in self.data.values() if kw.get("branch") in (None, r.head_branch)]
        return sorted(found, key=lambda r: r.created_at, reverse=True)

    async def list_jobs(self, repo: str, run_id: int, **kw: Any) -> list[Job]:
        return self.data[run_id][1]

    async def get_run_timing(self, repo: str, run_id: int) -> RunTiming:
        return RunTiming(run_duration_ms=None)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def ctx(tmp_path: Path) -> WorkflowContext:
    settings = Settings(
        contexten_home=tmp_path / "home", github_repository="o/r", github_token="ghp_fake_for_tests"
    )
    return WorkflowContext(settings, open_store(f"sqlite:///{tmp_path / 'pm.db'}"), "pm-1")


def test_regression_is_flagged_with_the_step_that_grew_and_a_plot(
    ctx: WorkflowContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCI(runs(regress=True))
    monkeypatch.setattr(performance_monitoring, "ci_provider", lambda _ctx: fake)
    outcome = asyncio.run(
        performance_monitoring.run(
            Params(baseline_branch="develop", head_branch="main", auto_optimize=True), ctx
        )
    )
    assert fake.closed
    assert not outcome.ok
    assert outcome.summary.startswith("main regressed against develop: CI run time +")
    assert "grew: build-and-test, build-and-test › Run pytest" in outcome.summary
    (workflow,) = outcome.data["workflows"]
    assert workflow["run_time"]["verdict"] == "regressed"
    assert workflow["queue_time"]["verdict"] == "same"
    assert any("cache them" in s["advice"] for s in workflow["suggestions"])
    (image,) = outcome.images
    assert image.read_bytes()[:4] == b"\x89PNG"
    assert "collected 24 new runs from GitHub" in outcome.data["notes"][0]
    assert {a.key for a in ctx.artifacts} >= {"ci-performance", "ci-performance-summary"}


def test_no_regression_is_ok(ctx: WorkflowContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        performance_monitoring, "ci_provider", lambda _ctx: FakeCI(runs(regress=False))
    )
    outcome = asyncio.run(performance_monitoring.run(Params(head_branch="main"), ctx))
    assert outcome.ok
    assert outcome.summary == "no significant regression of main against develop in 1 workflows"
    assert outcome.data["workflows"][0]["suggestions"] == []  # auto_optimize off


def test_without_github_the_stored_timings_are_used_and_head_is_inferred(tmp_path: Path) -> None:
    settings = Settings(contexten_home=tmp_path / "home", github_repository="o/r")
    ctx = WorkflowContext(settings, open_store(f"sqlite:///{tmp_path / 's.db'}"), "pm-2")
    for run, jobs in runs(regress=True):
        store_samples(ctx.store, "o/r", samples_for_run(run, jobs))
    outcome = asyncio.run(performance_monitoring.run(Params(), ctx))
    assert outcome.data["head_branch"] == "main"
    assert outcome.data["notes"] == [
        "GitHub is not configured: analysed the timings already in the store"
    ]
    assert not outcome.ok


def test_nothing_to_compare_and_bad_settings(tmp_path: Path) -> None:
    settings = Settings(contexten_home=tmp_path / "home", github_repository="o/r")
    ctx = WorkflowContext(settings, open_store(f"sqlite:///{tmp_path / 'e.db'}"), "pm-3")
    outcome = asyncio.run(performance_monitoring.run(Params(head_branch="main"), ctx))
    assert outcome.ok and "nothing to compare" in outcome.summary
    with pytest.raises(WorkflowError, match="default branch is unknown"):
        asyncio.run(performance_monitoring.run(Params(), ctx))
    with pytest.raises(WorkflowError, match="both 'develop'"):
        asyncio.run(performance_monitoring.run(Params(head_branch="develop"), ctx))
    bare = WorkflowContext(Settings(contexten_home=tmp_path / "h2"), ctx.store, "pm-4")
    with pytest.raises(WorkflowError, match="no repository"):
        asyncio.run(performance_monitoring.run(Params(head_branch="main"), bare))


def test_against_the_github_sandbox_over_real_sockets(tmp_path: Path) -> None:
    """The real GitHub client, the sandbox on 127.0.0.1: runs, jobs, steps and timing."""
    from contexten.sandbox.github import JobSpec
    from contexten.sandbox.testing import running_sandbox

    with running_sandbox(services=("github",)) as sandbox:
        state = sandbox.state.github
        repo = "octo/perf"
        state.add_repo(repo, files={"README.md": "# perf\n"})
        rng = np.random.default_rng(9)
        for i in range(10):
            for branch, seconds in (("develop", 300.0), ("main", 480.0)):
                state.add_run(
                    repo,
                    head_branch=branch,
                    created_at=T0 + timedelta(hours=i, minutes=5 if branch == "main" else 0),
                    jobs=(
                        JobSpec(
                            "test",
                            steps=(("Set up job", "success"), ("Run pytest", "success")),
                            duration_seconds=float(rng.normal(seconds, 5)),
                        ),
                    ),
                )
        settings = Settings(
            contexten_home=tmp_path / "home",
            github_api_url=sandbox.github_url,
            github_token=sandbox.env()["GITHUB_TOKEN"],
            github_repository=repo,
            http_max_attempts=2,
        )
        ctx = WorkflowContext(settings, open_store(f"sqlite:///{tmp_path / 'sb.db'}"), "pm-sb")
        outcome = asyncio.run(
            performance_monitoring.run(Params(baseline_branch="develop", head_branch="main"), ctx)
        )
        again = asyncio.run(
            performance_monitoring.run(Params(baseline_branch="develop", head_branch="main"), ctx)
        )
    assert not outcome.ok
    (workflow,) = outcome.data["workflows"]
    assert workflow["run_time"]["verdict"] == "regressed"
    assert workflow["run_time"]["baseline_runs"] == 10 and workflow["run_time"]["head_runs"] == 10
    assert 50 < workflow["run_time"]["change_percent"] < 70
    assert workflow["grown"][0]["job"] == "test"
    assert outcome.data["notes"][0] == "collected 20 new runs from GitHub (20 listed)"
    assert again.data["notes"][0] == "collected 0 new runs from GitHub (20 listed)"
