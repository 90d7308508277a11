"""The linear_sync workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import LinearSyncParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: LinearSyncParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("linear_sync")
