"""The system_recovery workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import SystemRecoveryParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: SystemRecoveryParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("system_recovery")
