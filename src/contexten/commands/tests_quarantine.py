"""`contexten tests quarantine ...`: the quarantine list of flaky tests (list, add, release,
update by the policy, export for a gate that reads a file)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from contexten.commands._common import EXIT_OK, fail, print_json
from contexten.commands.tests_common import (
    BranchOption,
    JsonOption,
    RepositoryOption,
    WindowOption,
    build_report,
    history_error,
    history_store,
    print_test_table,
    report_options,
    resolve_repository,
    utc_now,
)

if TYPE_CHECKING:
    from contexten.store.db import Store

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="The quarantine list of flaky tests."
)


@app.command("list")
def quarantine_list(
    include_released: bool = typer.Option(False, "--all", help="include released entries"),
    as_json: bool = JsonOption,
) -> None:
    """Quarantined tests, with reason, expiry and evidence."""
    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory import quarantine as q

    try:
        entries = q.list_entries(history_store(), include_released=include_released)
    except TestHistoryError as exc:
        history_error(exc)
    now = utc_now()
    if as_json:
        print_json({"tests": [e.to_json() | {"active": e.active(now)} for e in entries]})
        raise typer.Exit(EXIT_OK)
    from contexten.workflows.base import Table

    print_test_table(
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


@app.command("add")
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
    store = history_store()
    repo = resolve_repository(repository)
    identity = _resolve_test(store, test, repo)
    now = utc_now()
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


@app.command("release")
def quarantine_release(
    test: str = typer.Argument(..., help="test id, or file::class::name"),
    reason: str = typer.Option("released by hand", "--reason", "-r"),
    actor: str = typer.Option("cli", "--by"),
    repository: str | None = RepositoryOption,
) -> None:
    """Release a test from quarantine."""
    from contexten.testhistory import quarantine as q

    store = history_store()
    active = {e.test_id: e for e in q.list_entries(store)}
    test_id = (
        test
        if test in active
        else _resolve_test(store, test, resolve_repository(repository)).test_id
    )
    entry = q.release(store, test_id, reason=reason, now=utc_now(), actor=actor)
    if entry is None:
        fail(f"{test!r} is not quarantined")
    print(f"released {entry.name} ({entry.test_id[:12]})")
    raise typer.Exit(EXIT_OK)


@app.command("update")
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

    options = report_options(repository, branch, window_days, activate_events=activate_events)
    built = build_report(options)
    applied = []
    if not dry_run:
        applied = q.apply_plan(
            history_store(),
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


@app.command("export")
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
    document = q.export_document(q.list_entries(history_store()), utc_now())
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
