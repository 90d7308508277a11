"""The quarantine list: planned from history, applied with an audit trail, exported, gated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contexten.analysis.executions import TestIdentity
from contexten.analysis.flaky import FlakyPolicy
from contexten.analysis.junit import parse_junit
from contexten.store.db import Store, open_store
from contexten.store.test_history import HistoryFilter, ReportOrigin, identities, ingest_report
from contexten.testhistory import quarantine as q
from contexten.testhistory.report import (
    ReportOptions,
    ShardRequest,
    build_report,
    collect_stats,
    plan_from_history,
    report_markdown,
)

START = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'q.db'}")


def report(outcomes: dict[str, str], durations: dict[str, float] | None = None) -> bytes:
    cases = []
    for name, outcome in outcomes.items():
        inner = '<failure message="flaky timeout"/>' if outcome == "failed" else ""
        time = (durations or {}).get(name, 1.0)
        cases.append(
            f'<testcase classname="tests.test_m" name="{name}" time="{time}">{inner}</testcase>'
        )
    return f'<testsuite name="pytest">{"".join(cases)}</testsuite>'.encode()


def day(store: Store, n: int, outcomes: dict[str, str], attempt: int = 1, **kw: object) -> None:
    data = report(outcomes, **kw)  # type: ignore[arg-type]
    run = ReportOrigin(
        repository="o/r",
        run_id=str(100 + n),
        run_attempt=attempt,
        commit=f"sha{n}",
        branch="main",
        job="test",
        recorded_at=START + timedelta(days=n, minutes=attempt),
    )
    ingest_report(store, parse_junit(data, f"day{n}.xml"), run, data)


def test_flaky_test_is_quarantined_then_released_when_stable(store: Store) -> None:
    # Days 0-3: test_flaky fails then passes on retry twice; test_ok always passes.
    for n in range(4):
        if n in (1, 3):
            day(store, n, {"test_flaky": "failed", "test_ok": "passed"})
            day(store, n, {"test_flaky": "passed"}, attempt=2)  # only the re-run test
        else:
            day(store, n, {"test_flaky": "passed", "test_ok": "passed"})
    now = START + timedelta(days=4)
    options = ReportOptions(repository="o/r", window_days=30, now=now)
    built = build_report(store, options)
    assert [built.name(f.stats.test_id) for f in built.flaky] == ["tests.test_m::test_flaky"]
    (decision,) = built.plan.decisions
    assert decision.action == "add"
    applied = q.apply_plan(store, built.plan, built.identities, now=now, repository="o/r")
    assert len(applied) == 1
    (entry,) = q.list_entries(store)
    assert entry.name == "tests.test_m::test_flaky" and not entry.manual
    assert entry.expires_at == now + timedelta(days=30)
    assert entry.evidence["flaky_events"] == 2
    assert entry.evidence["history"][0]["action"] == "add"
    assert entry.evidence["history"][0]["by"] == "auto"
    assert q.active_ids(store, now, "o/r") == {entry.test_id}
    assert q.active_ids(store, now, "o/other") == frozenset()

    # Applying the same plan again changes nothing: the test is already quarantined.
    assert build_report(store, options).plan.decisions == ()

    # Ten clean days later (a run each day), it is released.
    for n in range(5, 16):
        day(store, n, {"test_flaky": "passed", "test_ok": "passed"})
    later = START + timedelta(days=16)
    built = build_report(store, ReportOptions(repository="o/r", window_days=30, now=later))
    (release,) = built.plan.decisions
    assert release.action == "release" and release.reason.startswith("stable: 12 clean")
    q.apply_plan(store, built.plan, built.identities, now=later, repository="o/r")
    assert q.list_entries(store) == []
    (released,) = q.list_entries(store, include_released=True)
    assert [h["action"] for h in released.evidence["history"]] == ["add", "release"]
    assert released.released_at == later


def test_manual_add_release_and_re_add_keep_the_audit_trail(store: Store) -> None:
    identity = TestIdentity("a" * 64, "tests/test_x.py", "tests.test_x", "test_y")
    now = START
    q.add(
        store,
        identity,
        reason="ticket 42",
        now=now,
        expires_at=None,
        actor="alice",
        manual=True,
        repository="o/r",
    )
    q.release(store, identity.test_id, reason="fixed", now=now + timedelta(days=1), actor="bob")
    assert q.release(store, identity.test_id, reason="again", now=now, actor="bob") is None
    q.add(
        store,
        identity,
        reason="back again",
        now=now + timedelta(days=2),
        expires_at=now + timedelta(days=9),
        actor="carol",
        manual=True,
        repository="o/r",
    )
    (entry,) = q.list_entries(store)
    assert entry.reason == "back again" and entry.manual
    assert entry.added_at == now + timedelta(days=2)
    assert [(h["action"], h["by"]) for h in entry.evidence["history"]] == [
        ("add", "alice"),
        ("release", "bob"),
        ("add", "carol"),
    ]
    assert entry.name == "tests/test_x.py::tests.test_x::test_y"


def test_export_and_parse_the_quarantine_file(store: Store) -> None:
    keep = TestIdentity("b" * 64, None, "c", "keep")
    gone = TestIdentity("c" * 64, None, "c", "expires")
    q.add(
        store,
        keep,
        reason="r",
        now=START,
        expires_at=START + timedelta(days=30),
        actor="x",
        manual=True,
        repository=None,
    )
    q.add(
        store,
        gone,
        reason="r",
        now=START,
        expires_at=START + timedelta(days=1),
        actor="x",
        manual=True,
        repository=None,
    )
    document = q.export_document(q.list_entries(store), START + timedelta(hours=1))
    assert document["format"] == q.FILE_FORMAT
    data = json.dumps(document).encode()
    assert q.parse_quarantine_document(data, "q.json", START + timedelta(hours=2)) == {
        keep.test_id,
        gone.test_id,
    }
    # The file itself enforces expiry: a stale export does not forgive forever.
    assert q.parse_quarantine_document(data, "q.json", START + timedelta(days=2)) == {keep.test_id}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "q.json: not JSON"),
        (b"[]", "q.json: not a quarantine file"),
        (b'{"format": "contexten-quarantine/1", "tests": {}}', "'tests' must be a list"),
        (b'{"format": "contexten-quarantine/1", "tests": [{"id": 1}]}', "string test_id"),
        (
            b'{"format": "contexten-quarantine/1",'
            b' "tests": [{"test_id": "x", "expires_at": "soon"}]}',
            "bad expires_at",
        ),
    ],
)
def test_bad_quarantine_files_give_one_line_errors(data: bytes, message: str) -> None:
    with pytest.raises(q.QuarantineFileError, match=message):
        q.parse_quarantine_document(data, "q.json", START)


def test_identity_drift_is_reported_in_the_report(store: Store) -> None:
    day(store, 0, {"test_p[old-name]": "passed"})
    built = build_report(
        store, ReportOptions(repository="o/r", window_days=60, now=START + timedelta(days=1))
    )
    test_id = next(iter(built.snapshot.stats))
    q.add(
        store,
        built.identities[test_id] if test_id in built.identities else identities(store)[test_id],
        reason="flaky",
        now=START,
        expires_at=None,
        actor="x",
        manual=True,
        repository="o/r",
    )
    day(store, 40, {"test_p[new-name]": "passed"})
    built = build_report(
        store, ReportOptions(repository="o/r", window_days=14, now=START + timedelta(days=41))
    )
    (drift,) = built.plan.drift
    assert drift.quarantined.name == "test_p[old-name]"
    assert [c.name for c in drift.candidates] == ["test_p[new-name]"]
    assert "renamed parameter" in report_markdown(built)


def test_shards_from_history_balance_recorded_durations(store: Store) -> None:
    durations = {
        "test_slow": 60.0,
        "test_mid": 30.0,
        "test_a": 10.0,
        "test_b": 10.0,
        "test_c": 10.0,
    }
    for n in range(3):
        day(store, n, dict.fromkeys(durations, "passed"), durations=durations)
    options = ReportOptions(repository="o/r", window_days=30, now=START + timedelta(days=4))
    snapshot = collect_stats(store, options)
    known = identities(store, HistoryFilter(repository="o/r"))
    plan = plan_from_history(snapshot, known, ShardRequest(2, "p90"))
    assert sorted(s.expected_seconds for s in plan.shards) == [60.0, 60.0]
    assert {k for s in plan.shards for k in s.keys} == {f"tests/test_m.py::{n}" for n in durations}
    # A collected list: a new test gets the median estimate, a deleted one is left out.
    collected = ["tests/test_m.py::test_slow", "tests/test_m.py::test_new"]
    plan = plan_from_history(snapshot, known, ShardRequest(2, "p90", "test", collected))
    assert plan.unknown_items == 1
    assert sorted(s.expected_seconds for s in plan.shards) == [10.0, 60.0]
    by_file = plan_from_history(snapshot, known, ShardRequest(3, "median", "file"))
    assert [s.keys for s in by_file.shards] == [("tests/test_m.py",)]
    assert "none is empty" in by_file.notes[0]


def test_policy_threshold_from_options(store: Store) -> None:
    day(store, 0, {"test_f": "failed"})
    day(store, 0, {"test_f": "passed"}, attempt=2)
    for n in (1, 2):
        day(store, n, {"test_f": "passed"})
    now = START + timedelta(days=3)
    strict = build_report(store, ReportOptions(repository="o/r", now=now))
    assert strict.plan.decisions == ()  # one flaky commit: reported, not quarantined
    assert len(strict.flaky) == 1
    eager = build_report(
        store, ReportOptions(repository="o/r", now=now, policy=FlakyPolicy(activate_events=1))
    )
    assert [d.action for d in eager.plan.decisions] == ["add"]
