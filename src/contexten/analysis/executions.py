"""One test's history of executions → its statistics (TestStats). Pure, no I/O.

The store streams executions ordered by test id, then time; `summarize_history` folds each
test's group into one TestStats, so memory stays bounded by the largest single test's
history instead of the whole window.

Flakiness is judged on the same code: executions are grouped by commit (or, without a
commit, by upload: run, attempt and job), and a group where the test both passed and
failed — across run attempts, jobs, matrix legs or repeated `<testcase>` elements — or
where it passed on a retry is one flaky event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import NamedTuple

MAX_EVIDENCE = 10  # flaky events kept per test, newest first
MAX_DURATION_SAMPLES = 200  # bounded window for duration estimates, newest kept
TIMELINE_LENGTH = 30  # outcomes kept for the outcome-over-time strip, newest last
TIMELINE_SYMBOLS = {"passed": "✓", "failed": "✗", "error": "E", "skipped": "·", "flaky": "~"}

PASS_OUTCOMES = frozenset({"passed"})
FAIL_OUTCOMES = frozenset({"failed", "error"})
FLAKY_OUTCOME = "flaky"
SKIP_OUTCOME = "skipped"


class CaseExecution(NamedTuple):
    """One recorded execution of one test (a row of the test history)."""

    test_id: str
    outcome: str  # passed | failed | error | skipped | flaky
    duration_seconds: float | None
    commit: str | None
    run_id: str | None
    run_attempt: int
    job: str | None
    at: float  # epoch seconds


UploadKey = tuple[str | None, int, str | None]  # (run id, run attempt, job)


def upload_key(e: CaseExecution) -> UploadKey:
    return (e.run_id, e.run_attempt, e.job)


@dataclass(frozen=True, slots=True)
class FlakyEvent:
    """Passed and failed on one commit (or passed on retry): the runs that show it."""

    commit: str | None
    at: float  # last execution in the group
    passed_runs: tuple[str, ...]
    failed_runs: tuple[str, ...]
    retried: bool  # a pass on retry inside one execution (surefire flakyFailure, reruns)


@dataclass(frozen=True, slots=True)
class TestStats:
    __test__ = False

    test_id: str
    executions: int  # not skipped
    passed: int  # passed or passed on retry
    failed: int  # failed or error
    skipped: int
    retried_passes: int  # outcome flaky: passed on a retry within one execution
    groups: int  # commits (or uploads without a commit) where the test ran
    flaky_events: tuple[FlakyEvent, ...]  # newest first, at most MAX_EVIDENCE
    flaky_event_count: int
    first_seen: float
    last_seen: float
    last_failure_at: float | None
    last_flaky_at: float | None
    passes_since_last_failure: int  # clean executions after the newest failure or flip
    last_outcome: str
    duration_samples: int
    p50: float | None
    p90: float | None
    p95: float | None
    max_duration: float | None
    older_p50: float | None  # older half of the duration window
    recent_p50: float | None  # newer half
    older_durations: tuple[float, ...]  # kept only when the test got slower (for a test)
    recent_durations: tuple[float, ...]
    timeline: str = ""  # the newest outcomes, oldest first: ✓ passed ✗ failed E error ~ retry

    @property
    def failure_rate(self) -> float:
        return self.failed / self.executions if self.executions else 0.0

    @property
    def flake_rate(self) -> float:
        """Share of commits on which this test flaked."""
        return self.flaky_event_count / self.groups if self.groups else 0.0

    @property
    def always_fails(self) -> bool:
        return self.executions > 0 and self.passed == 0 and self.failed == self.executions

    @property
    def slowdown_percent(self) -> float | None:
        if not self.older_p50 or self.recent_p50 is None:
            return None
        return (self.recent_p50 / self.older_p50 - 1.0) * 100.0


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values (numpy's default method)."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("quantile of no values")
    pos = (n - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def median(values: Iterable[float]) -> float:
    return quantile(sorted(values), 0.5)


def summarize_test(
    test_id: str,
    executions: Sequence[CaseExecution],
    *,
    excluded_uploads: frozenset[UploadKey] = frozenset(),
    max_duration_samples: int = MAX_DURATION_SAMPLES,
    slower_min_percent: float = 20.0,
) -> TestStats | None:
    """Fold one test's executions (ordered by time) into TestStats; None if nothing counts.

    Executions from `excluded_uploads` (infrastructure failures: most of the upload
    failed) are ignored. Durations of skipped executions are ignored.
    """
    groups: dict[object, list[CaseExecution]] = {}
    passed = failed = skipped = retried = 0
    durations: list[float] = []
    first_seen = math.inf
    last_seen = -math.inf
    last_failure_at: float | None = None
    passes_since = 0
    last_outcome = ""
    check_excluded = bool(excluded_uploads)
    timeline: list[str] = []
    for e in executions:
        if check_excluded and (e.run_id, e.run_attempt, e.job) in excluded_uploads:
            continue
        outcome = e.outcome
        timeline.append(outcome)
        at = e.at
        if at < first_seen:
            first_seen = at
        if at > last_seen:
            last_seen = at
        last_outcome = outcome
        if outcome == SKIP_OUTCOME:
            skipped += 1
            continue
        if outcome in FAIL_OUTCOMES:
            failed += 1
            last_failure_at = (
                at if last_failure_at is None or at > last_failure_at else last_failure_at
            )
            passes_since = 0
        else:
            passed += 1
            if outcome == FLAKY_OUTCOME:
                retried += 1
                passes_since = 0
            else:
                passes_since += 1
        if e.duration_seconds is not None:
            durations.append(e.duration_seconds)
        key: object = e.commit if e.commit else (e.run_id, e.run_attempt, e.job)
        group = groups.get(key)
        if group is None:
            groups[key] = [e]
        else:
            group.append(e)
    executed = passed + failed
    if executed == 0 and skipped == 0:
        return None

    events = _flaky_events(groups)
    events.sort(key=lambda ev: ev.at, reverse=True)
    last_flaky_at = events[0].at if events else None

    window = durations[-max_duration_samples:] if max_duration_samples > 0 else durations
    d = duration_fields(window, slower_min_percent)
    return TestStats(
        test_id=test_id,
        executions=executed,
        passed=passed,
        failed=failed,
        skipped=skipped,
        retried_passes=retried,
        groups=len(groups),
        flaky_events=tuple(events[:MAX_EVIDENCE]),
        flaky_event_count=len(events),
        first_seen=first_seen,
        last_seen=last_seen,
        last_failure_at=max(
            (t for t in (last_failure_at, last_flaky_at) if t is not None), default=None
        ),
        last_flaky_at=last_flaky_at,
        passes_since_last_failure=passes_since,
        last_outcome=last_outcome,
        duration_samples=len(window),
        p50=d.p50,
        p90=d.p90,
        p95=d.p95,
        max_duration=d.top,
        older_p50=d.older_p50,
        recent_p50=d.recent_p50,
        older_durations=d.older,
        recent_durations=d.recent,
        timeline="".join(TIMELINE_SYMBOLS.get(o, "?") for o in timeline[-TIMELINE_LENGTH:]),
    )


@dataclass(frozen=True, slots=True)
class DurationFields:
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    top: float | None = None
    older_p50: float | None = None
    recent_p50: float | None = None
    older: tuple[float, ...] = ()
    recent: tuple[float, ...] = ()


def duration_fields(window: Sequence[float], slower_min_percent: float) -> DurationFields:
    """Percentiles of a duration window (oldest first), and its older vs recent half.

    The halves' samples are kept only when the recent half is at least
    `slower_min_percent` slower, for a significance test later.
    """
    if not window:
        return DurationFields()
    ordered = sorted(window)
    p50 = quantile(ordered, 0.5)
    p90 = quantile(ordered, 0.9)
    p95 = quantile(ordered, 0.95)
    if len(window) < 4:
        return DurationFields(p50, p90, p95, ordered[-1])
    half = len(window) // 2
    older_list, recent_list = window[:half], window[half:]
    older_p50 = median(older_list)
    recent_p50 = median(recent_list)
    older: tuple[float, ...] = ()
    recent: tuple[float, ...] = ()
    if older_p50 > 0 and (recent_p50 / older_p50 - 1.0) * 100.0 >= slower_min_percent:
        older, recent = tuple(older_list), tuple(recent_list)
    return DurationFields(p50, p90, p95, ordered[-1], older_p50, recent_p50, older, recent)


def _run_label(e: CaseExecution) -> str:
    label = e.run_id or "local"
    if e.run_attempt and e.run_attempt > 1:
        label += f"#{e.run_attempt}"
    if e.job:
        label += f" ({e.job})"
    return label


def _flaky_events(groups: dict[object, list[CaseExecution]]) -> list[FlakyEvent]:
    events: list[FlakyEvent] = []
    for members in groups.values():
        outcomes = {m.outcome for m in members}
        retried = FLAKY_OUTCOME in outcomes
        flipped = bool(outcomes & FAIL_OUTCOMES) and bool(
            outcomes & (PASS_OUTCOMES | {FLAKY_OUTCOME})
        )
        if not (retried or flipped):
            continue
        passed_runs = sorted(
            {
                _run_label(m)
                for m in members
                if m.outcome in PASS_OUTCOMES or m.outcome == FLAKY_OUTCOME
            }
        )
        failed_runs = sorted({_run_label(m) for m in members if m.outcome in FAIL_OUTCOMES})
        events.append(
            FlakyEvent(
                commit=members[0].commit,
                at=max(m.at for m in members),
                passed_runs=tuple(passed_runs[:MAX_EVIDENCE]),
                failed_runs=tuple(failed_runs[:MAX_EVIDENCE]),
                retried=retried,
            )
        )
    return events


def summarize_history(
    executions: Iterable[CaseExecution],
    *,
    excluded_uploads: frozenset[UploadKey] = frozenset(),
    max_duration_samples: int = MAX_DURATION_SAMPLES,
    slower_min_percent: float = 20.0,
) -> Iterator[TestStats]:
    """TestStats per test from executions ordered by test id (then time). Streams."""
    for test, group in groupby(executions, key=_test_of):
        stats = summarize_test(
            test,
            list(group),
            excluded_uploads=excluded_uploads,
            max_duration_samples=max_duration_samples,
            slower_min_percent=slower_min_percent,
        )
        if stats is not None:
            yield stats


def _test_of(e: CaseExecution) -> str:
    return e.test_id


@dataclass(frozen=True, slots=True)
class UploadCounts:
    """How one upload (run, attempt, job) went: for spotting infrastructure failures."""

    key: UploadKey
    total: int
    failed: int


def infrastructure_uploads(
    uploads: Iterable[UploadCounts], *, max_failed_ratio: float = 0.8, min_tests: int = 5
) -> frozenset[UploadKey]:
    """Uploads where more than `max_failed_ratio` of at least `min_tests` tests failed.

    Such a run broke for a reason outside the tests (runner lost, service down), so its
    failures say nothing about any one test.
    """
    return frozenset(
        u.key for u in uploads if u.total >= min_tests and u.failed / u.total > max_failed_ratio
    )


@dataclass(frozen=True, slots=True)
class TestIdentity:
    """What a test id stands for."""

    __test__ = False

    test_id: str
    file: str | None
    classname: str | None
    name: str

    @property
    def display(self) -> str:
        parts = [p for p in (self.file, self.classname) if p]
        return "::".join([*parts, self.name])
