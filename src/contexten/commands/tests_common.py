"""What the `contexten tests` subcommands share: options, the store, report options, the
JUnit reports named on the command line, and tables of test ids (never folded)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from contexten.commands._common import EXIT_FAILED, fail

if TYPE_CHECKING:
    from contexten.analysis.junit import JUnitError, JUnitReport
    from contexten.store.db import Store
    from contexten.testhistory.files import ReportSource
    from contexten.testhistory.report import ReportOptions

RepositoryOption = typer.Option(
    None, "--repository", "-R", help="owner/name; default GITHUB_REPOSITORY"
)
BranchOption = typer.Option(None, "--branch", "-b", help="only this branch (default: all)")
WindowOption = typer.Option(14, "--window-days", min=1, max=3650, help="days of history")
JsonOption = typer.Option(False, "--json", help="print one JSON document")


def error(message: str) -> None:
    print(f"contexten: error: {message}", file=sys.stderr)


def utc_now() -> datetime:
    return datetime.now(UTC)


def history_store() -> Store:
    from contexten.store.db import StoreError, open_store

    try:
        return open_store()
    except StoreError as exc:
        fail(str(exc), code=exc.exit_code)


def resolve_repository(value: str | None) -> str | None:
    from contexten.config import get_settings

    repository = value or get_settings().github_repository
    if repository is not None and (repository.count("/") != 1 or " " in repository):
        fail(f"--repository {repository!r} must be owner/name")
    return repository


def report_options(
    repository: str | None,
    branch: str | None,
    window_days: int,
    top: int = 20,
    by: str = "p50",
    activate_events: int | None = None,
) -> ReportOptions:
    from contexten.analysis.flaky import FlakyPolicy
    from contexten.testhistory.report import ReportOptions

    if by not in ("p50", "p95"):
        fail(f"--by {by!r}: expected p50 or p95")
    policy = (
        FlakyPolicy() if activate_events is None else FlakyPolicy(activate_events=activate_events)
    )
    return ReportOptions(
        repository=resolve_repository(repository),
        branch=branch,
        window_days=window_days,
        top=top,
        rank_by=by,  # type: ignore[arg-type]
        policy=policy,
    )


def history_error(exc: Exception) -> NoReturn:
    fail(str(exc), code=EXIT_FAILED)


def build_report(options: ReportOptions) -> Any:
    """The report over the test history, with a note on stderr when it is empty."""
    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory.report import build_report

    store = history_store()
    try:
        built = build_report(store, options)
    except TestHistoryError as exc:
        history_error(exc)
    if not built.snapshot.stats:
        print(f"contexten: note: {_empty_history_hint(store, options)}", file=sys.stderr)
    return built


def _empty_history_hint(store: Store, options: ReportOptions) -> str:
    """Why there is nothing to report, and what to do: ingest first, or widen the filter."""
    from contexten.store.test_history import stored_overview

    stored, repositories = stored_overview(store)
    if not stored:
        return (
            f"the test history in {store.safe_url} is empty: ingest JUnit reports first, "
            "e.g. `contexten tests ingest junit.xml --repository owner/name --commit SHA`"
        )
    scope = [f"the last {options.window_days} days"]
    if options.repository:
        scope.append(f"repository {options.repository}")
    if options.branch:
        scope.append(f"branch {options.branch}")
    known = f" (repositories stored: {', '.join(repositories)})" if repositories else ""
    return (
        f"no test executions in {', '.join(scope)} among the {stored} stored{known}; "
        "widen --window-days or change --repository/--branch"
    )


def print_test_table(table: Any, *, wrap: tuple[int, ...] = ()) -> None:
    from contexten.commands._common import console, print_table

    if not table.rows:
        console().print(f"{table.title}: none")
        return
    # The test id is what a person acts on: it stays whole, never folded or cut with "…".
    print_table(
        table.title or None,
        [str(column) for column in table.columns],
        [[str(value) for value in row] for row in table.rows],
        wrap=wrap,
        keep_title=True,
    )


class JUnitFiles:
    """The JUnit reports under the paths given (files, directories, zip archives), parsed
    one at a time. Every file that cannot be read or parsed is said on stderr and counted
    in `bad`."""

    def __init__(self, paths: list[Path]) -> None:
        from contexten.testhistory.files import find_report_files

        self.files, errors = find_report_files(paths)
        for message in errors:
            error(message)
        self.bad = len(errors)

    def parsed(
        self, strip_prefixes: Iterable[str] = ()
    ) -> Iterator[tuple[ReportSource, JUnitReport | JUnitError]]:
        """Each readable report with what it parsed to: the report, or the JUnitError."""
        from contexten.analysis.junit import JUnitError, parse_junit
        from contexten.testhistory.files import ReportFileError, iter_report_sources

        for source in iter_report_sources(self.files):
            if isinstance(source, ReportFileError):
                error(str(source))
                self.bad += 1
                continue
            parsed: JUnitReport | JUnitError
            try:
                parsed = parse_junit(source.data, source.name, strip_prefixes=strip_prefixes)
            except JUnitError as exc:
                error(str(exc))
                self.bad += 1
                parsed = exc
            yield source, parsed
