"""The dependency_management workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import DependencyManagementParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: DependencyManagementParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("dependency_management")
