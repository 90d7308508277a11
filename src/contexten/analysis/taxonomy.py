"""The failure taxonomy and the recovery strategies (DESIGN.md, "Failure taxonomy and recovery").

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

# The recovery table, in order of preference. Categories the design table leaves out
# (the CI-level ones) follow its prose: deterministic failures escalate, flaky tests re-run.
RECOVERY_STRATEGIES: dict[FailureCategory, tuple[RecoveryStrategy, ...]] = {
    FailureCategory.TIMEOUT: (_S.RETRY_WITH_BACKOFF, _S.RESOURCE_CLEANUP),
    FailureCategory.RESOURCE_EXHAUSTION: (_S.RESOURCE_CLEANUP, _S.SYSTEM_RESTART),
    FailureCategory.INTEGRATION: (_S.RETRY_WITH_BACKOFF, _S.FALLBACK_EXECUTION),
    # "wait per Retry-After / reset header, exponential back-off" is one strategy here.
    FailureCategory.RATE_LIMIT: (_S.RETRY_WITH_BACKOFF,),
    FailureCategory.AUTH: (_S.CONFIGURATION_RESET, _S.HUMAN_ESCALATION),
    FailureCategory.NETWORK: (_S.RETRY_WITH_BACKOFF,),
    FailureCategory.UNKNOWN: (_S.HUMAN_ESCALATION,),
    FailureCategory.TEST: (_S.HUMAN_ESCALATION,),
    FailureCategory.FLAKY_TEST: (_S.WORKFLOW_RESTART, _S.HUMAN_ESCALATION),
    FailureCategory.DEPENDENCY: (_S.HUMAN_ESCALATION,),
    FailureCategory.COMPILE: (_S.HUMAN_ESCALATION,),
    FailureCategory.LINT: (_S.HUMAN_ESCALATION,),
    FailureCategory.INFRASTRUCTURE: (_S.WORKFLOW_RESTART, _S.RESOURCE_CLEANUP),
    FailureCategory.CONFIG: (_S.CONFIGURATION_RESET, _S.HUMAN_ESCALATION),
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
