"""`contexten gha`: run inside a GitHub Actions job.

Reads GITHUB_EVENT_NAME / GITHUB_EVENT_PATH, routes the event (or runs `--workflow`, or
the `mode` input of a workflow_dispatch), runs each workflow in the job (through Prefect
when PREFECT_API_URL is set, in-process otherwise) and appends a Markdown summary to
GITHUB_STEP_SUMMARY. Exit 0 when every workflow succeeded (or nothing matched), 1 when one
failed, 2 on bad input.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import typer

from contexten.commands._common import EXIT_FAILED, EXIT_OK, fail, print_json

app = typer.Typer(add_completion=False)


def dry_run_text(event: Any, planned: list[dict[str, Any]]) -> str:
    """What `--dry-run` would run, one line per workflow, parameters as JSON."""
    action = event.payload.get("action")
    name = f"{event.name!r}" + (f" (action {action!r})" if isinstance(action, str) else "")
    if not planned:
        return f"no workflow for event {name}: no routing rule matches"
    return "\n".join(
        f"{item['workflow_type']}  {json.dumps(item['parameters'], sort_keys=True)}  "
        f"(rule {item['rule']})"
        for item in planned
    )


@app.command()
def gha(
    workflow: str = typer.Option(
        "", "--workflow", "-w", help="run this workflow type instead of routing the event"
    ),
    parameters: str = typer.Option("", "--parameters", "-p", help="JSON object of parameters"),
    event_name: str = typer.Option("", "--event-name", help="default: $GITHUB_EVENT_NAME"),
    event_path: str = typer.Option("", "--event-path", help="default: $GITHUB_EVENT_PATH"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show the routed runs, run nothing"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Route this job's event and run the workflows it asks for."""
    from contexten.config import get_settings
    from contexten.events.gha import (
        GhaEventError,
        load_event,
        orchestrator_runner,
        parse_json_object,
        plan_routes,
        run_routes,
        summary_markdown,
        write_step_summary,
    )
    from contexten.events.routing import RoutingError, load_rules
    from contexten.orchestration.workflows import WorkflowParameterError, parse_workflow_type

    environ = dict(os.environ)
    if workflow:  # an unknown type is the first thing to say, before any event is read
        try:
            parse_workflow_type(workflow.strip().lower().replace("-", "_"))
        except WorkflowParameterError as exc:
            fail(f"--workflow: {exc}")
    try:
        given = parse_json_object(parameters, "--parameters") if parameters else {}
        event = load_event(environ, event_name=event_name or None, event_path=event_path or None)
        settings = get_settings()
        rules = load_rules(environ)
        routes = plan_routes(
            event, settings, rules, workflow=workflow or None, parameters=given or None
        )
    except (GhaEventError, RoutingError) as exc:
        fail(str(exc))
    if dry_run:
        planned = [
            {"workflow_type": r.workflow_type, "parameters": r.parameters, "rule": r.rule}
            for r in routes
        ]
        if as_json:
            print_json({"event": event.name, "routes": planned})
        else:
            print(dry_run_text(event, planned))
        raise typer.Exit(EXIT_OK)
    reports = []
    if routes:
        reports = asyncio.run(run_routes(routes, orchestrator_runner(settings), environ))
    markdown = summary_markdown(event, routes, reports)
    try:
        written = write_step_summary(environ, markdown)
    except OSError as exc:
        print(f"contexten: warning: cannot write GITHUB_STEP_SUMMARY: {exc}", file=sys.stderr)
        written = None
    ok = all(report.ok for report in reports)
    if as_json:
        print_json(
            {
                "event": event.name,
                "ok": ok,
                "runs": [report.to_dict() for report in reports],
                "summary_file": str(written) if written else None,
            }
        )
    else:
        sys.stdout.write(markdown)
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)
