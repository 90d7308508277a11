"""Failures to recover from: what failed (`Failure`), and finding them in a health report
(`failures_from_health`) and among flow runs stuck in Running (`failures_from_stuck_runs`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contexten.monitoring.flow_runs import FlowRunInfo
from contexten.monitoring.health import INTEGRATIONS
from contexten.recovery.policy import (
    HINT_DISK_FULL,
    FailureCategory,
    Scope,
    classify_exception,
)


@dataclass(frozen=True)
class Failure:
    """One failure to recover from.

    `key` is what repeats: a CI failure signature, or a component name ("github",
    "prefect", "disk"). Fill in what the strategies need: `component` for our own parts;
    `repository`/`run_id` for a CI run; `flow_run` for a stuck Prefect run;
    `workflow_type`/`parameters` for a workflow to run in-process; `operation` for a call
    to repeat.
    """

    key: str
    category: FailureCategory
    scope: Scope = "system"
    component: str | None = None
    detail: str = ""
    seen_at: datetime | None = None
    retry_at: float | None = None  # a rate limit's reset (epoch seconds)
    hints: frozenset[str] = frozenset()
    repository: str | None = None
    run_id: int | None = None
    run_attempt: int | None = None
    cache_key: str | None = None
    flow_run: FlowRunInfo | None = None
    workflow_type: str | None = None
    parameters: Mapping[str, Any] | None = None
    operation: Callable[[], Awaitable[Any]] | None = None

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        key: str | None = None,
        component: str | None = None,
        operation: Callable[[], Awaitable[Any]] | None = None,
    ) -> Failure:
        """A failure of our own from an exception (classified by the policy)."""
        found = classify_exception(exc)
        name = component or found.service
        hints = frozenset({HINT_DISK_FULL}) if "No space left" in found.detail else frozenset()
        return cls(
            key=key or name or found.category.value,
            category=found.category,
            component=name,
            detail=found.detail,
            seen_at=datetime.now(UTC),
            retry_at=found.retry_at,
            hints=hints,
            operation=operation,
        )


def failures_from_health(report: Any, *, now: datetime | None = None) -> list[Failure]:
    """The failures to recover from in a health report: each unhealthy component and each
    degraded resource. Integrations already disabled by a configuration reset wait for
    new credentials and are not retried."""
    seen = now or datetime.now(UTC)
    failures: list[Failure] = []
    for component in report.components:
        if component.status not in ("unhealthy", "degraded"):
            continue
        name = component.name
        if name in ("disk", "memory", "cpu"):
            hints = frozenset({HINT_DISK_FULL}) if name == "disk" else frozenset()
            failures.append(
                Failure(
                    key=name,
                    category=FailureCategory.RESOURCE_EXHAUSTION,
                    component=name,
                    detail=component.detail,
                    seen_at=seen,
                    hints=hints,
                )
            )
            continue
        if name == "workers":
            continue  # stuck runs: failures_from_stuck_runs, with the runs themselves
        if component.status != "unhealthy" or name == "error_rate":
            continue
        if name in INTEGRATIONS and "disabled since" in component.detail:
            continue  # already reset and escalated; waits for new credentials
        failures.append(
            Failure(
                key=name,
                category=category_from_detail(component.detail, name),
                component=name,
                detail=component.detail,
                seen_at=seen,
                retry_at=component.data.get("rate_limit_reset_at"),
            )
        )
    return failures


def failures_from_stuck_runs(
    runs: Sequence[FlowRunInfo], *, now: datetime | None = None
) -> list[Failure]:
    """One failure per flow run stuck in Running; the key is the flow, so a flow that
    keeps getting stuck reaches the escalation threshold."""
    seen = now or datetime.now(UTC)
    return [
        Failure(
            key=f"flow-stuck:{run.flow_name or run.id}",
            category=FailureCategory.TIMEOUT,
            component="workers",
            detail=f"flow run {run.name} ({run.id}) stuck in Running past its timeout",
            seen_at=seen,
            flow_run=run,
        )
        for run in runs
    ]


# Phrases in a failed check's detail, most specific first. Clients report a rate-limited
# service as "degraded" (never "down"), so a down integration is only classed as rate
# limited by an explicit phrase, and "rate limit" alone (GitHub's check calls GET
# /rate_limit) is not one.
_DETAIL_PHRASES: tuple[tuple[FailureCategory, tuple[str, ...]], ...] = (
    (FailureCategory.INTEGRATION, ("circuit open", "circuit half_open")),
    (
        FailureCategory.AUTH,
        (
            "401",
            "bad credentials",
            "invalid_auth",
            "not_authed",
            "token_revoked",
            "account_inactive",
            "invalid_token",
            "unauthorized",
            "authentication",
            "credentials",
            "forbidden",
        ),
    ),
    (FailureCategory.RATE_LIMIT, ("rate limit exceeded", "ratelimited", "rate_limited", "429")),
    (FailureCategory.TIMEOUT, ("timed out", "timeout")),
    (FailureCategory.NETWORK, ("connect", "refused", "unreachable", "name resolution", "dns")),
    (FailureCategory.RESOURCE_EXHAUSTION, ("no space left", "disk full", "out of memory")),
)


def category_from_detail(detail: str, component: str) -> FailureCategory:
    """The category of a failed component check, from its one-line detail."""
    text = detail.lower()
    for category, phrases in _DETAIL_PHRASES:
        if any(p in text for p in phrases):
            return category
    if component in INTEGRATIONS or component in ("prefect", "webhook"):
        return FailureCategory.INTEGRATION
    return FailureCategory.UNKNOWN
