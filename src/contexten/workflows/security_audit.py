"""The security_audit workflow body: pip-audit, bandit and the secret scanner, one report.

Runs the audit on `params.path` (blocking tools in a worker thread), writes the SARIF log
next to the run's reports (for GitHub code scanning), and fails the outcome when a new
finding is at or above `fail_on`, or when a tool could not run (an unreachable
vulnerability service is not a clean bill of health). A baseline file
`.contexten-audit-baseline.json` in the repository, when present, marks known findings.
"""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path
from typing import Any

from contexten.audit.code import CodeScanOptions
from contexten.audit.report import summary_line, to_json_dict, to_markdown, to_sarif_dict
from contexten.audit.runner import AuditInputError, AuditOptions, run_audit
from contexten.catalog import SecurityAuditParameters
from contexten.limits import from_settings
from contexten.workflows.base import Table, WorkflowContext, WorkflowError, WorkflowOutcome

BASELINE_FILE = ".contexten-audit-baseline.json"
MAX_TABLE_ROWS = 200


def clean_commit(root: Path) -> str | None:
    """HEAD of the git work tree at `root` when nothing is modified or untracked, else None
    (an uncommitted tree is not a commit: its audit is not reused)."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=normal")
    if not head or status is None or status.strip():
        return None
    return head.strip()


def audit_cache_key(
    root: Path, commit: str, params: SecurityAuditParameters, osv_api_url: str
) -> str:
    from datetime import UTC, datetime

    what = params.model_dump_json(exclude={"repository"})
    day = datetime.now(UTC).date().isoformat()
    return f"audit:{root.resolve()}:{commit}:{what}:{osv_api_url}:{day}"


async def run(params: SecurityAuditParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    root = Path(params.path).expanduser()
    baseline = root / BASELINE_FILE
    options = AuditOptions(
        root=root,
        osv_api_url=ctx.settings.osv_api_url,
        include_dependencies=params.include_dependencies,
        include_code=params.include_code,
        include_secrets=params.include_secrets,
        timeout_seconds=ctx.settings.http_timeout_seconds,
        baseline_path=baseline if baseline.is_file() else None,
        # pip-audit and bandit run under SUBPROCESS_MEMORY_MB / SUBPROCESS_CPU_SECONDS
        code=CodeScanOptions(limits=from_settings(ctx.settings)),
        limits=from_settings(ctx.settings),
    )
    try:
        # the audit of a committed tree, per day (advisories change): cached in Prefect
        commit = await asyncio.to_thread(clean_commit, root) if ctx.in_prefect else None
        report = await ctx.step(
            "audit",
            functools.partial(asyncio.to_thread, run_audit, options),
            cache_key=(
                audit_cache_key(root, commit, params, ctx.settings.osv_api_url) if commit else None
            ),
            cache_days=1.0,
        )
    except AuditInputError as exc:
        raise WorkflowError(str(exc)) from None

    sarif_path = ctx.reports_dir / "security-audit.sarif"
    sarif_path.write_text(json.dumps(to_sarif_dict(report), indent=2) + "\n", encoding="utf-8")
    failing = report.failing(params.fail_on)
    errors = [t for t in report.tools if t.state == "error"]
    for status in errors:
        ctx.logger.warning("security audit: %s could not run: %s", status.tool, status.detail)
    summary = f"{summary_line(report)}; {len(failing)} at or above {params.fail_on}"
    if errors:
        summary += "; incomplete: " + ", ".join(f"{t.tool} failed" for t in errors)
    data: dict[str, Any] = to_json_dict(report, params.fail_on)
    data["sarif_path"] = str(sarif_path)
    table = Table(
        columns=("severity", "tool", "rule", "location", "finding", "fix"),
        rows=tuple(
            (
                f["severity"],
                f["tool"],
                f["rule"],
                f"{f['path']}:{f['line']}",
                f["message"],
                f["fix"],
            )
            for f in data["findings"][:MAX_TABLE_ROWS]
        ),
        title="New findings",
    )
    return WorkflowOutcome(
        ok=not failing and not errors,
        summary=summary,
        markdown=to_markdown(report),
        data=data,
        tables=(table,),
    )
