"""The workflow_optimization workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import WorkflowOptimizationParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: WorkflowOptimizationParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("workflow_optimization")
