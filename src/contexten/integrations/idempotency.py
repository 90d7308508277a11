"""Do each world-changing action once, across retries, processes and restarts.

`ActionLedger.once(key, kind, target, perform, find_existing)` records actions in the
`actions` table (unique idempotency_key):

1. Claim the key: insert a `pending` row, or take over a `failed` row or a `pending` row
   whose lease ran out (its owner died). The take-over is a compare-and-swap on `attempts`,
   so of two concurrent callers exactly one performs; the other waits for the result.
2. Call `find_existing()` first, when given: e.g. a comment carrying `marker(key)`, an open
   PR for the head branch, a run whose run_attempt already advanced. Found: record it, done.
   This also covers a crash between the remote success and the local record, and a store
   that is new (a CI job's fresh SQLite file) while the remote side remembers.
3. Otherwise `perform()`; on an ambiguous failure (`maybe_processed`: the request may have
   taken effect, perhaps later: a request the client gave up on can still complete at the
   service) keep looking it up for the policy's `late_write_window` (at least the request
   timeout) and retry only when it has not appeared by then.
4. Record the result (`done`) or the error (`failed`; the next call tries again).

The row's claim (owner, lease end) lives in `result` while the row is pending, because the
table has no owner/lease columns. The owner is the process's id (the same one that holds
its workflow runs' leases): when one of those runs was taken over, that process is known
dead, and its pending claims are taken over at once instead of after their lease.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from contexten.integrations.http import RetryPolicy
from contexten.integrations.interface import ErrorReason, IntegrationError
from contexten.integrations.redaction import redact
from contexten.store import ledger
from contexten.store.db import Store
from contexten.store.executions import owner_superseded
from contexten.store.ledger import ActionState as ActionState

log = logging.getLogger(__name__)

Result = dict[str, Any]
MARKER_PREFIX = "<!-- contexten:key="
LOOKUP_FIRST_STEP = 0.5  # seconds before the first look-up after an ambiguous failure
LOOKUP_MAX_STEP = 4.0  # then doubling up to this


def idempotency_key(*parts: Any) -> str:
    """A stable key for what an action is about: sha256 of the canonical JSON of `parts`."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def marker(key: str) -> str:
    """A hidden HTML comment to put in bodies we post, so a lookup can find them later."""
    return f"{MARKER_PREFIX}{key} -->"


def has_marker(body: str | None, key: str) -> bool:
    return bool(body) and marker(key) in (body or "")


def _retry_ambiguous(
    exc: IntegrationError, tries: int, started: float, policy: RetryPolicy
) -> bool:
    if not (exc.maybe_processed and exc.reason is ErrorReason.UNAVAILABLE):
        return False
    if tries >= policy.max_attempts:
        return False
    return policy.monotonic() - started < policy.max_total_seconds


async def run_checked(
    perform: Callable[[], Awaitable[Result]],
    find_existing: Callable[[], Awaitable[Result | None]] | None,
    *,
    policy: RetryPolicy,
    check_first: bool = False,
    label: str = "action",
) -> Result:
    """Perform an action; after an ambiguous failure look it up before trying again.

    `check_first`: an earlier attempt may have succeeded, so look it up before performing.
    After an ambiguous failure the lookup is repeated until `policy.late_write_window` has
    passed (the first request may complete at the service after the client gave up on it),
    and only then is the action tried again. Without `find_existing`, an ambiguous failure
    is retried blindly (at least once semantics); with it, the action happens at most once
    as long as the lookup sees it.
    """
    started = policy.monotonic()
    tries = 0
    while True:
        tries += 1
        if find_existing is not None and (check_first or tries > 1):
            existing = await find_existing()
            if existing is not None:
                log.info("%s already took effect; using it", label)
                return existing
        try:
            return await perform()
        except IntegrationError as exc:
            if not _retry_ambiguous(exc, tries, started, policy):
                raise
            if find_existing is None:
                delay = policy.backoff(tries)
                log.warning("%s may have taken effect (%s); retrying in %.1fs", label, exc, delay)
                await policy.sleep(delay)
                continue
            log.warning(
                "%s may have taken effect (%s); looking for it for %.0fs before a retry",
                label,
                exc,
                policy.late_write_window,
            )
            landed = await await_late_write(find_existing, policy)
            if landed is not None:
                log.info("%s took effect after the client gave up; using it", label)
                return landed


async def await_late_write(
    find_existing: Callable[[], Awaitable[Result | None]], policy: RetryPolicy
) -> Result | None:
    """Look the action up until `policy.late_write_window` has passed; None if it never
    appeared (the caller then tries again, after one more lookup)."""
    window = policy.late_write_window
    waited = 0.0  # the sleeps alone add up to the window: at least that long really passes
    step = LOOKUP_FIRST_STEP
    while waited < window:
        delay = min(window - waited, step)
        await policy.sleep(delay)
        waited += delay
        step = min(step * 2, LOOKUP_MAX_STEP)
        try:
            existing = await find_existing()
        except IntegrationError as exc:
            if not exc.transient:
                raise
            continue  # the service is struggling: look again at the next step
        if existing is not None:
            return existing
    return None


def default_owner() -> str:
    """This process's owner id, shared with the leases of the workflow runs it holds."""
    from contexten.store.executions import process_owner

    return process_owner()


class ActionInProgress(IntegrationError):
    """Another process holds the claim on this action and did not finish within our wait."""


@dataclass(frozen=True, slots=True)
class _Claim:
    outcome: str  # "done" | "claimed" | "busy"
    attempts: int
    result: Result | None = None
    lease_until: float | None = None


class ActionLedger:
    """Idempotent actions over the store's `actions` table."""

    def __init__(
        self,
        store: Store,
        *,
        policy: RetryPolicy | None = None,
        owner: str | None = None,
        lease_seconds: float = 900.0,
        poll_interval: float = 0.5,
        max_wait_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or RetryPolicy()
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        # How long to wait for another process's claim before giving up (default: the lease).
        self.max_wait_seconds = lease_seconds if max_wait_seconds is None else max_wait_seconds

    def __repr__(self) -> str:
        return f"ActionLedger(store={self.store.safe_url!r}, owner={self.owner!r})"

    # ------------------------------------------------------------------ public

    async def once(
        self,
        key: str,
        kind: str,
        target: str | None,
        perform: Callable[[], Awaitable[Result]],
        find_existing: Callable[[], Awaitable[Result | None]] | None = None,
    ) -> Result:
        """The action's result, performing it only if no earlier attempt did."""
        claim = await self._acquire(key, kind, target)
        if claim.outcome == "done":
            return dict(claim.result or {})
        attempts = claim.attempts
        try:
            result = await run_checked(
                perform,
                find_existing,
                policy=self.policy,
                check_first=True,
                label=f"{kind} {key[:12]}",
            )
        except BaseException as exc:
            await self._fail(key, attempts, exc)
            raise
        await self._finish(key, attempts, result)
        return result

    def get(self, key: str) -> ActionState | None:
        return ledger.read(self.store, key)

    # ------------------------------------------------------------------ internals

    async def _acquire(self, key: str, kind: str, target: str | None) -> _Claim:
        waited_since = self.policy.monotonic()
        while True:
            claim = await asyncio.to_thread(self._claim_sync, key, kind, target)
            if claim.outcome != "busy":
                return claim
            if self.policy.monotonic() - waited_since > self.max_wait_seconds:
                raise ActionInProgress(
                    f"action {kind} for {target or key[:12]} is in progress elsewhere",
                    reason=ErrorReason.CONFLICT,
                )
            await self.policy.sleep(self.poll_interval)

    def _claim_payload(self) -> Result:
        return {"claim": {"owner": self.owner, "lease_until": time.time() + self.lease_seconds}}

    def _claim_sync(self, key: str, kind: str, target: str | None) -> _Claim:
        if ledger.insert_claim(self.store, key, kind, target, self._claim_payload()):
            return _Claim("claimed", 1)
        state = ledger.read(self.store, key)
        if state is None:  # deleted between insert and read: try again from the top
            return _Claim("busy", 0)
        if state.status == "done":
            return _Claim("done", state.attempts, state.result)
        if (
            state.status == "pending"
            and (state.lease_until or 0) > time.time()
            and not (state.owner and owner_superseded(self.store, state.owner))
        ):
            return _Claim("busy", state.attempts, lease_until=state.lease_until)
        won = ledger.take_over(self.store, key, state.attempts, self._claim_payload())
        return _Claim("claimed", state.attempts + 1) if won else _Claim("busy", state.attempts)

    async def _finish(self, key: str, attempts: int, result: Result) -> None:
        await asyncio.to_thread(self._finish_sync, key, attempts, result)

    def _finish_sync(self, key: str, attempts: int, result: Result) -> None:
        if not ledger.mark_done(self.store, key, attempts, result):
            log.warning("action %s finished after another owner took it over", key[:12])

    async def _fail(self, key: str, attempts: int, exc: BaseException) -> None:
        message = redact(f"{type(exc).__name__}: {exc}")[:2000]
        await asyncio.to_thread(self._fail_sync, key, attempts, message)

    def _fail_sync(self, key: str, attempts: int, message: str) -> None:
        ledger.mark_failed(self.store, key, attempts, message)


async def perform_once(
    ledger: ActionLedger | None,
    policy: RetryPolicy,
    key: str,
    kind: str,
    target: str,
    perform: Callable[[], Awaitable[dict[str, Any]]],
    find_existing: Callable[[], Awaitable[dict[str, Any] | None]],
) -> dict[str, Any]:
    """Once per key: through the ledger (across processes), else look the thing up first."""
    if ledger is not None:
        return await ledger.once(key, kind, target, perform, find_existing)
    return await run_checked(perform, find_existing, policy=policy, check_first=True, label=kind)


class ActsOnce:
    """A client whose writes are done once per key (`perform_once` with its ledger/policy)."""

    ledger: ActionLedger | None
    policy: RetryPolicy

    async def _once(
        self,
        key: str,
        kind: str,
        target: str,
        perform: Callable[[], Awaitable[dict[str, Any]]],
        find_existing: Callable[[], Awaitable[dict[str, Any] | None]],
    ) -> dict[str, Any]:
        return await perform_once(
            self.ledger, self.policy, key, kind, target, perform, find_existing
        )
