"""`contexten status [--json]`: configuration, Prefect server, integrations, recent runs."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from contexten.commands._common import EXIT_BAD_INPUT, EXIT_OK, fail, print_json

app = typer.Typer(add_completion=False)


def collect_status(limit: int = 10) -> dict[str, Any]:
    """Everything `status` shows. With configuration errors, only the configuration: the
    store and the server are not touched (the errors may be what breaks them)."""
    from contexten.config import get_settings

    settings = get_settings()
    errors = settings.errors()
    config = {
        "config_problems": errors + settings.warnings(),
        "config_errors": errors,
        "config_warnings": settings.warnings(),
    }
    if errors:
        return {
            **config,
            "mode": None,
            "prefect_api_url": None,
            "in_process_reason": None,
            "prefect_ui_url": None,
            "store": None,
            "integrations": settings.enabled_integrations(),
            "max_concurrent_workflows": settings.max_concurrent_workflows,
            "warnings": [],
            "recent_runs": [],
        }
    from contexten.orchestration import PrefectOrchestrator
    from contexten.orchestration.prefect_server import read_server_record

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
        **config,
        "mode": "prefect" if api_url else "in-process",
        "prefect_api_url": api_url,
        "in_process_reason": None if api_url else in_process_reason(settings, record),
        "prefect_ui_url": (record or {}).get("ui_url") if api_url else None,
        "store": orchestrator.store.safe_url,
        "integrations": settings.enabled_integrations(),
        "max_concurrent_workflows": settings.max_concurrent_workflows,
        "warnings": warnings,
        "recent_runs": [run.to_dict() for run in recent],
    }


def _problem(run: dict[str, Any]) -> str:
    """The error of a failed run, or the summary of a run that completed but found problems."""
    if run["error"]:
        return str(run["error"])
    result = run["result"] or {}
    if run["status"] == "completed" and result.get("ok") is False:
        return str(result.get("summary") or "not ok")
    return ""


def in_process_reason(settings: Any, record: dict[str, Any] | None) -> str:
    """Why no Prefect server is used, in words a person can act on."""
    url = settings.prefect_api_url
    if url:
        hint = "" if url.rstrip("/").endswith("/api") else "; it must end in /api"
        return f"PREFECT_API_URL {url} does not answer {url.rstrip('/')}/health{hint}"
    if record:
        return (
            f"the `contexten server` recorded in {settings.data_dir / 'server.json'} "
            f"({record.get('api_url')}) does not answer; start it again"
        )
    return "PREFECT_API_URL is not set and no `contexten server` is running"


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(10, "--limit", min=1, max=500),
) -> None:
    """Show configuration problems, the Prefect server, integrations and recent runs.

    Exit 2 when a configuration value is invalid (every error is listed, and no other
    command runs until it is fixed); incomplete integration settings are warnings (exit 0).
    """
    data = collect_status(limit)
    code = EXIT_BAD_INPUT if data["config_errors"] else EXIT_OK
    if as_json:
        print_json(data)
        raise typer.Exit(code)
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    from contexten.commands._common import console as make_console

    console = make_console()
    if data["config_errors"]:
        for problem in data["config_errors"]:
            console.print(f"[red]config error:[/red] {escape(problem)}", soft_wrap=True)
        for problem in data["config_warnings"]:
            console.print(f"[yellow]config:[/yellow] {escape(problem)}", soft_wrap=True)
        fail(
            f"{len(data['config_errors'])} configuration error(s) listed above; other "
            "commands refuse to run until they are fixed (see the README's configuration "
            "reference)"
        )
    console.print(f"mode: [bold]{data['mode']}[/bold]")
    if data["prefect_api_url"]:
        console.print(f"prefect api: {data['prefect_api_url']}")
    else:
        reason = escape(data["in_process_reason"])
        console.print(f"prefect api: none (runs in-process): {reason}", soft_wrap=True)
    if data["prefect_ui_url"]:
        console.print(f"prefect ui: {data['prefect_ui_url']}")
    console.print(f"store: {data['store']}")
    enabled = [name for name, on in data["integrations"].items() if on]
    console.print(f"integrations: {', '.join(enabled) or 'none configured'}")
    for problem in data["config_warnings"]:
        console.print(f"[yellow]config:[/yellow] {escape(problem)}", soft_wrap=True)
    for warning in data["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    if not data["recent_runs"]:
        console.print("recent runs: none yet (try `contexten execute -o health_check`)")
        raise typer.Exit(EXIT_OK)
    # A list, not a table: names and states stay whole on an 80-column terminal, and a
    # long error wraps under its run instead of squeezing every column.
    runs = data["recent_runs"]
    width = max(len(run["workflow_type"]) for run in runs)
    console.print("recent runs, newest first:")
    for run in runs:
        duration = run["duration_seconds"]
        seconds = "" if duration is None else f"{duration:.2f}s"
        colour = {"completed": "green", "failed": "red", "crashed": "red", "timed_out": "red"}.get(
            run["status"], "yellow"
        )
        line = Text("  ")
        line.append(f"{run['run_id'][:8]}  {run['workflow_type'].ljust(width)}  ")
        line.append(run["status"].ljust(9), style=colour)
        line.append(f"  {seconds:>9}  {run['mode']}")
        console.print(line, no_wrap=True, overflow="ellipsis")
        problem = _problem(run)
        if problem:
            console.print(Padding(Text(problem[:300]), (0, 0, 0, 12)))
    raise typer.Exit(EXIT_OK)
