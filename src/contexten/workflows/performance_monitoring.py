"""The performance_monitoring workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import PerformanceMonitoringParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: PerformanceMonitoringParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("performance_monitoring")
