"""`contexten initialize [--work-pool NAME] [--json]`."""

from __future__ import annotations

import asyncio

import typer

from contexten.commands._common import EXIT_BAD_INPUT, EXIT_OK, fail, print_json

app = typer.Typer(add_completion=False)


@app.command()
def initialize(
    work_pool: str = typer.Option(None, "--work-pool", help="register deployments for this pool"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Validate configuration, migrate the store; on a server: secrets, limit, deployments."""
    from contexten.orchestration import PrefectOrchestrator
    from contexten.store.db import StoreError

    try:
        report = asyncio.run(PrefectOrchestrator().initialize(work_pool=work_pool))
    except StoreError as exc:
        fail(str(exc), code=exc.exit_code)
    if as_json:
        print_json(report.to_dict())
    else:
        from rich.markup import escape

        from contexten.commands._common import console as make_console

        console = make_console()
        for problem in report.problems:
            console.print(f"[yellow]config:[/yellow] {escape(problem)}", soft_wrap=True)
        console.print("store: migrated")
        if report.prefect_api_url:
            console.print(f"prefect: {report.prefect_api_url}")
            console.print(f"concurrency limit: {report.concurrency_limit}")
            console.print(f"secret blocks: {', '.join(report.secret_blocks) or 'none configured'}")
            console.print(f"deployments: {len(report.deployments)}")
        for note in report.notes:
            console.print(f"note: {note}")
    raise typer.Exit(EXIT_BAD_INPUT if report.problems else EXIT_OK)
