"""`contexten server`: the embedded Prefect server, the runner and the webhook receiver."""

from __future__ import annotations

import signal
from types import FrameType

import typer

from contexten.commands._common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, fail

app = typer.Typer(add_completion=False)


@app.command()
def server(
    port: int = typer.Option(4200, "--port", help="Prefect server port (0 = any free port)"),
    webhook: bool = typer.Option(True, "--webhook/--no-webhook", help="run the receiver too"),
    insecure: bool = typer.Option(
        False, "--insecure", help="accept unsigned webhooks (no GITHUB_WEBHOOK_SECRET)"
    ),
) -> None:
    """Start and supervise the embedded components until Ctrl-C or SIGTERM."""
    from contexten.config import get_settings
    from contexten.orchestration.prefect_server import PrefectServerError
    from contexten.orchestration.supervisor import HomeLockedError, Supervisor, SupervisorError

    settings = get_settings()
    if not 0 <= port <= 65535:
        fail(f"--port {port} must be between 0 and 65535")
    if webhook and settings.github_webhook_secret is None and not insecure:
        fail(
            "GITHUB_WEBHOOK_SECRET is not set: set it, pass --insecure to accept unsigned "
            "webhooks, or --no-webhook"
        )
    if webhook:
        from contexten.events.receiver import insecure_bind_problem

        problem = insecure_bind_problem(
            settings, settings.webhook_host, insecure=insecure, origin="WEBHOOK_HOST"
        )
        if problem is not None:
            fail(problem)
    from contexten.recovery.hooks import register_supervisor

    supervisor = Supervisor(settings, port=port, with_webhook=webhook, webhook_insecure=insecure)
    register_supervisor(supervisor)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        supervisor.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        api_url = supervisor.start()
    except HomeLockedError as exc:  # another server holds this home: nothing was started
        supervisor.stop()
        fail(str(exc), code=EXIT_BAD_INPUT)
    except (PrefectServerError, SupervisorError) as exc:
        supervisor.stop()
        fail(str(exc), code=EXIT_FAILED)
    from contexten.commands._common import console as make_console

    console = make_console()
    console.print(f"prefect api: {api_url}")
    if supervisor.prefect is not None:
        console.print(f"prefect ui:  {supervisor.prefect.ui_url}")
    console.print(f"components: {', '.join(supervisor.component_status())}")
    console.print(f"logs: {settings.data_dir / 'logs'}  (Ctrl-C to stop)")
    try:
        supervisor.run_forever()
    finally:
        supervisor.stop()
        console.print("stopped")
    raise typer.Exit(EXIT_OK)
