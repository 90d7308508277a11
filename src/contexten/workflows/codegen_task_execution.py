"""The codegen_task_execution workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import CodegenTaskParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: CodegenTaskParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("codegen_task_execution")
