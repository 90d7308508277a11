"""Our store on a real PostgreSQL: migrations to head, schema equal to the models, and
GitHub's 64-bit ids stored without loss."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from contexten.store.db import MIGRATIONS_DIR, Store
from contexten.store.models import Base, CiTiming, DiagnosisRecord, LogCacheEntry

pytestmark = pytest.mark.postgres

# Real id sizes: run ids passed 2**31 long ago, job ids are past 2**34 (sandbox: 25e9).
RUN_ID = 9_000_000_001 + 2**33
JOB_ID = 25_000_000_001 + 2**36


def _alembic_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_migrations_reach_head_and_match_the_models(postgres_database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = Store(postgres_database)
    try:
        store.migrate()
        with store.engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            tables = set(
                connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                ).scalars()
            )
        assert version == _alembic_head()
        assert differences == [], f"migrations and models differ on PostgreSQL: {differences}"
        assert set(Base.metadata.tables) <= tables
        # A second migration (another replica starting) changes nothing.
        Store(postgres_database).migrate()
    finally:
        store.dispose()


def test_github_ids_beyond_32_bits_round_trip(postgres_database: str) -> None:
    store = Store(postgres_database)
    try:
        store.migrate()
        with store.session() as session:
            session.add(
                DiagnosisRecord(
                    repository="octo/app",
                    run_id=RUN_ID,
                    job_id=JOB_ID,
                    category="test_failure",
                    confidence=0.9,
                    signature="sig",
                )
            )
            session.add(
                CiTiming(
                    repository="octo/app",
                    workflow_name="CI",
                    run_id=RUN_ID,
                    created_at=datetime.now(UTC),
                )
            )
            session.add(
                LogCacheEntry(job_id=JOB_ID, repository="octo/app", size_bytes=3, data=b"log")
            )
        with store.session() as session:
            diagnosis = session.scalars(select(DiagnosisRecord)).one()
            timing = session.scalars(select(CiTiming)).one()
            cached = session.get(LogCacheEntry, JOB_ID)
        assert (diagnosis.run_id, diagnosis.job_id) == (RUN_ID, JOB_ID)
        assert timing.run_id == RUN_ID
        assert cached is not None and cached.data == b"log"
        with store.engine.connect() as connection:
            types: dict[str, str] = dict(
                connection.execute(
                    text(
                        "SELECT table_name || '.' || column_name, data_type "
                        "FROM information_schema.columns WHERE column_name IN ('run_id', 'job_id')"
                        " AND table_name IN ('diagnoses', 'ci_timings', 'log_cache')"
                    )
                ).all()
            )
        assert types == {
            "diagnoses.run_id": "bigint",
            "diagnoses.job_id": "bigint",
            "ci_timings.run_id": "bigint",
            "log_cache.job_id": "bigint",
        }
    finally:
        store.dispose()


_MIGRATE = "import sys; from contexten.store.db import Store; Store(sys.argv[1]).migrate()"


def _migrate_in_processes(url: str, count: int) -> list[subprocess.CompletedProcess[str]]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def test_replicas_start_together_on_a_migrated_store(postgres_database: str) -> None:
    """The documented procedure: migrate once (`contexten initialize`), then start replicas."""
    first = _migrate_in_processes(postgres_database, 1)
    assert first[0].returncode == 0, first[0].stderr[-500:]
    results = _migrate_in_processes(postgres_database, 3)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-300:] for r in results]


def test_bulk_test_history_ingest_round_trips(postgres_database: str) -> None:
    from contexten.analysis.junit import parse_junit
    from contexten.store.test_history import (
        HistoryFilter,
        ReportOrigin,
        ingest_reports,
        iter_executions,
    )

    data = (
        b'<testsuite name="s"><testcase classname="t.A" name="a" time="0.25"/>'
        b'<testcase classname="t.A" name="b" time="1.5"><failure message="x"/></testcase>'
        b"</testsuite>"
    )
    at = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    run = ReportOrigin(repository="octo/app", run_id=str(RUN_ID), commit="c" * 40, recorded_at=at)
    store = Store(postgres_database)
    try:
        store.migrate()
        items = [(parse_junit(data, "r.xml"), run, data)] * 2
        assert [o.stored for o in ingest_reports(store, items)] == [2, 0]
        rows = list(iter_executions(store, HistoryFilter(repository="octo/app")))
        assert sorted((r.outcome, r.duration_seconds, r.at) for r in rows) == [
            ("failed", 1.5, at.timestamp()),
            ("passed", 0.25, at.timestamp()),
        ]
    finally:
        store.dispose()


def test_test_history_rows_move_to_the_narrow_tables_and_back(postgres_database: str) -> None:
    """Migration 0003 on PostgreSQL: the wide rows become cases, uploads and narrow results
    (the history reads the same), and a downgrade gives the wide rows back."""
    from alembic import command
    from alembic.config import Config

    from contexten.analysis.junit import test_id
    from contexten.store.test_history import HistoryFilter, identities, iter_executions

    def alembic(store: Store, action: str, revision: str) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", store.url.replace("%", "%%"))
        with store.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            getattr(command, action)(cfg, revision)

    wide = (
        "test_id, repository, suite, classname, name, file, outcome, duration_seconds,"
        " run_id, run_attempt, commit_sha, branch, job, recorded_at"
    )
    at = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    a = test_id("o/r", "t.py", "t.A", "a")
    b = test_id("o/r", "t.py", "t.A", "b")
    rows = [  # the first two share their upload; the third has no commit and no job
        (a, "failed", 0.5, "1", 1, "c1", "unit", at),
        (b, "passed", None, "1", 1, "c1", "unit", at),
        (a, "passed", 0.25, "r.xml@1", 2, None, None, at.replace(microsecond=0)),
    ]
    store = Store(postgres_database)
    try:
        alembic(store, "upgrade", "0002")
        with store.engine.begin() as connection:
            for test, outcome, duration, run, attempt, commit, job, when in rows:
                name = "a" if test == a else "b"
                connection.execute(
                    text(
                        f"INSERT INTO test_results ({wide}) VALUES (:t, 'o/r', 's', 't.A', :n,"
                        " 't.py', :o, :d, :r, :at, :c, 'main', :j, :w)"
                    ),
                    {"t": test, "n": name, "o": outcome, "d": duration, "r": run}
                    | {"at": attempt, "c": commit, "j": job, "w": when},
                )
            before = connection.execute(text(f"SELECT {wide} FROM test_results ORDER BY id")).all()
        alembic(store, "upgrade", "head")
        got = list(iter_executions(store, HistoryFilter(repository="o/r", branch="main")))
        expected = sorted(
            ((t, o, d, c, r, n, j, w.timestamp()) for t, o, d, r, n, c, j, w in rows),
            key=lambda e: (e[0], e[7]),
        )
        assert [tuple(e) for e in got] == expected  # Execution is a NamedTuple
        assert {k: v.name for k, v in identities(store).items()} == {a: "a", b: "b"}
        with store.engine.connect() as connection:
            uploads = connection.execute(text("SELECT count(*) FROM test_uploads")).scalar()
        assert uploads == 2
        alembic(store, "downgrade", "0002")
        with store.engine.connect() as connection:
            after = connection.execute(text(f"SELECT {wide} FROM test_results ORDER BY id")).all()
        assert after == before
    finally:
        store.dispose()


def test_concurrent_ingests_share_the_new_test_identities(postgres_database: str) -> None:
    """Writers that add the same new tests at once all succeed, and each test is stored
    once (ON CONFLICT DO NOTHING, then read back)."""
    from concurrent.futures import ThreadPoolExecutor

    from contexten.analysis.junit import parse_junit
    from contexten.store.test_history import (
        HistoryFilter,
        ReportOrigin,
        identities,
        ingest_reports,
        iter_executions,
    )

    def report(seed: int) -> bytes:
        order = range(200) if seed % 2 else reversed(range(200))
        cases = "".join(f'<testcase classname="t.A" name="test_{i}" time="0.1"/>' for i in order)
        return f'<testsuite name="s">{cases}</testsuite>'.encode()

    store = Store(postgres_database)
    try:
        store.migrate()

        def ingest(seed: int) -> int:
            data = report(seed)
            run = ReportOrigin(repository="o/r", run_id=str(seed), commit=f"c{seed}")
            items = [(parse_junit(data, f"r{seed}.xml"), run, data)]
            return ingest_reports(store, items)[0].stored

        with ThreadPoolExecutor(4) as pool:
            stored = list(pool.map(ingest, range(8)))
        assert stored == [200] * 8
        assert len(identities(store)) == 200
        assert len(list(iter_executions(store, HistoryFilter(repository="o/r")))) == 1600
    finally:
        store.dispose()
