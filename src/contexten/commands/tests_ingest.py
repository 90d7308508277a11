"""`contexten tests ingest`: add JUnit/xUnit reports to the test history (each report once).

The reports are stored in bulk: one transaction per batch of reports (`ingest_reports`), a
batch ending at BATCH_REPORTS reports, BATCH_CASES test cases or BATCH_BYTES of XML. When
the store fails, the batches before are kept; ingesting again stores the rest (each report
is stored once).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from contexten.commands._common import EXIT_BAD_INPUT, EXIT_OK, fail, print_json
from contexten.commands.tests_common import (
    JsonOption,
    JUnitFiles,
    RepositoryOption,
    history_error,
    history_store,
    resolve_repository,
)

if TYPE_CHECKING:
    from contexten.analysis.junit import JUnitReport
    from contexten.store.db import Store
    from contexten.store.test_history import ReportOrigin

# One transaction per batch of reports; a batch ends at the first of these.
BATCH_REPORTS = 200
BATCH_CASES = 50_000
BATCH_BYTES = 32 * 1024 * 1024


class _Batch:
    """Parsed reports waiting to be stored together; each one's output entry is filled in
    with what the store did when the batch is written."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.items: list[tuple[dict[str, Any], JUnitReport, ReportOrigin, bytes]] = []
        self.cases = 0
        self.size = 0

    def add(
        self, entry: dict[str, Any], report: JUnitReport, run: ReportOrigin, data: bytes
    ) -> None:
        self.items.append((entry, report, run, data))
        self.cases += len(report.cases)
        self.size += len(data)
        if (
            len(self.items) >= BATCH_REPORTS
            or self.cases >= BATCH_CASES
            or self.size >= BATCH_BYTES
        ):
            self.flush()

    def flush(self) -> None:
        from contexten.store.test_history import TestHistoryError, ingest_reports

        if not self.items:
            return
        try:
            outcomes = ingest_reports(self.store, [item[1:] for item in self.items])
        except TestHistoryError as exc:
            history_error(exc)
        for (entry, *_), outcome in zip(self.items, outcomes, strict=True):
            entry["stored"] = outcome.stored
            entry["duplicate"] = outcome.duplicate
        self.items.clear()
        self.cases = self.size = 0


def _parse_timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    from contexten.analysis.junit import parse_timestamp

    parsed = parse_timestamp(value)
    if parsed is None:
        fail(f"--timestamp {value!r}: expected an ISO 8601 time, e.g. 2025-01-31T12:00:00Z")
    return parsed


def ingest(
    paths: list[Path] = typer.Argument(..., help="JUnit XML files, directories or zip archives"),
    repository: str | None = RepositoryOption,
    run_id: str | None = typer.Option(None, "--run-id", envvar="GITHUB_RUN_ID"),
    attempt: int = typer.Option(1, "--attempt", min=1, envvar="GITHUB_RUN_ATTEMPT"),
    commit: str | None = typer.Option(None, "--commit", envvar="GITHUB_SHA"),
    branch: str | None = typer.Option(
        None, "--branch", envvar=["GITHUB_HEAD_REF", "GITHUB_REF_NAME"]
    ),
    job: str | None = typer.Option(None, "--job", envvar="GITHUB_JOB", help="job or matrix leg"),
    timestamp: str | None = typer.Option(None, "--timestamp", help="when the tests ran"),
    strip_prefix: list[str] = typer.Option(
        [], "--strip-prefix", help="path prefix to drop from test file paths (repeatable)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="parse and count, store nothing"),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="exit 0 even when some files are not valid JUnit"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Parse JUnit/xUnit reports and add them to the test history (each report once)."""
    from contexten.analysis.junit import JUnitError
    from contexten.store.test_history import ReportOrigin, local_upload_id

    run = ReportOrigin(
        repository=resolve_repository(repository),
        run_id=run_id,
        run_attempt=attempt,
        commit=commit,
        branch=branch,
        job=job,
        recorded_at=_parse_timestamp(timestamp),
    )
    reports = JUnitFiles(paths)
    batch = None if dry_run else _Batch(history_store())
    results: list[dict[str, Any]] = []
    for source, report in reports.parsed(strip_prefix):
        if isinstance(report, JUnitError):
            results.append({"file": source.name, "error": str(report)})
            continue
        summary = report.test_summary()
        entry: dict[str, Any] = {
            "file": source.name,
            "cases": len(report.cases),
            "tests": summary.tests,
            "passed": summary.passed,
            "failed": summary.failed,
            "errors": summary.errors,
            "skipped": summary.skipped,
            "flaky": sum(1 for c in report.cases if c.outcome.value == "flaky"),
            "stored": 0,
            "duplicate": False,
            # Without --run-id each report is its own upload, named so a person can find it:
            # reports of unrelated checkouts must never count as one run (or one commit).
            "upload": run.run_id or local_upload_id(report.source, source.data),
        }
        if batch is not None:
            batch.add(entry, report, run, source.data)
        results.append(entry)
    if batch is not None:
        batch.flush()
    ok = [r for r in results if "error" not in r]
    if as_json:
        print_json(
            {
                "files": results,
                "parsed": len(ok),
                "invalid": reports.bad,
                "stored": sum(r["stored"] for r in ok),
                "run": {
                    "repository": run.repository,
                    "run_id": run.run_id,
                    "attempt": run.run_attempt,
                    "commit": run.commit,
                    "branch": run.branch,
                    "job": run.job,
                },
                "dry_run": dry_run,
            }
        )
    else:
        from contexten.commands._common import print_table

        print_table(
            "JUnit reports" + (" (dry run)" if dry_run else ""),
            ("file", "tests", "passed", "failed", "errors", "skipped", "stored"),
            [
                (
                    r["file"],
                    *(str(r[k]) for k in ("tests", "passed", "failed", "errors", "skipped")),
                    "duplicate" if r["duplicate"] else str(r["stored"]),
                )
                for r in ok
            ],
            right=[1, 2, 3, 4, 5, 6],
        )
        print(f"{len(ok)} reports parsed, {reports.bad} invalid")
    if reports.bad and not skip_invalid:
        raise typer.Exit(EXIT_BAD_INPUT)
    if not ok and not reports.files:
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_OK)
