"""`contexten recover [--component NAME] [--failure-type TYPE] [--dry-run] [--json]`.

Runs the system_recovery workflow in-process: without options it checks everything and
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
    result = _run(component, failure_type, dry_run)
    if as_json:
        print_json(result.to_dict())
    else:
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
