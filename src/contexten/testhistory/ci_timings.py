"""CI durations in the store (`ci_timings`), collected from GitHub through a CIProvider.

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

from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import SQLAlchemyError

from contexten.analysis.ci_timing import TimingSample, samples_for_run
from contexten.store.db import Store
from contexten.store.models import CiTiming
from contexten.store.test_history import TestHistoryError, to_utc

if TYPE_CHECKING:
    from contexten.integrations.interface import RunsAndJobs, WorkflowRun

MAX_IMPORT_BYTES = 64 * 1024 * 1024


def _cut(value: str | None, length: int) -> str | None:
    return value if value is None or len(value) <= length else value[:length]


def store_samples(store: Store, repository: str, samples: Iterable[TimingSample]) -> int:
    """Replace the stored rows of every run attempt in `samples`; returns rows written."""
    by_run: dict[tuple[int, int], list[TimingSample]] = {}
    for s in samples:
        by_run.setdefault((s.run_id, s.run_attempt), []).append(s)
    rows = 0
    try:
        with store.session() as session:
            for (run_id, attempt), group in by_run.items():
                session.execute(
                    delete(CiTiming).where(
                        CiTiming.repository == repository,
                        CiTiming.run_id == run_id,
                        CiTiming.run_attempt == attempt,
                    )
                )
                for s in group:
                    session.add(
                        CiTiming(
                            repository=repository,
                            workflow_name=_cut(s.workflow_name, 300) or "",
                            run_id=s.run_id,
                            run_attempt=s.run_attempt,
                            job_name=_cut(s.job_name, 300),
                            step_name=_cut(s.step_name, 300),
                            branch=_cut(s.branch, 300),
                            event=_cut(s.event, 50),
                            head_sha=_cut(s.head_sha, 64),
                            conclusion=_cut(s.conclusion, 30),
                            queued_seconds=s.queued_seconds,
                            duration_seconds=s.duration_seconds,
                            created_at=to_utc(s.started_at) if s.started_at else None,
                        )
                    )
                    rows += 1
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot store CI timings in {store.safe_url}: {type(exc).__name__}"
        ) from None
    return rows


def load_samples(
    store: Store,
    repository: str,
    *,
    workflow: str | None = None,
    branches: Sequence[str] | None = None,
) -> list[TimingSample]:
    query = select(CiTiming).where(CiTiming.repository == repository)
    if workflow is not None:
        query = query.where(CiTiming.workflow_name == workflow)
    if branches is not None:
        query = query.where(CiTiming.branch.in_(list(branches)))
    try:
        with store.session() as session:
            return [
                TimingSample(
                    r.workflow_name,
                    int(r.run_id),
                    r.run_attempt,
                    r.job_name,
                    r.step_name,
                    r.branch,
                    r.event,
                    r.head_sha,
                    r.conclusion,
                    r.queued_seconds,
                    r.duration_seconds,
                    to_utc(r.created_at) if r.created_at else None,
                )
                for r in session.scalars(query.order_by(CiTiming.run_id, CiTiming.id))
            ]
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot read CI timings from {store.safe_url}: {type(exc).__name__}"
        ) from None


def known_runs(
    store: Store, repository: str, keys: Iterable[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Which (run id, attempt) pairs already have a run row."""
    wanted = list(keys)
    found: set[tuple[int, int]] = set()
    with store.session() as session:
        for start in range(0, len(wanted), 300):
            chunk = wanted[start : start + 300]
            query = select(CiTiming.run_id, CiTiming.run_attempt).where(
                CiTiming.repository == repository,
                CiTiming.job_name.is_(None),
                tuple_(CiTiming.run_id, CiTiming.run_attempt).in_(chunk),
            )
            found.update((int(a), int(b)) for a, b in session.execute(query))
    return found


def workflows(store: Store, repository: str) -> list[str]:
    with store.session() as session:
        return sorted(
            session.scalars(
                select(CiTiming.workflow_name).where(CiTiming.repository == repository).distinct()
            )
        )


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
