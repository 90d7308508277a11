"""Ingesting reports into the store and reading the history back."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contexten.analysis.junit import parse_junit
from contexten.store.db import Store, open_store
from contexten.store.test_history import (
    HistoryFilter,
    ReportOrigin,
    find_tests,
    history_span,
    identities,
    ingest_report,
    ingest_reports,
    iter_executions,
    upload_counts,
)
from contexten.testhistory.files import (
    ReportFileError,
    ReportSource,
    find_report_files,
    iter_report_sources,
    iter_zip_reports,
)
from contexten.testhistory.report import ReportOptions, build_report, report_json

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'history.db'}")


def junit(*cases: tuple[str, str], suite: str = "pytest") -> bytes:
    """A pytest-like report: (name, outcome) with outcome passed|failed|error|skipped."""
    body = []
    for name, outcome in cases:
        inner = {
            "passed": "",
            "failed": '<failure message="boom">trace</failure>',
            "error": '<error message="oops"/>',
            "skipped": "<skipped/>",
        }[outcome]
        body.append(
            f'<testcase classname="tests.test_a.TestA" name="{name}" time="0.5">{inner}</testcase>'
        )
    return f'<testsuite name="{suite}">{"".join(body)}</testsuite>'.encode()


def ingest(store: Store, data: bytes, **run: object) -> int:
    info = ReportOrigin(**{"repository": "o/r", "recorded_at": NOW, **run})  # type: ignore[arg-type]
    return ingest_report(store, parse_junit(data, "report.xml"), info, data).stored


def test_each_report_is_ingested_once_per_run_attempt(store: Store) -> None:
    data = junit(("test_x", "failed"), ("test_y", "passed"))
    assert ingest(store, data, run_id="1", commit="c1") == 2
    assert ingest(store, data, run_id="1", commit="c1") == 0  # same upload again
    assert ingest(store, data, run_id="1", run_attempt=2, commit="c1") == 2  # the re-run
    rows = list(iter_executions(store, HistoryFilter(repository="o/r")))
    assert len(rows) == 4
    assert [r.run_attempt for r in rows if r.outcome == "failed"] == [1, 2]
    # Ordered by test id, then time: each test's rows are together.
    ids = [r.test_id for r in rows]
    assert ids == sorted(ids)


def test_bulk_ingest_stores_each_report_once_in_one_transaction(store: Store) -> None:
    first = junit(("test_x", "failed"), ("test_y", "passed"), ("test_z", "skipped"))
    second = junit(("test_x", "passed"))
    run1 = ReportOrigin(repository="o/r", run_id="1", commit="c1", recorded_at=NOW)
    run2 = ReportOrigin(
        repository="o/r", run_id="2", commit="c2", recorded_at=NOW + timedelta(hours=1)
    )
    items = [
        (parse_junit(first, "a.xml"), run1, first),
        (parse_junit(first, "a.xml"), run1, first),  # the same upload twice in one batch
        (parse_junit(second, "b.xml"), run2, second),
    ]
    outcomes = ingest_reports(store, items)
    assert [(o.stored, o.duplicate) for o in outcomes] == [(3, False), (0, True), (1, False)]
    assert [(o.stored, o.duplicate) for o in ingest_reports(store, items[:1])] == [(0, True)]
    rows = list(iter_executions(store, HistoryFilter(repository="o/r")))
    assert len(rows) == 4
    by_run = {(r.run_id, r.outcome) for r in rows}
    assert by_run == {("1", "failed"), ("1", "passed"), ("1", "skipped"), ("2", "passed")}
    assert {r.run_id: r.at for r in rows} == {
        "1": NOW.timestamp(),
        "2": (NOW + timedelta(hours=1)).timestamp(),
    }
    assert {u.key: (u.total, u.failed) for u in upload_counts(store, HistoryFilter())} == {
        ("1", 1, None): (2, 1),
        ("2", 1, None): (1, 0),
    }


def test_filters_by_branch_repository_and_window(store: Store) -> None:
    data = junit(("test_x", "passed"))
    ingest(store, data, run_id="1", branch="main", recorded_at=NOW - timedelta(days=30))
    ingest(store, data, run_id="2", branch="main", recorded_at=NOW)
    ingest(store, data, run_id="3", branch="feature", recorded_at=NOW)
    ingest(store, data, run_id="4", branch="main", repository="o/other", recorded_at=NOW)
    recent = HistoryFilter(repository="o/r", branch="main", since=NOW - timedelta(days=7))
    assert [r.run_id for r in iter_executions(store, recent)] == ["2"]
    count, oldest, newest = history_span(store, HistoryFilter(repository="o/r"))
    assert count == 3
    assert oldest == NOW - timedelta(days=30) and newest == NOW


def test_identity_and_lookup(store: Store) -> None:
    ingest(store, junit(("test_x[a-1]", "passed"), ("test_x[b-2]", "passed")), run_id="1")
    known = identities(store, HistoryFilter(repository="o/r"))
    assert sorted(i.name for i in known.values()) == ["test_x[a-1]", "test_x[b-2]"]
    (one,) = find_tests(store, "TestA::test_x[a-1]", "o/r")
    assert one.name == "test_x[a-1]"
    assert find_tests(store, one.test_id)[0] == one
    assert len(find_tests(store, "test_x", "o/r")) == 2
    assert find_tests(store, "nothing-like-this") == []


def test_long_values_are_cut_to_the_columns(store: Store) -> None:
    long_name = "test_" + "x" * 2000
    ingest(store, junit((long_name, "passed")), run_id="r" * 150, job="j" * 400)
    (row,) = iter_executions(store, HistoryFilter())
    assert len(row.run_id or "") == 100 and len(row.job or "") == 300
    (identity,) = identities(store).values()
    assert len(identity.name) == 1000


def test_infrastructure_uploads_do_not_make_tests_flaky(store: Store) -> None:
    names = [f"test_{i}" for i in range(10)]
    # Run 1 on commit c1: everything passes. Attempt 2 of the same commit: the runner died
    # and 9 of 10 tests errored. That is not ten flaky tests.
    ingest(store, junit(*((n, "passed") for n in names)), run_id="1", commit="c1")
    broken = [(n, "error") for n in names[:9]] + [(names[9], "passed")]
    ingest(store, junit(*broken), run_id="1", run_attempt=2, commit="c1")
    # A real flake: test_0 fails and passes on commit c2.
    ingest(store, junit(("test_0", "failed")), run_id="2", commit="c2")
    ingest(store, junit(("test_0", "passed")), run_id="2", run_attempt=2, commit="c2")
    counts = {u.key: (u.total, u.failed) for u in upload_counts(store, HistoryFilter())}
    assert counts[("1", 2, None)] == (10, 9)
    report = build_report(store, ReportOptions(repository="o/r", now=NOW + timedelta(hours=1)))
    assert report.snapshot.excluded_uploads == 1
    assert [report.name(f.stats.test_id) for f in report.flaky] == ["tests.test_a.TestA::test_0"]
    data = report_json(report)
    assert data["flaky"][0]["evidence"][0]["failed_runs"] == ["2"]
    assert data["flaky"][0]["evidence"][0]["passed_runs"] == ["2#2"]


def test_find_report_files_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.xml").write_bytes(junit(("t", "passed")))
    (tmp_path / "a" / "notes.txt").write_text("not a report")
    (tmp_path / "empty").mkdir()
    files, errors = find_report_files(
        [tmp_path / "a", tmp_path / "empty", tmp_path / "missing.xml"]
    )
    assert files == [tmp_path / "a" / "one.xml"]
    assert errors == [
        f"{tmp_path / 'empty'}: no .xml or .zip reports in this directory",
        f"{tmp_path / 'missing.xml'}: no such file or directory",
    ]


def test_find_report_files_survives_directories_that_vanish_or_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for name in ("kept", "vanishing", "locked"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "r.xml").write_bytes(junit(("t", "passed")))
    real_scandir = os.scandir

    def scandir(path: object) -> object:
        # What happens when another process removes a directory mid-walk (e.g. under /tmp)
        # or the directory is not readable.
        name = Path(os.fsdecode(path)).name  # type: ignore[arg-type]
        if name == "vanishing":
            raise FileNotFoundError(2, "No such file or directory", str(path))
        if name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    files, errors = find_report_files([tmp_path])
    assert files == [tmp_path / "kept" / "r.xml"]
    assert errors == [f"{tmp_path / 'locked'}: cannot read directory: Permission denied"]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_artifacts_are_read_member_by_member() -> None:
    data = zip_bytes(
        {
            "reports/b.xml": junit(("t", "passed")),
            "reports/a.xml": b"<broken",
            "readme.md": b"# ignored",
        }
    )
    found = list(iter_zip_reports(data, "junit.zip"))
    assert [f.name for f in found if isinstance(f, ReportSource)] == [
        "junit.zip!reports/a.xml",
        "junit.zip!reports/b.xml",
    ]


def test_zip_bombs_and_oversized_members_are_refused(tmp_path: Path) -> None:
    big = zip_bytes({"big.xml": b"<a>" + b" " * 5_000_000 + b"</a>"})
    assert len(big) < 100_000  # compresses well: the declared size is what counts
    (result,) = iter_zip_reports(big, "big.zip", max_member_bytes=1_000_000)
    assert isinstance(result, ReportFileError)
    assert "big.zip!big.xml: report is 5000007 bytes" in str(result)
    with pytest.raises(ReportFileError, match="over the limit of 2"):
        list(
            iter_zip_reports(
                zip_bytes({"a.xml": b"1", "b.xml": b"2", "c.xml": b"3"}), "m.zip", max_members=2
            )
        )
    with pytest.raises(ReportFileError, match="not a zip archive"):
        list(iter_zip_reports(b"PK-not-really", "bad.zip"))
    path = tmp_path / "artifact.zip"
    path.write_bytes(zip_bytes({"r.xml": junit(("t", "passed"))}))
    (source,) = iter_report_sources([path])
    assert isinstance(source, ReportSource) and source.name.endswith("artifact.zip!r.xml")


def test_columnar_scan_matches_the_row_by_row_stats(store: Store) -> None:
    """collect_stats (columnar scan + full rows of candidates) == summarize over all rows."""
    import random

    from contexten.analysis.executions import infrastructure_uploads, summarize_history
    from contexten.testhistory.report import collect_stats

    rng = random.Random(5)
    names = [f"test_{i}" for i in range(30)]
    for run in range(40):
        outcomes = []
        for n in names:
            roll = rng.random()
            outcome = "passed"
            if n.endswith(("1", "2")) and roll < 0.2:
                outcome = rng.choice(["failed", "error"])
            elif n.endswith("5") and roll < 0.3:
                outcome = "skipped"
            outcomes.append((n, outcome))
        if run == 13:  # an outage: nearly everything errors
            outcomes = [(n, "error") for n in names]
        commit = None if run % 9 == 4 else f"c{run // 2}"
        at = NOW - timedelta(hours=80 - run)
        ingest(store, junit(*outcomes), run_id=str(run), commit=commit, recorded_at=at)
        retry = [(n, "passed") for n, o in outcomes if o in ("failed", "error")][:5]
        if retry:
            ingest(
                store,
                junit(*retry),
                run_id=str(run),
                run_attempt=2,
                commit=commit,
                recorded_at=at + timedelta(minutes=5),
            )
    options = ReportOptions(repository="o/r", window_days=14, now=NOW)
    snapshot = collect_stats(store, options)
    f = options.history_filter()
    excluded = infrastructure_uploads(upload_counts(store, f))
    assert excluded == {("13", 1, None)}
    expected = {
        s.test_id: s
        for s in summarize_history(iter_executions(store, f), excluded_uploads=excluded)
    }
    assert set(snapshot.stats) == set(expected)
    for test_id, stats in expected.items():
        got = snapshot.stats[test_id]
        differing = {
            f: (getattr(got, f), getattr(stats, f))
            for f in stats.__dataclass_fields__
            if getattr(got, f) != getattr(stats, f)
        }
        assert not differing, differing
    assert snapshot.excluded_uploads == 1
    assert any(s.flaky_event_count for s in expected.values())


def test_both_scanners_read_the_same_columns(store: Store) -> None:
    """The SQLite group_concat scanner and the generic row scanner agree, value for value."""
    from contexten.store.test_history import _scan_rows, _scan_sqlite

    for run in range(3):
        ingest(
            store,
            junit(("test_a", "passed"), ("test_b", "skipped"), ("test_c", "failed")),
            run_id=str(run),
            commit=None if run == 1 else f"c{run}",
            job="unit, py3.12",  # a comma inside a key
            recorded_at=NOW - timedelta(hours=run, microseconds=123457),
        )
    f = HistoryFilter(repository="o/r", since=NOW - timedelta(days=1))
    excluded = frozenset({("2", 1, "unit, py3.12")})

    def flat(chunks: object) -> list[tuple[object, ...]]:
        rows = []
        for ids, outcomes, durations, times, groups in chunks:  # type: ignore[attr-defined]
            for row in zip(ids, outcomes, durations, times, groups, strict=True):
                rows.append((row[0], int(row[1]), float(row[2]), float(row[3]), row[4]))
        return rows

    fast = flat(_scan_sqlite(store, f, excluded, 2))  # tiny chunks: the ranges line up
    plain = flat(_scan_rows(store, f, excluded, 2))
    assert fast == plain
    assert len(fast) == 6  # run 2 is excluded
    assert {r[4] for r in fast} == {"c0", "1#1#unit, py3.12"}
    assert fast[0][3] == (NOW - timedelta(microseconds=123457)).timestamp()


def test_a_report_without_a_run_id_is_its_own_upload(store: Store) -> None:
    # No run id, no commit: two different reports are two uploads (never one group when
    # flakiness is judged); the same report again is the same upload, stored once.
    passing, failing = junit(("test_x", "passed")), junit(("test_x", "failed"))
    assert ingest(store, passing) == 1
    assert ingest(store, failing) == 1
    assert ingest(store, passing) == 0
    runs = sorted(e.run_id or "" for e in iter_executions(store, HistoryFilter()))
    assert len(set(runs)) == 2 and all(r.startswith("report.xml@") for r in runs)
    built = build_report(store, ReportOptions(repository="o/r", now=NOW))
    assert list(built.flaky) == []


def test_a_few_tests_of_a_large_suite_keep_their_identities(store: Store) -> None:
    """A report of the whole suite, then one of two known tests and a new one: the known
    tests' rows go to their identities, the new test's identity comes from its first case
    (its suite), and each test's rows read back in arrival order."""
    from sqlalchemy import func, select

    from contexten.store.models import TestCaseRecord, TestResultRecord

    suite = [(f"test_{i}", "passed") for i in range(40)]
    ingest(store, junit(*suite), run_id="1", recorded_at=NOW - timedelta(hours=2))
    few = junit(("test_7", "failed"), ("test_new", "skipped"), ("test_31", "error"))
    again = junit(("test_new", "passed"), suite="second")
    run2 = ReportOrigin(repository="o/r", run_id="2", recorded_at=NOW - timedelta(hours=1))
    outcomes = ingest_reports(
        store,
        [
            (parse_junit(few, "few.xml"), run2, few),
            (parse_junit(again, "again.xml"), run2, again),
        ],
    )
    assert [o.stored for o in outcomes] == [3, 1]
    names = {i.test_id: i.name for i in identities(store).values()}
    assert len(names) == 41
    rows = [
        (names[e.test_id], e.run_id, e.outcome)
        for e in iter_executions(store, HistoryFilter(repository="o/r"))
        if names[e.test_id] in ("test_7", "test_31", "test_new")
    ]
    assert sorted(rows) == [
        ("test_31", "1", "passed"),
        ("test_31", "2", "error"),
        ("test_7", "1", "passed"),
        ("test_7", "2", "failed"),
        ("test_new", "2", "passed"),
        ("test_new", "2", "skipped"),
    ]
    with store.session() as session:
        suites = dict(session.execute(select(TestCaseRecord.name, TestCaseRecord.suite)).all())
        # Rows in arrival order: the first report's skip before the second's pass.
        new_case = select(TestCaseRecord.id).where(TestCaseRecord.name == "test_new")
        new_rows = session.scalars(
            select(TestResultRecord.outcome)
            .where(TestResultRecord.case_id.in_(new_case))
            .order_by(TestResultRecord.id)
        ).all()
        total = session.scalar(select(func.count()).select_from(TestResultRecord))
    assert suites["test_new"] == "pytest" and suites["test_7"] == "pytest"
    assert new_rows == ["skipped", "passed"]
    assert total == 44


def test_the_remembered_test_ids_stay_bounded_and_right(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test ids are remembered across ingests up to a bound; past it they are forgotten
    and computed again, the same."""
    from contexten.analysis.junit import test_id
    from contexten.store import test_history

    monkeypatch.setattr(test_history, "_KNOWN_LIMIT", 5)
    monkeypatch.setattr(test_history, "_KNOWN_TESTS", {})
    for run in range(4):
        for repository in ("o/a", "o/b", "o/c"):
            data = junit(*((f"test_{run}_{i}", "passed") for i in range(3)))
            ingest(store, data, repository=repository, run_id=str(run))
            assert sum(map(len, test_history._KNOWN_TESTS.values())) <= 5 + 3
    stored = {i.test_id for i in identities(store).values()}
    assert len(stored) == 36
    assert stored == {
        test_id(repository, None, "tests.test_a.TestA", f"test_{run}_{i}")
        for run in range(4)
        for repository in ("o/a", "o/b", "o/c")
        for i in range(3)
    }
    executions = list(iter_executions(store, HistoryFilter()))
    assert {e.test_id for e in executions} == stored and len(executions) == 36
