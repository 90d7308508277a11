"""Vulnerable dependencies: pip-audit (subprocess) against the configured OSV service.

What is audited, offline-safe (no resolution against a package index):
  - requirements*.txt (and requirements/*.txt) whose requirements are all pinned (==),
    with pip-audit's `--no-deps --disable-pip`;
  - the running Python environment, when asked (`installed=True`).
Unpinned files are listed as not audited rather than resolved over the network.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name

from contexten.analysis.deps import DependencyFileError, parse_requirements
from contexten.analysis.osv import osv_severity
from contexten.analysis.sarif import Severity
from contexten.audit.model import AuditFinding, ToolStatus, stable_fingerprint
from contexten.integrations.http import RetryPolicy
from contexten.integrations.osv import fetch_records
from contexten.integrations.packages import VulnerabilityDatabaseError
from contexten.limits import ProcessLimits, limited_argv

_REQUIREMENT_FILE_RE = re.compile(
    r"^(?:.*/)?requirements[\w.\-]*\.(?:txt|in)$|^requirements/[^/]+\.txt$"
)
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)")
UNKNOWN_SEVERITY: Severity = "high"  # an advisory without a rating is not assumed harmless


class VulnerabilitySourceError(RuntimeError):
    """pip-audit or the OSV service failed; one line, no secrets."""


@dataclass(frozen=True, slots=True)
class DependencyInputs:
    requirement_files: tuple[str, ...]  # pinned: audited
    unpinned_files: tuple[str, ...]  # not audited, and why is said in the report
    installed: bool


def requirements_pinned(text: str) -> bool:
    """True when every requirement pins one exact version (== without a wildcard, or ===),
    read with the one requirements parser (`analysis.deps.parse_requirements`); editable,
    URL and path requirements, and unreadable files, are not pinned."""
    try:
        parsed = parse_requirements(text)
    except DependencyFileError:
        return False
    return not parsed.unmanaged and all(d.pinned is not None for d in parsed.dependencies)


def find_inputs(root: Path, files: list[str], installed: bool) -> DependencyInputs:
    pinned: list[str] = []
    unpinned: list[str] = []
    for name in files:
        if not _REQUIREMENT_FILE_RE.match(name) or PurePosixPath(name).suffix != ".txt":
            continue
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            unpinned.append(name)
            continue
        (pinned if requirements_pinned(text) else unpinned).append(name)
    return DependencyInputs(tuple(pinned), tuple(unpinned), installed)


def _pip_audit(
    args: list[str], cwd: Path, timeout: float, limits: ProcessLimits | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="contexten-pip-audit-") as cache:
        command = [
            sys.executable,
            "-m",
            "pip_audit",
            *args,
            "--format",
            "json",
            "--progress-spinner",
            "off",
            "--desc",
            "on",
            "--aliases",
            "on",
            "--cache-dir",
            cache,
            "--timeout",
            str(max(1, int(timeout))),
        ]
        try:
            done = subprocess.run(
                limited_argv(command, limits or ProcessLimits()),
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout * 20,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VulnerabilitySourceError(f"pip-audit did not finish: {exc}") from None
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise VulnerabilitySourceError(_failure_line(done.stderr, done.returncode)) from None
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise VulnerabilitySourceError("pip-audit printed JSON without a dependencies list")
    return data


def _failure_line(stderr: str, code: int) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Connection" in line or "connect" in line or "Max retries" in line:
            cut = line.split("(Caused by", 1)[0].strip()
            return f"vulnerability service unreachable: {cut[-300:]}"
    last = lines[-1] if lines else "no output"
    return f"pip-audit failed (exit {code}): {last[-300:]}"


def _locate(root: Path, files: tuple[str, ...], name: str) -> tuple[str, int]:
    """Where a dependency is declared: (file, line) in the requirement files or pyproject."""
    wanted = canonicalize_name(name)
    candidates = [*files, "pyproject.toml"]
    for file in candidates:
        try:
            text = (root / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip().strip("\"',")
            match = _NAME_RE.match(stripped)
            if match and canonicalize_name(match.group(1)) == wanted:
                return file, number
    return (files[0] if files else "pyproject.toml"), 1


def _fix_text(name: str, version: str, fixes: list[str]) -> str:
    if not fixes:
        return (
            f"No fixed release of {name} is known; remove it or mitigate, and watch the advisory."
        )
    return f"Upgrade {name} from {version} to {fixes[0]} or later."


def audit_dependencies(
    root: Path,
    inputs: DependencyInputs,
    osv_api_url: str,
    timeout: float = 15.0,
    limits: ProcessLimits | None = None,
    policy: RetryPolicy | None = None,
) -> tuple[list[AuditFinding], ToolStatus]:
    """Run pip-audit over `inputs`; VulnerabilitySourceError when the source fails.

    Advisory records are read with the shared OSV client under `policy` (default: the
    shared retry policy with `timeout` per request and at most 3 attempts).
    """
    version = _pip_audit_version()
    runs: list[tuple[tuple[str, ...], list[str]]] = []
    if inputs.requirement_files:
        args = ["--no-deps", "--disable-pip"]
        for file in inputs.requirement_files:
            args += ["--requirement", file]
        runs.append((inputs.requirement_files, args))
    if inputs.installed:
        runs.append(((), []))
    if not runs:
        why = "no pinned requirements file found"
        if inputs.unpinned_files:
            why += f" ({', '.join(inputs.unpinned_files)} not fully pinned)"
        return [], ToolStatus(
            "pip-audit",
            "skipped",
            f"{why}; pin versions (pip-compile, uv export) or audit the installed environment",
            version,
        )
    query_url = osv_api_url.rstrip("/") + "/v1/query"
    advisories: list[tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]] = []
    packages = 0
    for files, args in runs:
        data = _pip_audit(
            [*args, "--vulnerability-service", "osv", "--osv-url", query_url],
            root,
            timeout,
            limits,
        )
        for dependency in data["dependencies"]:
            if "skip_reason" in dependency:
                continue
            packages += 1
            known: set[str] = set()
            for vuln in dependency.get("vulns", []):
                names = {str(vuln["id"]), *(str(a) for a in vuln.get("aliases", []))}
                if names & known:
                    continue  # the same advisory under another database's id
                known |= names
                advisories.append((files, dependency, vuln))
    ids = sorted(
        {str(v["id"]) for _, _, v in advisories}
        | {
            alias
            for _, _, v in advisories
            for alias in v.get("aliases", [])
            if str(alias).startswith("GHSA-")
        }
    )
    policy = policy or RetryPolicy(max_attempts=3, timeout_seconds=timeout)
    try:
        records = fetch_records(osv_api_url, ids, policy=policy) if ids else {}
    except VulnerabilityDatabaseError as exc:
        raise VulnerabilitySourceError(str(exc)) from None
    findings = [_finding(root, files, dep, vuln, records) for files, dep, vuln in advisories]
    scanned = ", ".join(inputs.requirement_files) or ""
    if inputs.installed:
        scanned = f"{scanned}, installed environment" if scanned else "installed environment"
    detail = f"{packages} packages from {scanned} checked against {osv_api_url}"
    if inputs.unpinned_files:
        detail += f"; not audited (unpinned): {', '.join(inputs.unpinned_files)}"
    return findings, ToolStatus("pip-audit", "ok", detail, version)


def _finding(
    root: Path,
    files: tuple[str, ...],
    dependency: dict[str, Any],
    vuln: dict[str, Any],
    records: dict[str, dict[str, Any]],
) -> AuditFinding:
    name, version = str(dependency["name"]), str(dependency.get("version", ""))
    vuln_id = str(vuln["id"])
    aliases = tuple(str(a) for a in vuln.get("aliases", []))
    severity = None
    for candidate in (vuln_id, *aliases):
        if candidate in records:
            severity = osv_severity(records[candidate])
            if severity:
                break
    rated = severity is not None
    path, line = _locate(root, files, name)
    description = " ".join(str(vuln.get("description") or "").split())[:300]
    title = str(records.get(vuln_id, {}).get("summary") or description[:120] or vuln_id)
    fixes = [str(f) for f in vuln.get("fix_versions", [])]
    note = "" if rated else f" (no severity published; treated as {UNKNOWN_SEVERITY})"
    return AuditFinding(
        tool="pip-audit",
        rule=vuln_id,
        title=title,
        severity=severity or UNKNOWN_SEVERITY,
        path=path,
        line=line,
        column=1,
        message=f"{name} {version} is affected by {vuln_id}: {title}{note}",
        fix=_fix_text(name, version, fixes),
        fingerprint=stable_fingerprint("pip-audit", canonicalize_name(name), vuln_id),
        aliases=aliases,
        help_uri=f"https://osv.dev/vulnerability/{vuln_id}",
    )


def _pip_audit_version() -> str:
    try:
        from importlib.metadata import version

        return version("pip-audit")
    except Exception:  # reported as unknown; the run itself says what is wrong
        return ""
