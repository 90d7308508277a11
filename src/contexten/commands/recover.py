"""`contexten recover [--component NAME] [--failure-type TYPE] [--dry-run] [--json]`.

First takes over the workflow runs whose process died (their lease expired) and re-runs
them from the start under their idempotency keys (`--dry-run` lists them only). Then runs
the system_recovery workflow in-process: without options it checks everything and
recovers what is failing; `--dry-run` shows the plans only. Exit 0 when nothing is left
unrecovered, 1 when a recovery failed or went to a human, 2 on bad input.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from contexten.commands._common import EXIT_FAILED, EXIT_OK, fail, print_json

app = typer.Typer(add_completion=False)

OUTCOME_STYLE = {
    "succeeded": "green",
    "awaiting_result": "cyan",
    "skipped": "dim",
    "failed": "red",
    "escalated": "yellow",
}


@app.command("recover")
def recover(
    component: str | None = typer.Option(None, "--component", help="e.g. github, prefect, disk"),
    failure_type: str | None = typer.Option(
        None, "--failure-type", help="e.g. auth, network, timeout, resource_exhaustion"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="show the plans, change nothing"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
) -> None:
    """Recover failing components (restart, clean up, reset configuration, escalate)."""
    from contexten.workflows.base import WorkflowError
    from contexten.workflows.system_recovery import COMPONENTS, parse_failure_type

    if component is not None and component not in COMPONENTS:
        fail(f"--component {component!r} is not one of: {', '.join(COMPONENTS)}")
    if failure_type is not None:
        if component is None:
            fail("--failure-type needs --component")
        try:
            parse_failure_type(failure_type)
        except WorkflowError as exc:
            fail(f"--failure-type: {exc}")
    stale = _take_over_stale_runs(dry_run) if component is None else []
    result = _run(component, failure_type, dry_run)
    if as_json:
        print_json({**result.to_dict(), "stale_runs": stale})
    else:
        _print_stale(stale, dry_run)
        _print(result)
    if result.status != "completed" or not result.ok:
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


def _run(component: str | None, failure_type: str | None, dry_run: bool) -> Any:
    from contexten.config import get_settings
    from contexten.orchestration.execution import execute_workflow
    from contexten.store.db import StoreError, open_store

    settings = get_settings()
    try:
        store = open_store(settings.effective_database_url)
    except StoreError as exc:
        fail(f"{exc} (recovery needs the store)", code=exc.exit_code)
    parameters: dict[str, Any] = {"dry_run": dry_run}
    if component is not None:
        parameters["component"] = component
    if failure_type is not None:
        parameters["failure_type"] = failure_type
    return asyncio.run(
        execute_workflow("system_recovery", parameters, settings=settings, store=store)
    )


def _take_over_stale_runs(dry_run: bool) -> list[dict[str, Any]]:
    """Runs of dead processes: listed (dry run), or taken over and re-run here."""
    from contexten.config import get_settings
    from contexten.orchestration import PrefectOrchestrator
    from contexten.store import executions as runs
    from contexten.store.db import StoreError, open_store

    settings = get_settings()
    try:
        store = open_store(settings.effective_database_url)
    except StoreError as exc:
        fail(f"{exc} (recovery needs the store)", code=EXIT_FAILED)
    if dry_run:
        found = runs.stale(store, lease_seconds=settings.execution_lease_seconds)
        return [_stale_dict(row, None) for row in found]
    orchestrator = PrefectOrchestrator(settings=settings, store=store)
    taken = asyncio.run(orchestrator.recover_stale_runs(wait=True))
    return [_stale_dict(row, runs.load(store, row.run_id)) for row in taken]


def _stale_dict(row: Any, after: Any) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "workflow_type": row.workflow_type,
        "idempotency_key": row.idempotency_key,
        "dead_owner": row.lease_owner,
        "lease_expired_at": row.lease_expires_at.isoformat() if row.lease_expires_at else None,
        "status_after_rerun": after.status if after is not None else None,
    }


def _print_stale(stale: list[dict[str, Any]], dry_run: bool) -> None:
    if not stale:
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    verb = "would take over" if dry_run else "took over and re-ran"
    console.print(f"runs whose process died: {verb} {len(stale)}")
    for run in stale:
        after = "" if dry_run else f" -> {run['status_after_rerun']}"
        console.print(
            f"  {run['run_id'][:8]}  {escape(run['workflow_type'])}  "
            f"(was {escape(str(run['dead_owner']))}){after}"
        )


def _print(result: Any) -> None:
    from rich.markup import escape
    from rich.text import Text

    from contexten.commands._common import console as make_console
    from contexten.commands._common import print_table

    console = make_console()
    if result.status != "completed":
        console.print(f"[red]recovery could not run:[/red] {escape(str(result.error))}")
        return
    recoveries = result.data.get("recoveries", [])
    console.print(result.summary)
    if not recoveries:
        return
    rows = []
    for r in recoveries:
        outcome = "planned" if r["dry_run"] else r["outcome"]
        detail = r["attempts"][-1]["detail"] if r["attempts"] else r["reason"]
        rows.append(
            (
                r["key"],
                r["category"],
                " → ".join(r["plan"]),
                Text(outcome, style=OUTCOME_STYLE.get(outcome, "")),
                detail,
            )
        )
    print_table(
        "dry run: plans" if result.data.get("dry_run") else "recoveries",
        ("key", "failure", "plan", "outcome", "detail"),
        rows,
        wrap=[2, 4],
    )
