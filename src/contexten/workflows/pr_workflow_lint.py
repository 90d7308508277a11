"""workflow_optimization for a pull request: lint the workflow files it changes, annotate.

The files come from the pull request's file list (added, modified, renamed; not removed)
under `.github/workflows/`, read at the head commit; each finding becomes a check-run
annotation on that commit (high → failure, medium → warning, low → notice), so it shows
on the changed line in the PR. A pull request that changes no workflow file gets no check
run. One check run per head commit (idempotency key).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from contexten.analysis.sarif import severity_rank
from contexten.analysis.workflow_lint import (
    WorkflowFinding,
    WorkflowParseError,
    is_workflow_path,
    lint_workflow,
)
from contexten.catalog import WorkflowOptimizationParameters
from contexten.integrations.interface import Annotation, CIProviderError
from contexten.workflows.base import Table, WorkflowContext, WorkflowError, WorkflowOutcome

CHECK_NAME = "contexten / workflow lint"
WORKFLOWS_DIR = ".github/workflows/"
FAIL_AT = "medium"
MAX_FILES = 100
LEVELS: dict[str, Any] = {"high": "failure", "critical": "failure", "medium": "warning"}


def changed_workflow_files(files: Sequence[Any]) -> list[str]:
    """Paths of workflow files a change adds or modifies (removed ones are not linted)."""
    return [
        f.path
        for f in files
        if f.path.startswith(WORKFLOWS_DIR) and is_workflow_path(f.path) and f.status != "removed"
    ][:MAX_FILES]


def annotations_for(
    findings: Sequence[WorkflowFinding], errors: Sequence[tuple[str, str]]
) -> list[Annotation]:
    out = [
        Annotation(
            path=f.path,
            start_line=max(1, f.line),
            end_line=max(1, f.line),
            level=LEVELS.get(str(f.severity), "notice"),
            message=f.message,
            title=f.rule,
            raw_details=f.fix or None,
        )
        for f in findings
    ]
    out.extend(
        Annotation(path, 1, 1, "failure", message, title="invalid workflow")
        for path, message in errors
    )
    return out


def conclusion_for(findings: Sequence[WorkflowFinding], errors: Sequence[Any]) -> str:
    serious = [f for f in findings if severity_rank(f.severity) >= severity_rank(FAIL_AT)]
    if serious or errors:
        return "failure"
    return "neutral" if findings else "success"


def summary_for(
    files: Sequence[str], findings: Sequence[WorkflowFinding], errors: Sequence[Any]
) -> str:
    counts = Counter(str(f.severity) for f in findings)
    text = f"{len(findings)} finding(s) in {len(files)} changed workflow file(s)"
    if findings:
        text += ": " + ", ".join(f"{counts[s]} {s}" for s in ("high", "medium", "low") if counts[s])
    if errors:
        text += f"; {len(errors)} file(s) not valid workflows"
    return text


async def lint_pull_request(
    params: WorkflowOptimizationParameters, ctx: WorkflowContext
) -> WorkflowOutcome:
    repo = params.repository or ctx.settings.github_repository
    if not repo:
        raise WorkflowError(
            "workflow_optimization of a pull request needs a repository: pass "
            "repository=owner/name or set GITHUB_REPOSITORY"
        )
    assert params.pull_request is not None
    number = params.pull_request
    from contexten.integrations import factory
    from contexten.integrations.idempotency import idempotency_key

    ci = factory.github_client(ctx.settings, ctx.store)
    if ci is None:
        raise WorkflowError(
            f"GitHub is not configured (GITHUB_TOKEN or the GitHub App): cannot read "
            f"pull request #{number} of {repo}"
        )
    try:
        head_sha = params.head_sha or (await ci.get_pull_request(repo, number)).head_sha
        paths = changed_workflow_files(await ci.list_pull_request_files(repo, number))
        if not paths:
            summary = f"pull request #{number} of {repo} changes no workflow file"
            return WorkflowOutcome(
                ok=True, summary=summary, data={"pull_request": number, "files": []}
            )
        findings: list[WorkflowFinding] = []
        errors: list[tuple[str, str]] = []
        for path in paths:
            try:
                content = await ci.get_file(repo, path, ref=head_sha)
            except CIProviderError as exc:
                errors.append((path, f"cannot read {path} at {head_sha[:12]}: {exc}"))
                continue
            try:
                findings.extend(
                    lint_workflow(content.content.decode("utf-8", errors="replace"), path)
                )
            except WorkflowParseError as exc:
                errors.append((path, str(exc)))
        summary = summary_for(paths, findings, errors)
        check = await ci.create_check_run(
            repo,
            name=CHECK_NAME,
            head_sha=head_sha,
            title=summary,
            summary=f"Workflow files changed by #{number}: " + ", ".join(f"`{p}`" for p in paths),
            text="\n".join(f"- `{f.format()}`" for f in findings[:200]) or None,
            conclusion=conclusion_for(findings, errors),
            annotations=annotations_for(findings, errors),
            key=idempotency_key("workflow_lint_check", repo, number, head_sha),
        )
    finally:
        with contextlib.suppress(Exception):
            await ci.aclose()
    table = Table(
        columns=("location", "severity", "rule", "finding"),
        rows=tuple((f"{f.path}:{f.line}", f.severity, f.rule, f.message) for f in findings),
        title=f"Workflow lint of #{number}",
    )
    serious = conclusion_for(findings, errors) == "failure"
    return WorkflowOutcome(
        ok=not serious,
        summary=f"#{number}: {summary}",
        tables=(table,) if findings else (),
        data={
            "pull_request": number,
            "head_sha": head_sha,
            "files": paths,
            "findings": [
                {"path": f.path, "line": f.line, "rule": f.rule, "severity": str(f.severity)}
                for f in findings
            ],
            "errors": [{"path": p, "error": e} for p, e in errors],
            "check_run": {"id": check.id, "url": check.html_url, "conclusion": check.conclusion},
        },
    )
