"""`contexten sandbox`: serve local GitHub, Linear, Slack and Codegen APIs on 127.0.0.1.

Prints each service's URL and the environment variables that point contexten at them
(`eval "$(contexten sandbox --env-only ...)"` is not possible for a long-running process, so
copy the `export` lines into another shell), then serves until Ctrl-C.
"""

from __future__ import annotations

import shlex
import signal
import threading
from typing import Any

import typer

from contexten.commands._common import EXIT_OK, fail, print_json

app = typer.Typer(add_completion=False)

SERVICE_NAMES = ("github", "linear", "slack", "codegen")


@app.command()
def sandbox(
    port_base: int = typer.Option(
        0,
        "--port-base",
        help="GitHub on N, Linear on N+1, Slack on N+2, Codegen on N+3 (default: free ports)",
    ),
    seed_demo: bool = typer.Option(
        False, "--seed-demo", help="Seed a demo repository with failing and flaky runs."
    ),
    service: list[str] = typer.Option(
        [], "--service", help="Serve only these services (repeatable; default: all)."
    ),
    webhook_url: str = typer.Option(
        "",
        "--webhook-url",
        help="After starting, deliver a signed workflow_run webhook for each seeded run here.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print URLs and env as one JSON doc."),
) -> None:
    """Serve the sandbox until Ctrl-C."""
    if port_base and not 1024 <= port_base <= 65532:
        fail(f"--port-base {port_base}: expected a port between 1024 and 65532 (N..N+3 are used)")
    unknown = [s for s in service if s not in SERVICE_NAMES]
    if unknown:
        fail(f"--service {unknown[0]!r}: expected one of {', '.join(SERVICE_NAMES)}")
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        fail(f"--webhook-url {webhook_url!r}: expected an http(s) URL")

    from contexten.sandbox.server import SandboxError, SandboxServer

    server = SandboxServer(
        port_base=port_base or None,
        services=tuple(service) or SERVICE_NAMES,
        seed_demo=seed_demo,
    )
    try:
        server.start()
    except SandboxError as exc:
        fail(str(exc))
    try:
        _announce(server, json_output)
        if webhook_url:
            _deliver_seeded_runs(server, webhook_url, json_output)
        _wait_for_interrupt()
    except KeyboardInterrupt:  # Ctrl-C while announcing or delivering: a normal stop
        pass
    finally:
        server.stop()
    raise typer.Exit(EXIT_OK)


def seeded_runs(state: Any) -> list[dict[str, Any]]:
    """The workflow runs in the sandbox's GitHub, oldest first (what to analyse next)."""
    github = state.github
    runs = []
    for run_id in sorted(github.runs):
        run = github.runs[run_id]
        status, conclusion = github.run_status(run)
        runs.append(
            {
                "workflow_run_id": run_id,
                "repository": run.repo,
                "branch": run.head_branch,
                "conclusion": conclusion or status,
                "title": run.display_title,
            }
        )
    return runs


def _announce(server: Any, json_output: bool) -> None:
    env = server.env()
    urls = {name: server.url(name) for name in server.ports}
    runs = seeded_runs(server.state) if "github" in server.ports else []
    if json_output:
        print_json({"urls": urls, "env": env, "runs": runs})
        return
    print("contexten sandbox: serving on 127.0.0.1 (Ctrl-C to stop)")
    for name, url in urls.items():
        print(f"  {name:<8} {url}")
    print("\n# point contexten at the sandbox (these credentials only open the sandbox):")
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    if runs:
        print("\n# workflow runs in the sandbox, e.g.")
        print("# contexten execute -o failure_analysis -p '{\"workflow_run_id\": ID}'")
        for run in runs:
            print(
                f"#   {run['workflow_run_id']}  {run['repository']}  {run['branch']}  "
                f"{run['conclusion']}  {run['title']}"
            )
    print(flush=True)


def _deliver_seeded_runs(server: Any, url: str, json_output: bool) -> None:
    import asyncio

    from contexten.sandbox.webhooks import WebhookSender

    github = server.state.github
    sender = WebhookSender(github, url)

    async def deliver() -> list[Any]:
        return [await sender.workflow_run(run_id) for run_id in sorted(github.runs)]

    for delivery in asyncio.run(deliver()):
        if not json_output:
            outcome = delivery.status_code if delivery.error is None else delivery.error
            print(f"webhook workflow_run {delivery.guid} -> {outcome}", flush=True)


def _wait_for_interrupt() -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
