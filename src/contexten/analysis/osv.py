"""OSV records (osv.dev's schema), read without I/O: CVSS v3 base scores, severity, advisories.

The one CVSS v3.x calculator and the one reading of OSV records; the OSV client
(`integrations.osv`), the dependency audit and the local OSV stand-in all use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name

from contexten.analysis.deps import Advisory
from contexten.analysis.severity import AdvisorySeverity as Severity
from contexten.analysis.severity import Severity as Rated

SUMMARY_CHARS = 200

_GHSA_SEVERITY: dict[str, Severity] = {
    "LOW": "low",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "HIGH": "high",
    "CRITICAL": "critical",
}

# CVSS v3.x base metrics (FIRST CVSS v3.1 specification, section 7.4)
_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_UNCHANGED = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}


def _roundup(value: float) -> float:
    """CVSS v3.1 Roundup: the smallest one-decimal number >= value, without float noise."""
    scaled = round(value * 100000)
    if scaled % 10000 == 0:
        return scaled / 100000.0
    return (math.floor(scaled / 10000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """The base score of a CVSS:3.0/3.1 vector, or None when it is not one."""
    parts = vector.strip().split("/")
    if not parts or not parts[0].startswith("CVSS:3"):
        return None
    metrics = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    try:
        changed = metrics["S"] == "C"
        if metrics["S"] not in ("U", "C"):
            return None
        iss = 1 - (1 - _CIA[metrics["C"]]) * (1 - _CIA[metrics["I"]]) * (1 - _CIA[metrics["A"]])
        privileges = (_PR_CHANGED if changed else _PR_UNCHANGED)[metrics["PR"]]
        exploitability = (
            8.22 * _AV[metrics["AV"]] * _AC[metrics["AC"]] * privileges * _UI[metrics["UI"]]
        )
    except KeyError:
        return None
    # scope changed: the impact formula of the CVSS v3.1 specification, section 7.1
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    total = (1.08 if changed else 1.0) * (impact + exploitability)
    return _roundup(min(total, 10.0))


def severity_of_score(score: float) -> Severity:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "unknown"


def _severity(record: Mapping[str, Any], affected: Sequence[Mapping[str, Any]]) -> Severity:
    for holder in [record, *affected]:
        for key in ("database_specific", "ecosystem_specific"):
            specific = holder.get(key)
            if isinstance(specific, dict):
                label = str(specific.get("severity") or "").upper()
                if label in _GHSA_SEVERITY:
                    return _GHSA_SEVERITY[label]
    scores = [
        score
        for entry in record.get("severity") or []
        if isinstance(entry, dict)
        and isinstance(entry.get("score"), str)
        and (score := cvss3_base_score(entry["score"])) is not None
    ]
    return severity_of_score(max(scores)) if scores else "unknown"


def advisory_from_osv(record: Any, package: str) -> Advisory | None:
    """The part of an OSV record about one PyPI package; None when it does not name it."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return None
    name = canonicalize_name(package)
    affected = [
        a
        for a in record.get("affected") or []
        if isinstance(a, dict)
        and isinstance(a.get("package"), dict)
        and a["package"].get("ecosystem") == "PyPI"
        and canonicalize_name(str(a["package"].get("name", ""))) == name
    ]
    if not affected:
        return None
    ranges: list[tuple[tuple[str, str], ...]] = []
    versions: list[str] = []
    for entry in affected:
        for range_ in entry.get("ranges") or []:
            if not isinstance(range_, dict) or range_.get("type") not in ("ECOSYSTEM", "SEMVER"):
                continue
            events = tuple(
                (str(kind), str(value))
                for event in range_.get("events") or []
                if isinstance(event, dict)
                for kind, value in event.items()
            )
            if events:
                ranges.append(events)
        versions.extend(str(v) for v in entry.get("versions") or [] if isinstance(v, str))
    summary = record.get("summary") or record.get("details") or ""
    summary = str(summary).strip().splitlines()[0][:SUMMARY_CHARS] if str(summary).strip() else ""
    aliases = tuple(str(a) for a in record.get("aliases") or [] if isinstance(a, str))
    return Advisory(
        id=record["id"],
        package=name,
        summary=summary,
        aliases=aliases,
        severity=_severity(record, affected),
        ranges=tuple(ranges),
        versions=tuple(versions),
        url=f"https://osv.dev/vulnerability/{quote(record['id'], safe='')}",
    )


def _rated(severity: Severity) -> Rated | None:
    """A severity with a rating ("unknown" is none)."""
    return None if severity == "unknown" else severity


def osv_severity(record: dict[str, Any]) -> Rated | None:
    """The severity an OSV record publishes: GitHub's rating first, then a CVSS v3 vector."""
    specific = record.get("database_specific")
    if isinstance(specific, dict):
        level = _GHSA_SEVERITY.get(str(specific.get("severity", "")).upper())
        if level:
            return _rated(level)
    for entry in record.get("severity") or []:
        if isinstance(entry, dict) and str(entry.get("type", "")).startswith("CVSS_V3"):
            score = cvss3_base_score(str(entry.get("score", "")))
            if score is not None:
                return _rated(severity_of_score(score))
    for affected in record.get("affected") or []:
        for key in ("ecosystem_specific", "database_specific"):
            data = affected.get(key) if isinstance(affected, dict) else None
            if isinstance(data, dict):
                level = _GHSA_SEVERITY.get(str(data.get("severity", "")).upper())
                if level:
                    return _rated(level)
    return None
