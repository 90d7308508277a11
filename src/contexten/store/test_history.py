"""The test history repository: ingesting parsed reports in bulk, streaming executions back.

Three tables: `test_cases` holds each test's identity once (the stable test id and the
repository, file, class and name it stands for), `test_uploads` one row per ingested
report (repository, run, attempt, commit, branch, job, when the tests ran), and
`test_case_results` one narrow row per `<testcase>` element: the upload's and the test's
integer ids, the outcome and the duration. Each report is ingested once per (repository,
run, attempt, job, commit, content), recorded in `test_ingests` with its counts: ingesting
the same file again is a no-op. A re-run attempt's report is ingested as its own attempt:
it holds only the re-run tests, and a test missing from it says nothing (absent is not
deleted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from operator import attrgetter
from typing import Any, TypeVarTuple

from sqlalchemy import (
    Float,
    Integer,
    Select,
    String,
    bindparam,
    case,
    cast,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from contexten.analysis.executions import CaseExecution, TestIdentity, UploadCounts
from contexten.analysis.history_columns import OUTCOME_CODES
from contexten.analysis.junit import JUnitReport, TestCaseResult, TestSummary, test_id
from contexten.store.db import Store
from contexten.store.models import (
    TestCaseRecord,
    TestIngestRecord,
    TestResultRecord,
    TestUploadRecord,
)

Columns = TypeVarTuple("Columns")
INGEST_KIND = "tests.ingest"
INSERT_BATCH = 50_000
WAL_CHECKPOINT_PAGES = 10_000  # SQLite: log pages between automatic checkpoints


class TestHistoryError(Exception):
    """The test history cannot be read or written; one line, no secrets."""

    __test__ = False


@dataclass(frozen=True, slots=True)
class ReportOrigin:
    """Where a report came from. Every field is optional for local use."""

    repository: str | None = None
    run_id: str | None = None
    run_attempt: int = 1
    commit: str | None = None
    branch: str | None = None
    job: str | None = None
    # When the tests ran; default: now. Report timestamps are not used: pytest writes local
    # time without a zone, and a backfilled old report would fall outside every window.
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    source: str
    cases: int
    stored: int
    duplicate: bool  # this exact report was already ingested for this run
    tests: TestSummary


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    repository: str | None = None
    branch: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def to_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def epoch(value: datetime) -> float:
    """Seconds since the epoch; naive datetimes (SQLite) are UTC."""
    return to_utc(value).timestamp()


def _cut(value: str | None, length: int) -> str | None:
    return value if value is None or len(value) <= length else value[:length]


def ingest_key(run: ReportOrigin, content: bytes, source: str = "") -> str:
    """Same run, same file name, same bytes: the same report (a retried upload)."""
    name = source.replace("\\", "/").rsplit("/", 1)[-1].rsplit("!", 1)[-1]
    digest = hashlib.sha256()
    for part in (run.repository, run.run_id, str(run.run_attempt), run.job, run.commit, name):
        digest.update((part or "").encode("utf-8", "surrogatepass") + b"\x1f")
    digest.update(hashlib.sha256(content).digest())
    return f"{INGEST_KIND}:{digest.hexdigest()}"


CASE_COLUMNS = ("test_id", "repository", "suite", "classname", "name", "file")
RESULT_COLUMNS = ("upload_id", "case_id", "outcome", "duration_seconds")


def _ingest_record(
    key: str, report: JUnitReport, run: ReportOrigin, summary: TestSummary
) -> TestIngestRecord:
    return TestIngestRecord(
        ingest_key=key,
        source=_cut(report.source, 500),
        repository=_cut(run.repository, 300),
        branch=_cut(run.branch, 300),
        run_id=_cut(run.run_id, 100),
        run_attempt=run.run_attempt,
        job=_cut(run.job, 300),
        cases=len(report.cases),
        tests=summary.tests,
        failed=summary.failed,
        errors=summary.errors,
        skipped=summary.skipped,
    )


def _marks(store: Store, count: int) -> str:
    """`count` DBAPI placeholders, comma-separated."""
    style = store.engine.dialect.paramstyle
    if style not in ("qmark", "format", "pyformat"):
        raise TestHistoryError(f"unsupported DBAPI parameter style {style!r}")
    return ", ".join(["?" if style == "qmark" else "%s"] * count)


def _insert_sql(store: Store, table: str, columns: Sequence[str], suffix: str = "") -> str:
    marks = _marks(store, len(columns))
    # constant table and column names and placeholders; the values are bound by the driver
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){suffix}"  # noqa: S608


def _case_row(test: str, repository: str | None, item: TestCaseResult) -> tuple[Any, ...]:
    """A test's identity row, columns as CASE_COLUMNS."""
    return (
        test,
        _cut(repository, 300),
        _cut(item.suite, 500),
        _cut(item.classname, 500),
        _cut(item.name, 1000) or "",
        _cut(item.file, 1000),
    )


def _case_ids(
    store: Store,
    connection: Connection,
    fresh: Sequence[tuple[JUnitReport, ReportOrigin]],
    per_report: Sequence[list[str]],
) -> dict[str, int]:
    """The integer id of each test id in `per_report` (the test ids of `fresh`'s cases),
    creating the identities not stored yet from the first case of each.

    A test another writer creates meanwhile is taken as it is (ON CONFLICT DO NOTHING,
    then read back).
    """
    wanted = set().union(*per_report)
    found = _lookup_case_ids(store, connection, wanted)
    # Sorted: two writers adding the same new tests take their keys in the same order
    # (PostgreSQL would otherwise let them wait on each other: a deadlock).
    missing = sorted(wanted.difference(found))
    if missing:
        first: dict[str, tuple[str | None, TestCaseResult]] = {}
        new = set(missing)
        for (report, run), tests in zip(fresh, per_report, strict=True):
            for n, test in enumerate(tests):
                if test in new and test not in first:
                    first[test] = (run.repository, report.cases[n])
        sql = _insert_sql(store, "test_cases", CASE_COLUMNS, " ON CONFLICT (test_id) DO NOTHING")
        rows = [_case_row(test, *first[test]) for test in missing]
        connection.exec_driver_sql(sql, rows)  # type: ignore[arg-type]
        found.update(_lookup_case_ids(store, connection, new))
    return found


def _lookup_case_ids(store: Store, connection: Connection, ids: set[str]) -> dict[str, int]:
    """The stored integer ids of these test ids, read on the transaction's own DBAPI
    connection (plain cursors: a bulk ingest looks up thousands of tests per batch).

    When they are a good part of all the stored tests (a repository's whole suite, the
    usual report), one pass over test_cases costs less than probing its index per id.
    """
    found: dict[str, int] = {}
    if not ids:
        return found
    raw: Any = connection.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        cursor.execute("SELECT max(id) FROM test_cases")
        stored = cursor.fetchone()[0] or 0  # at least the number of stored tests
        if len(ids) * 4 >= stored:
            cursor.execute("SELECT test_id, id FROM test_cases")
            found.update(row for row in cursor if row[0] in ids)
            return found
        wanted = list(ids)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = _marks(store, len(chunk))
            sql = f"SELECT test_id, id FROM test_cases WHERE test_id IN ({marks})"  # noqa: S608
            cursor.execute(sql, chunk)
            found.update(cursor)
    finally:
        cursor.close()
    return found


# A report's columns, read in C. `_value_`: the outcome's plain string (`.value` is a
# property, several times slower).
_CASE_KEY = attrgetter("file", "classname", "name")
_OUTCOME = attrgetter("outcome._value_")
_DURATION = attrgetter("duration_seconds")
# Test ids are a pure function of (repository, file, class, name): remembered across
# ingests, per repository, bounded. Reports of one repository mostly repeat the same tests:
# after the first, a report's ids are dictionary lookups.
_KNOWN_TESTS: dict[str | None, dict[tuple[str | None, str | None, str], str]] = {}
_KNOWN_LIMIT = 1 << 17  # tests remembered, all repositories together (~40 MB at most)


def _report_test_ids(repository: str | None, cases: Sequence[TestCaseResult]) -> list[str]:
    """Each case's test id (map and attrgetter run the lookups in C; each key tuple is
    freed as soon as it is looked up, unless it is new)."""
    known = _KNOWN_TESTS.get(repository)
    if known is None or len(known) > _KNOWN_LIMIT:
        if sum(map(len, _KNOWN_TESTS.values())) > _KNOWN_LIMIT:
            _KNOWN_TESTS.clear()
        known = _KNOWN_TESTS[repository] = {}
    ids: list[str | None] = list(map(known.get, map(_CASE_KEY, cases)))
    if None in ids:
        for n, found in enumerate(ids):
            if found is None:
                key = _CASE_KEY(cases[n])
                test = known.get(key)
                if test is None:
                    test = known[key] = test_id(repository, *key)
                ids[n] = test
    return typing.cast("list[str]", ids)  # every id filled in


def _store_results(
    store: Store,
    connection: Connection,
    fresh: list[tuple[JUnitReport, ReportOrigin]],
    now: datetime,
) -> None:
    """One upload row per report, the tests' identities once, and the narrow result rows.

    The rows are gathered as columns (lists of ints, strings and floats, which the garbage
    collector does not track) and handed to the driver as tuples made one at a time: no
    container objects pile up, so no collection walks the heap during a bulk ingest (with a
    list of tuples, collections took a third of the ingest's CPU).
    """
    per_report = [_report_test_ids(run.repository, report.cases) for report, run in fresh]
    case_ids = _case_ids(store, connection, fresh, per_report)
    columns = _ResultColumns()
    for (report, run), tests in zip(fresh, per_report, strict=True):
        if not tests:
            continue
        # Never in the future (clock skew between CI and us): it would fall outside every
        # window.
        at = min(to_utc(run.recorded_at), now) if run.recorded_at else now
        added = connection.execute(
            insert(TestUploadRecord).values(
                repository=_cut(run.repository, 300),
                run_id=_cut(run.run_id, 100),
                run_attempt=run.run_attempt,
                commit_sha=_cut(run.commit, 64),
                branch=_cut(run.branch, 300),
                job=_cut(run.job, 300),
                recorded_at=at,
            )
        ).inserted_primary_key
        assert added is not None
        cases = report.cases
        columns.uploads += repeat(added[0], len(cases))
        columns.cases += map(case_ids.__getitem__, tests)
        columns.outcomes += map(_OUTCOME, cases)
        columns.durations += map(_DURATION, cases)
        if len(columns.cases) >= INSERT_BATCH:
            _insert_results(store, connection, columns)
            columns = _ResultColumns()
    if columns.cases:
        _insert_results(store, connection, columns)


@dataclass(slots=True)
class _ResultColumns:
    """Result rows being gathered, as columns in RESULT_COLUMNS order."""

    uploads: list[int] = dataclasses.field(default_factory=list)
    cases: list[int] = dataclasses.field(default_factory=list)
    outcomes: list[str] = dataclasses.field(default_factory=list)
    durations: list[float | None] = dataclasses.field(default_factory=list)

    def rows_by_case(self) -> Iterator[tuple[int, int, str, float | None]]:
        """The rows ordered by case id, each test's rows in arrival order (a stable
        sort); each tuple is made as the driver asks for it."""
        order = sorted(range(len(self.cases)), key=self.cases.__getitem__)
        return zip(
            map(self.uploads.__getitem__, order),
            map(self.cases.__getitem__, order),
            map(self.outcomes.__getitem__, order),
            map(self.durations.__getitem__, order),
            strict=True,
        )


def _insert_results(store: Store, connection: Connection, columns: _ResultColumns) -> None:
    """One bulk write, the rows ordered by test: the test index's pages are then visited in
    order rather than at random (a third faster on SQLite). The sort is stable: each test's
    rows keep their arrival order, which is all the readers rely on.

    SQLite: the driver's executemany, fed one row at a time. PostgreSQL through psycopg:
    COPY, in the same transaction (executemany sends one INSERT per row). Both on the
    transaction's own DBAPI connection.
    """
    raw: Any = connection.connection.dbapi_connection
    rows = columns.rows_by_case()
    if store.engine.dialect.driver == "psycopg":
        names = ", ".join(RESULT_COLUMNS)
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY test_case_results ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    cursor = raw.cursor()
    try:
        cursor.executemany(_insert_sql(store, "test_case_results", RESULT_COLUMNS), rows)
    finally:
        cursor.close()


def _dbapi_error(store: Store) -> type[Exception]:
    """The driver's own error class (raised by what bypasses SQLAlchemy: COPY, cursors)."""
    error: type[Exception] = getattr(store.engine.dialect.loaded_dbapi, "Error", Exception)
    return error


def ingest_reports(
    store: Store, reports: Iterable[tuple[JUnitReport, ReportOrigin, bytes]]
) -> list[IngestOutcome]:
    """Store several parsed reports' test cases, each once, in one transaction.

    Each report becomes one upload row; each test's identity is stored once; the results
    go to the driver's executemany as narrow tuples of integers, a string and a float, in
    batches of INSERT_BATCH: the bulk path of the test history. A report without a run id
    gets `local_upload_id` as its run id. Raises TestHistoryError (and stores nothing)
    when the database fails.
    """
    items = [
        (r, run if run.run_id else dataclasses.replace(run, run_id=local_upload_id(r.source, c)), c)
        for r, run, c in reports
    ]
    now = datetime.now(UTC)
    keys = [ingest_key(run, content, report.source) for report, run, content in items]
    outcomes: list[IngestOutcome] = []
    try:
        with store.session() as session:
            known = set()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                known |= set(
                    session.scalars(
                        select(TestIngestRecord.ingest_key).where(
                            TestIngestRecord.ingest_key.in_(chunk)
                        )
                    )
                )
            connection = session.connection()
            if store.is_sqlite:
                # Index pages of a large history stay in memory: inserts several times faster.
                connection.exec_driver_sql("PRAGMA cache_size=-65536")
                # Each bulk write touches most of the test index's pages: with SQLite's
                # default (a checkpoint once the log holds 1,000 pages) every ingest copied
                # them back to the database and synced twice. A longer log (up to ~40 MB)
                # is checkpointed every few ingests, each page once. Durability is the same.
                connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            fresh: list[tuple[JUnitReport, ReportOrigin]] = []
            for (report, run, _content), key in zip(items, keys, strict=True):
                summary = report.test_summary()
                if key in known:
                    outcomes.append(
                        IngestOutcome(report.source, len(report.cases), 0, True, summary)
                    )
                    continue
                known.add(key)
                fresh.append((report, run))
                session.add(_ingest_record(key, report, run, summary))
                outcomes.append(
                    IngestOutcome(
                        report.source, len(report.cases), len(report.cases), False, summary
                    )
                )
            if fresh:
                _store_results(store, connection, fresh, now)
    except (SQLAlchemyError, _dbapi_error(store)) as exc:
        sources = ", ".join(r.source for r, _, _ in items[:3]) + (" ..." if len(items) > 3 else "")
        raise TestHistoryError(
            f"cannot store {sources} in {store.safe_url}: {type(exc).__name__}"
        ) from None
    return outcomes


def local_upload_id(source: str, content: bytes) -> str:
    """`file.xml@1a2b3c4d`: a report's file name and the start of its content hash, the run
    id of a report ingested without one. Each such report is its own upload: reports of
    unrelated checkouts never count as one run (or one commit) when flakiness is judged,
    and the same file ingested twice keeps its id (and is stored once)."""
    base = source.replace("\\", "/").rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    return f"{base[:80]}@{hashlib.sha256(content).hexdigest()[:8]}"


def ingest_report(
    store: Store, report: JUnitReport, run: ReportOrigin, content: bytes
) -> IngestOutcome:
    """Store one parsed report's test cases, once. Raises TestHistoryError.

    Without a run id the report gets `local_upload_id` as its run id.
    """
    return ingest_reports(store, [(report, run, content)])[0]


def _filtered(query: Select[*Columns], f: HistoryFilter) -> Select[*Columns]:
    u = TestUploadRecord
    if f.repository is not None:
        query = query.where(u.repository == f.repository)
    if f.branch is not None:
        query = query.where(u.branch == f.branch)
    if f.since is not None:
        query = query.where(u.recorded_at >= to_utc(f.since))
    if f.until is not None:
        query = query.where(u.recorded_at < to_utc(f.until))
    return query


def _joined(query: Select[*Columns], *, cases: bool = True) -> Select[*Columns]:
    """Results with their upload (and their test's identity)."""
    r, u = TestResultRecord, TestUploadRecord
    query = query.select_from(r).join(u, u.id == r.upload_id)
    return query.join(TestCaseRecord, TestCaseRecord.id == r.case_id) if cases else query


def iter_executions(
    store: Store, f: HistoryFilter, *, test_ids: Sequence[str] | None = None, batch: int = 20_000
) -> Iterator[CaseExecution]:
    """Executions ordered by test id, then time; streamed in batches (bounded memory)."""
    r, u, c = TestResultRecord, TestUploadRecord, TestCaseRecord
    query = _joined(
        select(
            c.test_id,
            r.outcome,
            r.duration_seconds,
            u.commit_sha,
            u.run_id,
            u.run_attempt,
            u.job,
            u.recorded_at,
        )
    )
    query = _filtered(query, f)
    if test_ids is not None:
        query = query.where(c.test_id.in_(list(test_ids)))
    query = query.order_by(c.test_id, u.recorded_at, r.id)
    try:
        with store.engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=batch).execute(
                query
            )
            for rows in result.partitions():
                for row in rows:
                    at: datetime = row[7]
                    yield CaseExecution(
                        row[0],
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        row[5] or 1,
                        row[6],
                        (at.replace(tzinfo=UTC) if at.tzinfo is None else at).timestamp(),
                    )
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot read the test history from {store.safe_url}: {type(exc).__name__}"
        ) from None


def _sqlite_micros() -> Any:
    """SQLite keeps naive UTC text "YYYY-MM-DD HH:MM:SS.ffffff": whole microseconds.

    Divided by 1e6 this is exactly datetime.timestamp() (julianday() is ~10 µs off).
    """
    u = TestUploadRecord
    return cast(func.strftime("%s", u.recorded_at), Integer) * 1_000_000 + cast(
        func.substr(u.recorded_at, 21, 6), Integer
    )


def _epoch_seconds(store: Store) -> Any:
    """recorded_at as seconds since the epoch, computed by the database."""
    if store.is_sqlite:
        return _sqlite_micros() / 1_000_000.0
    return cast(func.extract("epoch", TestUploadRecord.recorded_at), Float)


def _upload_key_sql() -> Any:
    u = TestUploadRecord
    return (
        func.coalesce(u.run_id, "")
        + "#"
        + cast(u.run_attempt, String)
        + "#"
        + func.coalesce(u.job, "")
    )


def upload_key_text(key: tuple[str | None, int, str | None]) -> str:
    return f"{key[0] or ''}#{key[1]}#{key[2] or ''}"


def scan_history(
    store: Store,
    f: HistoryFilter,
    *,
    excluded_uploads: frozenset[tuple[str | None, int, str | None]] = frozenset(),
    batch: int = 50_000,
) -> Iterator[tuple[Any, ...]]:
    """The filtered history as column chunks, in storage order (each test's rows in the
    order they arrived).

    Columns: test ids, outcome codes, durations (negative: none), epoch seconds, group
    keys (the commit, or the upload when there is no commit). Memory: one chunk.
    """
    if store.is_sqlite:
        yield from _scan_sqlite(store, f, excluded_uploads, batch)
    else:
        yield from _scan_rows(store, f, excluded_uploads, batch)


def _exclude(query: Select[*Columns], excluded: frozenset[Any]) -> Select[*Columns]:
    if not excluded:
        return query
    return query.where(_upload_key_sql().not_in(sorted(upload_key_text(k) for k in excluded)))


def _scan_sqlite(
    store: Store, f: HistoryFilter, excluded: frozenset[Any], batch: int
) -> Iterator[tuple[Any, ...]]:
    """SQLite: per range of row ids, one row of `group_concat` columns of integers.

    SQLite formats the values and NumPy parses them, both in C: about a third of the
    CPU of fetching a million rows as Python tuples. Durations go through printf('%.17g')
    so that they round-trip exactly. What is the same for a whole upload (its time and
    group key) and a test's id are read once, from their own tables, and looked up by
    integer id: memory grows with the number of tests and uploads, not results.
    """
    import numpy as np

    r, u, c = TestResultRecord, TestUploadRecord, TestCaseRecord
    uploads = _exclude(
        _filtered(
            select(u.id, _sqlite_micros(), func.coalesce(u.commit_sha, _upload_key_sql())), f
        ),
        excluded,
    )
    outcome = case(OUTCOME_CODES, value=r.outcome, else_=0)
    query = select(
        func.group_concat(r.case_id, ","),
        func.group_concat(outcome, ","),
        func.group_concat(func.printf("%.17g", func.coalesce(r.duration_seconds, -1.0)), ","),
        func.group_concat(r.upload_id, ","),
        func.count(),
    ).where(r.id > bindparam("low"), r.id <= bindparam("high"))
    if f != HistoryFilter() or excluded:
        query = query.where(r.upload_id.in_(uploads.with_only_columns(u.id)))
    try:
        with store.engine.connect() as connection:
            low, high = connection.execute(select(func.min(r.id), func.max(r.id))).one()
            if low is None:
                return
            wanted = connection.execute(uploads).all()
            if not wanted:
                return
            micros = np.zeros(max(row[0] for row in wanted) + 1, dtype=np.int64)
            groups: dict[int, str] = {}
            for upload, at, group in wanted:
                micros[upload] = at
                groups[upload] = group
            names: dict[int, str] = {
                key: test for key, test in connection.execute(select(c.id, c.test_id))
            }
            for start in range(low - 1, high, batch):
                cases, outcomes, durations, upload_ids, count = connection.execute(
                    query, {"low": start, "high": start + batch}
                ).one()
                if not count:
                    continue
                index = np.fromstring(upload_ids, dtype=np.int64, sep=",")
                keys = np.fromstring(cases, dtype=np.int64, sep=",").tolist()
                yield (
                    list(map(names.__getitem__, keys)),
                    np.fromstring(outcomes, dtype=np.int64, sep=","),
                    np.fromstring(durations, dtype=np.float64, sep=","),
                    micros[index] / 1e6,
                    list(map(groups.__getitem__, index.tolist())),
                )
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot read the test history from {store.safe_url}: {type(exc).__name__}"
        ) from None


def _scan_rows(
    store: Store, f: HistoryFilter, excluded: frozenset[Any], batch: int
) -> Iterator[tuple[Any, ...]]:
    """Other databases: plain DBAPI rows from a server-side cursor, transposed per chunk."""
    r, u, c = TestResultRecord, TestUploadRecord, TestCaseRecord
    outcome = case(OUTCOME_CODES, value=r.outcome, else_=0)
    group = func.coalesce(u.commit_sha, _upload_key_sql())
    duration = func.coalesce(r.duration_seconds, -1.0)
    query = _joined(select(c.test_id, outcome, duration, _epoch_seconds(store), group))
    query = _exclude(_filtered(query, f), excluded).order_by(r.id)
    # Rendered by SQLAlchemy's own literal quoting: the raw cursor takes no bound values.
    sql = str(query.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
    dbapi_error = _dbapi_error(store)
    try:
        with store.engine.connect() as connection:
            raw: Any = connection.connection.dbapi_connection
            try:  # a server-side cursor keeps memory bounded (psycopg)
                cursor = raw.cursor(name="contexten_history_scan")
            except TypeError:
                cursor = raw.cursor()
            try:
                cursor.execute(sql, ())
                while True:
                    rows = cursor.fetchmany(batch)
                    if not rows:
                        break
                    yield tuple(zip(*rows, strict=True))
            finally:
                cursor.close()
    except (SQLAlchemyError, dbapi_error) as exc:
        raise TestHistoryError(
            f"cannot read the test history from {store.safe_url}: {type(exc).__name__}"
        ) from None


def upload_counts(store: Store, f: HistoryFilter) -> list[UploadCounts]:
    """Tests and failures per upload (run, attempt, job), for spotting infrastructure runs.

    Read from the ingest records (one per report, a few hundred rows) rather than by
    grouping every test result: the same numbers at a fraction of the cost.
    """
    i = TestIngestRecord
    query = select(i.run_id, i.run_attempt, i.job, i.tests, i.skipped, i.failed, i.errors)
    if f.since is not None:
        # A report is ingested after its tests ran: older ingests hold no row in the window.
        query = query.where(i.created_at >= to_utc(f.since))
    if f.repository is not None:
        query = query.where(i.repository == f.repository)
    totals: dict[tuple[str | None, int, str | None], list[int]] = {}
    with store.session() as session:
        for run_id, attempt, job, tests, skipped, failed, errors in session.execute(query):
            total = totals.setdefault((run_id, int(attempt or 1), job), [0, 0])
            total[0] += int(tests or 0) - int(skipped or 0)
            total[1] += int(failed or 0) + int(errors or 0)
    return [UploadCounts(key, ran, failed) for key, (ran, failed) in totals.items()]


def identities(
    store: Store, f: HistoryFilter | None = None, test_ids: Iterable[str] | None = None
) -> dict[str, TestIdentity]:
    """What each test id stands for (file, class, name): the given tests, or all in `f`."""
    c = TestCaseRecord
    columns = select(c.test_id, c.file, c.classname, c.name)
    found: dict[str, TestIdentity] = {}
    with store.session() as session:
        if test_ids is None:
            query = columns
            if f is not None:
                having = _filtered(_joined(select(TestResultRecord.case_id), cases=False), f)
                query = query.where(c.id.in_(having))
            for test_id, file, classname, name in session.execute(query):
                found[test_id] = TestIdentity(test_id, file, classname, name)
            return found
        wanted = list(dict.fromkeys(test_ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for test_id, file, classname, name in session.execute(
                columns.where(c.test_id.in_(chunk))
            ):
                found[test_id] = TestIdentity(test_id, file, classname, name)
    return found


def find_tests(
    store: Store, text: str, repository: str | None = None, limit: int = 20
) -> list[TestIdentity]:
    """Tests whose id, name or `file::class::name` matches `text` exactly, else contains it."""
    c = TestCaseRecord
    base = select(c.test_id, c.file, c.classname, c.name)
    if repository is not None:
        base = base.where(c.repository == repository)
    with store.session() as session:
        if len(text) == 64 and all(ch in "0123456789abcdef" for ch in text):
            rows = session.execute(base.where(c.test_id == text)).all()
            if rows:
                return [TestIdentity(*row) for row in rows]
        rows = session.execute(
            base.where(c.name.contains(text.rsplit("::", 1)[-1], autoescape=True))
            .order_by(c.test_id)
            .limit(5000)
        ).all()
    candidates = [TestIdentity(*row) for row in rows]
    exact = [t for t in candidates if text in (t.name, t.display) or t.display.endswith(text)]
    if exact:
        return exact[:limit]
    return [t for t in candidates if text in t.display][:limit]


def stored_overview(store: Store, *, repositories: int = 5) -> tuple[int, list[str]]:
    """How many results are stored at all, and (up to `repositories`) which repositories."""
    u = TestUploadRecord
    with store.session() as session:
        stored = session.scalar(select(func.count()).select_from(TestResultRecord)) or 0
        names = sorted(
            str(r)
            for r in session.scalars(select(u.repository).distinct().limit(repositories))
            if r
        )
    return int(stored), names


def history_span(store: Store, f: HistoryFilter) -> tuple[int, datetime | None, datetime | None]:
    """How many rows match, and the oldest and newest recorded_at."""
    u = TestUploadRecord
    query = _filtered(
        _joined(
            select(func.count(), func.min(u.recorded_at), func.max(u.recorded_at)), cases=False
        ),
        f,
    )
    with store.session() as session:
        count, oldest, newest = session.execute(query).one()
    return int(count), oldest and to_utc(oldest), newest and to_utc(newest)
