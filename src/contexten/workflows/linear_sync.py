"""The linear_sync workflow: one Linear issue per failure signature; close the fixed ones.

- Every signature diagnosed in the last `since_hours` that needs a person (a deterministic
  failure, or one escalated after failed recoveries) has exactly one open issue: an
  existing one is found (store, then title) and left alone; a missing one is created.
- With `close_fixed`, an open issue is closed (with a comment saying which run passed) when
  a successful run of the same workflow on the same branch, in which the job of that name
  passed, started after the signature's last failure.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from contexten.catalog import LinearSyncParameters
from contexten.integrations.interface import CIProvider, CIProviderError, IntegrationError
from contexten.store.diagnoses import last_diagnosed_run_created_at, recent_escalations
from contexten.workflows import escalation as esc
from contexten.workflows.base import WorkflowContext, WorkflowError, WorkflowOutcome

RECENT_SUCCESSES = 20  # successful runs looked at per tracked signature


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def last_failure(ctx: WorkflowContext, state: dict[str, Any]) -> datetime | None:
    """When the signature last failed: the state's record or a newer diagnosis."""
    latest = _parse_time(state.get("last_failed_at"))
    seen = _parse_time(
        last_diagnosed_run_created_at(ctx.store, state.get("repository"), state.get("signature"))
    )
    if seen is not None and (latest is None or seen > latest):
        latest = seen
    return latest


def fixed_since(ctx: WorkflowContext, run: esc.RunInfo, job: esc.JobDiagnosis) -> bool:
    """The signature's issue was closed because a run after this failure passed."""
    state = esc.load_signature_state(ctx.store, run.repository, job.signature)
    fixed_at = _parse_time(state.get("fixed_at"))
    failed_at = _parse_time(run.created_at)
    if state.get("status") != "closed" or fixed_at is None or failed_at is None:
        return False
    return failed_at <= fixed_at


async def passing_run_after(
    ci: CIProvider, state: dict[str, Any], after: datetime
) -> tuple[int, str, datetime] | None:
    """(run id, url, start) of a successful run after `after` in which the same job passed."""
    workflow_id = state.get("workflow_id")
    runs = await ci.list_workflow_runs(
        str(state["repository"]),
        branch=state.get("branch") or None,
        status="success",
        workflow_id=int(workflow_id) if workflow_id else None,
        per_page=RECENT_SUCCESSES,
        max_items=RECENT_SUCCESSES,
    )
    job_name = state.get("job_name")
    for candidate in runs:
        created = _parse_time(candidate.created_at)
        if created is None or created <= after:
            continue
        if job_name:
            jobs = await ci.list_jobs(str(state["repository"]), candidate.id)
            if not any(j.name == job_name and j.conclusion == "success" for j in jobs):
                continue
        return candidate.id, candidate.html_url, created
    return None


async def run(params: LinearSyncParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    from contexten.integrations import factory

    settings = ctx.settings
    tracker = factory.linear_client(settings, ctx.store)
    if tracker is None:
        raise WorkflowError(f"Linear is not configured: {esc.SETUP_HINTS['linear']}")
    ledger = factory.action_ledger(settings, ctx.store)
    assert ledger is not None  # a store is given
    ci = factory.github_client(settings, ctx.store)
    escalator = esc.Escalator(settings, ctx.store, ledger, ci=ci, tracker=tracker)
    repository = params.repository
    actions: list[esc.ActionResult] = []
    notes: list[str] = []
    since = datetime.now(UTC) - timedelta(hours=params.since_hours)
    try:
        for info, job in recent_escalations(ctx.store, since, repository):
            if fixed_since(ctx, info, job):
                continue  # its issue was closed after a later passing run
            actions.append(await escalator.ensure_issue(info, job, comment_if_open=False))
        if params.close_fixed:
            if ci is None:
                notes.append(
                    f"fixed issues were not closed: GitHub is not configured "
                    f"({esc.SETUP_HINTS['github']})"
                )
            else:
                actions.extend(await _close_fixed(ctx, escalator, ci, repository))
    finally:
        for client in (tracker, ci):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
    return _outcome(ctx, actions, notes)


async def _close_fixed(
    ctx: WorkflowContext, escalator: esc.Escalator, ci: CIProvider, repository: str | None
) -> list[esc.ActionResult]:
    results: list[esc.ActionResult] = []
    for state in esc.tracked_signatures(ctx.store):
        if state.get("status") != "open" or not state.get("issue_id"):
            continue
        if repository and state.get("repository") != repository:
            continue
        failed_at = last_failure(ctx, state)
        if failed_at is None:
            continue
        try:
            passed = await passing_run_after(ci, state, failed_at)
        except (CIProviderError, IntegrationError) as exc:
            results.append(esc.failed("linear_close", str(state.get("identifier")), exc))
            continue
        if passed is None:
            continue
        run_id, url, passed_at = passed
        reason = (
            f"Fixed: run [{run_id}]({url}) of {state.get('workflow_name') or 'the workflow'} "
            f"passed job `{state.get('job_name')}` after the last failure with signature "
            f"`{state.get('signature')}`. Closed by contexten; it reopens as a new issue if "
            "the failure returns."
        )
        closed = await escalator.close_issue(state, reason)
        if closed.status == "done":
            esc.save_signature_state(
                ctx.store,
                str(state["repository"]),
                str(state["signature"]),
                fixed_by_run_id=run_id,
                fixed_at=passed_at.isoformat(),
            )
        results.append(closed)
    return results


def _outcome(
    ctx: WorkflowContext, actions: list[esc.ActionResult], notes: list[str]
) -> WorkflowOutcome:
    created = sum(1 for a in actions if a.kind == "linear_issue" and a.status == "done")
    open_ = sum(1 for a in actions if a.kind == "linear_issue" and a.status == "existing")
    closed = sum(1 for a in actions if a.kind == "linear_close" and a.status == "done")
    failures = [a for a in actions if a.failed]
    summary = f"{created} issue(s) created, {open_} already open, {closed} closed as fixed"
    if failures:
        summary += f", {len(failures)} action(s) failed"
    lines = ["# Linear sync", "", summary, "", esc.actions_table(actions)]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    ctx.publish_markdown("linear-sync", "\n".join(lines))
    return WorkflowOutcome(
        ok=not failures,
        summary=summary,
        data={
            "created": created,
            "open": open_,
            "closed": closed,
            "actions": [a.to_dict() for a in actions],
            "notes": notes,
        },
    )
