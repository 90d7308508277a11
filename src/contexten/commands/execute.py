"""`contexten execute --operation TYPE --parameters JSON [--wait] [--json]`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from contexten.commands._common import EXIT_FAILED, EXIT_OK, fail, print_json

app = typer.Typer(add_completion=False)


def parse_parameters(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"--parameters is not valid JSON ({exc.msg} at position {exc.pos}); expected an object"
        )
    if not isinstance(value, dict):
        fail(f"--parameters must be a JSON object, got {type(value).__name__}")
    return value


@app.command()
def execute(
    operation: str = typer.Option(
        ..., "--operation", "-o", help="workflow type, e.g. failure_analysis"
    ),
    parameters: str = typer.Option("", "--parameters", "-p", help="JSON object of parameters"),
    wait: bool = typer.Option(False, "--wait", help="wait for the run to finish"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Run one workflow type. Exit 0 on success, 1 if the run failed, 2 on bad input."""
    from contexten.config import get_settings
    from contexten.orchestration import (
        OrchestratorError,
        PrefectOrchestrator,
        WorkflowParameterError,
    )

    params = parse_parameters(parameters)
    orchestrator = PrefectOrchestrator()
    try:
        run_id = asyncio.run(orchestrator.trigger_workflow(operation, params, wait=wait))
        status = asyncio.run(orchestrator.get_workflow_status(run_id))
    except WorkflowParameterError as exc:
        fail(str(exc))
    except OrchestratorError as exc:
        fail(str(exc), code=EXIT_FAILED)
    where = report_locations(get_settings(), status)
    if as_json:
        print_json({**status.to_dict(), **where})
    else:
        _print_status(status)
        _print_reports(where)
    if status.is_final and not status.ok:
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


def report_locations(settings: Any, status: Any) -> dict[str, Any]:
    """Where the run's reports are: the files under CONTEXTEN_HOME/reports/<run id>/ and,
    for a run on a Prefect server, the flow run's page (its artifacts) in the UI."""
    from contexten.orchestration.prefect_server import read_server_record

    folder = settings.data_dir / "reports" / status.run_id
    files = sorted(str(p) for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
    page = None
    if status.mode == "prefect":
        ui_url = (read_server_record(settings) or {}).get("ui_url")
        if ui_url:
            page = f"{str(ui_url).rstrip('/')}/runs/flow-run/{status.run_id}"
    return {"reports_dir": str(folder), "reports": files, "prefect_run_url": page}


def _print_reports(where: dict[str, Any]) -> None:
    for path in where["reports"]:
        print(f"report: {path}")
    if where["prefect_run_url"]:
        print(f"prefect run (artifacts): {where['prefect_run_url']}")
    if not where["reports"] and not where["prefect_run_url"]:
        print(
            f"report: none written to {where['reports_dir']} (this run publishes none); the "
            "run is recorded in the store: `contexten status`"
        )


def _print_status(status: Any) -> None:
    from rich.markdown import Markdown
    from rich.markup import escape

    from contexten.commands._common import console as make_console

    console = make_console()
    colour = {"completed": "green", "failed": "red", "crashed": "red", "timed_out": "red"}.get(
        status.status, "yellow"
    )
    label = status.status
    if status.status == "completed" and not status.ok:
        # It ran, and found the system failing (exit 1): not the green "all is well".
        colour, label = "yellow", "completed, problems found"
    console.print(
        f"[bold]{status.workflow_type}[/bold] run [cyan]{status.run_id}[/cyan] "
        f"({status.mode}): [{colour}]{label}[/{colour}]",
        soft_wrap=True,
    )
    if status.error:
        console.print(f"[red]error:[/red] {escape(status.error)}", soft_wrap=True)
    result = status.result or {}
    if result.get("summary"):
        console.print(Markdown(str(result["summary"])))
    if status.mode == "prefect" and not status.is_final:
        console.print("queued on the Prefect server; follow it with `contexten status`")
