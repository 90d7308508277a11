"""The codegen_task_execution workflow: hand a task to the Codegen agent and follow it to a PR.

- `workflow_run_id`: the run's recorded diagnoses (those an agent can fix: test, compile,
  lint, dependency) go to the agent as the prompt-safe fenced diagnosis, one agent run per
  signature, under the same key failure_analysis uses: a run it already started is
  followed, not started again. The PR it opens is linked on the signature's Linear issue.
- `prompt`: an operator's own prompt (trusted) is sent as given, once per prompt.

The workflow waits up to `timeout_seconds` for the agent to finish.
"""

from __future__ import annotations

import contextlib

from contexten.catalog import CodegenTaskParameters
from contexten.integrations.idempotency import idempotency_key
from contexten.workflows import escalation as esc
from contexten.workflows.base import WorkflowContext, WorkflowError, WorkflowOutcome


async def run(params: CodegenTaskParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    if not params.prompt and not params.workflow_run_id:
        raise WorkflowError("codegen_task_execution needs a prompt or a workflow_run_id")
    from contexten.integrations import factory

    settings = ctx.settings
    agent = factory.codegen_agent(settings, ctx.store)
    if agent is None:
        raise WorkflowError(f"Codegen is not configured: {esc.SETUP_HINTS['codegen']}")
    ledger = factory.action_ledger(settings, ctx.store)
    assert ledger is not None  # a store is given
    tracker = factory.linear_client(settings, ctx.store)
    escalator = esc.Escalator(settings, ctx.store, ledger, agent=agent, tracker=tracker)
    actions: list[esc.ActionResult] = []
    notes: list[str] = []
    try:
        if params.workflow_run_id:
            await _from_run(params, ctx, escalator, actions, notes)
        if params.prompt:
            results, _pr = await escalator.run_agent(
                params.prompt,
                key=idempotency_key("codegen_task", settings.codegen_org_id, params.prompt),
                metadata={"source": "contexten codegen_task_execution"},
                wait_seconds=float(params.timeout_seconds),
                target="agent (prompt)",
            )
            actions.extend(results)
    finally:
        for client in (agent, tracker):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
    prs = [a for a in actions if a.kind == "agent_pr" and a.status in ("done", "existing")]
    failures = [a for a in actions if a.failed or (a.kind == "agent_pr" and a.status == "skipped")]
    summary = (
        f"{len(prs)} pull request(s) from the agent: " + ", ".join(str(a.url) for a in prs)
        if prs
        else "the agent opened no pull request"
    )
    lines = ["# Codegen task", "", summary, "", esc.actions_table(actions)]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    ctx.publish_markdown("codegen-task", "\n".join(lines))
    return WorkflowOutcome(
        ok=bool(prs) and not failures,
        summary=summary,
        data={
            "pull_requests": [a.url for a in prs],
            "actions": [a.to_dict() for a in actions],
            "notes": notes,
        },
    )


async def _from_run(
    params: CodegenTaskParameters,
    ctx: WorkflowContext,
    escalator: esc.Escalator,
    actions: list[esc.ActionResult],
    notes: list[str],
) -> None:
    repo = params.repository or ctx.settings.github_repository
    if not repo:
        raise WorkflowError(
            "codegen_task_execution with workflow_run_id needs a repository: pass "
            "repository=owner/name or set GITHUB_REPOSITORY"
        )
    assert params.workflow_run_id is not None
    info, jobs = esc.load_run_diagnoses(ctx.store, repo, params.workflow_run_id)
    if info is None or not jobs:
        raise WorkflowError(
            f"run {params.workflow_run_id} of {repo} has no recorded diagnosis: run "
            "failure_analysis for it first"
        )
    fixable = [j for j in jobs if esc.agent_wanted(j)]
    for job in jobs:
        if job not in fixable:
            notes.append(
                f"job `{job.job_name}`: {job.category.value} failures are not for the agent"
            )
    for job in {j.signature: j for j in fixable}.values():
        actions.extend(
            await escalator.hand_to_agent(
                info, job, create_pr=True, wait_seconds=float(params.timeout_seconds)
            )
        )
