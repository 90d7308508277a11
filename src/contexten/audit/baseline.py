"""Baselines: the fingerprints of known findings, so only new ones fail.

The file is JSON and holds no secret: for a secret only its fingerprint, which is a hash
over rule, path and the secret's own SHA-256.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from contexten.audit.model import AuditFinding

BASELINE_VERSION = 1
MAX_BASELINE_BYTES = 16 * 1024 * 1024


class BaselineError(ValueError):
    """The baseline file is unreadable or not a baseline; one line naming it."""


def baseline_document(findings: Iterable[AuditFinding]) -> dict[str, Any]:
    entries = sorted({(f.fingerprint, f.tool, f.rule, f.path): None for f in findings}.keys())
    return {
        "version": BASELINE_VERSION,
        "findings": [
            {"fingerprint": fp, "tool": tool, "rule": rule, "path": path}
            for fp, tool, rule, path in entries
        ],
    }


def parse_baseline(text: str, source: str) -> frozenset[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{source}: invalid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
        raise BaselineError(
            f"{source}: not a contexten audit baseline (expected version {BASELINE_VERSION})"
        )
    entries = data.get("findings")
    if not isinstance(entries, list):
        raise BaselineError(f"{source}: 'findings' must be a list")
    fingerprints = set()
    for number, entry in enumerate(entries, start=1):
        fingerprint = entry.get("fingerprint") if isinstance(entry, dict) else None
        if not isinstance(fingerprint, str) or not fingerprint:
            raise BaselineError(f"{source}: finding #{number} has no fingerprint")
        fingerprints.add(fingerprint)
    return frozenset(fingerprints)


def load_baseline(path: Path) -> frozenset[str]:
    if not path.is_file():
        raise BaselineError(f"{path}: baseline file not found")
    if path.stat().st_size > MAX_BASELINE_BYTES:
        raise BaselineError(f"{path}: larger than {MAX_BASELINE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: unreadable: {exc}") from None
    return parse_baseline(text, str(path))


def write_baseline(path: Path, findings: Iterable[AuditFinding]) -> int:
    document = baseline_document(findings)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return len(document["findings"])
