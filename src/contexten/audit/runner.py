"""Run the audit: dependencies, code, secrets; then ignores and the baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from contexten.audit.baseline import load_baseline
from contexten.audit.code import CodeScanError, CodeScanOptions, bandit_version, scan_code
from contexten.audit.config import AuditConfig, load_config
from contexten.audit.dependencies import (
    VulnerabilitySourceError,
    audit_dependencies,
    find_inputs,
)
from contexten.audit.files import repository_files
from contexten.audit.model import (
    AuditFinding,
    AuditReport,
    IgnoredFinding,
    IgnoreRule,
    ToolStatus,
)
from contexten.audit.secrets_scan import scan_secrets
from contexten.limits import ProcessLimits


class AuditInputError(ValueError):
    """The audit cannot start: a missing path, a bad config or baseline; one line."""


@dataclass(frozen=True, slots=True)
class AuditOptions:
    root: Path
    osv_api_url: str
    include_dependencies: bool = True
    include_code: bool = True
    include_secrets: bool = True
    installed_environment: bool = False
    timeout_seconds: float = 15.0
    config_path: Path | None = None
    baseline_path: Path | None = None
    today: date = field(default_factory=date.today)
    code: CodeScanOptions = field(default_factory=CodeScanOptions)
    limits: ProcessLimits = field(default_factory=ProcessLimits)  # of pip-audit


def apply_ignores(
    findings: list[AuditFinding], rules: tuple[IgnoreRule, ...], today: date
) -> tuple[list[AuditFinding], list[IgnoredFinding], list[IgnoreRule]]:
    """(kept, ignored, expired rules). An expired rule ignores nothing."""
    active = [rule for rule in rules if rule.expires >= today]
    expired = [rule for rule in rules if rule.expires < today]
    kept, ignored = [], []
    for finding in findings:
        rule = next((r for r in active if r.matches(finding)), None)
        if rule is None:
            kept.append(finding)
        else:
            ignored.append(IgnoredFinding(finding, rule.reason, rule.expires))
    return kept, ignored, expired


def _load(options: AuditOptions) -> tuple[AuditConfig, frozenset[str]]:
    from contexten.audit.baseline import BaselineError
    from contexten.audit.config import AuditConfigError

    if not options.root.is_dir():
        raise AuditInputError(f"{options.root}: not a directory")
    try:
        config = load_config(options.root, options.config_path)
        baseline = load_baseline(options.baseline_path) if options.baseline_path else frozenset()
    except (AuditConfigError, BaselineError) as exc:
        raise AuditInputError(str(exc)) from None
    return config, baseline


def run_audit(options: AuditOptions, progress: Callable[[str], None] | None = None) -> AuditReport:
    """The merged report. Tool failures become error lines in it, never exceptions.

    `progress` is told each stage as it starts (for a spinner: the audit takes ~25 s).
    """
    step = progress or (lambda _stage: None)
    config, baseline = _load(options)
    step("listing files")
    root = options.root
    files = repository_files(root, config.exclude)
    findings: list[AuditFinding] = []
    statuses: list[ToolStatus] = []

    if options.include_dependencies:
        step("pip-audit: dependencies against the vulnerability database")
        inputs = find_inputs(root, files, options.installed_environment)
        try:
            found, status = audit_dependencies(
                root, inputs, options.osv_api_url, options.timeout_seconds, options.limits
            )
            findings += found
        except VulnerabilitySourceError as exc:
            status = ToolStatus("pip-audit", "error", str(exc))
        statuses.append(status)
    else:
        statuses.append(ToolStatus("pip-audit", "skipped", "not requested"))

    if options.include_code:
        step("bandit: scanning the code")
        try:
            found, status = scan_code(root, files, options.code)
            findings += found
        except CodeScanError as exc:
            status = ToolStatus("bandit", "error", str(exc), bandit_version())
        statuses.append(status)
    else:
        statuses.append(ToolStatus("bandit", "skipped", "not requested"))

    if options.include_secrets:
        step("secrets: scanning the files")
        found, status = scan_secrets(root, files)
        findings += found
        statuses.append(status)
    else:
        statuses.append(ToolStatus("secrets", "skipped", "not requested"))

    kept, ignored, expired = apply_ignores(findings, config.ignores, options.today)
    new = [f for f in kept if f.fingerprint not in baseline]
    known = [f for f in kept if f.fingerprint in baseline]
    return AuditReport(
        root=str(root),
        findings=tuple(new),
        tools=tuple(statuses),
        baselined=tuple(known),
        ignored=tuple(ignored),
        expired_ignores=tuple(expired),
    )
