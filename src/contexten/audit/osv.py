"""OSV records: severity from the record (pure), and fetching records by id (httpx).

pip-audit reports which dependency versions are vulnerable but drops the severity OSV
publishes; the audit needs it for `--fail-on`, so it reads each advisory from the same
OSV service (settings.osv_api_url).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from contexten.analysis.sarif import Severity

_GHSA_LEVELS: dict[str, Severity] = {
    "LOW": "low",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "HIGH": "high",
    "CRITICAL": "critical",
}
_CVSS3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS3_RE = re.compile(r"^CVSS:3\.[01]/")
MAX_RECORD_BYTES = 2 * 1024 * 1024


class OsvError(RuntimeError):
    """The OSV service could not be reached or answered nonsense; one line."""


def _roundup(value: float) -> float:
    """CVSS v3.1's Roundup: the smallest one-decimal number >= value."""
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000.0
    return (math.floor(scaled / 10_000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """The CVSS v3.0/3.1 base score of a vector string, None when it is not one."""
    if not _CVSS3_RE.match(vector):
        return None
    metrics = dict(part.split(":", 1) for part in vector.split("/")[1:] if ":" in part)
    try:
        scope_changed = metrics["S"] == "C"
        pr = {"N": 0.85, "L": 0.68 if scope_changed else 0.62, "H": 0.5 if scope_changed else 0.27}[
            metrics["PR"]
        ]
        w = {name: _CVSS3_WEIGHTS[name][metrics[name]] for name in _CVSS3_WEIGHTS}
    except KeyError:
        return None
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    changed_impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    impact = changed_impact if scope_changed else 6.42 * iss
    exploitability = 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
    if impact <= 0:
        return 0.0
    total = impact + exploitability
    return _roundup(min(1.08 * total if scope_changed else total, 10.0))


def score_severity(score: float) -> Severity | None:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0:
        return "low"
    return None


def osv_severity(record: dict[str, Any]) -> Severity | None:
    """The severity an OSV record publishes: GitHub's rating first, then a CVSS v3 vector."""
    specific = record.get("database_specific")
    if isinstance(specific, dict):
        level = _GHSA_LEVELS.get(str(specific.get("severity", "")).upper())
        if level:
            return level
    for entry in record.get("severity") or []:
        if isinstance(entry, dict) and str(entry.get("type", "")).startswith("CVSS_V3"):
            score = cvss3_base_score(str(entry.get("score", "")))
            if score is not None:
                return score_severity(score)
    for affected in record.get("affected") or []:
        for key in ("ecosystem_specific", "database_specific"):
            data = affected.get(key) if isinstance(affected, dict) else None
            if isinstance(data, dict):
                level = _GHSA_LEVELS.get(str(data.get("severity", "")).upper())
                if level:
                    return level
    return None


def fetch_records(base_url: str, ids: Iterable[str], timeout: float) -> dict[str, dict[str, Any]]:
    """GET {base_url}/v1/vulns/{id} for each id; a missing record (404) is left out."""
    import httpx

    records: dict[str, dict[str, Any]] = {}
    url = base_url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            for vuln_id in ids:
                response = client.get(f"{url}/v1/vulns/{vuln_id}")
                if response.status_code == 404:
                    continue
                if response.status_code != 200:
                    raise OsvError(f"OSV {url} answered {response.status_code} for {vuln_id}")
                if len(response.content) > MAX_RECORD_BYTES:
                    raise OsvError(f"OSV record {vuln_id} is larger than {MAX_RECORD_BYTES} bytes")
                data = response.json()
                if isinstance(data, dict):
                    records[vuln_id] = data
    except httpx.HTTPError as exc:
        raise OsvError(f"OSV {url} unreachable: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:
        raise OsvError(f"OSV {url} sent invalid JSON: {exc}") from None
    return records
