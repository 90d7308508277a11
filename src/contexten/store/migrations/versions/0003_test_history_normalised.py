"""test history: test identities and uploads in their own tables, narrow result rows

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 11:40:00.000000

The wide `test_results` table (14 columns, two string indexes) becomes three: `test_cases`
(one row per test id), `test_uploads` (one row per ingested report: repository, run,
attempt, commit, branch, job, time) and `test_case_results` (upload id, case id, outcome,
duration). Existing rows move over in arrival order; each test's identity is taken from
its first row (the test id is a hash of its repository, file, class and name, so only the
suite, which nothing reads, can differ between a test's rows: the first is kept, as a new
ingest keeps it); rows that share all of their upload's columns become one upload.

The record that a report was ingested (its key and counts) moves from the integrations'
action ledger (`actions` rows of kind `tests.ingest`) to its own table, `test_ingests`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHUNK = 50_000

_UPLOAD_COLUMNS = ("repository", "run_id", "run_attempt", "commit_sha", "branch", "job")


def _wide_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "test_results",
        metadata,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("test_id", sa.String(length=64), nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=True),
        sa.Column("suite", sa.String(length=500), nullable=True),
        sa.Column("classname", sa.String(length=500), nullable=True),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("file", sa.String(length=1000), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("run_id", sa.String(length=100), nullable=True),
        sa.Column("run_attempt", sa.Integer(), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("branch", sa.String(length=300), nullable=True),
        sa.Column("job", sa.String(length=300), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


INGEST_KIND = "tests.ingest"
_COUNTS = ("cases", "tests", "failed", "errors", "skipped")
_INGEST_RUN = ("repository", "branch", "run_id", "run_attempt", "job")
_CUTS = {"repository": 300, "branch": 300, "run_id": 100, "job": 300}


def _ingests_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "test_ingests",
        metadata,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ingest_key", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=True),
        sa.Column("repository", sa.String(length=300), nullable=True),
        sa.Column("branch", sa.String(length=300), nullable=True),
        sa.Column("run_id", sa.String(length=100), nullable=True),
        sa.Column("run_attempt", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=300), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ingest_key"),
    )


def _actions_table() -> sa.TableClause:
    return sa.table(
        "actions",
        sa.column("id", sa.Integer()),
        sa.column("idempotency_key", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("target", sa.String()),
        sa.column("status", sa.String()),
        sa.column("result", sa.JSON()),
        sa.column("attempts", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )


def _text(value: Any, length: int) -> str | None:
    return None if value is None else str(value)[:length]


def _move_ingest_records(bind: Any, ingests: sa.Table) -> None:
    """The ledger's `tests.ingest` rows into test_ingests, then out of the ledger."""
    actions = _actions_table()
    rows = bind.execute(
        sa.select(actions.c.idempotency_key, actions.c.target, actions.c.result)
        .add_columns(actions.c.created_at)
        .where(actions.c.kind == INGEST_KIND)
        .order_by(actions.c.id)
    ).all()
    records = []
    for key, target, result, created_at in rows:
        data = result if isinstance(result, dict) else {}
        record: dict[str, Any] = {
            "ingest_key": key,
            "source": _text(target, 500),
            "created_at": created_at,
        }
        for name, length in _CUTS.items():
            record[name] = _text(data.get(name), length)
        record["run_attempt"] = int(data.get("run_attempt") or 1)
        for name in _COUNTS:
            record[name] = int(data.get(name) or 0)
        records.append(record)
    if records:
        bind.execute(ingests.insert(), records)
    bind.execute(actions.delete().where(actions.c.kind == INGEST_KIND))


def _restore_ingest_records(bind: Any, ingests: sa.Table) -> None:
    """test_ingests back into the ledger as `tests.ingest` actions."""
    records = bind.execute(sa.select(ingests).order_by(ingests.c.id)).mappings().all()
    actions = _actions_table()
    rows = [
        {
            "idempotency_key": r["ingest_key"],
            "kind": INGEST_KIND,
            "target": r["source"],
            "status": "done",
            "attempts": 1,
            "result": {
                **{name: r[name] for name in _COUNTS},
                **{name: r[name] for name in _INGEST_RUN},
            },
            "created_at": r["created_at"],
            "updated_at": r["created_at"],
        }
        for r in records
    ]
    if rows:
        bind.execute(actions.insert(), rows)


def _narrow_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    cases = sa.Table(
        "test_cases",
        metadata,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("test_id", sa.String(length=64), nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=True),
        sa.Column("suite", sa.String(length=500), nullable=True),
        sa.Column("classname", sa.String(length=500), nullable=True),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("file", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    uploads = sa.Table(
        "test_uploads",
        metadata,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=True),
        sa.Column("run_id", sa.String(length=100), nullable=True),
        sa.Column("run_attempt", sa.Integer(), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("branch", sa.String(length=300), nullable=True),
        sa.Column("job", sa.String(length=300), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    results = sa.Table(
        "test_case_results",
        metadata,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("upload_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    return cases, uploads, results


def upgrade() -> None:
    metadata = sa.MetaData()
    cases, uploads, _ = _narrow_tables(metadata)
    ingests = _ingests_table(metadata)
    wide = _wide_table(sa.MetaData())
    bind = op.get_bind()
    metadata.create_all(bind)
    _move_ingest_records(bind, ingests)
    op.create_index(op.f("ix_test_cases_test_id"), "test_cases", ["test_id"], unique=True)
    op.create_index(
        op.f("ix_test_case_results_case_id"), "test_case_results", ["case_id"], unique=False
    )

    # Each test's identity from its first row.
    first = sa.select(sa.func.min(wide.c.id)).group_by(wide.c.test_id)
    identity = ("test_id", "repository", "suite", "classname", "name", "file")
    bind.execute(
        cases.insert().from_select(
            list(identity),
            sa.select(*(wide.c[name] for name in identity))
            .where(wide.c.id.in_(first))
            .order_by(wide.c.id),
        )
    )
    # One upload per distinct (repository, run, attempt, commit, branch, job, time), in
    # order of first arrival.
    upload_key = [wide.c[name] for name in (*_UPLOAD_COLUMNS, "recorded_at")]
    bind.execute(
        uploads.insert().from_select(
            [*_UPLOAD_COLUMNS, "recorded_at"],
            sa.select(*upload_key).group_by(*upload_key).order_by(sa.func.min(wide.c.id)),
        )
    )
    case_ids = {t: i for t, i in bind.execute(sa.select(cases.c.test_id, cases.c.id))}
    # Times compared as the database returns them, not parsed: the same on both sides.
    upload_ids: dict[tuple[Any, ...], int] = {
        tuple(row[1:]): row[0]
        for row in bind.execute(
            sa.select(
                uploads.c.id,
                *(uploads.c[n] for n in _UPLOAD_COLUMNS),
                sa.type_coerce(uploads.c.recorded_at, sa.String()),
            )
        )
    }
    raw_key = [*upload_key[:-1], sa.type_coerce(wide.c.recorded_at, sa.String())]
    marks = ", ".join(["?" if bind.dialect.paramstyle == "qmark" else "%s"] * 4)
    # constant names and placeholders; the driver binds the values
    columns = "upload_id, case_id, outcome, duration_seconds"
    insert = f"INSERT INTO test_case_results ({columns}) VALUES ({marks})"  # noqa: S608
    # The results, streamed in arrival order (new ids keep that order).
    last = 0
    while True:
        rows = bind.execute(
            sa.select(wide.c.id, wide.c.test_id, wide.c.outcome, wide.c.duration_seconds, *raw_key)
            .where(wide.c.id > last)
            .order_by(wide.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        bind.exec_driver_sql(
            insert,
            [(upload_ids[tuple(row[4:])], case_ids[row[1]], row[2], row[3]) for row in rows],
        )
        last = rows[-1][0]

    with op.batch_alter_table("test_results", schema=None) as batch_op:
        batch_op.drop_index("ix_test_results_test_id")
        batch_op.drop_index("ix_test_results_test_commit")
    op.drop_table("test_results")


def downgrade() -> None:
    metadata = sa.MetaData()
    cases, uploads, results = _narrow_tables(metadata)
    ingests = _ingests_table(metadata)
    wide = _wide_table(metadata)
    bind = op.get_bind()
    _restore_ingest_records(bind, ingests)
    op.drop_table("test_ingests")
    wide.create(bind)
    op.create_index("ix_test_results_test_commit", "test_results", ["test_id", "commit_sha"])
    op.create_index(op.f("ix_test_results_test_id"), "test_results", ["test_id"])
    columns = [
        cases.c.test_id,
        cases.c.repository,
        cases.c.suite,
        cases.c.classname,
        cases.c.name,
        cases.c.file,
        results.c.outcome,
        results.c.duration_seconds,
        *(uploads.c[name] for name in _UPLOAD_COLUMNS[1:]),
        uploads.c.recorded_at,
    ]
    bind.execute(
        wide.insert().from_select(
            [c.name for c in columns],
            sa.select(*columns)
            .select_from(results)
            .join(cases, cases.c.id == results.c.case_id)
            .join(uploads, uploads.c.id == results.c.upload_id)
            .order_by(results.c.id),
        )
    )
    op.drop_index(op.f("ix_test_case_results_case_id"), table_name="test_case_results")
    op.drop_table("test_case_results")
    op.drop_index(op.f("ix_test_cases_test_id"), table_name="test_cases")
    op.drop_table("test_cases")
    op.drop_table("test_uploads")
