"""The alert_management workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import AlertManagementParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: AlertManagementParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("alert_management")
