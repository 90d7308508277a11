"""The merged security-audit report: findings from every tool in one shape."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Literal

from contexten.analysis.sarif import Severity, severity_rank

ToolName = Literal["pip-audit", "bandit", "secrets"]
ToolState = Literal["ok", "skipped", "error"]
TOOLS: tuple[ToolName, ...] = ("pip-audit", "bandit", "secrets")


@dataclass(frozen=True, slots=True)
class AuditFinding:
    tool: ToolName
    rule: str  # stable per tool: GHSA/PYSEC id, bandit test id, secret rule
    title: str
    severity: Severity
    path: str  # repository-relative, forward slashes
    line: int
    column: int
    message: str  # never holds a secret
    fix: str
    fingerprint: str
    confidence: str = ""  # bandit's: low, medium, high
    aliases: tuple[str, ...] = ()  # other ids of the same vulnerability
    help_uri: str | None = None

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def at_or_above(self, threshold: Severity) -> bool:
        return severity_rank(self.severity) >= severity_rank(threshold)


@dataclass(frozen=True, slots=True)
class ToolStatus:
    tool: ToolName
    state: ToolState
    detail: str = ""  # why skipped or failed; what was scanned when ok
    version: str = ""


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """One entry of the ignore file: which findings, why, and until when."""

    id: str  # rule id, an alias (CVE-...) or a fingerprint
    reason: str
    expires: date
    path: str | None = None  # glob on the finding's path
    source: str = ""  # file:entry, for messages

    def matches(self, finding: AuditFinding) -> bool:
        from fnmatch import fnmatchcase

        ids = {finding.rule, finding.fingerprint, *finding.aliases}
        if self.id not in ids and f"{finding.tool}:{finding.rule}" != self.id:
            return False
        return self.path is None or fnmatchcase(finding.path, self.path)


@dataclass(frozen=True, slots=True)
class IgnoredFinding:
    finding: AuditFinding
    reason: str
    expires: date


@dataclass(frozen=True, slots=True)
class AuditReport:
    root: str
    findings: tuple[AuditFinding, ...]  # new: not ignored, not in the baseline
    tools: tuple[ToolStatus, ...]
    baselined: tuple[AuditFinding, ...] = ()
    ignored: tuple[IgnoredFinding, ...] = ()
    expired_ignores: tuple[IgnoreRule, ...] = ()

    def failing(self, threshold: Severity) -> tuple[AuditFinding, ...]:
        return tuple(f for f in self.findings if f.at_or_above(threshold))

    def counts(self) -> dict[str, int]:
        counts = {"critical": 0, "high": 0, "medium": 0, "low": 0}
        for finding in self.findings:
            counts[finding.severity] += 1
        return counts

    @property
    def incomplete(self) -> bool:
        return any(t.state != "ok" for t in self.tools)


def stable_fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]
