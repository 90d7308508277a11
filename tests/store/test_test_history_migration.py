"""Migration 0003 moves the wide test_results rows into test cases, uploads and narrow
results, and back on downgrade, without changing what the test history reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from contexten.analysis.junit import test_id
from contexten.store.db import MIGRATIONS_DIR, Store
from contexten.store.test_history import (
    HistoryFilter,
    find_tests,
    history_span,
    identities,
    iter_executions,
    stored_overview,
    upload_counts,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)

WIDE = (
    "test_id, repository, suite, classname, name, file, outcome, duration_seconds, run_id,"
    " run_attempt, commit_sha, branch, job, recorded_at"
)


def _alembic(store: Store, action: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", store.url)
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        getattr(command, action)(cfg, revision)


def _sqlite_time(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


A = test_id("o/r", "tests/test_a.py", "tests.test_a.TestA", "test_one")
B = test_id("o/r", "tests/test_a.py", "tests.test_a.TestA", "test_two")
# (test id, suite, name, outcome, duration, run, attempt, commit, branch, job, recorded at)
OLD_ROWS = [
    (A, "s1", "test_one", "failed", 0.5, "1", 1, "c1", "main", "unit", NOW - timedelta(hours=2)),
    (B, "s1", "test_two", "passed", None, "1", 1, "c1", "main", "unit", NOW - timedelta(hours=2)),
    (A, "s1", "test_one", "passed", 0.25, "1", 2, "c1", "main", "unit", NOW - timedelta(hours=1)),
    (B, "s1", "test_two", "skipped", 0.0, "r.xml@12", 1, None, None, None, NOW),
    # Another suite: a test keeps the suite of its first row.
    (A, "s2", "test_one", "error", 1.5, "2", 1, "c2", "main", None, NOW),
]


def _old_store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    _alembic(store, "upgrade", "0002")
    with store.engine.begin() as connection:
        for test, suite, name, outcome, duration, run, attempt, commit, branch, job, at in OLD_ROWS:
            connection.execute(
                text(
                    f"INSERT INTO test_results ({WIDE}) VALUES (:test, 'o/r', :suite,"
                    " 'tests.test_a.TestA', :name, 'tests/test_a.py', :outcome, :duration,"
                    " :run, :attempt, :commit, :branch, :job, :at)"
                ),
                {
                    "test": test,
                    "suite": suite,
                    "name": name,
                    "outcome": outcome,
                    "duration": duration,
                    "run": run,
                    "attempt": attempt,
                    "commit": commit,
                    "branch": branch,
                    "job": job,
                    "at": _sqlite_time(at),
                },
            )
        # The ingest records of the old schema: rows of the action ledger.
        for key, kind, result in LEDGER:
            connection.execute(
                text(
                    "INSERT INTO actions (idempotency_key, kind, target, status, result,"
                    " attempts, created_at, updated_at) VALUES (:key, :kind, 'r.xml', 'done',"
                    " :result, 1, :at, :at)"
                ),
                {"key": key, "kind": kind, "result": json.dumps(result), "at": _sqlite_time(NOW)},
            )
    return store


LEDGER = [
    (
        "tests.ingest:1",
        "tests.ingest",
        {"cases": 2, "tests": 2, "failed": 1, "errors": 0, "skipped": 0, "repository": "o/r"}
        | {"branch": "main", "run_id": "1", "run_attempt": 1, "job": "unit"},
    ),
    (
        "tests.ingest:2",
        "tests.ingest",
        {"cases": 1, "tests": 1, "failed": 0, "errors": 1, "skipped": 0, "repository": "o/r"}
        | {"branch": "main", "run_id": "2", "run_attempt": 1, "job": None},
    ),
    ("rerun:o/r:1", "rerun", {"ok": True}),  # an integration's action: stays in the ledger
]


def test_upgrade_moves_every_row_and_the_history_reads_the_same(tmp_path: Path) -> None:
    old = _old_store(tmp_path)
    old.dispose()
    store = Store(old.url)
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert {"test_cases", "test_uploads", "test_case_results"} <= tables
    assert "test_results" not in tables

    rows = list(iter_executions(store, HistoryFilter(repository="o/r")))
    expected = sorted(
        (
            (test, outcome, duration, commit, run, attempt, job, at.timestamp())
            for test, _, _, outcome, duration, run, attempt, commit, _, job, at in OLD_ROWS
        ),
        key=lambda r: (r[0], r[7]),
    )
    assert [tuple(r) for r in rows] == expected  # Execution is a NamedTuple
    with store.engine.connect() as connection:
        uploads = connection.execute(text("SELECT count(*) FROM test_uploads")).scalar()
        cases = connection.execute(text("SELECT count(*) FROM test_cases")).scalar()
    assert (uploads, cases) == (4, 2)  # the first two rows share their upload
    known = identities(store)
    assert {k: v.name for k, v in known.items()} == {A: "test_one", B: "test_two"}
    with store.engine.connect() as connection:
        suites = connection.execute(text("SELECT test_id, suite FROM test_cases")).all()
    assert sorted(suites) == sorted([(A, "s1"), (B, "s1")])
    assert [t.name for t in find_tests(store, "test_two", "o/r")] == ["test_two"]
    assert history_span(store, HistoryFilter(branch="main")) == (
        4,
        NOW - timedelta(hours=2),
        NOW,
    )
    assert stored_overview(store) == (5, ["o/r"])
    counts = {u.key: (u.total, u.failed) for u in upload_counts(store, HistoryFilter())}
    assert counts == {("1", 1, "unit"): (2, 1), ("2", 1, None): (1, 1)}
    with store.engine.connect() as connection:
        kinds = connection.execute(text("SELECT kind FROM actions")).scalars().all()
    assert kinds == ["rerun"]
    # Arrival order survives: the columnar scan reads rows in the order they were stored.
    from contexten.store.test_history import scan_history

    (chunk,) = scan_history(store, HistoryFilter())
    assert list(chunk[0]) == [row[0] for row in OLD_ROWS]
    assert list(chunk[4]) == ["c1", "c1", "c1", "r.xml@12#1#", "c2"]
    store.dispose()


def test_downgrade_restores_the_wide_rows(tmp_path: Path) -> None:
    old = _old_store(tmp_path)
    with old.engine.connect() as connection:
        before = connection.execute(text(f"SELECT {WIDE} FROM test_results ORDER BY id")).all()
    _alembic(old, "upgrade", "head")
    _alembic(old, "downgrade", "0002")
    with old.engine.connect() as connection:
        after = connection.execute(text(f"SELECT {WIDE} FROM test_results ORDER BY id")).all()
    # Every column comes back but the suite, which a test keeps once (its first).
    assert [r[:2] + r[3:] for r in after] == [r[:2] + r[3:] for r in before]
    assert [r[2] for r in after] == ["s1"] * 5
    assert "test_case_results" not in set(inspect(old.engine).get_table_names())
    with old.engine.connect() as connection:
        ledger = connection.execute(
            text("SELECT idempotency_key, kind, result FROM actions ORDER BY idempotency_key")
        ).all()
    assert [(k, kind, json.loads(r)) for k, kind, r in ledger] == sorted(LEDGER)
    old.dispose()
