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
    if as_json:
        print_json(status.to_dict())
    else:
        _print_status(status)
    if status.is_final and not status.ok:
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


def _print_status(status: Any) -> None:
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.markup import escape

    console = Console()
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
