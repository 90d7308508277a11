"""`contexten tests gate`: exit 1 if a test of this run failed that is not quarantined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from contexten.commands._common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, fail, print_json
from contexten.commands.tests_common import (
    JsonOption,
    JUnitFiles,
    RepositoryOption,
    error,
    resolve_repository,
    utc_now,
)


def gate(
    paths: list[Path] = typer.Argument(..., help="the JUnit reports of this run"),
    quarantine_file: Path | None = typer.Option(
        None, "--quarantine-file", help="exported quarantine JSON (default: read the store)"
    ),
    repository: str | None = RepositoryOption,
    on_store_error: str = typer.Option(
        "fail",
        "--on-store-error",
        help="when the quarantine list cannot be read: fail (count every failure) or pass",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Exit 1 if a test failed that is not quarantined; quarantined failures are reported only.

    When the quarantine list is unreachable the gate fails closed by default (every
    failure counts); `--on-store-error pass` makes it fail open (exit 0, with a warning).
    """
    from contexten.analysis.flaky import gate as decide
    from contexten.analysis.junit import AggregatedResult, JUnitError, aggregate_retries
    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory import quarantine as q

    if on_store_error not in ("fail", "pass"):
        fail(f"--on-store-error {on_store_error!r}: expected fail or pass")
    repo = resolve_repository(repository)
    reports = JUnitFiles(paths)
    results: list[AggregatedResult] = []
    for _source, report in reports.parsed():
        if not isinstance(report, JUnitError):
            results.extend(aggregate_retries(report.cases))
    bad = reports.bad
    if bad:
        # A report we cannot read may hide failures: never pass the gate on it.
        fail(f"{bad} reports could not be read; the gate cannot decide", code=EXIT_BAD_INPUT)
    if not results:
        fail("no test cases in the reports; the gate cannot decide")
    quarantined: frozenset[str] = frozenset()
    source_note = ""
    try:
        if quarantine_file is not None:
            try:
                data = quarantine_file.read_bytes()
            except OSError as exc:
                raise q.QuarantineFileError(
                    f"{quarantine_file}: cannot read: {exc.strerror}"
                ) from None
            quarantined = q.parse_quarantine_document(data, str(quarantine_file), utc_now())
        else:
            from contexten.store.db import StoreError, open_store

            try:
                quarantined = q.active_ids(open_store(), utc_now(), repo)
            except StoreError as exc:
                raise TestHistoryError(str(exc)) from None
    except (q.QuarantineFileError, TestHistoryError) as exc:
        if on_store_error == "pass":
            error(f"{exc} — failing open: exit 0 whatever failed")
            source_note = "quarantine list unreachable: failed open"
        else:
            error(f"{exc} — failing closed: every failure counts")
            source_note = "quarantine list unreachable: failed closed"
    verdict = decide(results, quarantined, repo)
    ok = verdict.ok or source_note.endswith("failed open")

    def describe(items: Any) -> list[dict[str, Any]]:
        return [
            {
                "test_id": r.case.test_id(repo),
                "name": "::".join(p for p in (r.case.file, r.case.classname, r.case.name) if p),
                "outcome": r.outcome.value,
                "message": r.case.message,
            }
            for r in items
        ]

    if as_json:
        print_json(
            {
                "ok": ok,
                "tests": verdict.total,
                "blocking": describe(verdict.blocking),
                "quarantined_failures": describe(verdict.quarantined),
                "passed_on_retry": describe(verdict.passed_on_retry),
                "note": source_note or None,
            }
        )
    else:
        for item in describe(verdict.quarantined):
            print(
                f"quarantined (not blocking): {item['name']}: {item['message'] or item['outcome']}"
            )
        for item in describe(verdict.passed_on_retry):
            print(f"passed on retry (not blocking): {item['name']}")
        for item in describe(verdict.blocking):
            print(f"FAILED: {item['name']}: {item['message'] or item['outcome']}")
        print(
            f"{verdict.total} tests: {len(verdict.blocking)} blocking failures,"
            f" {len(verdict.quarantined)} quarantined failures,"
            f" {len(verdict.passed_on_retry)} passed on retry"
        )
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)
