"""The test_optimization workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import TestOptimizationParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: TestOptimizationParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("test_optimization")
