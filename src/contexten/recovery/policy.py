"""Recovery policy: which strategies to try for which failure, and when to stop. Pure.

The table is the failure taxonomy of docs/failure-taxonomy.md. Our own failures
(exceptions from the store, the Prefect API or an integration) are classified by
`classify_exception` (`integrations.circuits`, re-exported here with the circuit breaker);
CI-level failures arrive with the category the log analysis gave them. `plan_recovery`
turns a category into an ordered list of strategies; after ESCALATION_THRESHOLD failed
recoveries of the same signature the plan is human escalation only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from contexten.analysis.backoff import exponential_backoff
from contexten.analysis.taxonomy import AUTOMATIC_CATEGORIES, FailureCategory, RecoveryStrategy
from contexten.analysis.taxonomy import RECOVERY_STRATEGIES as CI_STRATEGIES
from contexten.integrations.circuits import BreakerConfig as BreakerConfig
from contexten.integrations.circuits import BreakerState as BreakerState
from contexten.integrations.circuits import CircuitBreaker as CircuitBreaker
from contexten.integrations.circuits import Classification as Classification
from contexten.integrations.circuits import breaker_allows as breaker_allows
from contexten.integrations.circuits import breaker_failure as breaker_failure
from contexten.integrations.circuits import breaker_success as breaker_success
from contexten.integrations.circuits import classify_exception as classify_exception

# Where the failure happened: our own process/components, or a customer's CI run.
Scope = Literal["system", "ci"]
Automatic = Literal["yes", "partly", "no"]

# Hints the analysis or the classifier can attach; they add a strategy in front.
HINT_CACHE_CORRUPT = "cache_corrupt"
HINT_DISK_FULL = "disk_full"
HINT_TRANSIENT = "transient"

# Other names for the same categories (log analysis, GitHub conclusions, people).
_ALIASES: dict[str, FailureCategory] = {
    "timed_out": FailureCategory.TIMEOUT,
    "workflow_timeout": FailureCategory.TIMEOUT,
    "oom": FailureCategory.RESOURCE_EXHAUSTION,
    "out_of_memory": FailureCategory.RESOURCE_EXHAUSTION,
    "disk_full": FailureCategory.RESOURCE_EXHAUSTION,
    "resource": FailureCategory.RESOURCE_EXHAUSTION,
    "resources": FailureCategory.RESOURCE_EXHAUSTION,
    "integration_failure": FailureCategory.INTEGRATION,
    "service_unavailable": FailureCategory.INTEGRATION,
    "rate_limited": FailureCategory.RATE_LIMIT,
    "ratelimit": FailureCategory.RATE_LIMIT,
    "authentication": FailureCategory.AUTH,
    "authentication_error": FailureCategory.AUTH,
    "credentials": FailureCategory.AUTH,
    "permission": FailureCategory.AUTH,
    "network_error": FailureCategory.NETWORK,
    "tests": FailureCategory.TEST,
    "test_failure": FailureCategory.TEST,
    "testing": FailureCategory.TEST,
    "flaky": FailureCategory.FLAKY_TEST,
    "dependencies": FailureCategory.DEPENDENCY,
    "dependency_resolution": FailureCategory.DEPENDENCY,
    "build": FailureCategory.COMPILE,
    "compilation": FailureCategory.COMPILE,
    "compile_error": FailureCategory.COMPILE,
    "quality": FailureCategory.LINT,
    "format": FailureCategory.LINT,
    "formatting": FailureCategory.LINT,
    "lint_error": FailureCategory.LINT,
    "infra": FailureCategory.INFRASTRUCTURE,
    "runner": FailureCategory.INFRASTRUCTURE,
    "runner_lost": FailureCategory.INFRASTRUCTURE,
    "cancelled": FailureCategory.INFRASTRUCTURE,
    "configuration": FailureCategory.CONFIG,
    "environment": FailureCategory.CONFIG,
    "setup": FailureCategory.CONFIG,
}


def parse_category(value: str) -> FailureCategory:
    """A category from its value or a common alias; unknown names give UNKNOWN."""
    name = value.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return FailureCategory(name)
    except ValueError:
        return _ALIASES.get(name, FailureCategory.UNKNOWN)


S = RecoveryStrategy
C = FailureCategory

# category -> (strategies in order, automatic), per docs/failure-taxonomy.md.
# "system" scope = our own.
_SYSTEM_TABLE: dict[FailureCategory, tuple[tuple[RecoveryStrategy, ...], Automatic]] = {
    C.TIMEOUT: ((S.RETRY_WITH_BACKOFF, S.RESOURCE_CLEANUP), "yes"),
    C.RESOURCE_EXHAUSTION: ((S.RESOURCE_CLEANUP, S.SYSTEM_RESTART), "yes"),
    C.INTEGRATION: ((S.RETRY_WITH_BACKOFF, S.FALLBACK_EXECUTION), "yes"),
    C.RATE_LIMIT: ((S.RETRY_WITH_BACKOFF,), "yes"),
    C.AUTH: ((S.CONFIGURATION_RESET, S.HUMAN_ESCALATION), "partly"),
    C.NETWORK: ((S.RETRY_WITH_BACKOFF,), "yes"),
    C.UNKNOWN: ((S.HUMAN_ESCALATION,), "no"),
    C.CONFIG: ((S.CONFIGURATION_RESET, S.HUMAN_ESCALATION), "partly"),
    # CI-level categories never come from our own components; treat them as unknown.
}

# "ci" scope: retry = re-run the failed jobs after a back-off; workflow restart = re-run
# the whole run; resource cleanup = delete the repository's Actions caches.
_CI_TABLE: dict[FailureCategory, tuple[tuple[RecoveryStrategy, ...], Automatic]] = {
    category: (strategies, "yes" if category in AUTOMATIC_CATEGORIES else "no")
    for category, strategies in CI_STRATEGIES.items()
}

# Categories whose fix is a code change the AI coding agent could propose.
AGENT_FIXABLE: frozenset[FailureCategory] = frozenset({C.TEST, C.COMPILE, C.LINT, C.DEPENDENCY})


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    category: FailureCategory
    scope: Scope
    strategies: tuple[RecoveryStrategy, ...]
    automatic: Automatic
    escalated: bool  # the escalation threshold was reached: only a human is asked
    agent_fix_candidate: bool
    reason: str


def strategy_table(scope: Scope) -> dict[FailureCategory, tuple[tuple[RecoveryStrategy, ...], str]]:
    """The table for a scope, for documentation and `contexten recover --dry-run`."""
    table = _SYSTEM_TABLE if scope == "system" else _CI_TABLE
    return {category: (strategies, auto) for category, (strategies, auto) in table.items()}


def plan_recovery(
    category: FailureCategory,
    *,
    scope: Scope = "system",
    failed_recoveries: int = 0,
    escalation_threshold: int = 3,
    hints: Iterable[str] = (),
) -> RecoveryPlan:
    """The strategies to try, in order, for one failure.

    `failed_recoveries` counts earlier recoveries of the same signature that did not fix
    it; at `escalation_threshold` the plan is human escalation only. Hints: `cache_corrupt`
    and `disk_full` put resource cleanup first; `transient` lets a deterministic CI category
    (e.g. a dependency download that timed out) be retried once before escalation.
    """
    hint_set = frozenset(hints)
    agent = scope == "ci" and category in AGENT_FIXABLE
    if failed_recoveries >= max(1, escalation_threshold):
        return RecoveryPlan(
            category,
            scope,
            (S.HUMAN_ESCALATION,),
            "no",
            escalated=True,
            agent_fix_candidate=agent,
            reason=(
                f"{failed_recoveries} earlier recoveries failed "
                f"(threshold {escalation_threshold}): escalating to a human"
            ),
        )
    table = _SYSTEM_TABLE if scope == "system" else _CI_TABLE
    strategies, automatic = table.get(category, table[C.UNKNOWN])
    reason = f"{category.value} ({scope}): table order"
    if HINT_TRANSIENT in hint_set and strategies == (S.HUMAN_ESCALATION,) and category != C.AUTH:
        strategies = (S.RETRY_WITH_BACKOFF, S.HUMAN_ESCALATION)
        automatic = "partly"
        reason += "; marked transient, retried once first"
    if hint_set & {HINT_CACHE_CORRUPT, HINT_DISK_FULL} and S.RESOURCE_CLEANUP not in strategies:
        restart = S.WORKFLOW_RESTART if scope == "ci" else S.RETRY_WITH_BACKOFF
        strategies = (S.RESOURCE_CLEANUP, restart, *[s for s in strategies if s != restart])
        automatic = "yes" if automatic != "no" else "partly"
        reason += "; cache corrupt or disk full: clean up first"
    return RecoveryPlan(
        category, scope, strategies, automatic, False, agent_fix_candidate=agent, reason=reason
    )


# ----------------------------------------------------------------------------- back-off


def backoff_delay(
    attempt: int,
    *,
    base_seconds: float = 1.0,
    cap_seconds: float = 300.0,
    retry_after: float | None = None,
    jitter: float = 0.0,
) -> float:
    """Seconds to wait before retry number `attempt` (1-based).

    Exponential (base · 2^(attempt-1)) capped at `cap_seconds`; a server's Retry-After (or
    seconds until a rate-limit reset) wins when longer. `jitter` in [0, 1) is a random
    fraction the caller draws, so this stays deterministic: it adds up to that share.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, got {attempt}")
    exponential = exponential_backoff(attempt, base_seconds, cap_seconds)
    delay = exponential * (1.0 + max(0.0, min(jitter, 1.0)))
    if retry_after is not None and retry_after > delay:
        delay = float(retry_after)
    return max(0.0, delay)
