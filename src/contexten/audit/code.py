"""Python code issues with bandit, run as a subprocess on the files the audit covers.

Bandit's own output can quote secrets (B105's message holds the password string, and
its `code` field the source lines), so only its ids, positions and levels are kept and
its message is stripped of quoted literals.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from contexten.analysis.sarif import Severity, severity_rank
from contexten.audit.model import AuditFinding, ToolStatus, stable_fingerprint
from contexten.limits import ProcessLimits, limited_argv

BATCH = 500  # files per bandit process: keeps the command line short
# The noise bandit's users complain about most, and what our secret scanner does better.
DEFAULT_SKIPPED_TESTS: dict[str, str] = {
    "B404": "importing subprocess is not a vulnerability",
    "B603": "subprocess without a shell is the safe form",
    "B105": "hard-coded secrets are the secret scanner's job (bandit prints the value)",
    "B106": "hard-coded secrets are the secret scanner's job (bandit prints the value)",
    "B107": "hard-coded secrets are the secret scanner's job (bandit prints the value)",
}
_FIXES: dict[str, str] = {
    "B101": "Raise an exception instead of assert (asserts vanish under python -O).",
    "B102": "Avoid exec(); dispatch to known functions instead.",
    "B301": "Do not unpickle untrusted data; use JSON or a schema-checked format.",
    "B307": "Use ast.literal_eval for literals; never eval() input.",
    "B324": "Use hashlib.sha256, or pass usedforsecurity=False for non-security digests.",
    "B501": "Keep certificate verification on (verify=True).",
    "B506": "Use yaml.safe_load (or Loader=yaml.SafeLoader).",
    "B602": "Pass an argument list and shell=False; never build a shell string from input.",
    "B605": "Use subprocess.run with an argument list instead of os.system.",
    "B608": "Use parameterised queries instead of building SQL with strings.",
    "B113": "Pass timeout= to every requests call.",
}
_QUOTED_RE = re.compile(r"'[^']*'|\"[^\"]*\"")
_LEVELS: dict[str, Severity] = {"LOW": "low", "MEDIUM": "medium", "HIGH": "high"}


class CodeScanError(RuntimeError):
    """bandit could not run or its output was unreadable; one line."""


@dataclass(frozen=True, slots=True)
class CodeScanOptions:
    min_confidence: Severity = "medium"
    skipped_tests: tuple[str, ...] = tuple(DEFAULT_SKIPPED_TESTS)
    asserts_in_tests: bool = False  # B101 in test files is how pytest works
    timeout_seconds: float = 600.0
    limits: ProcessLimits = field(default_factory=ProcessLimits)


def is_test_file(path: str) -> bool:
    pure = PurePosixPath(path)
    name = pure.name
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or any(part in ("tests", "test", "testing") for part in pure.parts[:-1])
    )


def bandit_version() -> str:
    try:
        from importlib.metadata import version

        return version("bandit")
    except Exception:  # a missing or broken install shows up when it runs
        return ""


def _run_bandit(
    root: Path, files: list[str], timeout: float, limits: ProcessLimits | None = None
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for start in range(0, len(files), BATCH):
        batch = files[start : start + BATCH]
        command = limited_argv(
            [sys.executable, "-m", "bandit", "-f", "json", "-q", "--", *batch],
            limits or ProcessLimits(),
        )
        try:
            done = subprocess.run(
                command, cwd=root, capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CodeScanError(f"bandit did not finish: {exc}") from None
        try:
            data = json.loads(done.stdout)
        except json.JSONDecodeError:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise CodeScanError(f"bandit failed (exit {done.returncode}): {last}") from None
        results.extend(data.get("results", []))
    return results


def _line_text(root: Path, path: str, line: int, cache: dict[str, list[str]]) -> str:
    if path not in cache:
        try:
            cache[path] = (root / path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            cache[path] = []
    lines = cache[path]
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def scan_code(
    root: Path, files: list[str], options: CodeScanOptions | None = None
) -> tuple[list[AuditFinding], ToolStatus]:
    """bandit findings for the .py files among `files` (repository-relative)."""
    opts = options or CodeScanOptions()
    python_files = [name for name in files if name.endswith(".py")]
    version = bandit_version()
    if not python_files:
        return [], ToolStatus("bandit", "ok", "no Python files", version)
    raw = _run_bandit(root, python_files, opts.timeout_seconds, opts.limits)
    findings: list[AuditFinding] = []
    seen: Counter[tuple[str, str, str]] = Counter()
    lines: dict[str, list[str]] = {}
    skipped = 0
    for item in sorted(raw, key=lambda r: (r.get("filename", ""), r.get("line_number", 0))):
        test_id = str(item.get("test_id", ""))
        path = PurePosixPath(str(item.get("filename", "")).replace("\\", "/")).as_posix()
        path = path.removeprefix("./")
        confidence = _LEVELS.get(str(item.get("issue_confidence", "")).upper(), "low")
        severity = _LEVELS.get(str(item.get("issue_severity", "")).upper(), "low")
        if (
            test_id in opts.skipped_tests
            or severity_rank(confidence) < severity_rank(opts.min_confidence)
            or (test_id == "B101" and not opts.asserts_in_tests and is_test_file(path))
        ):
            skipped += 1
            continue
        line = int(item.get("line_number") or 1)
        source = _line_text(root, path, line, lines)
        key = (test_id, path, source)
        seen[key] += 1
        text = _QUOTED_RE.sub("'…'", str(item.get("issue_text", ""))).strip()
        more_info = item.get("more_info")
        findings.append(
            AuditFinding(
                tool="bandit",
                rule=test_id,
                title=str(item.get("test_name", test_id)).replace("_", " "),
                severity=severity,
                path=path,
                line=line,
                column=int(item.get("col_offset") or 0) + 1,
                message=text,
                fix=_FIXES.get(test_id, f"See {more_info}" if more_info else ""),
                fingerprint=stable_fingerprint(
                    "bandit",
                    test_id,
                    path,
                    hashlib.sha256(source.encode()).hexdigest(),
                    str(seen[key]),
                ),
                confidence=confidence,
                help_uri=str(more_info) if more_info else None,
            )
        )
    detail = f"{len(python_files)} Python files; {skipped} low-confidence or noisy result(s) hidden"
    return findings, ToolStatus("bandit", "ok", detail, version)
