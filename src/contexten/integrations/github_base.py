"""What every GitHub call goes through (`GitHubPlumbing`, the base of `GitHubClient`): the
shared RetryPolicy with githubkit's errors classified, the ledger of idempotent actions,
pagination, and the plain httpx client for what githubkit does not do (redirects by hand).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx

from contexten.integrations.github_shapes import SERVICE, classify, has_next
from contexten.integrations.http import (
    AttemptFailure,
    RetryPolicy,
    SharedTransport,
    call_with_retries,
)
from contexten.integrations.idempotency import ActionLedger, Result, run_checked
from contexten.integrations.interface import CIProviderError

if TYPE_CHECKING:
    from githubkit import GitHub

T = TypeVar("T")
API_VERSION: Literal["2022-11-28"] = "2022-11-28"
USER_AGENT = "contexten (+https://github.com/contexten)"


class GitHubPlumbing:
    """The calls' plumbing; `GitHubClient.__init__` sets the attributes."""

    base_url: str
    policy: RetryPolicy
    ledger: ActionLedger | None
    log_max_bytes: int
    _transport: SharedTransport
    _github: GitHub[Any]

    async def _call(
        self,
        what: str,
        call: Callable[[], Awaitable[T]],
        *,
        unsafe: bool = False,
        policy: RetryPolicy | None = None,
    ) -> T:
        return await call_with_retries(
            call,
            policy=policy or self.policy,
            classify=self._classify,
            error_type=CIProviderError,
            what=what,
            service=SERVICE,
            unsafe=unsafe,
        )

    def _classify(self, exc: BaseException) -> AttemptFailure | None:
        """A githubkit (or httpx, or parsing) exception as a AttemptFailure."""
        return classify(exc, self.policy.wall_clock())

    def _auth(self) -> httpx.Auth:
        return self._github.auth.get_auth_flow(self._github)

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }

    def _http(self, *, timeout: httpx.Timeout | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers=self._headers(),
            timeout=timeout or self.policy.timeout(),
            follow_redirects=False,
            transport=self._transport,
        )

    async def aclose(self) -> None:
        await self._transport.close()

    async def _once(
        self,
        key: str,
        kind: str,
        target: str,
        perform: Callable[[], Awaitable[Result]],
        find_existing: Callable[[], Awaitable[Result | None]] | None,
    ) -> Result:
        if self.ledger is not None:
            return await self.ledger.once(key, kind, target, perform, find_existing)
        return await run_checked(
            perform, find_existing, policy=self.policy, check_first=True, label=kind
        )

    async def _pages(
        self,
        what: Callable[[int], str],
        fetch: Callable[[int], Awaitable[Any]],
        items: Callable[[Any], Sequence[Any]],
        convert: Callable[[Any], T],
        *,
        max_items: int | None = None,
    ) -> list[T]:
        """Every item of a paginated list (following `Link: rel="next"`), up to max_items."""
        found: list[T] = []
        page = 1
        while True:
            response = await self._call(what(page), partial(fetch, page))
            batch = items(response.parsed_data)
            found.extend(convert(item) for item in batch)
            if max_items is not None and len(found) >= max_items:
                return found[:max_items]
            if not batch or not has_next(response.headers):
                return found
            page += 1
