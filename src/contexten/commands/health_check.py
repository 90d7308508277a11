"""`contexten health-check [--json] [--no-integrations] [--alert] [--recover]`.

Runs the health_check workflow in-process (checking Prefect through Prefect would be
circular, and a cron job wants an answer in seconds) and records the run. Exit 0 when
healthy or degraded, 1 when unhealthy, so it works in cron and CI.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from contexten.commands._common import EXIT_FAILED, EXIT_OK, print_json

app = typer.Typer(add_completion=False)

STATUS_STYLE = {
    "healthy": "green",
    "degraded": "yellow",
    "unhealthy": "red",
    "disabled": "dim",
}


def run_health_check(
    *, integrations: bool, alert: bool, recover: bool
) -> tuple[dict[str, Any], str | None]:
    """(report data, error). The report comes from the workflow; if the store cannot even
    be opened, the components are checked without it and the store is reported down."""
    from contexten.config import get_settings
    from contexten.orchestration.execution import execute_workflow
    from contexten.store.db import StoreError, open_store

    settings = get_settings()
    parameters = {
        "check_all_integrations": integrations,
        "alert_on_degradation": alert,
        "auto_recovery": recover,
    }
    try:
        store = open_store(settings.effective_database_url)
    except StoreError as exc:
        return _without_store(settings, str(exc)), None
    result = asyncio.run(
        execute_workflow("health_check", parameters, settings=settings, store=store)
    )
    if result.status != "completed":
        return {}, result.error or result.summary
    return {**result.data, "run_id": result.run_id}, None


def _without_store(settings: Any, error: str) -> dict[str, Any]:
    from contexten.monitoring.health import ComponentHealth, HealthChecker, evaluate
    from contexten.store.db import Store

    checker = HealthChecker(
        settings, Store(settings.effective_database_url), check_integrations=False
    )
    report = asyncio.run(checker.run())
    components = [c for c in report.components if c.name not in ("store", "error_rate", "unknown")]
    components.insert(0, ComponentHealth("store", "unhealthy", error[:300]))
    final = evaluate(
        components, report.resources, settings.alert_thresholds, checked_at=report.checked_at
    )
    return final.to_dict()


@app.command("health-check")
def health_check(
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    no_integrations: bool = typer.Option(
        False, "--no-integrations", help="skip GitHub, Linear, Slack and Codegen"
    ),
    alert: bool = typer.Option(False, "--alert", help="fire and resolve alerts as the flow does"),
    recover: bool = typer.Option(False, "--recover", help="run recovery for what is failing"),
) -> None:
    """Check every component and the machine's resources; exit 1 when unhealthy."""
    data, error = run_health_check(integrations=not no_integrations, alert=alert, recover=recover)
    if error is not None:
        if as_json:
            print_json({"status": "error", "error": error})
        else:
            typer.echo(f"contexten: health check could not run: {error}", err=True)
        raise typer.Exit(EXIT_FAILED)
    if as_json:
        print_json(data)
    else:
        _print(data)
    raise typer.Exit(EXIT_FAILED if data.get("status") == "unhealthy" else EXIT_OK)


def _print(data: dict[str, Any]) -> None:
    from rich.text import Text

    from contexten.commands._common import console as make_console
    from contexten.commands._common import print_table

    console = make_console()
    status = str(data.get("status"))
    print_table(
        f"health {status}: {data.get('score', 0):.0f}/100",
        ("component", "status", "latency", "weight", "detail"),
        [
            (
                c["name"],
                Text(c["status"], style=STATUS_STYLE.get(c["status"], "")),
                "" if c.get("latency_ms") is None else f"{c['latency_ms']:.0f} ms",
                f"{c.get('weight', 0):g}",
                c.get("detail", ""),
            )
            for c in data.get("components", [])
        ],
        wrap=[4],
        right=[2, 3],
        keep_title=True,
    )
    resources = data.get("resources") or {}
    if resources:
        connections = resources.get("open_connections")
        console.print(
            f"cpu {resources['cpu_percent']}% · memory {resources['memory_percent']}% · "
            f"disk {resources['disk_percent']}% ({resources['disk_free_bytes'] / 1e9:.1f} GB "
            f"free at {resources['disk_path']}) · connections "
            f"{'n/a' if connections is None else connections}"
        )
    for alert in data.get("alerts", []):
        console.print(f"alert {alert['key']}: {alert['action']} {', '.join(alert['channels'])}")
    for recovery in data.get("recoveries", []):
        console.print(f"recovery {recovery['key']}: {recovery['outcome']}")
