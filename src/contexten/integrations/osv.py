"""The OSV client (osv.dev, or any server speaking its API): one for every caller.

`OSVDatabase` is the VulnerabilityDatabase of dependency management; `fetch_records` reads
advisories by id for the dependency audit (pip-audit drops the severity OSV publishes).
Both go through the shared retry policy (`integrations.http`); reading a record is pure
(`analysis.osv`).

`POST /v1/querybatch` answers, for each (package, version) in order, only the ids of the
advisories (and a `next_page_token` when there are more); `GET /v1/vulns/{id}` gives each
advisory in full: affected ranges, fixed versions, severity. Same order as pip-audit's OSV
service, which also reads the records one by one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
from packaging.utils import canonicalize_name

from contexten.analysis.deps import Advisory
from contexten.analysis.osv import advisory_from_osv
from contexten.integrations.http import (
    AttemptFailure,
    RetryPolicy,
    classify_response,
    request_with_retries,
)
from contexten.integrations.interface import ErrorReason
from contexten.integrations.json_api import DEFAULT_CONCURRENCY, JsonApiClient, check_size
from contexten.integrations.packages import VulnerabilityDatabase, VulnerabilityDatabaseError

BATCH_SIZE = 1000  # OSV's limit per querybatch request
MAX_PAGES = 20  # per query; a package with thousands of advisories is not plausible
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class OSVDatabase(JsonApiClient, VulnerabilityDatabase):
    def __init__(
        self,
        base_url: str,
        *,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        super().__init__(base_url, policy=policy, client=client, concurrency=concurrency)
        self._records: dict[str, Any] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> OSVDatabase:
        return cls(settings.osv_api_url, policy=RetryPolicy.from_settings(settings))

    async def _json(
        self, method: str, path: str, what: str, *, missing_ok: bool = False, **kwargs: Any
    ) -> Any:
        """The JSON answer; None for a 404 when `missing_ok`."""
        if missing_ok:
            kwargs["classify"] = _missing_is_an_answer
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
        if missing_ok and response.status_code == 404:
            return None
        check_size(
            response,
            MAX_RESPONSE_BYTES,
            error_type=VulnerabilityDatabaseError,
            service="osv",
            what=what,
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

    async def records(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The full OSV record of each id; an id the server does not know (404) is left out."""
        wanted = list(dict.fromkeys(ids))
        found = await asyncio.gather(
            *(
                self._json(
                    "GET",
                    f"/v1/vulns/{quote(i, safe='')}",
                    f"read advisory {i}",
                    missing_ok=True,
                )
                for i in wanted
            )
        )
        return {i: r for i, r in zip(wanted, found, strict=True) if isinstance(r, dict)}


def _missing_is_an_answer(
    status: int, headers: Mapping[str, str], body: bytes | str | None, now: float
) -> AttemptFailure | None:
    return None if status == 404 else classify_response(status, headers, body, now)


def fetch_records(
    base_url: str, ids: Iterable[str], *, policy: RetryPolicy
) -> dict[str, dict[str, Any]]:
    """`OSVDatabase.records` for synchronous callers (the audit). Called from a thread that
    runs an event loop, it blocks that thread, as any synchronous client would."""

    async def read() -> dict[str, dict[str, Any]]:
        database = OSVDatabase(base_url, policy=policy)
        try:
            return await database.records(ids)
        finally:
            await database.aclose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(read())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()
