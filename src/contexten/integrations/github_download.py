"""Redirected downloads for the GitHub client (`GitHubLogs`, the `RunLogs` role): job logs,
run log archives, artifacts.

The 302 from the API is followed by hand so the token is never sent to the log host, the
body is streamed with a size cap, and an expired signed URL is asked for again. A dropped
connection starts a download to a file again from zero, through the client's RetryPolicy.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from contexten.integrations.github_base import GitHubPlumbing
from contexten.integrations.github_shapes import SERVICE, split_repo
from contexten.integrations.http import (
    AttemptFailure,
    FailedAttempt,
    classify_exception,
    classify_response,
    make_error,
    request_with_retries,
)
from contexten.integrations.interface import CIProviderError, ErrorReason, LogDownload

log = logging.getLogger("contexten.integrations.github")

REDIRECTS = (301, 302, 303, 307, 308)
EXPIRED = (401, 403, 404, 410)  # a signed download URL that is no longer accepted


class GitHubLogs(GitHubPlumbing):
    """Job logs, run log archives and artifacts: downloads GitHub redirects to storage."""

    async def stream_job_log(
        self, repo: str, job_id: int, *, max_bytes: int | None = None
    ) -> AsyncIterator[bytes]:
        cap = self._cap(repo, max_bytes)
        state: dict[str, Any] = {}
        path, what = _job_log(repo, job_id)
        async for chunk in download_stream(self, path, what, cap, state):
            yield chunk

    async def download_job_log(
        self, repo: str, job_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload:
        cap = self._cap(repo, max_bytes)
        path, what = _job_log(repo, job_id)
        return await download_to(self, path, what, dest, cap, allow_truncation=True)

    async def download_run_logs(
        self, repo: str, run_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload:
        cap = self._cap(repo, max_bytes)
        path = f"repos/{repo}/actions/runs/{run_id}/logs"
        what = f"download logs of run {run_id}"
        # a cut zip is useless: no truncation
        return await download_to(self, path, what, dest, cap, allow_truncation=False)

    async def download_artifact(
        self, repo: str, artifact_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload:
        cap = self._cap(repo, max_bytes)
        path = f"repos/{repo}/actions/artifacts/{artifact_id}/zip"
        what = f"download artifact {artifact_id}"
        return await download_to(self, path, what, dest, cap, allow_truncation=False)

    def _cap(self, repo: str, max_bytes: int | None) -> int:
        """The size cap of a download from `repo` (checked to be owner/name)."""
        split_repo(repo)
        return self.log_max_bytes if max_bytes is None else max_bytes


def _job_log(repo: str, job_id: int) -> tuple[str, str]:
    """The API path of a job's log and what downloading it is called in errors."""
    return f"repos/{repo}/actions/jobs/{job_id}/logs", f"download log of job {job_id}"


async def location(client: GitHubPlumbing, path: str, what: str) -> httpx.Response:
    """GET an API path that redirects to a download; the 302 (or a direct 200)."""
    async with client._http() as http:
        return await request_with_retries(
            http,
            "GET",
            client.base_url + path,
            policy=client.policy,
            error_type=CIProviderError,
            service=SERVICE,
            what=what,
            auth=client._auth(),
        )


async def download_stream(
    client: GitHubPlumbing, path: str, what: str, max_bytes: int, state: dict[str, Any]
) -> AsyncIterator[bytes]:
    """Chunks of a redirected download; sets state["truncated"] when cut at max_bytes."""
    state.update(truncated=False, size=0)
    refreshes = 3  # a signed URL can expire between the redirect and the download
    for _refresh in range(refreshes):
        first = await location(client, path, what)
        if first.status_code == 200:  # served directly, no redirect
            body = first.content
            state["truncated"] = len(body) > max_bytes
            state["size"] = min(len(body), max_bytes)
            yield body[:max_bytes]
            return
        url = first.headers.get("location")
        if first.status_code not in REDIRECTS or not url:
            raise CIProviderError(
                f"github: {what}: expected a redirect, got HTTP {first.status_code}",
                reason=ErrorReason.ERROR,
                service=SERVICE,
                status_code=first.status_code,
            )
        # No Authorization header: the token must not go to the log storage host.
        async with (
            httpx.AsyncClient(timeout=client.policy.timeout(), transport=client._transport) as http,
            http.stream("GET", url, follow_redirects=True) as response,
        ):
            if response.status_code in EXPIRED:
                # Signed URLs expire (GitHub: after a minute); ask for a fresh one.
                log.info(
                    "github: %s: download URL refused (HTTP %s); asking for a new one",
                    what,
                    response.status_code,
                )
                continue
            if response.status_code >= 400:
                body = await response.aread()
                failure = classify_response(
                    response.status_code, response.headers, body, client.policy.wall_clock()
                ) or AttemptFailure(ErrorReason.ERROR, f"HTTP {response.status_code}", False)
                raise make_error(CIProviderError, failure, what=what, service=SERVICE)
            try:
                async for chunk in response.aiter_bytes(64 * 1024):
                    room = max_bytes - state["size"]
                    if len(chunk) >= room:
                        if room:
                            state["size"] += room
                            yield chunk[:room]
                        state["truncated"] = len(chunk) > room or await has_more(response)
                        return
                    state["size"] += len(chunk)
                    yield chunk
            except httpx.TransportError as exc:
                dropped = classify_exception(exc) or AttemptFailure(
                    ErrorReason.UNAVAILABLE, "connection failed", retryable=True
                )
                raise make_error(CIProviderError, dropped, what=what, service=SERVICE) from exc
            return
    raise CIProviderError(
        f"github: {what}: the download URL was refused {refreshes} times (expired?)",
        reason=ErrorReason.UNAVAILABLE,
        service=SERVICE,
    )


async def download_to(
    client: GitHubPlumbing,
    path: str,
    what: str,
    dest: Path,
    max_bytes: int,
    *,
    allow_truncation: bool,
) -> LogDownload:
    """Download to `dest`, starting again from zero if the connection drops."""
    dest.parent.mkdir(parents=True, exist_ok=True)

    async def attempt() -> LogDownload:
        state: dict[str, Any] = {}
        with dest.open("wb") as out:
            async for chunk in download_stream(client, path, what, max_bytes, state):
                out.write(chunk)
        if state["truncated"] and not allow_truncation:
            dest.unlink(missing_ok=True)
            raise CIProviderError(
                f"github: {what}: larger than the {max_bytes}-byte limit",
                reason=ErrorReason.INVALID,
                service=SERVICE,
            )
        return LogDownload(path=dest, size_bytes=state["size"], truncated=state["truncated"])

    async def retried() -> LogDownload:
        try:
            return await attempt()
        except CIProviderError as exc:
            if exc.reason is ErrorReason.UNAVAILABLE:
                raise FailedAttempt(
                    AttemptFailure(ErrorReason.UNAVAILABLE, exc.message, retryable=True)
                ) from exc
            raise

    return await client._call(what, retried)


async def has_more(response: httpx.Response) -> bool:
    """True if the stream still has bytes after the cap was reached (reads one chunk)."""
    try:
        async for chunk in response.aiter_bytes(1):
            if chunk:
                return True
    except httpx.TransportError:
        return True
    return False
