"""Run the secret scanner over a repository's files."""

from __future__ import annotations

from pathlib import Path

from contexten.analysis import secrets
from contexten.audit.files import read_text_file
from contexten.audit.model import AuditFinding, ToolStatus


def scan_secrets(root: Path, files: list[str]) -> tuple[list[AuditFinding], ToolStatus]:
    findings: list[AuditFinding] = []
    scanned = skipped = 0
    for name in files:
        text = read_text_file(root / name)
        if text is None:
            skipped += 1
            continue
        scanned += 1
        for found in secrets.scan_text(text, name):
            rule = secrets.RULES[found.rule]
            note = f" ({found.note})" if found.note else ""
            findings.append(
                AuditFinding(
                    tool="secrets",
                    rule=found.rule,
                    title=rule.short_description,
                    severity=found.severity,
                    path=name,
                    line=found.line,
                    column=found.column,
                    message=f"{rule.short_description}: {found.redacted}{note}",
                    fix=rule.help_text,
                    fingerprint=found.fingerprint,
                )
            )
    detail = f"{scanned} files scanned, {skipped} binary or larger than the limit skipped"
    return findings, ToolStatus("secrets", "ok", detail)
