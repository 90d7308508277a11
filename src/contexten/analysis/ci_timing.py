"""CI durations: runs, jobs and steps → samples; baseline vs head; where the time goes. Pure.

Queue time (waiting for a runner) is kept apart from run time: a busy runner pool and a
slower build are different problems with different fixes.

- run: queued = from the run's start to its first job's start; duration = GitHub's run
  timing (`run_duration_ms`) when known, else the wall clock from the run's start to its
  last update, minus the queue time.
- job: duration = started → completed; queued = created → started (when the job's
  creation time is known).
- step: duration = started → completed.

Samples come from the CIProvider's value objects or from GitHub REST JSON (e.g. saved with
`gh api`); both are read by attribute/key, so this module imports neither.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contexten.analysis.executions import median
from contexten.analysis.regression import Comparison, RegressionVerdict, compare_samples


@dataclass(frozen=True, slots=True)
class TimingSample:
    """One duration: a run (job and step None), a job (step None) or a step."""

    workflow_name: str
    run_id: int
    run_attempt: int
    job_name: str | None
    step_name: str | None
    branch: str | None
    event: str | None
    head_sha: str | None
    conclusion: str | None
    queued_seconds: float | None
    duration_seconds: float | None
    started_at: datetime | None  # runs: created; jobs and steps: started

    @property
    def level(self) -> str:
        if self.job_name is None:
            return "run"
        return "job" if self.step_name is None else "step"


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _span(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds >= 0 else None


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def samples_for_run(run: Any, jobs: Sequence[Any] = (), timing: Any = None) -> list[TimingSample]:
    """The run's own sample, then one per job and per step.

    `run`, `jobs` and `timing` are CIProvider values (WorkflowRun, Job, RunTiming) or the
    GitHub REST JSON objects of a workflow run, its jobs and its timing.
    """
    workflow = str(_get(run, "name") or _get(run, "workflow_name") or "(unnamed workflow)")
    run_id = _int(_get(run, "id"))
    attempt = _int(_get(run, "run_attempt"), 1) or 1
    branch = _get(run, "head_branch")
    event = _get(run, "event")
    sha = _get(run, "head_sha")
    created = _time(_get(run, "created_at"))
    started = _time(_get(run, "run_started_at")) or created
    duration_ms = _get(timing, "run_duration_ms") if timing is not None else None
    duration = (
        duration_ms / 1000.0
        if isinstance(duration_ms, int | float) and duration_ms > 0
        else _span(started, _time(_get(run, "updated_at")))
    )
    job_starts = [t for t in (_time(_get(j, "started_at")) for j in jobs) if t is not None]
    queued = _span(started, min(job_starts)) if job_starts else None
    if duration is not None and queued is not None:
        duration = max(duration - queued, 0.0)  # run time without the wait for a runner
    samples = [
        TimingSample(
            workflow,
            run_id,
            attempt,
            None,
            None,
            branch,
            event,
            sha,
            _get(run, "conclusion"),
            queued,
            duration,
            created,
        )
    ]
    job_names: dict[str, int] = {}
    for job in jobs:
        name = _unique(str(_get(job, "name") or "(unnamed job)"), job_names)
        job_started = _time(_get(job, "started_at"))
        job_attempt = _int(_get(job, "run_attempt"), attempt) or attempt
        samples.append(
            TimingSample(
                workflow,
                run_id,
                job_attempt,
                name,
                None,
                branch,
                event,
                sha,
                _get(job, "conclusion"),
                _span(_time(_get(job, "created_at")), job_started),
                _span(job_started, _time(_get(job, "completed_at"))),
                job_started,
            )
        )
        step_names: dict[str, int] = {}
        for step in _get(job, "steps") or ():
            step_started = _time(_get(step, "started_at"))
            samples.append(
                TimingSample(
                    workflow,
                    run_id,
                    job_attempt,
                    name,
                    _unique(str(_get(step, "name") or "(unnamed step)"), step_names),
                    branch,
                    event,
                    sha,
                    _get(step, "conclusion"),
                    None,
                    _span(step_started, _time(_get(step, "completed_at"))),
                    step_started,
                )
            )
    return samples


def _unique(name: str, seen: dict[str, int]) -> str:
    """Two steps named "Run echo" in one job stay apart: the second is "Run echo #2"."""
    count = seen.get(name, 0) + 1
    seen[name] = count
    return name if count == 1 else f"{name} #{count}"


# ----- baseline vs head ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Growth:
    """A job or step whose duration changed between baseline and head."""

    job: str
    step: str | None
    comparison: Comparison

    @property
    def label(self) -> str:
        return self.job if self.step is None else f"{self.job} › {self.step}"


@dataclass(frozen=True, slots=True)
class BranchComparison:
    workflow: str
    baseline_branch: str
    head_branch: str
    threshold_percent: float
    runs: Comparison  # run duration (execution, without queue)
    queue: Comparison  # run queue time
    jobs: tuple[Growth, ...]  # per job duration, most grown first
    job_queues: tuple[Growth, ...]
    steps: tuple[Growth, ...]
    baseline_series: tuple[tuple[datetime, float], ...]  # (run start, run duration), oldest first
    head_series: tuple[tuple[datetime, float], ...]

    @property
    def regressed(self) -> bool:
        return (
            self.runs.verdict is RegressionVerdict.REGRESSED
            or self.queue.verdict is RegressionVerdict.REGRESSED
        )

    @property
    def grown(self) -> tuple[Growth, ...]:
        """Jobs and steps that regressed; if none did significantly, the ones that grew most."""
        significant = [
            g
            for g in (*self.jobs, *self.steps)
            if g.comparison.verdict is RegressionVerdict.REGRESSED
        ]
        if significant:
            return tuple(sorted(significant, key=lambda g: -(g.comparison.delta or 0.0)))
        grew = [
            g
            for g in (*self.jobs, *self.steps)
            if (g.comparison.delta or 0.0) > 0
            and g.comparison.verdict is not RegressionVerdict.IMPROVED
        ]
        return tuple(sorted(grew, key=lambda g: -(g.comparison.delta or 0.0))[:3])


def _latest_runs(
    samples: Sequence[TimingSample], branch: str, window: int, ok_only: bool
) -> list[TimingSample]:
    """The newest `window` runs of a branch, one (the newest attempt) per run id."""
    newest: dict[int, TimingSample] = {}
    for s in samples:
        if s.level != "run" or s.branch != branch:
            continue
        if ok_only and s.conclusion not in ("success", None):
            continue
        current = newest.get(s.run_id)
        if current is None or s.run_attempt > current.run_attempt:
            newest[s.run_id] = s
    ordered = sorted(
        newest.values(),
        key=lambda s: (s.started_at or datetime.min.replace(tzinfo=UTC), s.run_id),
    )
    return ordered[-window:]


def compare_branches(
    samples: Iterable[TimingSample],
    *,
    workflow: str,
    baseline_branch: str,
    head_branch: str,
    threshold_percent: float = 20.0,
    window_runs: int = 30,
    min_samples: int = 8,
    alpha: float = 0.05,
    successful_only: bool = True,
) -> BranchComparison:
    """The head branch's recent runs of one workflow against the baseline branch's.

    Only successful runs count by default: a run that failed early is short for the
    wrong reason.
    """
    pool = [s for s in samples if s.workflow_name == workflow]
    base_runs = _latest_runs(pool, baseline_branch, window_runs, successful_only)
    head_runs = _latest_runs(pool, head_branch, window_runs, successful_only)

    def compare(a: Sequence[float | None], b: Sequence[float | None]) -> Comparison:
        return compare_samples(
            a, b, threshold_percent=threshold_percent, alpha=alpha, min_samples=min_samples
        )

    runs = compare([s.duration_seconds for s in base_runs], [s.duration_seconds for s in head_runs])
    queue = compare([s.queued_seconds for s in base_runs], [s.queued_seconds for s in head_runs])
    base_keys = {(s.run_id, s.run_attempt) for s in base_runs}
    head_keys = {(s.run_id, s.run_attempt) for s in head_runs}
    per_job: dict[tuple[str, str | None], tuple[list[float | None], list[float | None]]] = (
        defaultdict(lambda: ([], []))
    )
    per_queue: dict[tuple[str, str | None], tuple[list[float | None], list[float | None]]] = (
        defaultdict(lambda: ([], []))
    )
    for s in pool:
        if s.job_name is None or (successful_only and s.conclusion not in ("success", None)):
            continue
        side = (
            0
            if (s.run_id, s.run_attempt) in base_keys
            else 1
            if (s.run_id, s.run_attempt) in head_keys
            else None
        )
        if side is None:
            continue
        key = (s.job_name, s.step_name)
        per_job[key][side].append(s.duration_seconds)
        if s.step_name is None and s.queued_seconds is not None:
            per_queue[key][side].append(s.queued_seconds)

    def growths(
        table: Mapping[tuple[str, str | None], tuple[list[float | None], list[float | None]]],
        steps: bool,
    ) -> tuple[Growth, ...]:
        found = [
            Growth(job, step, compare(base, head))
            for (job, step), (base, head) in table.items()
            if (step is not None) == steps and base and head
        ]
        found.sort(key=lambda g: (-(g.comparison.delta or 0.0), g.label))
        return tuple(found)

    return BranchComparison(
        workflow,
        baseline_branch,
        head_branch,
        threshold_percent,
        runs,
        queue,
        growths(per_job, steps=False),
        growths(per_queue, steps=False),
        growths(per_job, steps=True),
        tuple(
            (s.started_at, s.duration_seconds)
            for s in base_runs
            if s.started_at and s.duration_seconds is not None
        ),
        tuple(
            (s.started_at, s.duration_seconds)
            for s in head_runs
            if s.started_at and s.duration_seconds is not None
        ),
    )


# ----- suggestions ---------------------------------------------------------------------------

_DEPENDENCIES = re.compile(
    r"\b(pip|pipenv|poetry|uv|npm|yarn|pnpm|bundle|bundler|gradle|mvn|maven|cargo|go mod|"
    r"composer|conda|nuget|dotnet restore)\b.*\b(install|ci|sync|download|fetch|restore|"
    r"dependencies|deps|build)\b|install(ing)? (the )?dependencies|"
    r"^set ?up (python|node|java|go|ruby)",
    re.IGNORECASE,
)
_DOCKER = re.compile(
    r"docker (build|buildx)|build(ing)? .*image|docker/build-push-action", re.IGNORECASE
)
_CHECKOUT = re.compile(r"checkout", re.IGNORECASE)
_TESTS = re.compile(
    r"\b(test|tests|pytest|tox|nox|jest|vitest|mocha|rspec|spec|ctest|go test|"
    r"cargo test|phpunit|verify|check)\b",
    re.IGNORECASE,
)
_MATRIX_LEG = re.compile(r"\(.+\)\s*$")


@dataclass(frozen=True, slots=True)
class Suggestion:
    target: str  # job or job › step
    seconds: float  # its median duration on the head branch
    advice: str


def suggest(
    samples: Iterable[TimingSample],
    *,
    workflow: str,
    branch: str,
    queue_seconds_limit: float = 60.0,
) -> list[Suggestion]:
    """Where the head branch's time goes, and what usually shortens it. Largest first."""
    by_step: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_job: dict[str, list[float]] = defaultdict(list)
    run_durations: list[float] = []
    queues: list[float] = []
    per_run_jobs: dict[int, list[TimingSample]] = defaultdict(list)
    for s in samples:
        if s.workflow_name != workflow or s.branch != branch or s.duration_seconds is None:
            continue
        if s.level == "run":
            run_durations.append(s.duration_seconds)
            if s.queued_seconds is not None:
                queues.append(s.queued_seconds)
        elif s.level == "job":
            by_job[s.job_name or ""].append(s.duration_seconds)
            per_run_jobs[s.run_id].append(s)
        else:
            by_step[(s.job_name or "", s.step_name or "")].append(s.duration_seconds)
    found: list[Suggestion] = []
    job_median = {job: median(v) for job, v in by_job.items() if v}
    for (job, step), values in by_step.items():
        seconds = median(values)
        label = f"{job} › {step}"
        share = seconds / job_median[job] if job_median.get(job) else 0.0
        if _DEPENDENCIES.search(step) and seconds >= 30:
            found.append(
                Suggestion(
                    label,
                    seconds,
                    (
                        f"installing dependencies takes a median {seconds:.0f} s: cache them"
                        " (actions/cache, or the setup action's `cache:` input)"
                        " keyed on the lock file"
                    ),
                )
            )
        elif _DOCKER.search(step) and seconds >= 60:
            found.append(
                Suggestion(
                    label,
                    seconds,
                    (
                        f"the image build takes a median {seconds:.0f} s: reuse layers with"
                        " `cache-from: type=gha` / `cache-to: type=gha,mode=max`"
                        " (docker/build-push-action)"
                    ),
                )
            )
        elif _CHECKOUT.search(step) and seconds >= 20:
            found.append(
                Suggestion(
                    label,
                    seconds,
                    (
                        f"checkout takes a median {seconds:.0f} s: use `fetch-depth: 1`"
                        " (or a sparse checkout) unless the job needs history"
                    ),
                )
            )
        elif (
            _TESTS.search(step) and seconds >= 300 and share >= 0.5 and not _MATRIX_LEG.search(job)
        ):
            shards = min(8, max(2, math.ceil(seconds / 300)))
            found.append(
                Suggestion(
                    label,
                    seconds,
                    (
                        f"tests take a median {seconds / 60:.1f} min ({share:.0%} of the job)"
                        f" in one job: split them over a matrix of {shards} shards"
                        f" (`contexten tests shard --shards {shards} --index N --format pytest`)"
                    ),
                )
            )
        elif share >= 0.6 and seconds >= 120:
            found.append(
                Suggestion(
                    label,
                    seconds,
                    (
                        f"this step is {share:.0%} of the job ({seconds / 60:.1f} min median):"
                        " the place to look first"
                    ),
                )
            )
    serial = _serial_jobs(per_run_jobs)
    if serial:
        names, seconds = serial
        found.append(
            Suggestion(
                ", ".join(names),
                seconds,
                (
                    "these jobs run one after another; if they do not need each other's output,"
                    " drop the `needs:` between them (or make them matrix legs) to run in parallel"
                ),
            )
        )
    if queues:
        q = median(queues)
        if q >= queue_seconds_limit:
            found.append(
                Suggestion(
                    "(runner queue)",
                    q,
                    (
                        f"runs wait a median {q:.0f} s for a runner: add runners or a larger pool,"
                        " and cancel superseded runs with"
                        " `concurrency: {group: ..., cancel-in-progress: true}`"
                    ),
                )
            )
    found.sort(key=lambda s: -s.seconds)
    return found


def _serial_jobs(per_run: Mapping[int, list[TimingSample]]) -> tuple[list[str], float] | None:
    """Long jobs (≥ 2 min) that never overlap in time in any run: candidates to parallelise."""
    overlaps: dict[tuple[str, str], bool] = {}
    durations: dict[str, list[float]] = defaultdict(list)
    for jobs in per_run.values():
        timed = [
            j for j in jobs if j.started_at and j.duration_seconds and j.duration_seconds >= 120
        ]
        for j in timed:
            durations[j.job_name or ""].append(j.duration_seconds or 0.0)
        for i, a in enumerate(timed):
            for b in timed[i + 1 :]:
                first, second = sorted((a.job_name or "", b.job_name or ""))
                key = (first, second)
                assert a.started_at and b.started_at
                a_end = a.started_at.timestamp() + (a.duration_seconds or 0.0)
                b_end = b.started_at.timestamp() + (b.duration_seconds or 0.0)
                overlap = a.started_at.timestamp() < b_end and b.started_at.timestamp() < a_end
                overlaps[key] = overlaps.get(key, False) or overlap
    serial = sorted({name for pair, o in overlaps.items() if not o for name in pair})
    if len(serial) < 2:
        return None
    return serial, sum(median(durations[n]) for n in serial if durations[n])


__all__ = [
    "BranchComparison",
    "Growth",
    "Suggestion",
    "TimingSample",
    "compare_branches",
    "samples_for_run",
    "suggest",
]
