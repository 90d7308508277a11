"""The security_audit workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import SecurityAuditParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: SecurityAuditParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("security_audit")
