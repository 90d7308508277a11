"""Flaky detection, quarantine planning and the gate, over hand-built histories."""

from __future__ import annotations

from pathlib import Path

import pytest

from contexten.analysis.executions import (
    CaseExecution,
    TestIdentity,
    UploadCounts,
    infrastructure_uploads,
    summarize_history,
    summarize_test,
)
from contexten.analysis.flaky import (
    DAY,
    ActiveEntry,
    FlakinessVerdict,
    FlakyPolicy,
    base_name,
    classify,
    find_flaky,
    gate,
    plan_quarantine,
)
from contexten.analysis.junit import aggregate_retries, parse_junit

DATA = Path(__file__).resolve().parents[1] / "data" / "junit"
NOW = 1_750_000_000.0


def ex(
    outcome: str,
    commit: str | None,
    run: str = "1",
    attempt: int = 1,
    at: float = NOW,
    test: str = "t",
    job: str | None = "test",
    duration: float | None = 1.0,
) -> CaseExecution:
    return CaseExecution(test, outcome, duration, commit, run, attempt, job, at)


def test_pass_and_fail_on_one_commit_across_attempts_is_flaky() -> None:
    stats = summarize_test(
        "t",
        [
            ex("failed", "c1", run="10", attempt=1, at=NOW),
            ex("passed", "c1", run="10", attempt=2, at=NOW + 60),
            ex("passed", "c2", run="11", at=NOW + 120),
        ],
    )
    assert stats is not None
    assert stats.flaky_event_count == 1
    assert stats.groups == 2
    assert stats.flake_rate == pytest.approx(0.5)
    (event,) = stats.flaky_events
    assert event.commit == "c1"
    assert event.failed_runs == ("10 (test)",)
    assert event.passed_runs == ("10#2 (test)",)
    assert classify(stats).verdict is FlakinessVerdict.FLAKY


def test_failing_after_a_change_is_not_flaky() -> None:
    history = [ex("passed", f"c{i}", run=str(i), at=NOW + i) for i in range(5)]
    history += [ex("failed", f"c{i}", run=str(i), at=NOW + i) for i in range(5, 10)]
    stats = summarize_test("t", history)
    assert stats is not None
    assert stats.flaky_event_count == 0
    assert classify(stats).verdict is FlakinessVerdict.FAILING


def test_always_failing_is_broken_and_never_quarantined() -> None:
    history = [ex("failed", f"c{i}", run=str(i), at=NOW + i) for i in range(6)]
    stats = summarize_test("t", history)
    assert stats is not None
    assert classify(stats).verdict is FlakinessVerdict.BROKEN
    plan = plan_quarantine({"t": stats}, [], now=NOW + 10)
    assert plan.decisions == ()


def test_matrix_legs_on_one_commit_count_as_one_flaky_event() -> None:
    stats = summarize_test(
        "t",
        [
            ex("passed", "c1", run="5", job="py3.11"),
            ex("failed", "c1", run="5", job="py3.12"),
            ex("passed", "c1", run="5", job="py3.13"),
        ],
    )
    assert stats is not None
    assert stats.flaky_event_count == 1
    assert stats.flaky_events[0].failed_runs == ("5 (py3.12)",)


def test_pass_on_retry_is_flaky_and_resets_the_clean_streak() -> None:
    stats = summarize_test(
        "t",
        [ex("passed", "c1", at=NOW), ex("flaky", "c2", at=NOW + 1), ex("passed", "c3", at=NOW + 2)],
    )
    assert stats is not None
    assert stats.flaky_event_count == 1
    assert stats.flaky_events[0].retried
    assert stats.passes_since_last_failure == 1
    assert stats.last_failure_at == NOW + 1


def test_without_commit_executions_group_by_upload() -> None:
    stats = summarize_test("t", [ex("failed", None, run="7"), ex("passed", None, run="7")])
    assert stats is not None and stats.flaky_event_count == 1
    stats = summarize_test("t", [ex("failed", None, run="7"), ex("passed", None, run="8")])
    assert stats is not None and stats.flaky_event_count == 0


def test_infrastructure_uploads_are_excluded() -> None:
    uploads = [UploadCounts(("9", 1, "test"), 10, 9), UploadCounts(("8", 1, "test"), 10, 1)]
    excluded = infrastructure_uploads(uploads)
    assert excluded == frozenset({("9", 1, "test")})
    history = [ex("passed", "c1", run="8"), ex("failed", "c1", run="9")]
    assert summarize_test("t", history, excluded_uploads=excluded).flaky_event_count == 0  # type: ignore[union-attr]
    assert summarize_test("t", history).flaky_event_count == 1  # type: ignore[union-attr]
    # A tiny upload is not judged: 1 of 1 failing is not an outage.
    assert infrastructure_uploads([UploadCounts(("1", 1, None), 1, 1)]) == frozenset()


def test_summarize_history_streams_per_test_and_skips_only_skipped() -> None:
    rows = [
        ex("passed", "c1", test="a"),
        ex("failed", "c1", test="a"),
        ex("skipped", "c1", test="b", duration=None),
        ex("passed", "c1", test="c", duration=2.0),
    ]
    stats = {s.test_id: s for s in summarize_history(rows)}
    assert set(stats) == {"a", "b", "c"}
    assert stats["b"].executions == 0 and stats["b"].skipped == 1
    assert stats["b"].p50 is None
    assert stats["c"].p50 == 2.0
    assert [f.stats.test_id for f in find_flaky(stats.values())] == ["a"]


def test_duration_window_is_bounded_and_keeps_the_newest() -> None:
    history = [ex("passed", f"c{i}", at=NOW + i, duration=float(i)) for i in range(300)]
    stats = summarize_test("t", history, max_duration_samples=100)
    assert stats is not None
    assert stats.duration_samples == 100
    assert stats.p50 == pytest.approx(249.5)
    assert stats.max_duration == 299.0


def flaky_stats(events: int, clean_after: int, last_bad_at: float) -> object:
    history = []
    for i in range(events):
        history += [
            ex("failed", f"f{i}", run=f"f{i}", at=last_bad_at - (events - i)),
            ex("passed", f"f{i}", run=f"f{i}", attempt=2, at=last_bad_at - (events - i) + 0.5),
        ]
    history += [
        ex("passed", f"p{i}", run=f"p{i}", at=last_bad_at + (i + 1) * DAY / 2)
        for i in range(clean_after)
    ]
    return summarize_test("t", history)


def test_quarantine_activation_needs_enough_events() -> None:
    policy = FlakyPolicy(activate_events=2)
    one = flaky_stats(1, 0, NOW)
    two = flaky_stats(2, 0, NOW)
    assert plan_quarantine({"t": one}, [], now=NOW, policy=policy).decisions == ()  # type: ignore[dict-item]
    (decision,) = plan_quarantine({"t": two}, [], now=NOW, policy=policy).decisions  # type: ignore[dict-item]
    assert decision.action == "add"
    assert decision.expires_at == NOW + policy.expire_days * DAY
    assert decision.evidence["flaky_events"] == 2
    assert decision.evidence["events"][0]["failed_runs"] == ["f1 (test)"]


def test_release_after_clean_days_and_clean_runs_only() -> None:
    policy = FlakyPolicy(release_clean_days=7, release_min_clean_runs=5)
    entry = ActiveEntry("t", "t", added_at=NOW - 20 * DAY, expires_at=NOW + 30 * DAY, manual=False)
    stable = flaky_stats(2, clean_after=20, last_bad_at=NOW - 10 * DAY)
    plan = plan_quarantine({"t": stable}, [entry], now=NOW, policy=policy)  # type: ignore[dict-item]
    assert [d.action for d in plan.decisions] == ["release"]
    # Clean for long enough but too few clean runs seen: keep.
    few = flaky_stats(2, clean_after=3, last_bad_at=NOW - 10 * DAY)
    plan = plan_quarantine({"t": few}, [entry], now=NOW, policy=policy)  # type: ignore[dict-item]
    assert plan.decisions == () and plan.kept == ("t",)
    # Not seen at all in the window: absence is not evidence, keep.
    plan = plan_quarantine({}, [entry], now=NOW, policy=policy)
    assert plan.kept == ("t",)


def test_manual_entries_are_kept_until_expiry_and_expired_flaky_entries_renew() -> None:
    policy = FlakyPolicy()
    stable = flaky_stats(2, clean_after=20, last_bad_at=NOW - 10 * DAY)
    manual = ActiveEntry("t", "t", NOW - 20 * DAY, NOW + DAY, manual=True)
    assert plan_quarantine({"t": stable}, [manual], now=NOW, policy=policy).kept == ("t",)  # type: ignore[dict-item]
    expired = ActiveEntry("t", "t", NOW - 40 * DAY, NOW - 1, manual=False)
    still_flaky = flaky_stats(3, 0, NOW - DAY)
    (renew,) = plan_quarantine({"t": still_flaky}, [expired], now=NOW, policy=policy).decisions  # type: ignore[dict-item]
    assert renew.action == "renew"
    (release,) = plan_quarantine({}, [expired], now=NOW, policy=policy).decisions
    assert release.action == "release" and release.reason == "expired"


def test_identity_drift_is_reported() -> None:
    old = TestIdentity("old", "tests/test_a.py", "tests.test_a", "test_x[param-a]")
    new = TestIdentity("new", "tests/test_a.py", "tests.test_a", "test_x[param-b]")
    entry = ActiveEntry("old", old.display, NOW - DAY, None, manual=False)
    new_stats = summarize_test("new", [ex("passed", "c1", test="new")])
    plan = plan_quarantine(
        {"new": new_stats},  # type: ignore[dict-item]
        [entry],
        now=NOW,
        identities={"old": old, "new": new},
    )
    (suspect,) = plan.drift
    assert suspect.quarantined == old
    assert suspect.candidates == (new,)
    assert base_name("test_x[param-a]") == "test_x"


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="activate_events"):
        FlakyPolicy(activate_events=0)


def test_gate_forgives_quarantined_failures_only() -> None:
    path = DATA / "mikepenz-action-junit-report/python/report.xml"
    report = parse_junit(path.read_bytes(), path.name)
    results = list(aggregate_retries(report.cases))
    failing = [r for r in results if r.outcome.value in ("failed", "error")]
    assert len(failing) == 2
    result = gate(results, frozenset(), "o/r")
    assert not result.ok and len(result.blocking) == 2
    one = frozenset({failing[0].case.test_id("o/r")})
    result = gate(results, one, "o/r")
    assert len(result.blocking) == 1 and len(result.quarantined) == 1
    both = frozenset(r.case.test_id("o/r") for r in failing)
    assert gate(results, both, "o/r").ok
    # Quarantine is per repository: the same ids do not forgive another repository.
    assert not gate(results, both, "o/other").ok


def test_gate_passes_a_test_that_passed_on_retry() -> None:
    path = DATA / "mikepenz-action-junit-report/maven_surefire_flaky/surefire-report.xml"
    results = list(aggregate_retries(parse_junit(path.read_bytes(), path.name).cases))
    result = gate(results, frozenset(), None)
    assert result.ok and len(result.passed_on_retry) == 1
