"""Render an AuditReport (or workflow-lint findings) as text, JSON, Markdown or SARIF."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from contexten.analysis import secrets as secret_rules
from contexten.analysis import workflow_lint
from contexten.analysis.markdown import md_cell as _cell
from contexten.analysis.sarif import (
    SarifResult,
    SarifRule,
    SarifRun,
    Severity,
    severity_rank,
    to_sarif,
)
from contexten.audit.model import AuditFinding, AuditReport, ToolName, ToolStatus

TOOL_INFO: dict[ToolName, tuple[str, str | None]] = {
    # tool -> (SARIF driver name, information URI)
    "pip-audit": ("pip-audit", "https://pypi.org/project/pip-audit/"),
    "bandit": ("bandit", "https://bandit.readthedocs.io/"),
    "secrets": ("contexten-secrets", None),
}


def _sorted(findings: Iterable[AuditFinding]) -> list[AuditFinding]:
    return sorted(
        findings, key=lambda f: (-severity_rank(f.severity), f.tool, f.path, f.line, f.rule)
    )


def _tool_line(status: ToolStatus) -> str:
    version = f" {status.version}" if status.version else ""
    detail = f": {status.detail}" if status.detail else ""
    return f"{status.tool}{version}: {status.state}{detail}"


def summary_line(report: AuditReport) -> str:
    counts = report.counts()
    parts = [", ".join(f"{counts[s]} {s}" for s in ("critical", "high", "medium", "low"))]
    parts.append(f"{len(report.baselined)} in baseline")
    parts.append(f"{len(report.ignored)} ignored")
    if report.expired_ignores:
        parts.append(f"{len(report.expired_ignores)} expired ignore(s)")
    incomplete = [t.tool for t in report.tools if t.state != "ok"]
    if incomplete:
        parts.append(f"not checked: {', '.join(incomplete)}")
    return f"{len(report.findings)} new finding(s): " + "; ".join(parts)


# ----- text -----


def to_text(report: AuditReport) -> str:
    lines = [f"Security audit of {report.root}"]
    lines += [f"  {_tool_line(status)}" for status in report.tools]
    lines.append("")
    for finding in _sorted(report.findings):
        lines.append(
            f"{finding.severity.upper():8} {finding.location}: {finding.tool} {finding.rule}: "
            f"{finding.message}"
        )
        if finding.fix:
            lines.append(f"         fix: {finding.fix}")
    for rule in report.expired_ignores:
        lines.append(
            f"note: ignore of {rule.id} ({rule.source}) expired on {rule.expires.isoformat()}; "
            "it no longer applies"
        )
    if report.findings or report.expired_ignores:
        lines.append("")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


# ----- JSON -----


def finding_dict(finding: AuditFinding) -> dict[str, Any]:
    return {
        "tool": finding.tool,
        "rule": finding.rule,
        "title": finding.title,
        "severity": finding.severity,
        "confidence": finding.confidence or None,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "message": finding.message,
        "fix": finding.fix,
        "fingerprint": finding.fingerprint,
        "aliases": list(finding.aliases),
        "help_uri": finding.help_uri,
    }


def to_json_dict(report: AuditReport, fail_on: Severity | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "root": report.root,
        "tools": [
            {"tool": t.tool, "state": t.state, "detail": t.detail, "version": t.version}
            for t in report.tools
        ],
        "counts": report.counts(),
        "findings": [finding_dict(f) for f in _sorted(report.findings)],
        "baselined": [finding_dict(f) for f in _sorted(report.baselined)],
        "ignored": [
            {**finding_dict(i.finding), "reason": i.reason, "expires": i.expires.isoformat()}
            for i in report.ignored
        ],
        "expired_ignores": [
            {"id": r.id, "reason": r.reason, "expires": r.expires.isoformat(), "source": r.source}
            for r in report.expired_ignores
        ],
        "summary": summary_line(report),
    }
    if fail_on is not None:
        data["fail_on"] = fail_on
        data["failed"] = bool(report.failing(fail_on))
    return data


# ----- Markdown -----


def to_markdown(report: AuditReport) -> str:
    out = ["## Security audit", "", f"`{report.root}` — {summary_line(report)}", ""]
    out += ["| Tool | State | Detail |", "|---|---|---|"]
    out += [
        f"| {_cell(t.tool)} {_cell(t.version)} | {t.state} | {_cell(t.detail)} |"
        for t in report.tools
    ]
    out.append("")
    if report.findings:
        out += [
            "| Severity | Tool | Rule | Location | Finding | Fix |",
            "|---|---|---|---|---|---|",
        ]
        for f in _sorted(report.findings):
            rule = f"[{f.rule}]({f.help_uri})" if f.help_uri else f.rule
            out.append(
                f"| {f.severity} | {f.tool} | {_cell(rule)} | `{_cell(f.location)}` | "
                f"{_cell(f.message)} | {_cell(f.fix)} |"
            )
    else:
        out.append("No new findings.")
    if report.ignored:
        out += ["", "### Ignored", "", "| Rule | Location | Reason | Until |", "|---|---|---|---|"]
        out += [
            f"| {_cell(i.finding.rule)} | `{_cell(i.finding.location)}` | {_cell(i.reason)} | "
            f"{i.expires.isoformat()} |"
            for i in report.ignored
        ]
    if report.expired_ignores:
        out += ["", "### Expired ignores (no longer applied)", ""]
        out += [
            f"- `{_cell(r.id)}` ({_cell(r.source)}): expired {r.expires.isoformat()} — {r.reason}"
            for r in report.expired_ignores
        ]
    return "\n".join(out) + "\n"


# ----- SARIF -----


def _rules_for(findings: Sequence[AuditFinding], tool: ToolName) -> tuple[SarifRule, ...]:
    if tool == "secrets":
        return tuple(secret_rules.RULES.values())
    rules: dict[str, SarifRule] = {}
    for finding in findings:
        known = rules.get(finding.rule)
        if known is not None and severity_rank(known.severity) >= severity_rank(finding.severity):
            continue
        tags = ("security", "dependency") if tool == "pip-audit" else ("security", "code")
        rules[finding.rule] = SarifRule(
            finding.rule,
            finding.title.replace(" ", "")[:60] or finding.rule,
            finding.title or finding.rule,
            finding.severity,
            finding.fix,
            finding.help_uri,
            tags,
        )
    return tuple(sorted(rules.values(), key=lambda r: r.id))


def audit_sarif_runs(report: AuditReport) -> list[SarifRun]:
    runs = []
    for status in report.tools:
        tool = status.tool
        findings = [f for f in report.findings if f.tool == tool]
        name, uri = TOOL_INFO[tool]
        results = tuple(
            SarifResult(
                f.rule,
                f"{f.message} Fix: {f.fix}" if f.fix else f.message,
                f.path,
                max(1, f.line),
                max(1, f.column),
                f.severity,
                f.fingerprint,
            )
            for f in _sorted(findings)
        )
        notes = () if status.state == "ok" else (f"{status.state}: {status.detail}",)
        runs.append(
            SarifRun(
                name, status.version or "unknown", _rules_for(findings, tool), results, uri, notes
            )
        )
    return runs


def to_sarif_dict(report: AuditReport) -> dict[str, Any]:
    return to_sarif(audit_sarif_runs(report))


def workflow_lint_sarif_run(
    findings: Iterable[workflow_lint.WorkflowFinding], errors: Sequence[str] = ()
) -> SarifRun:
    from contexten.audit.model import stable_fingerprint

    results = tuple(
        SarifResult(
            f.rule,
            f.message,
            f.path,
            f.line,
            f.column,
            f.severity,
            stable_fingerprint("workflow-lint", f.rule, f.path, f.message),
        )
        for f in findings
    )
    return SarifRun(
        "contexten-workflow-lint",
        _package_version(),
        tuple(workflow_lint.RULES.values()),
        results,
        None,
        tuple(errors),
    )


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contexten")
    except PackageNotFoundError:
        return "unknown"
