"""`contexten webhook serve | dispatch | routes`: the GitHub webhook intake.

- `serve`: the receiver (uvicorn) with the dispatcher in the same process.
  `--no-dispatch` serves the receiver alone, for replicas behind a load balancer.
- `dispatch`: the dispatcher alone, for scale-out next to receiver-only replicas.
- `routes`: the routing rules in force (defaults, or ROUTING_RULES_FILE).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from typing import Any

import typer

from contexten.commands._common import EXIT_FAILED, EXIT_OK, fail, print_json

app = typer.Typer(add_completion=False, no_args_is_help=True)

_TRIGGER_HELP = (
    "package.module:factory; factory(settings, store) returns the trigger "
    "(default: the Prefect orchestrator)"
)


def _setup(trigger_spec: str) -> tuple[Any, Any, Any, Any]:
    """Settings, store, rules and trigger, or a one-line error (exit 2)."""
    from contexten.config import get_settings
    from contexten.events.routing import RoutingError, load_rules
    from contexten.events.service import (
        TriggerLoadError,
        load_trigger_factory,
        orchestrator_trigger,
    )
    from contexten.store.db import StoreError, open_store

    settings = get_settings()
    # Incomplete integration settings (say, a Linear key without a team id) must not stop
    # event intake: they are warnings. Invalid values were refused before the command ran.
    for problem in settings.warnings():
        print(f"contexten: warning: configuration: {problem}", file=sys.stderr)
    try:
        rules = load_rules()
    except RoutingError as exc:
        fail(str(exc))
    try:
        store = open_store(settings.effective_database_url)
    except StoreError as exc:
        fail(str(exc), code=exc.exit_code)
    try:
        factory = load_trigger_factory(trigger_spec) if trigger_spec else orchestrator_trigger
    except TriggerLoadError as exc:
        fail(str(exc))
    return settings, store, rules, factory


@app.command()
def serve(
    host: str = typer.Option("", "--host", help="default: WEBHOOK_HOST (127.0.0.1)"),
    port: int = typer.Option(0, "--port", help="default: WEBHOOK_PORT (8787)"),
    insecure: bool = typer.Option(
        False, "--insecure", help="accept unsigned deliveries when no secret is set"
    ),
    dispatch: bool = typer.Option(
        True, "--dispatch/--no-dispatch", help="run the dispatcher in this process"
    ),
    trigger: str = typer.Option("", "--trigger", help=_TRIGGER_HELP),
    lease_seconds: float = typer.Option(
        None, "--lease-seconds", min=1.0, help="default: WEBHOOK_LEASE_SECONDS"
    ),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve POST /webhook, /healthz, /readyz (and /metrics) until SIGINT/SIGTERM."""
    import uvicorn

    from contexten.config import get_settings
    from contexten.events.receiver import ReceiverConfigError, insecure_bind_problem
    from contexten.events.service import build_app

    bind_host = host or get_settings().webhook_host
    problem = insecure_bind_problem(get_settings(), bind_host, insecure=insecure)
    if problem is not None:
        fail(problem)
    settings, store, rules, factory = _setup(trigger)
    bind_port = port or settings.webhook_port
    if not 1 <= bind_port <= 65535:
        fail(f"--port {bind_port} must be between 1 and 65535")
    from contexten.orchestration.prefect_server import port_free

    if not port_free(bind_host, bind_port):
        fail(
            f"{bind_host}:{bind_port} is in use (another receiver?): stop it, or choose "
            "another with --port or WEBHOOK_PORT",
            code=EXIT_FAILED,
        )
    try:
        application = build_app(
            settings,
            store,
            trigger=factory(settings, store) if dispatch else None,
            dispatch=dispatch,
            insecure=insecure,
            rules=rules,
            lease_seconds=lease_seconds or settings.webhook_lease_seconds,
        )
    except ReceiverConfigError as exc:
        fail(str(exc))
    from contexten.events.limits import uvicorn_limits

    config = uvicorn.Config(
        application,
        host=bind_host,
        port=bind_port,
        access_log=False,
        log_level=log_level.lower(),
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=10,
        **uvicorn_limits(settings),
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the stop signal after its graceful shutdown; a no-op handler
    # underneath lets SIGTERM/SIGINT end the command with exit code 0 instead.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    # Everything built so far lives as long as the process: keep it out of the collector's
    # full passes, which otherwise walk it all and stall requests for tens of milliseconds.
    gc.collect()
    gc.freeze()
    try:
        server.run()
    except SystemExit:  # uvicorn exits on a startup failure (e.g. the port was taken since)
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        fail(f"cannot serve on {bind_host}:{bind_port} (see the log above)", code=EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


def _ignore(_signum: int, _frame: Any) -> None:
    return None


@app.command("dispatch")
def dispatch_only(
    trigger: str = typer.Option("", "--trigger", help=_TRIGGER_HELP),
    lease_seconds: float = typer.Option(
        None, "--lease-seconds", min=1.0, help="default: WEBHOOK_LEASE_SECONDS"
    ),
    once: bool = typer.Option(False, "--once", help="settle one batch and exit"),
    as_json: bool = typer.Option(False, "--json", help="with --once: print the outcomes"),
    poll_seconds: float = typer.Option(
        1.0,
        "--poll-seconds",
        min=0.05,
        max=60.0,
        help="how often to look for new deliveries (no receiver wakes a separate dispatcher)",
    ),
) -> None:
    """Claim inbox rows and trigger their workflows, until SIGINT/SIGTERM."""
    from contexten.events.service import build_dispatcher

    settings, store, rules, factory = _setup(trigger)
    dispatcher = build_dispatcher(
        settings,
        store,
        factory(settings, store),
        rules=rules,
        lease_seconds=lease_seconds or settings.webhook_lease_seconds,
        poll_interval=poll_seconds,
    )

    async def main() -> list[Any]:
        if once:
            return await dispatcher.run_once()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, dispatcher.stop)
        await dispatcher.run()
        return []

    outcomes = asyncio.run(main())
    if once and as_json:
        print_json([_outcome(o) for o in outcomes])
    elif once:
        for outcome in outcomes:
            print(f"{outcome.delivery_id}  {outcome.event}  {outcome.status}")
    raise typer.Exit(EXIT_OK)


def _outcome(outcome: Any) -> dict[str, Any]:
    return {
        "delivery_id": outcome.delivery_id,
        "event": outcome.event,
        "status": outcome.status,
        "workflow_types": list(outcome.workflow_types),
        "run_ids": list(outcome.run_ids),
        "error": outcome.error,
    }


@app.command()
def routes(as_json: bool = typer.Option(False, "--json", help="print one JSON document")) -> None:
    """Show the routing rules in force (defaults, or the ROUTING_RULES_FILE)."""
    from contexten.events.routing import RoutingError, load_rules

    try:
        rules = load_rules()
    except RoutingError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            [
                {
                    "name": r.name,
                    "event": list(r.events),
                    "when": dict(r.when),
                    "workflow": r.workflow,
                    "parameters": dict(r.parameters),
                    "key": r.key,
                    "enabled": r.enabled,
                    "description": r.description,
                }
                for r in rules
            ]
        )
        raise typer.Exit(EXIT_OK)
    from contexten.commands._common import print_table

    print_table(
        "routing rules",
        ("rule", "event", "when", "workflow", "enabled"),
        [
            (
                r.name,
                ", ".join(r.events),
                ", ".join(f"{path}={cond}" for path, cond in r.when.items()) or "-",
                r.workflow,
                "yes" if r.enabled else "no",
            )
            for r in rules
        ],
        wrap=[1, 2],
    )
    raise typer.Exit(EXIT_OK)
