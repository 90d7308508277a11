"""The failure taxonomy and the recovery strategies (docs/failure-taxonomy.md).

Shared by the log analysis (which names the category), the recovery policy (which runs
the strategies) and monitoring. Pure values, no imports beyond the standard library.
"""

from __future__ import annotations

from enum import StrEnum


class FailureCategory(StrEnum):
    TIMEOUT = "timeout"
    RESOURCE_EXHAUSTION = "resource_exhaustion"  # OOM, killed, disk full
    NETWORK = "network"
    RATE_LIMIT = "rate_limit"
    AUTH = "auth"
    INTEGRATION = "integration"  # a service answered 5xx
    DEPENDENCY = "dependency"  # install / resolution failure
    COMPILE = "compile"
    LINT = "lint"  # format, type check, static analysis
    TEST = "test"  # deterministic test failure
    FLAKY_TEST = "flaky_test"
    INFRASTRUCTURE = "infrastructure"  # runner lost, cancelled, runner out of space
    CONFIG = "config"  # invalid workflow / configuration
    UNKNOWN = "unknown"


class RecoveryStrategy(StrEnum):
    RETRY_WITH_BACKOFF = "retry_with_backoff"
    RESOURCE_CLEANUP = "resource_cleanup"
    WORKFLOW_RESTART = "workflow_restart"
    FALLBACK_EXECUTION = "fallback_execution"
    CONFIGURATION_RESET = "configuration_reset"
    SYSTEM_RESTART = "system_restart"
    HUMAN_ESCALATION = "human_escalation"


_S = RecoveryStrategy

# What to do about a failed CI job, in order of preference: docs/failure-taxonomy.md's table for CI
# runs (retry = re-run the failed jobs after a back-off; workflow restart = re-run the whole
# run; resource cleanup = delete the repository's Actions caches). Deterministic failures
# escalate: re-running wastes money and a person (or the coding agent) must change code.
# The recovery policy runs exactly this table for CI failures, so a diagnosis recommends
# what will be done.
RECOVERY_STRATEGIES: dict[FailureCategory, tuple[RecoveryStrategy, ...]] = {
    FailureCategory.TIMEOUT: (_S.RETRY_WITH_BACKOFF, _S.RESOURCE_CLEANUP),
    FailureCategory.RESOURCE_EXHAUSTION: (_S.RESOURCE_CLEANUP, _S.WORKFLOW_RESTART),
    FailureCategory.INTEGRATION: (_S.RETRY_WITH_BACKOFF, _S.WORKFLOW_RESTART),
    # "wait per Retry-After / reset header, exponential back-off" is one strategy here.
    FailureCategory.RATE_LIMIT: (_S.RETRY_WITH_BACKOFF,),
    FailureCategory.AUTH: (_S.HUMAN_ESCALATION,),
    FailureCategory.NETWORK: (_S.RETRY_WITH_BACKOFF,),
    FailureCategory.UNKNOWN: (_S.HUMAN_ESCALATION,),
    FailureCategory.TEST: (_S.HUMAN_ESCALATION,),
    FailureCategory.FLAKY_TEST: (_S.RETRY_WITH_BACKOFF,),
    FailureCategory.DEPENDENCY: (_S.HUMAN_ESCALATION,),
    FailureCategory.COMPILE: (_S.HUMAN_ESCALATION,),
    FailureCategory.LINT: (_S.HUMAN_ESCALATION,),
    FailureCategory.INFRASTRUCTURE: (_S.RETRY_WITH_BACKOFF, _S.WORKFLOW_RESTART),
    FailureCategory.CONFIG: (_S.HUMAN_ESCALATION,),
}

# Categories where a re-run of the same commit is likely to pass.
TRANSIENT_CATEGORIES: frozenset[FailureCategory] = frozenset(
    {
        FailureCategory.TIMEOUT,
        FailureCategory.RESOURCE_EXHAUSTION,
        FailureCategory.NETWORK,
        FailureCategory.RATE_LIMIT,
        FailureCategory.INTEGRATION,
        FailureCategory.FLAKY_TEST,
        FailureCategory.INFRASTRUCTURE,
    }
)

# Recovery the system may run on its own (the design table's "automatic" column).
AUTOMATIC_CATEGORIES: frozenset[FailureCategory] = TRANSIENT_CATEGORIES


def strategies_for(category: FailureCategory) -> tuple[RecoveryStrategy, ...]:
    return RECOVERY_STRATEGIES[category]


def is_transient(category: FailureCategory) -> bool:
    return category in TRANSIENT_CATEGORIES
