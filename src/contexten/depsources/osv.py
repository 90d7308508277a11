"""OSV (osv.dev) as a VulnerabilityDatabase.

`POST /v1/querybatch` answers, for each (package, version) in order, only the ids of the
advisories (and a `next_page_token` when there are more); `GET /v1/vulns/{id}` gives each
advisory in full: affected ranges, fixed versions, severity. Same order as pip-audit's OSV
service, which also reads the records one by one.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
from packaging.utils import canonicalize_name

from contexten.analysis.deps import Advisory, Severity
from contexten.depsources.interface import VulnerabilityDatabase, VulnerabilityDatabaseError
from contexten.depsources.pypi import USER_AGENT
from contexten.integrations.http import RetryPolicy, request_with_retries
from contexten.integrations.interface import ErrorReason

BATCH_SIZE = 1000  # OSV's limit per querybatch request
MAX_PAGES = 20  # per query; a package with thousands of advisories is not plausible
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_CONCURRENCY = 8
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


class OSVDatabase(VulnerabilityDatabase):
    def __init__(
        self,
        base_url: str,
        *,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._client = client or httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=self.policy.timeout(),
        )
        self._owns_client = client is None
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._records: dict[str, Any] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> OSVDatabase:
        return cls(settings.osv_api_url, policy=RetryPolicy.from_settings(settings))

    async def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        async with self._semaphore:
            response = await request_with_retries(
                self._client,
                method,
                f"{self.base_url}{path}",
                policy=self.policy,
                error_type=VulnerabilityDatabaseError,
                service="osv",
                what=what,
                idempotent=True,  # a query changes nothing: safe to repeat
                **kwargs,
            )
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise VulnerabilityDatabaseError(
                f"osv: {what}: response larger than {MAX_RESPONSE_BYTES} bytes",
                reason=ErrorReason.INVALID,
                service="osv",
            )
        try:
            return json.loads(response.content)
        except ValueError:
            raise VulnerabilityDatabaseError(
                f"osv: {what}: answer is not JSON", reason=ErrorReason.INVALID, service="osv"
            ) from None

    async def _ids(self, versions: Sequence[tuple[str, str]]) -> list[set[str]]:
        """Advisory ids per (name, version), following each query's pages."""
        found: list[set[str]] = [set() for _ in versions]
        pending: list[tuple[int, str | None]] = [(i, None) for i in range(len(versions))]
        for _ in range(MAX_PAGES):
            if not pending:
                break
            next_round: list[tuple[int, str | None]] = []
            for start in range(0, len(pending), BATCH_SIZE):
                chunk = pending[start : start + BATCH_SIZE]
                queries = []
                for index, token in chunk:
                    name, version = versions[index]
                    query: dict[str, Any] = {
                        "package": {"name": name, "ecosystem": "PyPI"},
                        "version": version,
                    }
                    if token:
                        query["page_token"] = token
                    queries.append(query)
                data = await self._json(
                    "POST", "/v1/querybatch", "query advisories", json={"queries": queries}
                )
                results = data.get("results") if isinstance(data, dict) else None
                if not isinstance(results, list) or len(results) != len(chunk):
                    raise VulnerabilityDatabaseError(
                        "osv: querybatch answered a different number of results",
                        reason=ErrorReason.INVALID,
                        service="osv",
                    )
                for (index, _token), result in zip(chunk, results, strict=True):
                    if not isinstance(result, dict):
                        continue
                    for vuln in result.get("vulns") or []:
                        if isinstance(vuln, dict) and isinstance(vuln.get("id"), str):
                            found[index].add(vuln["id"])
                    token = result.get("next_page_token")
                    if isinstance(token, str) and token:
                        next_round.append((index, token))
            pending = next_round
        return found

    async def _record(self, advisory_id: str) -> Any:
        if advisory_id not in self._records:
            self._records[advisory_id] = await self._json(
                "GET", f"/v1/vulns/{quote(advisory_id, safe='')}", f"read advisory {advisory_id}"
            )
        return self._records[advisory_id]

    async def advisories(
        self, versions: Sequence[tuple[str, str]]
    ) -> Mapping[str, tuple[Advisory, ...]]:
        pairs = [(canonicalize_name(n), v) for n, v in versions]
        if not pairs:
            return {}
        ids = await self._ids(pairs)
        wanted = sorted({i for group in ids for i in group})
        records = await asyncio.gather(*(self._record(i) for i in wanted))
        by_id = dict(zip(wanted, records, strict=True))
        out: dict[str, dict[str, Advisory]] = {}
        for (name, _version), group in zip(pairs, ids, strict=True):
            for advisory_id in sorted(group):
                advisory = advisory_from_osv(by_id[advisory_id], name)
                if advisory is not None:
                    out.setdefault(name, {})[advisory.id] = advisory
        return {name: tuple(found.values()) for name, found in out.items()}

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
