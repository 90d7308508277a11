"""`contexten demo`: the autonomous loop end to end on this machine, no credentials needed.

Starts the local sandbox (GitHub, Linear, Slack, Codegen on 127.0.0.1), the webhook
receiver with its dispatcher, and the orchestrator (through a running `contexten server`'s
Prefect API if there is one, else in-process); seeds a repository with failing and passing
runs; delivers signed webhooks; and checks at the sandbox that each expected outcome
happened exactly once. Exit code 0 only when every check passed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import typer

from contexten.commands._common import EXIT_FAILED, EXIT_OK, console, fail, print_json

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def demo(
    home: Path | None = typer.Option(
        None, "--home", help="CONTEXTEN_HOME for the demo (default: a new temporary directory)"
    ),
    in_process: bool = typer.Option(
        False, "--in-process", help="run workflows in-process even if a Prefect server runs"
    ),
    timeout: float = typer.Option(
        50.0, "--timeout", min=5.0, help="seconds to wait for the loop to settle"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
) -> None:
    """Run the demo and check every outcome at the sandbox."""
    if home is not None and home.exists() and not home.is_dir():
        fail(f"--home {home} is not a directory")
    chosen = home or Path(tempfile.mkdtemp(prefix="contexten-demo-"))
    chosen.mkdir(parents=True, exist_ok=True)
    from contexten.demo.loop import run_demo

    out = console()
    progress = (
        (lambda _message: None)
        if as_json
        else (lambda m: out.print(f"[dim]·[/dim] {m}", soft_wrap=True))
    )
    if not as_json:
        out.print(f"[bold]contexten demo[/bold]: home {chosen}", soft_wrap=True)
    try:
        result = run_demo(
            chosen, use_prefect=False if in_process else None, timeout=timeout, progress=progress
        )
    except RuntimeError as exc:
        fail(str(exc), code=EXIT_FAILED)
    if as_json:
        print_json(result.to_dict())
    else:
        _print(out, result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


def _print(out: Any, result: Any) -> None:
    from rich.text import Text

    from contexten.commands._common import print_table

    rows = []
    for record in result.events:
        dispatch = record.dispatch
        runs = record.runs or []
        webhook = Text(record.delivery.title)
        webhook.append(f"\n{record.delivery.event} {record.delivery.delivery_id[:8]}", style="dim")
        rows.append(
            (
                webhook,
                f"{record.status_code} {record.reply}",
                "-" if dispatch is None else f"{dispatch.status}",
                "\n".join(
                    f"{r.get('workflow_type')} {str(r.get('run_id'))[:8]} {r.get('status')}"
                    for r in runs
                )
                or "-",
                "\n".join(_describe_run(run) for run in runs) or "-",
            )
        )
    print_table(
        "What happened to each webhook",
        ("webhook", "receiver", "dispatch", "workflow run", "what it did"),
        rows,
        wrap=[1, 4],
        keep_title=True,
        out=out,
    )
    print_table(
        "Expected outcomes, counted at the sandbox",
        ("check", "ok", "expected", "observed"),
        [
            (
                check.name,
                Text("✓", style="green") if check.ok else Text("✗", style="red"),
                check.expected,
                check.observed,
            )
            for check in result.checks
        ],
        wrap=[0, 2, 3],
        keep_title=True,
        out=out,
    )
    out.print("[bold]Where to look[/bold]", soft_wrap=True)
    if result.mode == "prefect":
        out.print(
            f"  Prefect UI (flow runs and their Markdown reports): {result.prefect_ui}",
            soft_wrap=True,
        )
        runs = sorted({str(r.get("run_id")) for e in result.events for r in e.runs})
        for run_id in runs:
            out.print(f"  flow run: {result.prefect_ui}/runs/flow-run/{run_id}", soft_wrap=True)
    else:
        out.print(
            "  mode: in-process (start `contexten server` to run the demo through Prefect)",
            soft_wrap=True,
        )
    reports = sorted({r.get("report") for e in result.events for r in e.runs if r.get("report")})
    for report in reports:
        out.print(f"  report: {report}", soft_wrap=True)
    out.print(f"  store: {result.home / 'contexten.db'}", soft_wrap=True)
    if result.error:
        out.print(f"[red]error:[/red] {result.error}", soft_wrap=True)
    verdict = (
        "[green]all outcomes observed[/green]" if result.ok else "[red]some outcomes missing[/red]"
    )
    out.print(f"{verdict} in {result.seconds:.1f}s", soft_wrap=True)


def _describe_run(run: dict[str, Any]) -> str:
    lines = [str(run.get("summary") or run.get("status"))]
    for action in run.get("actions", ()):
        link = f" {action['url']}" if action.get("url") else ""
        lines.append(f"• {action.get('kind')} {action.get('status')}: {action.get('detail')}{link}")
    return "\n".join(lines)
