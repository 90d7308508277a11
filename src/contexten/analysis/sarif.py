"""SARIF 2.1.0 writer: one run per tool, stable rule ids, repository-relative paths.

Pure: takes rule and result values, returns the SARIF log as a dict (the caller writes
it). GitHub code scanning reads `partialFingerprints` to follow a result across commits
and `properties.security-severity` on rules to rank alerts; both are filled in here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contexten.analysis.severity import SEVERITIES as SEVERITIES
from contexten.analysis.severity import Severity as Severity
from contexten.analysis.severity import parse_severity as parse_severity
from contexten.analysis.severity import severity_rank as severity_rank

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "contextenFingerprint/v1"
# GitHub's limits per upload; past them results are dropped silently by GitHub.
MAX_RESULTS_PER_RUN = 25_000
MAX_RUNS_PER_FILE = 20

_LEVEL: dict[Severity, str] = {
    "low": "note",
    "medium": "warning",
    "high": "error",
    "critical": "error",
}
# GitHub maps security-severity to its levels: >= 9.0 critical, 7.0 high, 4.0 medium.
_SECURITY_SEVERITY: dict[Severity, str] = {
    "low": "2.0",
    "medium": "5.0",
    "high": "7.5",
    "critical": "9.5",
}


class SarifError(ValueError):
    """The values cannot be written as valid SARIF (e.g. an absolute path)."""


@dataclass(frozen=True, slots=True)
class SarifRule:
    id: str
    name: str
    short_description: str
    severity: Severity
    help_text: str = ""
    help_uri: str | None = None
    tags: tuple[str, ...] = ("security",)


@dataclass(frozen=True, slots=True)
class SarifResult:
    rule_id: str
    message: str
    path: str  # repository-relative, forward slashes
    line: int = 1
    column: int = 1
    severity: Severity | None = None  # default: the rule's
    fingerprint: str = ""
    end_line: int | None = None


@dataclass(frozen=True, slots=True)
class SarifRun:
    tool_name: str
    tool_version: str
    rules: tuple[SarifRule, ...]
    results: tuple[SarifResult, ...]
    information_uri: str | None = None
    notifications: tuple[str, ...] = field(default=())  # e.g. "bandit skipped: ..."


def relative_uri(path: str) -> str:
    """A repository-relative URI for `path`; SarifError for absolute or escaping paths."""
    cleaned = path.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise SarifError(f"path {path!r} must be relative to the repository root")
    normal = posixpath.normpath(cleaned)
    if normal == ".." or normal.startswith("../"):
        raise SarifError(f"path {path!r} points outside the repository")
    return "" if normal == "." else normal


def _rule_dict(rule: SarifRule) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.short_description},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {
            "tags": list(rule.tags),
            "security-severity": _SECURITY_SEVERITY[rule.severity],
            "problem.severity": _LEVEL[rule.severity]
            if rule.severity != "low"
            else "recommendation",
        },
    }
    if rule.help_text:
        entry["help"] = {"text": rule.help_text}
        entry["fullDescription"] = {"text": rule.help_text}
    if rule.help_uri:
        entry["helpUri"] = rule.help_uri
    return entry


def _result_dict(result: SarifResult, rule_index: int, rule: SarifRule) -> dict[str, Any]:
    severity = result.severity or rule.severity
    region: dict[str, Any] = {
        "startLine": max(1, result.line),
        "startColumn": max(1, result.column),
    }
    if result.end_line is not None and result.end_line >= region["startLine"]:
        region["endLine"] = result.end_line
    entry: dict[str, Any] = {
        "ruleId": result.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[severity],
        "message": {"text": result.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {
                        "uri": relative_uri(result.path),
                        "uriBaseId": "%SRCROOT%",
                    },
                    "region": region,
                }
            }
        ],
        "properties": {"severity": severity},
    }
    if result.fingerprint:
        entry["partialFingerprints"] = {FINGERPRINT_KEY: result.fingerprint}
    return entry


def run_dict(run: SarifRun) -> dict[str, Any]:
    rule_index = {rule.id: i for i, rule in enumerate(run.rules)}
    if len(rule_index) != len(run.rules):
        raise SarifError(f"duplicate rule ids in the {run.tool_name} run")
    results = []
    for result in run.results[:MAX_RESULTS_PER_RUN]:
        index = rule_index.get(result.rule_id)
        if index is None:
            raise SarifError(f"result rule {result.rule_id!r} is not a rule of {run.tool_name}")
        results.append(_result_dict(result, index, run.rules[index]))
    driver: dict[str, Any] = {
        "name": run.tool_name,
        "version": run.tool_version,
        "rules": [_rule_dict(rule) for rule in run.rules],
    }
    if run.information_uri:
        driver["informationUri"] = run.information_uri
    invocation: dict[str, Any] = {"executionSuccessful": not run.notifications}
    if run.notifications:
        invocation["toolExecutionNotifications"] = [
            {"message": {"text": text}, "level": "warning"} for text in run.notifications
        ]
    return {
        "tool": {"driver": driver},
        "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "repository root"}}},
        "invocations": [invocation],
        "results": results,
        "columnKind": "unicodeCodePoints",
    }


def to_sarif(runs: Sequence[SarifRun]) -> dict[str, Any]:
    """The SARIF log for `runs` (one per tool). SarifError when GitHub would reject it."""
    if len(runs) > MAX_RUNS_PER_FILE:
        raise SarifError(f"{len(runs)} runs; GitHub accepts at most {MAX_RUNS_PER_FILE}")
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [run_dict(r) for r in runs],
    }


def rules_used(rules: Iterable[SarifRule], results: Iterable[SarifResult]) -> tuple[SarifRule, ...]:
    """The rules in `rules` that `results` refer to, in their original order."""
    wanted = {result.rule_id for result in results}
    return tuple(rule for rule in rules if rule.id in wanted)
