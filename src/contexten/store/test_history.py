"""The test history repository: ingesting parsed reports in bulk, streaming executions back.

One row per `<testcase>` element in `test_results`, keyed by the stable test id. Each
report is ingested once per (repository, run, attempt, job, commit, content): ingesting
the same file again is a no-op, recorded as an ActionRecord of kind `tests.ingest`. A
re-run attempt's report is ingested as its own attempt: it holds only the re-run tests,
and a test missing from it says nothing (absent is not deleted).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
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
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from contexten.analysis.executions import Execution, TestIdentity, UploadCounts
from contexten.analysis.history_columns import OUTCOME_CODES
from contexten.analysis.junit import JUnitReport, TestSummary, test_id
from contexten.store.db import Store
from contexten.store.models import ActionRecord, TestResultRecord

Columns = TypeVarTuple("Columns")
INGEST_KIND = "tests.ingest"
INSERT_BATCH = 20_000


class TestHistoryError(Exception):
    """The test history cannot be read or written; one line, no secrets."""

    __test__ = False


@dataclass(frozen=True, slots=True)
class RunInfo:
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


def ingest_key(run: RunInfo, content: bytes, source: str = "") -> str:
    """Same run, same file name, same bytes: the same report (a retried upload)."""
    name = source.replace("\\", "/").rsplit("/", 1)[-1].rsplit("!", 1)[-1]
    digest = hashlib.sha256()
    for part in (run.repository, run.run_id, str(run.run_attempt), run.job, run.commit, name):
        digest.update((part or "").encode("utf-8", "surrogatepass") + b"\x1f")
    digest.update(hashlib.sha256(content).digest())
    return f"{INGEST_KIND}:{digest.hexdigest()}"


RESULT_COLUMNS = (
    "test_id",
    "repository",
    "suite",
    "classname",
    "name",
    "file",
    "outcome",
    "duration_seconds",
    "run_id",
    "run_attempt",
    "commit_sha",
    "branch",
    "job",
    "recorded_at",
)


def report_rows(report: JUnitReport, run: RunInfo, recorded_at: Any) -> list[tuple[Any, ...]]:
    """The rows for one report (one per `<testcase>`, columns as RESULT_COLUMNS), sorted by
    test id (stable: a test's own rows keep their order), ready for a bulk insert.

    `recorded_at` is passed as the driver takes it (the same for every row of a report).
    """
    repository = _cut(run.repository, 300)
    run_id = _cut(run.run_id, 100)
    commit = _cut(run.commit, 64)
    branch = _cut(run.branch, 300)
    job = _cut(run.job, 300)
    attempt = run.run_attempt
    rows = [
        (
            test_id(run.repository, case.file, case.classname, case.name),
            repository,
            _cut(case.suite, 500),
            _cut(case.classname, 500),
            _cut(case.name, 1000) or "",
            _cut(case.file, 1000),
            case.outcome.value,
            case.duration_seconds,
            run_id,
            attempt,
            commit,
            branch,
            job,
            recorded_at,
        )
        for case in report.cases
    ]
    # Index pages are visited in order instead of at random: inserts go faster.
    rows.sort(key=itemgetter(0))
    return rows


def _ledger_entry(
    key: str, report: JUnitReport, run: RunInfo, summary: TestSummary
) -> ActionRecord:
    return ActionRecord(
        idempotency_key=key,
        kind=INGEST_KIND,
        target=_cut(report.source, 500),
        status="done",
        attempts=1,
        result={
            "cases": len(report.cases),
            "tests": summary.tests,
            "failed": summary.failed,
            "errors": summary.errors,
            "skipped": summary.skipped,
            "repository": run.repository,
            "branch": run.branch,
            "run_id": run.run_id,
            "run_attempt": run.run_attempt,
            "job": run.job,
        },
    )


def _insert_sql(store: Store) -> str:
    style = store.engine.dialect.paramstyle
    marks = ["?" if style == "qmark" else "%s"] * len(RESULT_COLUMNS)
    if style not in ("qmark", "format", "pyformat"):
        raise TestHistoryError(f"unsupported DBAPI parameter style {style!r}")
    columns = ", ".join(RESULT_COLUMNS)
    # constant column names and placeholders; the values are bound by the driver
    return f"INSERT INTO test_results ({columns}) VALUES ({', '.join(marks)})"  # noqa: S608


def ingest_reports(
    store: Store, reports: Iterable[tuple[JUnitReport, RunInfo, bytes]]
) -> list[IngestOutcome]:
    """Store several parsed reports' test cases, each once, in one transaction.

    Rows go to the driver's executemany as plain tuples, in batches of INSERT_BATCH, with
    the values converted once per report: the bulk path of the test history. A report
    without a run id gets `local_upload_id` as its run id. Raises TestHistoryError (and
    stores nothing) when the database fails.
    """
    items = [
        (r, run if run.run_id else dataclasses.replace(run, run_id=local_upload_id(r.source, c)), c)
        for r, run, c in reports
    ]
    now = datetime.now(UTC)
    keys = [ingest_key(run, content, report.source) for report, run, content in items]
    recorded = TestResultRecord.__table__.c.recorded_at.type  # type: ignore[attr-defined]
    to_driver = recorded.dialect_impl(store.engine.dialect).bind_processor(store.engine.dialect)
    sql = _insert_sql(store)
    outcomes: list[IngestOutcome] = []
    try:
        with store.session() as session:
            known = set()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                known |= set(
                    session.scalars(
                        select(ActionRecord.idempotency_key).where(
                            ActionRecord.idempotency_key.in_(chunk)
                        )
                    )
                )
            connection = session.connection()
            if store.is_sqlite:
                # Index pages of a large history stay in memory: inserts several times faster.
                connection.exec_driver_sql("PRAGMA cache_size=-65536")
            pending: list[tuple[Any, ...]] = []
            for (report, run, _content), key in zip(items, keys, strict=True):
                summary = report.test_summary()
                if key in known:
                    outcomes.append(
                        IngestOutcome(report.source, len(report.cases), 0, True, summary)
                    )
                    continue
                known.add(key)
                # Never in the future (clock skew between CI and us): it would fall outside
                # every window.
                at = min(to_utc(run.recorded_at), now) if run.recorded_at else now
                pending += report_rows(report, run, to_driver(at) if to_driver else at)
                session.add(_ledger_entry(key, report, run, summary))
                outcomes.append(
                    IngestOutcome(
                        report.source, len(report.cases), len(report.cases), False, summary
                    )
                )
                if len(pending) >= INSERT_BATCH:
                    connection.exec_driver_sql(sql, pending)  # type: ignore[arg-type]
                    pending = []
            if pending:
                connection.exec_driver_sql(sql, pending)  # type: ignore[arg-type]
    except SQLAlchemyError as exc:
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


def ingest_report(store: Store, report: JUnitReport, run: RunInfo, content: bytes) -> IngestOutcome:
    """Store one parsed report's test cases, once. Raises TestHistoryError.

    Without a run id the report gets `local_upload_id` as its run id.
    """
    return ingest_reports(store, [(report, run, content)])[0]


def _filtered(query: Select[*Columns], f: HistoryFilter) -> Select[*Columns]:
    t = TestResultRecord
    if f.repository is not None:
        query = query.where(t.repository == f.repository)
    if f.branch is not None:
        query = query.where(t.branch == f.branch)
    if f.since is not None:
        query = query.where(t.recorded_at >= to_utc(f.since))
    if f.until is not None:
        query = query.where(t.recorded_at < to_utc(f.until))
    return query


def iter_executions(
    store: Store, f: HistoryFilter, *, test_ids: Sequence[str] | None = None, batch: int = 20_000
) -> Iterator[Execution]:
    """Executions ordered by test id, then time; streamed in batches (bounded memory)."""
    t = TestResultRecord
    query = select(
        t.test_id,
        t.outcome,
        t.duration_seconds,
        t.commit_sha,
        t.run_id,
        t.run_attempt,
        t.job,
        t.recorded_at,
    )
    query = _filtered(query, f)
    if test_ids is not None:
        query = query.where(t.test_id.in_(list(test_ids)))
    query = query.order_by(t.test_id, t.recorded_at, t.id)
    try:
        with store.engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=batch).execute(
                query
            )
            for rows in result.partitions():
                for r in rows:
                    at: datetime = r[7]
                    yield Execution(
                        r[0],
                        r[1],
                        r[2],
                        r[3],
                        r[4],
                        r[5] or 1,
                        r[6],
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
    t = TestResultRecord
    return cast(func.strftime("%s", t.recorded_at), Integer) * 1_000_000 + cast(
        func.substr(t.recorded_at, 21, 6), Integer
    )


def _epoch_seconds(store: Store) -> Any:
    """recorded_at as seconds since the epoch, computed by the database."""
    if store.is_sqlite:
        return _sqlite_micros() / 1_000_000.0
    return cast(func.extract("epoch", TestResultRecord.recorded_at), Float)


def _upload_key_sql() -> Any:
    t = TestResultRecord
    return (
        func.coalesce(t.run_id, "")
        + "#"
        + cast(t.run_attempt, String)
        + "#"
        + func.coalesce(t.job, "")
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
    """The filtered history as column chunks, in storage (arrival) order.

    Columns: test ids, outcome codes, durations (negative: none), epoch seconds, group
    keys (the commit, or the upload when there is no commit). Memory: one chunk.
    """
    if store.is_sqlite:
        yield from _scan_sqlite(store, f, excluded_uploads, batch)
    else:
        yield from _scan_rows(store, f, excluded_uploads, batch)


_SEP = "\x1f"


def _exclude(query: Select[*Columns], excluded: frozenset[Any]) -> Select[*Columns]:
    if not excluded:
        return query
    return query.where(_upload_key_sql().not_in(sorted(upload_key_text(k) for k in excluded)))


def _scan_sqlite(
    store: Store, f: HistoryFilter, excluded: frozenset[Any], batch: int
) -> Iterator[tuple[Any, ...]]:
    """SQLite: per range of row ids, one row of `group_concat` columns.

    SQLite formats the values and NumPy parses them, both in C: about a third of the
    CPU of fetching a million five-column rows as Python tuples. Durations go through
    printf('%.17g') so that they round-trip exactly.
    """
    import numpy as np

    t = TestResultRecord
    outcome = case(OUTCOME_CODES, value=t.outcome, else_=0)
    group = func.coalesce(t.commit_sha, _upload_key_sql())
    micros = _sqlite_micros()
    query = select(
        func.group_concat(t.test_id, _SEP),
        func.group_concat(outcome, ","),
        func.group_concat(func.printf("%.17g", func.coalesce(t.duration_seconds, -1.0)), ","),
        func.group_concat(micros, ","),
        func.group_concat(func.replace(group, _SEP, " "), _SEP),
        func.count(),
    ).where(t.id > bindparam("low"), t.id <= bindparam("high"))
    query = _exclude(_filtered(query, f), excluded)
    try:
        with store.engine.connect() as connection:
            low, high = connection.execute(select(func.min(t.id), func.max(t.id))).one()
            if low is None:
                return
            for start in range(low - 1, high, batch):
                ids, outcomes, durations, times, groups, count = connection.execute(
                    query, {"low": start, "high": start + batch}
                ).one()
                if not count:
                    continue
                yield (
                    ids.split(_SEP),
                    np.fromstring(outcomes, dtype=np.int64, sep=","),
                    np.fromstring(durations, dtype=np.float64, sep=","),
                    np.fromstring(times, dtype=np.int64, sep=",") / 1e6,
                    groups.split(_SEP),
                )
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot read the test history from {store.safe_url}: {type(exc).__name__}"
        ) from None


def _scan_rows(
    store: Store, f: HistoryFilter, excluded: frozenset[Any], batch: int
) -> Iterator[tuple[Any, ...]]:
    """Other databases: plain DBAPI rows from a server-side cursor, transposed per chunk."""
    t = TestResultRecord
    outcome = case(OUTCOME_CODES, value=t.outcome, else_=0)
    group = func.coalesce(t.commit_sha, _upload_key_sql())
    duration = func.coalesce(t.duration_seconds, -1.0)
    query = _filtered(select(t.test_id, outcome, duration, _epoch_seconds(store), group), f)
    query = _exclude(query, excluded).order_by(t.id)
    # Rendered by SQLAlchemy's own literal quoting: the raw cursor takes no bound values.
    sql = str(query.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
    dbapi_error: type[Exception] = getattr(store.engine.dialect.loaded_dbapi, "Error", Exception)
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
    query = select(ActionRecord.result).where(ActionRecord.kind == INGEST_KIND)
    if f.since is not None:
        # A report is ingested after its tests ran: older ingests hold no row in the window.
        query = query.where(ActionRecord.created_at >= to_utc(f.since))
    totals: dict[tuple[str | None, int, str | None], list[int]] = {}
    with store.session() as session:
        for result in session.scalars(query):
            if not isinstance(result, dict):
                continue
            if f.repository is not None and result.get("repository") != f.repository:
                continue
            key = (result.get("run_id"), int(result.get("run_attempt") or 1), result.get("job"))
            ran = int(result.get("tests") or 0) - int(result.get("skipped") or 0)
            failed = int(result.get("failed") or 0) + int(result.get("errors") or 0)
            total = totals.setdefault(key, [0, 0])
            total[0] += ran
            total[1] += failed
    return [UploadCounts(key, ran, failed) for key, (ran, failed) in totals.items()]


def identities(
    store: Store, f: HistoryFilter | None = None, test_ids: Iterable[str] | None = None
) -> dict[str, TestIdentity]:
    """What each test id stands for (file, class, name): the given tests, or all in `f`."""
    t = TestResultRecord
    query = select(t.test_id, func.max(t.file), func.max(t.classname), func.max(t.name))
    if f is not None:
        query = _filtered(query, f)
    found: dict[str, TestIdentity] = {}
    with store.session() as session:
        if test_ids is None:
            for test_id, file, classname, name in session.execute(query.group_by(t.test_id)):
                found[test_id] = TestIdentity(test_id, file, classname, name)
            return found
        # The newest row of each test, found through the test id index alone.
        wanted = list(dict.fromkeys(test_ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            newest = select(func.max(t.id)).where(t.test_id.in_(chunk)).group_by(t.test_id)
            rows = session.execute(
                select(t.test_id, t.file, t.classname, t.name).where(t.id.in_(newest))
            )
            for test_id, file, classname, name in rows:
                found[test_id] = TestIdentity(test_id, file, classname, name)
    return found


def find_tests(
    store: Store, text: str, repository: str | None = None, limit: int = 20
) -> list[TestIdentity]:
    """Tests whose id, name or `file::class::name` matches `text` exactly, else contains it."""
    t = TestResultRecord
    base = select(t.test_id, func.max(t.file), func.max(t.classname), func.max(t.name))
    if repository is not None:
        base = base.where(t.repository == repository)
    with store.session() as session:
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
            rows = session.execute(base.where(t.test_id == text).group_by(t.test_id)).all()
            if rows:
                return [TestIdentity(*row) for row in rows]
        rows = session.execute(
            base.where(t.name.contains(text.rsplit("::", 1)[-1], autoescape=True))
            .group_by(t.test_id)
            .limit(5000)
        ).all()
    candidates = [TestIdentity(*row) for row in rows]
    exact = [c for c in candidates if text in (c.name, c.display) or c.display.endswith(text)]
    if exact:
        return exact[:limit]
    return [c for c in candidates if text in c.display][:limit]


def stored_overview(store: Store, *, repositories: int = 5) -> tuple[int, list[str]]:
    """How many results are stored at all, and (up to `repositories`) which repositories."""
    t = TestResultRecord
    with store.session() as session:
        stored = session.scalar(select(func.count()).select_from(t)) or 0
        names = sorted(
            str(r)
            for r in session.scalars(select(t.repository).distinct().limit(repositories))
            if r
        )
    return int(stored), names


def history_span(store: Store, f: HistoryFilter) -> tuple[int, datetime | None, datetime | None]:
    """How many rows match, and the oldest and newest recorded_at."""
    t = TestResultRecord
    query = _filtered(select(func.count(), func.min(t.recorded_at), func.max(t.recorded_at)), f)
    with store.session() as session:
        count, oldest, newest = session.execute(query).one()
    return int(count), oldest and to_utc(oldest), newest and to_utc(newest)
