"""The workflow_optimization workflow body: lint the repository's GitHub Actions workflows.

Reports each finding with file and line (timeouts, concurrency, pinning, permissions,
caching, privileged checkouts, script injection) as Markdown, a table and a SARIF log.
The outcome fails when a finding is of medium severity or above, or a file is not valid
YAML. `auto_optimize` (rewriting the files) is not supported: the run says so instead of
pretending.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from contexten.analysis.markdown import md_cell
from contexten.analysis.sarif import severity_rank, to_sarif
from contexten.audit.report import workflow_lint_sarif_run
from contexten.audit.workflow_files import WorkflowFilesError, WorkflowLintReport, lint_path
from contexten.catalog import WorkflowOptimizationParameters
from contexten.workflows.base import Table, WorkflowContext, WorkflowError, WorkflowOutcome

FAIL_AT = "medium"


def _markdown(report: WorkflowLintReport) -> str:
    out = ["## Workflow lint", ""]
    if not report.files:
        return "\n".join([*out, "No workflow files found."]) + "\n"
    counts = Counter(f.severity for f in report.findings)
    out.append(
        f"{len(report.findings)} finding(s) in {len(report.files)} file(s): "
        + ", ".join(f"{counts[s]} {s}" for s in ("high", "medium", "low"))
    )
    out.append("")
    for error in report.errors:
        out.append(f"- **error**: {error}")
    if report.findings:
        out += ["| Location | Severity | Rule | Finding |", "|---|---|---|---|"]
        for f in report.findings:
            message = md_cell(f.message)
            out.append(f"| `{f.path}:{f.line}:{f.column}` | {f.severity} | {f.rule} | {message} |")
    return "\n".join(out) + "\n"


async def run(params: WorkflowOptimizationParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    if params.pull_request is not None:
        from contexten.workflows.pr_workflow_lint import lint_pull_request

        return await lint_pull_request(params, ctx)
    if params.auto_optimize:
        raise WorkflowError(
            "auto_optimize is not supported: workflow files are linted, not rewritten; "
            "run again with auto_optimize=false"
        )
    try:
        report = await asyncio.to_thread(lint_path, Path(params.path).expanduser())
    except WorkflowFilesError as exc:
        raise WorkflowError(str(exc)) from None
    sarif_path = ctx.reports_dir / "workflow-lint.sarif"
    log = to_sarif([workflow_lint_sarif_run(report.findings, report.errors)])
    sarif_path.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    serious = [f for f in report.findings if severity_rank(f.severity) >= severity_rank(FAIL_AT)]
    summary = (
        f"{len(report.findings)} finding(s) in {len(report.files)} workflow file(s), "
        f"{len(serious)} of {FAIL_AT} severity or above"
    )
    if report.errors:
        summary += f"; {len(report.errors)} file(s) not valid workflows"
    if not report.files:
        summary = f"no workflow files under {params.path}"
    by_rule = Counter(f.rule for f in report.findings)
    table = Table(
        columns=("location", "severity", "rule", "finding"),
        rows=tuple(
            (f"{f.path}:{f.line}:{f.column}", f.severity, f.rule, f.message)
            for f in report.findings
        ),
        title="Workflow lint findings",
    )
    return WorkflowOutcome(
        ok=not serious and not report.errors,
        summary=summary,
        markdown=_markdown(report),
        data={
            "files": list(report.files),
            "errors": list(report.errors),
            "by_rule": dict(sorted(by_rule.items())),
            "findings": [
                {
                    "rule": f.rule,
                    "path": f.path,
                    "line": f.line,
                    "column": f.column,
                    "severity": f.severity,
                    "message": f.message,
                }
                for f in report.findings
            ],
            "sarif_path": str(sarif_path),
        },
        tables=(table,),
    )
