"""CI durations collected from GitHub (a RunsAndJobs role) into the store's ci_timings
(`store.ci_timings`, re-exported here), and imported from saved JSON.

A run attempt's rows are replaced as a whole when it is collected again, so collection is
idempotent (the table's unique key cannot do it alone: SQL NULLs never collide). For job
and step rows `created_at` holds the time the job or step started.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from contexten.analysis.ci_timing import TimingSample, samples_for_run
from contexten.store.ci_timings import known_runs as known_runs
from contexten.store.ci_timings import load_samples as load_samples
from contexten.store.ci_timings import store_samples as store_samples
from contexten.store.ci_timings import workflows as workflows
from contexten.store.db import Store

if TYPE_CHECKING:
    from contexten.integrations.interface import RunsAndJobs, WorkflowRun

MAX_IMPORT_BYTES = 64 * 1024 * 1024


# ----- collection ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CollectResult:
    runs_seen: int
    runs_collected: int
    rows: int
    problems: tuple[str, ...]  # one line each: a run that could not be read, a rate limit


async def collect(
    provider: RunsAndJobs,
    store: Store,
    repository: str,
    *,
    branches: Sequence[str],
    workflow: str | None = None,
    max_runs: int = 30,
    concurrency: int = 4,
) -> CollectResult:
    """Fetch the newest completed runs of each branch, with jobs, steps and run timing.

    Runs already stored are skipped. A rate limit stops the collection early; what was
    collected until then is kept.
    """
    from contexten.integrations.interface import CIProviderError

    runs: list[WorkflowRun] = []
    problems: list[str] = []
    for branch in branches:
        try:
            listed = await provider.list_workflow_runs(
                repository, branch=branch, status="completed", max_items=max_runs * 3
            )
        except CIProviderError as exc:
            problems.append(f"cannot list runs of {branch}: {exc}")
            if exc.rate_limited:
                break
            continue
        chosen = [r for r in listed if workflow is None or r.name == workflow]
        runs.extend(_newest_per_workflow(chosen, max_runs))
    stored = known_runs(store, repository, [(r.id, r.run_attempt) for r in runs])
    todo = [r for r in runs if (r.id, r.run_attempt) not in stored]
    gate = asyncio.Semaphore(max(1, concurrency))
    stop = asyncio.Event()

    async def fetch(run: WorkflowRun) -> list[TimingSample] | None:
        async with gate:
            if stop.is_set():
                return None
            try:
                jobs = await provider.list_jobs(repository, run.id)
            except CIProviderError as exc:
                problems.append(f"run {run.id}: cannot list jobs: {exc}")
                if exc.rate_limited:
                    stop.set()
                return None
            try:
                timing = await provider.get_run_timing(repository, run.id)
            except CIProviderError as exc:
                if exc.rate_limited:
                    stop.set()
                timing = None  # the wall clock is a fine fallback
            return samples_for_run(run, jobs, timing)

    results = await asyncio.gather(*(fetch(r) for r in todo))
    samples = [s for group in results if group for s in group]
    rows = store_samples(store, repository, samples) if samples else 0
    collected = sum(1 for group in results if group)
    if stop.is_set():
        problems.append(f"rate limited: collected {collected} of {len(todo)} new runs")
    return CollectResult(len(runs), collected, rows, tuple(problems))


def _newest_per_workflow(runs: Sequence[WorkflowRun], limit: int) -> list[WorkflowRun]:
    counts: dict[str | None, int] = {}
    chosen = []
    for run in sorted(runs, key=lambda r: r.created_at, reverse=True):
        if counts.get(run.name, 0) < limit:
            counts[run.name] = counts.get(run.name, 0) + 1
            chosen.append(run)
    return chosen


# ----- import from saved GitHub JSON ---------------------------------------------------------


class TimingImportError(ValueError):
    """A saved GitHub JSON file is not what `perf import` expects; one line naming it."""


def samples_from_json(data: bytes, source: str) -> list[TimingSample]:
    """Samples from saved GitHub REST JSON.

    Accepted shapes: a workflow run object with its jobs under "jobs" (a list, or the
    `{"jobs": [...]}` page) and optional "timing"; a list of such objects; or
    `{"workflow_runs": [...]}` as returned by the runs API (run-level samples only).
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise TimingImportError(f"{source}: over {MAX_IMPORT_BYTES} bytes")
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TimingImportError(f"{source}: not JSON: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("workflow_runs"), list):
        items: list[Any] = document["workflow_runs"]
    elif isinstance(document, list):
        items = document
    elif isinstance(document, dict):
        items = [document]
    else:
        raise TimingImportError(f"{source}: expected a workflow run object or a list of them")
    samples: list[TimingSample] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item or "head_branch" not in item:
            raise TimingImportError(
                f"{source}: item {n} is not a workflow run (needs id and head_branch)"
            )
        jobs = item.get("jobs") or []
        if isinstance(jobs, dict):
            jobs = jobs.get("jobs") or []
        if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
            raise TimingImportError(f"{source}: run {item['id']}: 'jobs' must be a list of jobs")
        samples.extend(samples_for_run(item, jobs, item.get("timing")))
    return samples


def series_points(samples: Iterable[TimingSample]) -> list[tuple[datetime, float]]:
    return sorted(
        (s.started_at, s.duration_seconds)
        for s in samples
        if s.level == "run" and s.started_at is not None and s.duration_seconds is not None
    )
