"""`/contexten rerun | diagnose | explain` commented on a pull request, answered in a reply.

Who may command: commenters whose `author_association` is in
COMMENT_COMMAND_ASSOCIATIONS (OWNER, MEMBER, COLLABORATOR by default). Anyone else gets a
polite refusal, once per pull request and person (an idempotency key), so repeating the
command does not fill the conversation.

- `rerun`: re-run the failed jobs of the newest failed run of the pull request's head
  commit (once per run attempt, as GitHub allows).
- `diagnose`: run failure_analysis on that run (no automatic re-run) and reply with what
  it found.
- `explain`: the recorded diagnosis of that run: category, confidence, evidence lines,
  signature and the suggested fix.

Every command gets exactly one reply (key: the comment id), however often the event is
delivered.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from contexten.analysis.logs.prompt import sanitize
from contexten.analysis.logs.report import preview
from contexten.catalog import GithubAutomationParameters
from contexten.integrations.idempotency import idempotency_key
from contexten.workflows.base import WorkflowContext, WorkflowError, WorkflowOutcome

COMMANDS = ("rerun", "diagnose", "explain")
_COMMAND = re.compile(r"^/contexten(?=\s|$)\s*(?P<verb>\S+)?(?P<rest>.*)$")
MAX_EVIDENCE = 8


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # one of COMMANDS, or "help" for anything else
    raw: str


def parse_command(body: str) -> Command | None:
    """The command on the comment's first non-empty line, or None when there is none."""
    for line in body.splitlines():
        text = line.strip()
        if not text:
            continue
        match = _COMMAND.match(text)
        if match is None:
            return None
        verb = (match.group("verb") or "").lower()
        return Command(verb if verb in COMMANDS else "help", text[:200])
    return None


def allowed(association: str | None, allowed_list: str) -> bool:
    wanted = {a.strip().upper() for a in allowed_list.split(",") if a.strip()}
    return (association or "NONE").upper() in wanted


def refusal(author: str | None, association: str | None) -> str:
    who = f"@{author}" if author else "Hi"
    return (
        f"{who}, thanks for trying contexten! Commands like `/contexten rerun` are limited to "
        "the repository's owners, members and collaborators "
        f"(your association here is {(association or 'NONE').lower()}). "
        "A maintainer can run the command for you."
    )


def help_text(raw: str) -> str:
    return (
        f"I did not understand `{raw}`. Commands: `/contexten rerun` (re-run the failed jobs "
        "of this pull request's newest failed run), `/contexten diagnose` (diagnose it), "
        "`/contexten explain` (explain its diagnosis)."
    )


async def newest_failed_run(ci: Any, repo: str, head_sha: str) -> Any | None:
    runs = await ci.list_workflow_runs(repo, head_sha=head_sha, max_items=50)
    failed = [r for r in runs if r.failed]
    return max(failed, key=lambda r: (r.created_at, r.id)) if failed else None


def _run_label(run: Any) -> str:
    return f"[{run.name or 'run'} #{run.id}]({run.html_url})"


async def _rerun(ci: Any, repo: str, run: Any) -> tuple[str, dict[str, Any]]:
    again = await ci.rerun_failed_jobs(repo, run.id, run_attempt=run.run_attempt)
    body = (
        f"Re-running the failed jobs of {_run_label(run)} "
        f"(attempt {run.run_attempt} → {again.run_attempt})."
    )
    return body, {"rerun": run.id, "attempt": again.run_attempt}


async def _diagnose(ctx: WorkflowContext, repo: str, run: Any) -> tuple[str, dict[str, Any]]:
    from contexten.catalog import FailureAnalysisParameters
    from contexten.workflows import failure_analysis

    params = FailureAnalysisParameters(repository=repo, workflow_run_id=run.id, auto_recovery=False)
    outcome = await failure_analysis.run(params, ctx)
    jobs = outcome.data.get("jobs") or []
    lines = [f"Diagnosis of {_run_label(run)}: {outcome.summary}", ""]
    for job in jobs:
        lines.append(
            f"- `{job.get('job')}`: **{job.get('category')}** "
            f"(confidence {job.get('confidence')}, signature `{job.get('signature')}`)"
        )
    lines += ["", "Comment `/contexten explain` for the evidence."]
    return "\n".join(lines), {"diagnosed": run.id, "signatures": [j.get("signature") for j in jobs]}


def _explain(ctx: WorkflowContext, repo: str, run: Any) -> tuple[str, dict[str, Any]]:
    from contexten.workflows import escalation as esc

    info, jobs = esc.load_run_diagnoses(ctx.store, repo, run.id)
    if info is None or not jobs:
        return (
            f"No diagnosis is recorded for {_run_label(run)} yet: comment "
            "`/contexten diagnose` first.",
            {"explained": None},
        )
    lines = [f"What went wrong in {_run_label(run)} (attempt {info.run_attempt}):", ""]
    for job in jobs:
        d = job.diagnosis
        lines.append(
            f"**{job.job_name}**: {d.category.value} (confidence {d.confidence:.2f}, "
            f"{'transient: a re-run may pass' if d.transient else 'deterministic'}), "
            f"signature `{d.signature}`"
        )
        if d.summary:
            lines.append(f"> {d.summary}")
        if d.evidence:
            lines.append("```text")
            lines.extend(f"{e.line:>7}: {sanitize(e.text, 300)}" for e in preview(d, MAX_EVIDENCE))
            lines.append("```")
        if d.fix_hint:
            lines.append(f"Suggested fix: {d.fix_hint}")
        lines.append("")
    return "\n".join(lines), {"explained": run.id, "signatures": [j.signature for j in jobs]}


async def answer_command(
    params: GithubAutomationParameters, ctx: WorkflowContext
) -> WorkflowOutcome:
    repo = params.repository or ctx.settings.github_repository
    if not repo:
        raise WorkflowError("a /contexten command needs a repository (repository=owner/name)")
    assert params.issue_number is not None and params.comment_id is not None
    command = parse_command(params.comment_body or "")
    if command is None:
        return WorkflowOutcome(ok=True, summary="the comment holds no /contexten command")
    from contexten.integrations import factory

    ci = factory.github_client(ctx.settings, ctx.store)
    if ci is None:
        raise WorkflowError(
            "GitHub is not configured (GITHUB_TOKEN or the GitHub App): cannot answer "
            f"{command.raw!r} on {repo}#{params.issue_number}"
        )
    number = params.issue_number
    data: dict[str, Any] = {"command": command.verb, "issue_number": number}
    try:
        if not allowed(params.author_association, ctx.settings.comment_command_associations):
            key = idempotency_key("pr_command_refusal", repo, number, params.comment_author)
            ref = await ci.create_issue_comment(
                repo, number, refusal(params.comment_author, params.author_association), key=key
            )
            data.update(refused=True, reply=ref.html_url)
            return WorkflowOutcome(
                ok=True,
                summary=f"refused {command.raw!r} from {params.comment_author} "
                f"({params.author_association})",
                data=data,
            )
        extra: dict[str, Any] = {}
        if command.verb == "help":
            body = help_text(command.raw)
        else:
            pull = await ci.get_pull_request(repo, number)
            run = await newest_failed_run(ci, repo, pull.head_sha)
            if run is None:
                body = (
                    f"No failed workflow run for the head commit `{pull.head_sha[:12]}` of "
                    "this pull request: nothing to "
                    f"{'re-run' if command.verb == 'rerun' else command.verb}."
                )
            elif command.verb == "rerun":
                body, extra = await _rerun(ci, repo, run)
            elif command.verb == "diagnose":
                body, extra = await _diagnose(ctx, repo, run)
            else:
                body, extra = _explain(ctx, repo, run)
        ref = await ci.create_issue_comment(
            repo,
            number,
            body,
            key=idempotency_key("pr_command_reply", repo, number, params.comment_id),
        )
        data.update(extra, reply=ref.html_url)
    finally:
        with contextlib.suppress(Exception):
            await ci.aclose()
    return WorkflowOutcome(
        ok=True, summary=f"answered {command.raw!r} on {repo}#{number}", data=data
    )
