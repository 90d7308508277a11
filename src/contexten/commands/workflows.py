"""`contexten workflows`: list workflow types; lint GitHub Actions workflows."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from contexten.commands._common import EXIT_BAD_INPUT, EXIT_FAILED, fail, print_json

app = typer.Typer(add_completion=False, help="List workflow types; lint GitHub Actions workflows.")


@app.callback()
def _group() -> None:
    """List workflow types; lint GitHub Actions workflows."""
    # A callback keeps `workflows` a group while it has a single command.


@app.command("lint")
def lint(
    path: Annotated[
        Path,
        typer.Argument(help="repository, workflows directory or one workflow file"),
    ] = Path("."),
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="text, json or sarif")
    ] = "text",
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="hide findings below: low, medium, high")
    ] = "low",
) -> None:
    """Lint .github/workflows: timeouts, concurrency, pinning, permissions, caching, injection.

    Prints `path:line:col: rule: message`. Exit 1 when there are findings, 2 on bad input
    (a missing path, invalid YAML, an unknown format).
    """
    from contexten.analysis.sarif import parse_severity, severity_rank
    from contexten.audit.workflow_files import WorkflowFilesError, lint_path

    if output_format not in ("text", "json", "sarif"):
        fail(f"--format {output_format!r}: expected text, json or sarif")
    try:
        threshold = severity_rank(parse_severity(min_severity))
    except ValueError as exc:
        fail(f"--min-severity: {exc}")
    try:
        report = lint_path(path)
    except WorkflowFilesError as exc:
        fail(str(exc))
    findings = [f for f in report.findings if severity_rank(f.severity) >= threshold]

    if output_format == "json":
        print_json(
            {
                "root": str(report.root),
                "files": list(report.files),
                "errors": list(report.errors),
                "findings": [
                    {
                        "rule": f.rule,
                        "path": f.path,
                        "line": f.line,
                        "column": f.column,
                        "severity": f.severity,
                        "message": f.message,
                        "fix": f.fix,
                    }
                    for f in findings
                ],
            }
        )
    elif output_format == "sarif":
        from contexten.analysis.sarif import to_sarif
        from contexten.audit.report import workflow_lint_sarif_run

        run = workflow_lint_sarif_run(findings, errors=report.errors)
        sys.stdout.write(json.dumps(to_sarif([run]), indent=2) + "\n")
    else:
        for finding in findings:
            print(finding.format())
        for error in report.errors:
            print(f"contexten: error: {error}", file=sys.stderr)
        if not report.files:
            print(f"contexten: no workflow files under {path}", file=sys.stderr)
        else:
            print(
                f"{len(findings)} finding(s) in {len(report.files)} workflow file(s)",
                file=sys.stderr,
            )
    if report.errors:
        raise typer.Exit(EXIT_BAD_INPUT)
    if findings:
        raise typer.Exit(EXIT_FAILED)


@app.command("list")
def list_types(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """List the 13 workflow types with their triggers, schedule, limits and parameters."""
    from contexten.config import get_settings
    from contexten.orchestration.workflows import REGISTRY

    default_timeout = get_settings().workflow_default_timeout
    rows: list[dict[str, Any]] = []
    for spec in REGISTRY.values():
        schema = spec.parameters.model_json_schema()
        required = set(schema.get("required", []))
        parameters = {
            name: {
                "type": prop.get("type") or prop.get("enum") or prop.get("anyOf"),
                "default": prop.get("default"),
                "required": name in required,
                "description": prop.get("description"),
            }
            for name, prop in schema.get("properties", {}).items()
        }
        rows.append(
            {
                "type": spec.type.value,
                "name": spec.name,
                "description": spec.description,
                "events": list(spec.events),
                "schedule": spec.schedule.describe() if spec.schedule else None,
                "timeout_seconds": spec.effective_timeout(default_timeout),
                "retries": spec.retries,
                "priority": spec.priority,
                "tags": list(spec.tags),
                "parameters": parameters,
            }
        )
    if as_json:
        print_json(rows)
        return
    from contexten.commands._common import print_table

    print_table(
        "workflow types",
        ("type", "triggers", "schedule", "timeout", "parameters"),
        [
            (
                row["type"],
                ", ".join(row["events"]) or "-",
                row["schedule"] or "-",
                f"{row['timeout_seconds']}s",
                ", ".join(
                    f"{name}{'*' if p['required'] else ''}" for name, p in row["parameters"].items()
                ),
            )
            for row in rows
        ],
        wrap=[1, 2, 4],
        right=[3],
    )
