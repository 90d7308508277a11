"""`contexten status [--json]`: configuration, Prefect server, integrations, recent runs."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from contexten.commands._common import EXIT_OK, print_json

app = typer.Typer(add_completion=False)


def collect_status(limit: int = 10) -> dict[str, Any]:
    from contexten.config import get_settings
    from contexten.orchestration import PrefectOrchestrator
    from contexten.orchestration.prefect_server import read_server_record

    settings = get_settings()
    orchestrator = PrefectOrchestrator(settings=settings)
    api_url = orchestrator.prefect_api_url()
    record = read_server_record(settings)
    warnings = []
    database = orchestrator.store.url
    if api_url and database.startswith("sqlite") and settings.max_concurrent_workflows > 1:
        warnings.append(
            "the store is SQLite while a Prefect server runs up to "
            f"{settings.max_concurrent_workflows} workflows at once: use PostgreSQL "
            "(DATABASE_URL) for the store and for Prefect to avoid 'database is locked' stalls"
        )
    recent = asyncio.run(orchestrator.list_recent(limit))
    return {
        "config_problems": settings.validate(),
        "mode": "prefect" if api_url else "in-process",
        "prefect_api_url": api_url,
        "prefect_ui_url": (record or {}).get("ui_url") if api_url else None,
        "store": orchestrator.store.safe_url,
        "integrations": settings.enabled_integrations(),
        "max_concurrent_workflows": settings.max_concurrent_workflows,
        "warnings": warnings,
        "recent_runs": [run.to_dict() for run in recent],
    }


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(10, "--limit", min=1, max=500),
) -> None:
    """Show configuration problems, the Prefect server, integrations and recent runs."""
    data = collect_status(limit)
    if as_json:
        print_json(data)
        raise typer.Exit(EXIT_OK)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"mode: [bold]{data['mode']}[/bold]")
    console.print(f"prefect api: {data['prefect_api_url'] or 'none reachable (runs in-process)'}")
    if data["prefect_ui_url"]:
        console.print(f"prefect ui: {data['prefect_ui_url']}")
    console.print(f"store: {data['store']}")
    enabled = [name for name, on in data["integrations"].items() if on]
    console.print(f"integrations: {', '.join(enabled) or 'none configured'}")
    for problem in data["config_problems"]:
        console.print(f"[yellow]config:[/yellow] {problem}")
    for warning in data["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    table = Table(title="recent runs")
    for column in ("run", "workflow", "mode", "status", "duration s", "error"):
        table.add_column(column)
    for run in data["recent_runs"]:
        duration = run["duration_seconds"]
        table.add_row(
            run["run_id"][:8],
            run["workflow_type"],
            run["mode"],
            run["status"],
            f"{duration:.2f}" if duration is not None else "",
            (run["error"] or "")[:60],
        )
    console.print(table)
    raise typer.Exit(EXIT_OK)
