"""What a recovery did: each strategy's result and the recovery's report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from contexten.recovery.policy import FailureCategory, RecoveryPlan, RecoveryStrategy

# "done": an action was taken that does not fix anything by itself (deleting a corrupt
# cache before the re-run); the next strategy runs.
Outcome = Literal["succeeded", "failed", "skipped", "awaiting_result", "escalated", "done"]


@dataclass(frozen=True, slots=True)
class StrategyResult:
    strategy: RecoveryStrategy
    outcome: Outcome
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.value,
            "outcome": self.outcome,
            "detail": self.detail,
            **({"data": dict(self.data)} if self.data else {}),
        }


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    key: str
    category: FailureCategory
    plan: RecoveryPlan
    outcome: Outcome
    attempts: tuple[StrategyResult, ...]
    record_id: int | None = None
    dry_run: bool = False

    @property
    def recovered(self) -> bool:
        return self.outcome == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "category": self.category.value,
            "scope": self.plan.scope,
            "plan": [s.value for s in self.plan.strategies],
            "automatic": self.plan.automatic,
            "escalated": self.plan.escalated,
            "reason": self.plan.reason,
            "outcome": self.outcome,
            "attempts": [a.to_dict() for a in self.attempts],
            "record_id": self.record_id,
            "dry_run": self.dry_run,
        }


def overall_outcome(attempts: Sequence[StrategyResult]) -> Outcome:
    """The recovery's outcome: the first final one any strategy reached, else skipped or failed."""
    outcomes = [a.outcome for a in attempts]
    final: tuple[Outcome, ...] = ("succeeded", "awaiting_result", "escalated")
    for outcome in final:
        if outcome in outcomes:
            return outcome
    if outcomes and all(o == "skipped" for o in outcomes):
        return "skipped"
    return "failed"
