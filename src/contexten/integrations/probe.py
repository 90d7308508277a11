"""Health probes over HTTP: GET a URL once and say what came back.

The only network code of the health check (`monitoring.health`) and of the embedded Prefect
server's readiness wait (`orchestration.prefect_server`). A probe never raises on a network
failure: no answer is a result, with `refused` telling "nothing listens" apart from errors.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one GET answered; `status_code` None means no answer (see `error`)."""

    url: str
    status_code: int | None
    latency_ms: float
    error: str = ""  # "ExceptionName: message" when there was no answer
    refused: bool = False  # could not connect at all

    @property
    def ok(self) -> bool:
        return self.status_code == 200


def _failed(url: str, exc: httpx.HTTPError, start: float) -> ProbeResult:
    return ProbeResult(
        url,
        None,
        (time.perf_counter() - start) * 1000,
        error=f"{type(exc).__name__}: {exc}",
        refused=isinstance(exc, httpx.ConnectError),
    )


async def probe(
    url: str, *, timeout: float, headers: Mapping[str, str] | None = None
) -> ProbeResult:
    """GET `url` once (no retries: a health check reports what it sees now)."""
    start = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=timeout, headers=dict(headers or {})) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return _failed(url, exc, start)
    return ProbeResult(url, response.status_code, (time.perf_counter() - start) * 1000)


def probe_sync(
    url: str, *, timeout: float, headers: Mapping[str, str] | None = None
) -> ProbeResult:
    """`probe` for synchronous callers (waiting for a server to come up)."""
    start = time.perf_counter()
    try:
        response = httpx.get(url, timeout=timeout, headers=dict(headers or {}))
    except httpx.HTTPError as exc:
        return _failed(url, exc, start)
    return ProbeResult(url, response.status_code, (time.perf_counter() - start) * 1000)
