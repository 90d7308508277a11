"""GitHub Actions mode: route the job's own event and run the workflows in the job.

`contexten gha` reads GITHUB_EVENT_NAME and GITHUB_EVENT_PATH (set by the runner), routes
the event with the same rules as the webhook receiver, runs each routed workflow through
a runner callable (in the product: the orchestrator, which uses a Prefect server when one
is configured and runs the workflow in-process otherwise), and writes a Markdown summary
to GITHUB_STEP_SUMMARY. A workflow can also be named explicitly (`--workflow`), and a
`workflow_dispatch` event may name it in its `mode` input.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contexten.analysis.markdown import md_cell
from contexten.config import Settings
from contexten.events.routing import Route, RoutingRule, route
from contexten.orchestration.workflows import (
    WorkflowParameterError,
    parse_workflow_type,
    validate_parameters,
)

MAX_EVENT_BYTES = 25 * 1024 * 1024
MAX_SUMMARY_BYTES = 1024 * 1024  # GitHub's limit per step summary
MAX_CELL_CHARS = 300


class GhaEventError(ValueError):
    """The Actions event is missing or unreadable; the message is one line."""


@dataclass(frozen=True, slots=True)
class GhaEvent:
    name: str
    payload: dict[str, Any]
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class RunReport:
    """How one routed workflow run ended."""

    workflow_type: str
    run_id: str | None
    status: str  # completed | failed | crashed | cancelled | error
    ok: bool
    summary: str = ""
    error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    mode: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_type": self.workflow_type,
            "run_id": self.run_id,
            "status": self.status,
            "ok": self.ok,
            "summary": self.summary,
            "error": self.error,
            "parameters": self.parameters,
            "mode": self.mode,
        }


Runner = Callable[[str, dict[str, Any], str], Awaitable[RunReport]]


def load_event(
    environ: Mapping[str, str],
    *,
    event_name: str | None = None,
    event_path: str | None = None,
) -> GhaEvent:
    """The job's event from GITHUB_EVENT_NAME / GITHUB_EVENT_PATH (or the given overrides)."""
    name = (event_name or environ.get("GITHUB_EVENT_NAME", "")).strip()
    if not name:
        raise GhaEventError(
            "GITHUB_EVENT_NAME is not set; run inside a GitHub Actions job or pass --event-name"
        )
    raw_path = (event_path or environ.get("GITHUB_EVENT_PATH", "")).strip()
    if not raw_path:
        raise GhaEventError(
            "GITHUB_EVENT_PATH is not set; expected the path of the event JSON file"
        )
    path = Path(raw_path)
    try:
        size = path.stat().st_size
        if size > MAX_EVENT_BYTES:
            raise GhaEventError(f"event file {path} is {size} bytes; at most {MAX_EVENT_BYTES}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GhaEventError(f"event file {path} (GITHUB_EVENT_PATH) does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GhaEventError(f"cannot read event file {path}: {exc}") from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise GhaEventError(f"event file {path} is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise GhaEventError(f"event file {path} holds JSON {type(payload).__name__}, not an object")
    return GhaEvent(name=name, payload=payload, path=path)


def _normalise_type(value: str) -> str:
    return value.strip().lower().replace("-", "_")


def plan_routes(
    event: GhaEvent,
    settings: Settings,
    rules: Sequence[RoutingRule],
    *,
    workflow: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> list[Route]:
    """The runs for this job: the named workflow, or the dispatch input `mode`, or the rules.

    Raises GhaEventError (unknown type, bad parameters) and RoutingError (a rule matched
    but the payload lacks what the workflow needs).
    """
    chosen = workflow
    given = dict(parameters or {})
    if not chosen and event.name == "workflow_dispatch":
        inputs = event.payload.get("inputs")
        if isinstance(inputs, dict) and isinstance(inputs.get("mode"), str) and inputs["mode"]:
            chosen = inputs["mode"]
            extra = inputs.get("parameters")
            if isinstance(extra, str) and extra.strip() and not given:
                given = parse_json_object(extra, "the workflow_dispatch input 'parameters'")
    if not chosen:
        return route(event.name, event.payload, rules, settings)
    try:
        wtype = parse_workflow_type(_normalise_type(chosen)).value
        if settings.github_repository and "repository" not in given:
            given["repository"] = settings.github_repository
        validated = validate_parameters(wtype, given)
    except WorkflowParameterError as exc:
        raise GhaEventError(str(exc)) from None
    return [Route(wtype, validated.model_dump(mode="json", exclude_unset=True), "explicit")]


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise GhaEventError(f"{what} is not valid JSON ({exc}); expected an object") from None
    if not isinstance(value, dict):
        raise GhaEventError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def run_key(environ: Mapping[str, str], selected: Route) -> str:
    """Idempotency key: the rule's key (shared with the webhook path), else this job's run."""
    if selected.key:
        return selected.key
    run = environ.get("GITHUB_RUN_ID", "local")
    attempt = environ.get("GITHUB_RUN_ATTEMPT", "1")
    return f"gha:{run}:{attempt}:{selected.workflow_type}"


async def run_routes(
    routes: Sequence[Route], runner: Runner, environ: Mapping[str, str]
) -> list[RunReport]:
    """Run each route in turn; a runner error becomes a failed report, not an exception."""
    reports: list[RunReport] = []
    for selected in routes:
        try:
            report = await runner(
                selected.workflow_type, dict(selected.parameters), run_key(environ, selected)
            )
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            report = RunReport(
                workflow_type=selected.workflow_type,
                run_id=None,
                status="error",
                ok=False,
                error=text,
            )
        if not report.parameters:
            report = RunReport(
                report.workflow_type,
                report.run_id,
                report.status,
                report.ok,
                report.summary,
                report.error,
                dict(selected.parameters),
                report.mode,
            )
        reports.append(report)
    return reports


def _cell(value: Any) -> str:
    return md_cell("" if value is None else value, MAX_CELL_CHARS)


def summary_markdown(event: GhaEvent, routes: Sequence[Route], reports: Sequence[RunReport]) -> str:
    """The job summary: what the event was, which workflows ran, how each ended."""
    action = event.payload.get("action")
    title = f"`{event.name}`" + (f" ({_cell(action)})" if isinstance(action, str) else "")
    lines = [f"## contexten: {title}", ""]
    if not routes:
        lines.append("No routing rule matched this event: nothing to run.")
        return "\n".join(lines) + "\n"
    ok = all(r.ok for r in reports)
    lines.append(f"**{'All workflows succeeded' if ok else 'A workflow failed'}**")
    lines += ["", "| workflow | rule | run | mode | status | summary |", "|" + "---|" * 6]
    for selected, report in zip(routes, reports, strict=False):
        icon = "✅" if report.ok else "❌"
        lines.append(
            f"| {_cell(report.workflow_type)} | {_cell(selected.rule)} | "
            f"{_cell(report.run_id or '-')} | {_cell(report.mode or '-')} | "
            f"{icon} {_cell(report.status)} | {_cell(report.summary or report.error or '')} |"
        )
    errors = [r for r in reports if r.error]
    if errors:
        lines += ["", "### Errors", ""]
        lines += [f"- **{_cell(r.workflow_type)}**: {_cell(r.error)}" for r in errors]
    text = "\n".join(lines) + "\n"
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_SUMMARY_BYTES:
        text = encoded[: MAX_SUMMARY_BYTES - 100].decode("utf-8", "ignore") + "\n\n(truncated)\n"
    return text


def write_step_summary(environ: Mapping[str, str], markdown: str) -> Path | None:
    """Append to GITHUB_STEP_SUMMARY when the runner provides it; return the path written."""
    target = environ.get("GITHUB_STEP_SUMMARY", "").strip()
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(markdown)
    return path


def orchestrator_runner(settings: Settings) -> Runner:
    """Run through PrefectOrchestrator: on a configured server, else in-process in this job."""
    from contexten.orchestration import PrefectOrchestrator

    orchestrator = PrefectOrchestrator(settings=settings)

    async def run(workflow_type: str, parameters: dict[str, Any], key: str) -> RunReport:
        status = await orchestrator.execute(workflow_type, parameters, idempotency_key=key)
        result = status.result or {}
        summary = result.get("summary") if isinstance(result, dict) else None
        ok = status.ok and (result.get("ok", True) if isinstance(result, dict) else True)
        return RunReport(
            workflow_type=workflow_type,
            run_id=status.run_id,
            status=status.status,
            ok=bool(ok),
            summary=str(summary or ""),
            error=status.error,
            parameters=parameters,
            mode=status.mode,
        )

    return run
