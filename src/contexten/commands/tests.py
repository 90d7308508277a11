"""`contexten tests ...`: ingest JUnit reports; flaky and slow tests; shards; quarantine; gate.

  contexten tests ingest reports/ --run-id 123 --attempt 2 --commit abc --branch main
  contexten tests report [--window-days 14] [--json] [--markdown report.md]
  contexten tests flaky | slow [--top 20 --by p95]
  contexten tests shard --shards 4 --index 1 --format pytest > shard-1.txt   # pytest @shard-1.txt
  contexten tests quarantine list | add TEST --reason ... | release TEST | update [--dry-run]
  contexten tests quarantine export --output quarantine.json
  contexten tests gate reports/ [--quarantine-file quarantine.json]     # exit 1 on real failures

In GitHub Actions the run id, attempt, commit, branch, job and repository default to the
GITHUB_* variables. Exit codes: 0 ok, 1 failures (gate) or the store failed, 2 bad input.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from contexten.commands._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    fail,
    print_json,
    stdout_is_terminal,
)

if TYPE_CHECKING:
    from contexten.store.db import Store
    from contexten.testhistory.report import ReportOptions

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
quarantine_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="The quarantine list of flaky tests."
)
app.add_typer(quarantine_app, name="quarantine")

RepositoryOption = typer.Option(
    None, "--repository", "-R", help="owner/name; default GITHUB_REPOSITORY"
)
BranchOption = typer.Option(None, "--branch", "-b", help="only this branch (default: all)")
WindowOption = typer.Option(14, "--window-days", min=1, max=3650, help="days of history")
JsonOption = typer.Option(False, "--json", help="print one JSON document")


def _error(message: str) -> None:
    print(f"contexten: error: {message}", file=sys.stderr)


def _store() -> Store:
    from contexten.store.db import StoreError, open_store

    try:
        return open_store()
    except StoreError as exc:
        fail(str(exc), code=exc.exit_code)


def _repository(value: str | None) -> str | None:
    from contexten.config import get_settings

    repository = value or get_settings().github_repository
    if repository is not None and (repository.count("/") != 1 or " " in repository):
        fail(f"--repository {repository!r} must be owner/name")
    return repository


def _options(
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
        repository=_repository(repository),
        branch=branch,
        window_days=window_days,
        top=top,
        rank_by=by,  # type: ignore[arg-type]
        policy=policy,
    )


def _history_error(exc: Exception) -> None:
    fail(str(exc), code=EXIT_FAILED)


# ----- ingest --------------------------------------------------------------------------------


def _parse_timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    from contexten.analysis.junit import parse_timestamp

    parsed = parse_timestamp(value)
    if parsed is None:
        fail(f"--timestamp {value!r}: expected an ISO 8601 time, e.g. 2025-01-31T12:00:00Z")
    return parsed


@app.command()
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
    from contexten.analysis.junit import JUnitError, parse_junit
    from contexten.store.test_history import (
        ReportOrigin,
        TestHistoryError,
        ingest_report,
        local_upload_id,
    )
    from contexten.testhistory.files import (
        ReportFileError,
        find_report_files,
        iter_report_sources,
    )

    run = ReportOrigin(
        repository=_repository(repository),
        run_id=run_id,
        run_attempt=attempt,
        commit=commit,
        branch=branch,
        job=job,
        recorded_at=_parse_timestamp(timestamp),
    )
    files, errors = find_report_files(paths)
    for message in errors:
        _error(message)
    store = None if dry_run else _store()
    results: list[dict[str, Any]] = []
    bad = len(errors)
    for source in iter_report_sources(files):
        if isinstance(source, ReportFileError):
            _error(str(source))
            bad += 1
            continue
        try:
            report = parse_junit(source.data, source.name, strip_prefixes=strip_prefix)
        except JUnitError as exc:
            _error(str(exc))
            bad += 1
            results.append({"file": source.name, "error": str(exc)})
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
        if store is not None:
            try:
                outcome = ingest_report(store, report, run, source.data)
            except TestHistoryError as exc:
                _history_error(exc)
            entry["stored"] = outcome.stored
            entry["duplicate"] = outcome.duplicate
        results.append(entry)
    ok = [r for r in results if "error" not in r]
    if as_json:
        print_json(
            {
                "files": results,
                "parsed": len(ok),
                "invalid": bad,
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
        print(f"{len(ok)} reports parsed, {bad} invalid")
    if bad and not skip_invalid:
        raise typer.Exit(EXIT_BAD_INPUT)
    if not ok and not files:
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_OK)


# ----- report, flaky, slow ----------------------------------------------------------------------


def _build(options: ReportOptions) -> Any:
    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory.report import build_report

    store = _store()
    try:
        built = build_report(store, options)
    except TestHistoryError as exc:
        _history_error(exc)
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


@app.command()
def report(
    repository: str | None = RepositoryOption,
    branch: str | None = BranchOption,
    window_days: int = WindowOption,
    top: int = typer.Option(20, "--top", min=1, max=1000),
    by: str = typer.Option("p50", "--by", help="rank slow tests by p50 or p95"),
    markdown: Path | None = typer.Option(None, "--markdown", help="also write Markdown here"),
    as_json: bool = JsonOption,
) -> None:
    """Flaky, broken, slow and slower tests, and the quarantine plan, over a window."""
    from contexten.testhistory.report import report_json, report_markdown

    built = _build(_options(repository, branch, window_days, top, by))
    text = report_markdown(built)
    if markdown is not None:
        try:
            markdown.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--markdown {markdown}: cannot write: {exc.strerror or exc}")
    if as_json:
        print_json(report_json(built))
    elif not stdout_is_terminal():
        sys.stdout.write(text)  # the Markdown itself: nothing folded to a guessed width
    else:
        from rich.markdown import Markdown

        from contexten.commands._common import console

        console().print(Markdown(text))
    raise typer.Exit(EXIT_OK)


@app.command()
def flaky(
    repository: str | None = RepositoryOption,
    branch: str | None = BranchOption,
    window_days: int = WindowOption,
    top: int = typer.Option(50, "--top", min=1, max=10000),
    as_json: bool = JsonOption,
) -> None:
    """Tests that passed and failed on the same commit (or passed on retry), with evidence."""
    from contexten.testhistory.report import report_json, report_tables

    built = _build(_options(repository, branch, window_days, top))
    if as_json:
        data = report_json(built)
        print_json({"window": data["window"], "flaky": data["flaky"][:top]})
    else:
        _print_table(report_tables(built)[0])
        links = _Links.from_settings(built.options.repository)
        for finding in built.flaky[:top]:
            event = finding.stats.flaky_events[0] if finding.stats.flaky_events else None
            if event is not None:
                where = f"commit {links.commit(event.commit)}" if event.commit else "no commit"
                print(
                    f"  {built.name(finding.stats.test_id)}: {where};"
                    f" failed in {', '.join(map(links.run, event.failed_runs)) or '-'};"
                    f" passed in {', '.join(map(links.run, event.passed_runs)) or '-'}"
                )
    raise typer.Exit(EXIT_OK)


class _Links:
    """Evidence a person can follow: commit and run pages on GitHub when the repository is
    known (-R or GITHUB_REPOSITORY) and the run id is a GitHub Actions run id."""

    def __init__(self, web: str | None, repository: str | None) -> None:
        self.base = f"{web}/{repository}" if web and repository else None

    @classmethod
    def from_settings(cls, repository: str | None) -> _Links:
        from urllib.parse import urlparse

        from contexten.config import get_settings

        api = urlparse(get_settings().github_api_url)
        host = api.netloc.removeprefix("api.") if api.netloc == "api.github.com" else api.netloc
        web = f"{api.scheme}://{host}" if api.scheme and host else None
        return cls(web, repository)

    def commit(self, sha: str) -> str:
        return f"{self.base}/commit/{sha}" if self.base else sha

    def run(self, label: str) -> str:
        """`123#2 (job)` → the run attempt's page; other labels (local uploads) as they are."""
        import re

        found = re.match(r"^(\d+)(?:#(\d+))?(?= |$)", label)
        if self.base is None or found is None:
            return label
        url = f"{self.base}/actions/runs/{found[1]}"
        if found[2]:
            url += f"/attempts/{found[2]}"
        return f"{label} <{url}>"


@app.command()
def slow(
    repository: str | None = RepositoryOption,
    branch: str | None = BranchOption,
    window_days: int = WindowOption,
    top: int = typer.Option(20, "--top", min=1, max=10000),
    by: str = typer.Option("p50", "--by", help="p50 or p95"),
    as_json: bool = JsonOption,
) -> None:
    """The slowest tests by p50 or p95, and tests getting slower."""
    from contexten.testhistory.report import report_json, report_tables

    built = _build(_options(repository, branch, window_days, top, by))
    if as_json:
        data = report_json(built)
        print_json(
            {
                "window": data["window"],
                "slowest": data["slowest"],
                "getting_slower": data["getting_slower"],
            }
        )
    else:
        tables = report_tables(built)
        _print_table(tables[1])
        _print_table(tables[2])
    raise typer.Exit(EXIT_OK)


def _print_table(table: Any, *, wrap: tuple[int, ...] = ()) -> None:
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


# ----- shard ---------------------------------------------------------------------------------


def _read_collected(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--collect {path}: cannot read: {exc}")
    items = []
    for line in text.splitlines():
        line = line.strip()
        # `pytest --collect-only -q` ends with a summary line ("12 tests collected in 0.1s").
        if not line or line.startswith("#") or " collected" in line or line.startswith("no tests"):
            continue
        items.append(line)
    if not items:
        fail(
            f"--collect {path}: no test ids in the file"
            " (expected `pytest --collect-only -q` output)"
        )
    return items


@app.command()
def shard(
    shards: int = typer.Option(..., "--shards", "-n", min=1, max=1024),
    index: int | None = typer.Option(
        None, "--index", "-i", min=1, help="print one shard (1-based)"
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json or pytest"),
    by: str = typer.Option("test", "--by", help="test (node ids) or file"),
    statistic: str = typer.Option("p90", "--estimate", help="p90 or median of recent runs"),
    collect: Path | None = typer.Option(
        None, "--collect", help="`pytest --collect-only -q` output: shard exactly these tests"
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", help="write shard-N.txt (one id per line) for every shard"
    ),
    repository: str | None = RepositoryOption,
    branch: str | None = BranchOption,
    window_days: int = WindowOption,
) -> None:
    """Split the suite into N shards balanced by recorded durations."""
    from contexten.store.test_history import TestHistoryError, identities
    from contexten.testhistory.report import (
        ShardRequest,
        collect_stats,
        plan_from_history,
        shard_json,
        shard_table,
    )

    if fmt not in ("text", "json", "pytest"):
        fail(f"--format {fmt!r}: expected text, json or pytest")
    if by not in ("test", "file"):
        fail(f"--by {by!r}: expected test or file")
    if statistic not in ("p90", "median"):
        fail(f"--estimate {statistic!r}: expected p90 or median")
    collected = _read_collected(collect) if collect is not None else None
    options = _options(repository, branch, window_days)
    store = _store()
    try:
        snapshot = collect_stats(store, options)
        known = identities(store, test_ids=snapshot.stats)
    except TestHistoryError as exc:
        _history_error(exc)
    if not snapshot.stats and collected is None:
        fail(
            "no test history in the window: ingest JUnit reports first, or pass --collect"
            " to split collected tests evenly"
        )
    plan = plan_from_history(
        snapshot,
        known,
        ShardRequest(shards, statistic, by, collected),  # type: ignore[arg-type]
    )
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if index is not None and index > len(plan.shards):
        fail(
            f"--index {index}: the plan has {len(plan.shards)} shards (never an empty one);"
            f" run with --shards {len(plan.shards)}"
        )
    if output_dir is not None:
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            for s in plan.shards:
                (output_dir / f"shard-{s.index}.txt").write_text(
                    "".join(k + "\n" for k in s.keys), encoding="utf-8"
                )
        except OSError as exc:
            fail(f"--output-dir {output_dir}: cannot write: {exc.strerror or exc}")
    chosen = [s for s in plan.shards if index is None or s.index == index]
    if fmt == "json":
        data = shard_json(plan)
        if index is not None:
            data["shards"] = [s for s in data["shards"] if s["index"] == index]
        print_json(data)
    elif fmt == "pytest":
        odd = sum(1 for s in chosen for k in s.keys if by == "test" and "::" not in k)
        if odd:
            print(
                f"note: {odd} items are not pytest node ids (the history holds non-pytest"
                " reports); filter with --collect",
                file=sys.stderr,
            )
        for s in chosen:
            sys.stdout.write("".join(k + "\n" for k in s.keys))
    else:
        _print_table(shard_table(plan))
        if index is not None:
            for key in chosen[0].keys:
                print(key)
    raise typer.Exit(EXIT_OK)


# ----- quarantine ------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


@quarantine_app.command("list")
def quarantine_list(
    include_released: bool = typer.Option(False, "--all", help="include released entries"),
    as_json: bool = JsonOption,
) -> None:
    """Quarantined tests, with reason, expiry and evidence."""
    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory import quarantine as q

    try:
        entries = q.list_entries(_store(), include_released=include_released)
    except TestHistoryError as exc:
        _history_error(exc)
    now = _now()
    if as_json:
        print_json({"tests": [e.to_json() | {"active": e.active(now)} for e in entries]})
        raise typer.Exit(EXIT_OK)
    from contexten.workflows.base import Table

    _print_table(
        Table(
            ("test", "reason", "by", "added", "expires", "state"),
            tuple(
                (
                    e.name,
                    e.reason,
                    "person" if e.manual else "auto",
                    e.added_at.date().isoformat(),
                    e.expires_at.date().isoformat() if e.expires_at else "never",
                    "active" if e.active(now) else ("released" if e.released_at else "expired"),
                )
                for e in entries
            ),
            title=f"Quarantine ({len(entries)})",
        ),
        wrap=(1,),
    )
    raise typer.Exit(EXIT_OK)


def _resolve_test(store: Store, text: str, repository: str | None) -> Any:
    from contexten.store.test_history import find_tests

    matches = find_tests(store, text, repository)
    if not matches:
        fail(f"no test in the history matches {text!r}; give a test id or file::class::name")
    if len(matches) > 1:
        names = "; ".join(m.display for m in matches[:5])
        fail(f"{text!r} matches {len(matches)} tests ({names}); be more specific or give the id")
    return matches[0]


@quarantine_app.command("add")
def quarantine_add(
    test: str = typer.Argument(..., help="test id, or file::class::name (or a unique part)"),
    reason: str = typer.Option(..., "--reason", "-r", help="why, for the audit trail"),
    days: int = typer.Option(30, "--days", min=1, max=3650, help="expires after this many days"),
    actor: str = typer.Option("cli", "--by", help="who is quarantining it"),
    repository: str | None = RepositoryOption,
) -> None:
    """Quarantine a test by hand: it still runs, but its failures do not fail the gate."""
    from contexten.testhistory import quarantine as q

    if not reason.strip():
        fail("--reason must not be empty")
    store = _store()
    repo = _repository(repository)
    identity = _resolve_test(store, test, repo)
    now = _now()
    entry = q.add(
        store,
        identity,
        reason=reason.strip(),
        now=now,
        expires_at=now + timedelta(days=days),
        actor=actor,
        manual=True,
        repository=repo,
    )
    print(f"quarantined {entry.name} ({entry.test_id[:12]}) until {entry.expires_at:%Y-%m-%d}")
    raise typer.Exit(EXIT_OK)


@quarantine_app.command("release")
def quarantine_release(
    test: str = typer.Argument(..., help="test id, or file::class::name"),
    reason: str = typer.Option("released by hand", "--reason", "-r"),
    actor: str = typer.Option("cli", "--by"),
    repository: str | None = RepositoryOption,
) -> None:
    """Release a test from quarantine."""
    from contexten.testhistory import quarantine as q

    store = _store()
    active = {e.test_id: e for e in q.list_entries(store)}
    test_id = (
        test if test in active else _resolve_test(store, test, _repository(repository)).test_id
    )
    entry = q.release(store, test_id, reason=reason, now=_now(), actor=actor)
    if entry is None:
        fail(f"{test!r} is not quarantined")
    print(f"released {entry.name} ({entry.test_id[:12]})")
    raise typer.Exit(EXIT_OK)


@quarantine_app.command("update")
def quarantine_update(
    repository: str | None = RepositoryOption,
    branch: str | None = BranchOption,
    window_days: int = WindowOption,
    activate_events: int = typer.Option(
        2, "--activate-events", min=1, help="flaky commits before a test is quarantined"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="show the changes, make none"),
    as_json: bool = JsonOption,
) -> None:
    """Quarantine newly flaky tests and release stable or expired ones, per the policy."""
    from contexten.testhistory import quarantine as q

    options = _options(repository, branch, window_days, activate_events=activate_events)
    built = _build(options)
    applied = []
    if not dry_run:
        applied = q.apply_plan(
            _store(),
            built.plan,
            built.identities,
            now=options.moment(),
            repository=options.repository,
        )
    decisions = built.plan.decisions if dry_run else tuple(applied)
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "changes": [
                    {
                        "test_id": d.test_id,
                        "name": built.name(d.test_id),
                        "action": d.action,
                        "reason": d.reason,
                    }
                    for d in decisions
                ],
                "kept": list(built.plan.kept),
                "identity_drift": [
                    {
                        "quarantined": d.quarantined.display,
                        "now_seen_as": [c.display for c in d.candidates],
                    }
                    for d in built.plan.drift
                ],
            }
        )
    else:
        verb = "would" if dry_run else "did"
        if not decisions:
            print("no quarantine changes")
        for d in decisions:
            print(f"{verb} {d.action}: {built.name(d.test_id)} — {d.reason}")
        for d in built.plan.drift:
            print(
                f"warning: quarantined {d.quarantined.display} is gone but"
                f" {', '.join(c.display for c in d.candidates)} runs: identity drift?",
                file=sys.stderr,
            )
    raise typer.Exit(EXIT_OK)


@quarantine_app.command("export")
def quarantine_export(
    output: Path | None = typer.Option(None, "--output", "-o", help="file (default: stdout)"),
    fmt: str = typer.Option(
        "json", "--format", "-f", help="json (for `tests gate`) or text (one test per line)"
    ),
) -> None:
    """Write the active quarantine list: JSON for a gate that reads a file, or plain text."""
    from contexten.testhistory import quarantine as q

    if fmt not in ("json", "text"):
        fail(f"--format {fmt!r}: expected json or text")
    document = q.export_document(q.list_entries(_store()), _now())
    if fmt == "json":
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    else:
        text = "".join(
            f"{t['name']}  # {t['reason']} (until {(t['expires_at'] or 'never')[:10]})\n"
            for t in document["tests"]
        )
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--output {output}: cannot write: {exc.strerror or exc}")
        print(f"{len(document['tests'])} quarantined tests written to {output}")
    raise typer.Exit(EXIT_OK)


# ----- gate ------------------------------------------------------------------------------------


@app.command()
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
    from contexten.analysis.junit import (
        AggregatedResult,
        JUnitError,
        aggregate_retries,
        parse_junit,
    )
    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory import quarantine as q
    from contexten.testhistory.files import (
        ReportFileError,
        find_report_files,
        iter_report_sources,
    )

    if on_store_error not in ("fail", "pass"):
        fail(f"--on-store-error {on_store_error!r}: expected fail or pass")
    repo = _repository(repository)
    files, errors = find_report_files(paths)
    for message in errors:
        _error(message)
    results: list[AggregatedResult] = []
    bad = len(errors)
    for source in iter_report_sources(files):
        if isinstance(source, ReportFileError):
            _error(str(source))
            bad += 1
            continue
        try:
            results.extend(aggregate_retries(parse_junit(source.data, source.name).cases))
        except JUnitError as exc:
            _error(str(exc))
            bad += 1
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
            quarantined = q.parse_quarantine_document(data, str(quarantine_file), _now())
        else:
            from contexten.store.db import StoreError, open_store

            try:
                quarantined = q.active_ids(open_store(), _now(), repo)
            except StoreError as exc:
                raise TestHistoryError(str(exc)) from None
    except (q.QuarantineFileError, TestHistoryError) as exc:
        if on_store_error == "pass":
            _error(f"{exc} — failing open: exit 0 whatever failed")
            source_note = "quarantine list unreachable: failed open"
        else:
            _error(f"{exc} — failing closed: every failure counts")
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
