"""The github_automation workflow body."""

from __future__ import annotations

from contexten.orchestration.workflows import GithubAutomationParameters
from contexten.workflows.base import WorkflowContext, WorkflowOutcome, not_implemented


async def run(params: GithubAutomationParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    raise not_implemented("github_automation")
