"""The failure_analysis workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import FailureAnalysisParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: FailureAnalysisParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("failure_analysis")
