"""`contexten alerts list|resolve|process`: the alerts in the store."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from contexten.commands._common import EXIT_FAILED, EXIT_OK, fail, print_json

app = typer.Typer(add_completion=False, no_args_is_help=True, help="List and manage alerts.")

STATUSES = ("firing", "resolved", "all")
SEVERITY_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}


def _manager(with_clients: bool = False) -> tuple[Any, Any]:
    from contexten.config import get_settings
    from contexten.monitoring.alerts import AlertConfigError, AlertManager, alert_manager_for
    from contexten.monitoring.clients import IntegrationClients, build_clients
    from contexten.store.db import StoreError, open_store

    settings = get_settings()
    try:
        store = open_store(settings.effective_database_url)
    except StoreError as exc:
        fail(str(exc), code=exc.exit_code)
    clients = build_clients(settings, store) if with_clients else IntegrationClients()
    try:
        if with_clients:
            return alert_manager_for(store, settings, clients), clients
        return AlertManager(store, settings), clients
    except AlertConfigError as exc:
        fail(str(exc))


@app.command("list")
def list_alerts(
    status: str = typer.Option("firing", "--status", help="firing, resolved or all"),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
) -> None:
    """List alerts, newest first."""
    if status not in STATUSES:
        fail(f"--status {status!r} is not one of: {', '.join(STATUSES)}")
    manager, _ = _manager()
    alerts = manager.list_alerts(status=None if status == "all" else status, limit=limit)
    if as_json:
        print_json([a.to_dict() for a in alerts])
        raise typer.Exit(EXIT_OK)
    from rich.text import Text

    from contexten.commands._common import print_table

    print_table(
        f"{len(alerts)} alert(s) ({status})",
        ("id", "key", "severity", "status", "count", "last seen", "message"),
        [
            (
                str(a.id),
                a.key,
                Text(a.severity.value, style=SEVERITY_STYLE.get(a.severity.value, "")),
                a.status,
                str(a.count),
                a.last_seen.isoformat(timespec="seconds"),
                a.message[:300],
            )
            for a in alerts
        ],
        wrap=[6],
        right=[0, 4],
    )


@app.command("resolve")
def resolve(
    target: str = typer.Argument(..., help="alert id, or an alert key such as health:github"),
    reason: str = typer.Option("resolved by hand", "--reason"),
    notify: bool = typer.Option(True, "--notify/--no-notify", help="tell the channels"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
) -> None:
    """Resolve a firing alert by id or key."""
    manager, clients = _manager(with_clients=notify)

    async def go() -> Any:
        try:
            if target.isdigit():
                return await manager.resolve_id(int(target), reason=reason)
            return await manager.resolve(target, reason=reason)
        finally:
            await clients.aclose()

    try:
        decision = asyncio.run(go())
    except KeyError:
        fail(f"no alert with id {target}")
    if decision.action == "not_firing":
        fail(f"alert {target!r} is not firing", code=EXIT_FAILED)
    result = {"key": decision.key, "action": decision.action, "channels": list(decision.channels)}
    if as_json:
        print_json(result)
    else:
        told = f"; told {', '.join(decision.channels)}" if decision.channels else ""
        typer.echo(f"resolved {decision.key}{told}")


@app.command("process")
def process(
    stale_minutes: int = typer.Option(60, "--resolve-stale-minutes", min=1),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
) -> None:
    """Run the alert_management workflow now: repeat, escalate, resolve stale alerts."""
    from contexten.config import get_settings
    from contexten.orchestration.execution import execute_workflow
    from contexten.store.db import open_store

    settings = get_settings()
    store = open_store(settings.effective_database_url)
    result = asyncio.run(
        execute_workflow(
            "alert_management",
            {"resolve_stale_minutes": stale_minutes},
            settings=settings,
            store=store,
        )
    )
    if as_json:
        print_json(result.to_dict())
    else:
        typer.echo(result.summary)
    if result.status != "completed":
        raise typer.Exit(EXIT_FAILED)
