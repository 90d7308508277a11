"""The release_management workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import ReleaseManagementParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: ReleaseManagementParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("release_management")
