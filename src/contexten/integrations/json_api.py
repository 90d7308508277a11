"""What the package-index and OSV clients share: one httpx client (ours unless given), the
retry policy, a bound on concurrent requests, and a bound on the size of an answer."""

from __future__ import annotations

import asyncio

import httpx

from contexten.integrations.http import RetryPolicy, shared_ssl_context
from contexten.integrations.interface import ErrorReason, IntegrationError

USER_AGENT = "contexten-deps (+https://github.com/contexten)"
DEFAULT_CONCURRENCY = 8


class JsonApiClient:
    """A read-only JSON API at `base_url`, queried under `policy`."""

    def __init__(
        self,
        base_url: str,
        *,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        follow_redirects: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._client = client or httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=self.policy.timeout(),
            follow_redirects=follow_redirects,
            verify=shared_ssl_context(),
        )
        self._owns_client = client is None
        self._semaphore = asyncio.Semaphore(max(1, concurrency))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def check_size(
    response: httpx.Response,
    limit: int,
    *,
    error_type: type[IntegrationError],
    service: str,
    what: str,
) -> None:
    """error_type (INVALID) when the answer is larger than `limit` bytes."""
    if len(response.content) > limit:
        raise error_type(
            f"{service}: {what}: response larger than {limit} bytes",
            reason=ErrorReason.INVALID,
            service=service,
        )
