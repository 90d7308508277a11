"""The github_automation workflow: a diagnosed run's PR comment and check run.

Works from the diagnoses failure_analysis recorded for the run (its newest attempt), with
the same idempotency keys, so a run it already commented on gets no second comment.
"""

from __future__ import annotations

import contextlib

from contexten.catalog import GithubAutomationParameters
from contexten.workflows import escalation as esc
from contexten.workflows.base import WorkflowContext, WorkflowError, WorkflowOutcome


async def run(params: GithubAutomationParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    if params.workflow_run_id is None:  # a /contexten command on a pull request
        from contexten.workflows.pr_commands import answer_command

        return await answer_command(params, ctx)
    repo = params.repository or ctx.settings.github_repository
    if not repo:
        raise WorkflowError(
            "github_automation needs a repository: pass repository=owner/name or set "
            "GITHUB_REPOSITORY"
        )
    info, jobs = esc.load_run_diagnoses(ctx.store, repo, params.workflow_run_id)
    if info is None or not jobs:
        raise WorkflowError(
            f"run {params.workflow_run_id} of {repo} has no recorded diagnosis: run "
            "failure_analysis for it first"
        )
    from contexten.integrations import factory

    ci = factory.github_client(ctx.settings, ctx.store)
    if ci is None:
        raise WorkflowError(
            f"GitHub is not configured: {esc.SETUP_HINTS['github']} so github_automation can "
            f"comment on run {params.workflow_run_id} of {repo}"
        )
    ledger = factory.action_ledger(ctx.settings, ctx.store)
    assert ledger is not None  # a store is given
    escalator = esc.Escalator(ctx.settings, ctx.store, ledger, ci=ci)
    actions: list[esc.ActionResult] = []
    notes: list[str] = []
    try:
        if params.comment_on_pr:
            if info.pull_requests:
                actions.extend(await escalator.comment_on_prs(info, jobs, _links(ctx, info, jobs)))
            else:
                notes.append(f"run {info.run_id} does not belong to a pull request: no comment")
        if params.create_check_run:
            check = await escalator.check_run(info, jobs, only_with_annotations=False)
            if check is not None:
                actions.append(check)
    finally:
        with contextlib.suppress(Exception):
            await ci.aclose()
    lines = [
        f"# GitHub automation: {info.repository} run {info.run_id} (attempt {info.run_attempt})",
        "",
        esc.actions_table(actions),
    ]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    ctx.publish_markdown(f"github-automation-{info.run_id}-{info.run_attempt}", "\n".join(lines))
    failures = [a for a in actions if a.failed]
    done = ", ".join(f"{a.kind} {a.status}" for a in actions) or "nothing to do"
    return WorkflowOutcome(
        ok=not failures,
        summary=f"{info.label} of {info.repository}: {done}",
        data={
            "run": info.to_dict(),
            "actions": [a.to_dict() for a in actions],
            "notes": notes,
        },
    )


def _links(ctx: WorkflowContext, info: esc.RunInfo, jobs: list[esc.JobDiagnosis]) -> list[str]:
    """The tracked issue and the agent's PR of each signature, for the comment's follow-up."""
    links: list[str] = []
    for signature in dict.fromkeys(j.signature for j in jobs):
        state = esc.load_signature_state(ctx.store, info.repository, signature)
        if state.get("url"):
            links.append(f"Linear: [{state.get('identifier')} ({signature})]({state['url']})")
        if state.get("agent_pr"):
            links.append(f"Codegen agent PR: {state['agent_pr']}")
    return links
