"""The package-index client: the PyPI JSON API (`GET {index}/{project}/json`) as a PackageIndex.

The `releases` key lists every version's files with upload time, yanked flag,
requires_python and sha256. PyPI calls that key deprecated in favour of the JSON simple API;
when an index omits it, we fall back to the latest version (`info.version` and `urls`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from packaging.utils import canonicalize_name

from contexten.analysis.deps import PackageInfo, Release
from contexten.integrations.http import RetryPolicy, request_with_retries
from contexten.integrations.interface import ErrorReason
from contexten.integrations.json_api import DEFAULT_CONCURRENCY, JsonApiClient, check_size
from contexten.integrations.packages import PackageIndex, PackageIndexError

MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # the largest projects' JSON is a few tens of MB


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _release(version: str, files: list[Any]) -> Release | None:
    files = [f for f in files if isinstance(f, dict)]
    if not files:
        return None  # a version without files cannot be installed
    times = [
        t
        for f in files
        if (t := _parse_time(f.get("upload_time_iso_8601") or f.get("upload_time")))
    ]
    requires_python = next(
        (
            f["requires_python"]
            for f in files
            if isinstance(f.get("requires_python"), str) and f["requires_python"]
        ),
        None,
    )
    digests = [f.get("digests") for f in files]
    sha256 = tuple(
        d["sha256"] for d in digests if isinstance(d, dict) and isinstance(d.get("sha256"), str)
    )
    return Release(
        version=version,
        uploaded_at=min(times) if times else None,
        yanked=all(bool(f.get("yanked")) for f in files),
        requires_python=requires_python,
        sha256=sha256,
    )


def package_info_from_json(name: str, data: Any) -> PackageInfo:
    """A PackageInfo from a PyPI JSON API project document."""
    if not isinstance(data, dict) or not isinstance(data.get("info"), dict):
        raise ValueError("not a PyPI JSON project document (no 'info' object)")
    info = data["info"]
    canonical = canonicalize_name(str(info.get("name") or name))
    releases: list[Release] = []
    raw = data.get("releases")
    if isinstance(raw, dict):
        for version, files in raw.items():
            if isinstance(files, list) and (release := _release(str(version), files)):
                releases.append(release)
    elif isinstance(info.get("version"), str):
        urls = data.get("urls")
        release = _release(info["version"], urls if isinstance(urls, list) else [])
        if release is not None:
            releases.append(release)
    return PackageInfo(canonical, tuple(releases))


class PyPIJsonIndex(JsonApiClient, PackageIndex):
    """PyPI or any index serving the same JSON API (devpi, a local mirror, the test server)."""

    def __init__(
        self,
        base_url: str,
        *,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        super().__init__(
            base_url, policy=policy, client=client, concurrency=concurrency, follow_redirects=True
        )

    @classmethod
    def from_settings(cls, settings: Any) -> PyPIJsonIndex:
        return cls(settings.pypi_index_url, policy=RetryPolicy.from_settings(settings))

    async def package(self, name: str) -> PackageInfo | None:
        canonical = canonicalize_name(name)
        url = f"{self.base_url}/{quote(canonical, safe='')}/json"
        async with self._semaphore:
            try:
                response = await request_with_retries(
                    self._client,
                    "GET",
                    url,
                    policy=self.policy,
                    error_type=PackageIndexError,
                    service="package-index",
                    what=f"GET {canonical} from the package index",
                )
            except PackageIndexError as exc:
                if exc.reason is ErrorReason.NOT_FOUND:
                    return None
                raise
        check_size(
            response,
            MAX_RESPONSE_BYTES,
            error_type=PackageIndexError,
            service="package-index",
            what=canonical,
        )
        try:
            return package_info_from_json(canonical, json.loads(response.content))
        except ValueError as exc:
            raise PackageIndexError(
                f"package-index: {canonical}: unexpected answer: {str(exc).splitlines()[0]}",
                reason=ErrorReason.INVALID,
                service="package-index",
            ) from None

    async def packages(self, names: Sequence[str]) -> dict[str, PackageInfo]:
        unique = sorted({canonicalize_name(n) for n in names})
        found = await asyncio.gather(*(self.package(n) for n in unique))
        return {n: info for n, info in zip(unique, found, strict=True) if info is not None}
