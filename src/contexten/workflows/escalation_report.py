"""How a diagnosed CI failure reads: the Linear issue and its comments, the PR comment, the
check run and its annotations, the agent prompt (log text only inside prompt-safe fenced
blocks) and the table of actions taken.
"""

from __future__ import annotations

from collections.abc import Sequence

from contexten.analysis.failures import MAX_ANNOTATIONS, ActionResult, JobDiagnosis, RunInfo
from contexten.analysis.logs.prompt import render_for_agent, sanitize
from contexten.analysis.logs.report import preview, to_markdown
from contexten.analysis.markdown import md_cell
from contexten.analysis.taxonomy import FailureCategory
from contexten.integrations.interface import Annotation


def _code(text: str, limit: int = 200) -> str:
    return "`" + sanitize(text, limit).replace("`", "ˋ") + "`"


def issue_title(repository: str, job: JobDiagnosis) -> str:
    d = job.diagnosis
    if d.category in (FailureCategory.TEST, FailureCategory.FLAKY_TEST) and d.failing_tests:
        tests = sorted(d.failing_tests)
        headline = sanitize(tests[0], 120)
        if len(tests) > 1:
            headline += f" (+{len(tests) - 1} more)"
    else:
        headline = sanitize(d.summary, 120).rstrip(".")
    return f"[{repository}] {d.category.value} failure: {headline} ({d.signature})"


def job_section(job: JobDiagnosis, *, heading: str = "###") -> str:
    """One job's diagnosis in Markdown: mode, then the diagnosis with fenced evidence."""
    lines = [
        f"{heading} Job {_code(job.job_name)}"
        + (f" ([log]({job.job_url}))" if job.job_url else ""),
        "",
        f"Analysis: **{job.mode}** — {job.mode_note}",
    ]
    if job.log_truncated:
        lines.append(f"The log was cut at {job.log_bytes} bytes; later lines were not read.")
    lines += ["", to_markdown(job.diagnosis).replace("### CI failure:", "**Diagnosis:**", 1)]
    if job.locations:
        lines.append(
            "**Locations:** " + ", ".join(_code(f"{x.path}:{x.line}") for x in job.locations[:10])
        )
    return "\n".join(lines).rstrip() + "\n"


def issue_description(run: RunInfo, job: JobDiagnosis) -> str:
    return "\n".join(
        [
            f"contexten diagnosed a failed CI job in `{run.repository}` and opened this issue "
            f"for signature `{job.signature}`. Later failures with the same signature are added "
            "as comments; the issue is closed when a later run passes.",
            "",
            f"- **Run:** [{sanitize(run.workflow_name, 100)} #{run.run_id}]({run.html_url}) "
            f"(attempt {run.run_attempt}) on `{sanitize(run.head_branch or '-', 100)}` "
            f"at `{run.head_sha[:12]}`",
            f"- **Commit:** {sanitize(run.display_title, 200)}",
            "",
            job_section(job),
        ]
    )


def issue_comment(run: RunInfo, job: JobDiagnosis) -> str:
    d = job.diagnosis
    lines = [
        f"Failed again: [{sanitize(run.workflow_name, 100)} #{run.run_id}]({run.html_url}) "
        f"(attempt {run.run_attempt}) on `{sanitize(run.head_branch or '-', 100)}` at "
        f"`{run.head_sha[:12]}`, job {_code(job.job_name)}: {d.category.value} "
        f"(confidence {d.confidence:.2f}).",
    ]
    if d.evidence:
        shown = [f"{e.line:>7}: {sanitize(e.text)}" for e in preview(d, 5)]
        lines += ["", "```text", *shown, "```"]
    return "\n".join(lines)


def pr_comment(run: RunInfo, jobs: Sequence[JobDiagnosis], links: Sequence[str]) -> str:
    out = [
        f"## contexten: {sanitize(run.workflow_name, 100)} run "
        f"[#{run.run_id}]({run.html_url}) failed (attempt {run.run_attempt})",
        "",
    ]
    for job in jobs:
        out.append(job_section(job))
    if links:
        out += ["**Follow-up:**", "", *[f"- {link}" for link in links], ""]
    return "\n".join(out)


def check_run_text(run: RunInfo, jobs: Sequence[JobDiagnosis]) -> tuple[str, str, str]:
    """(title, summary, text) for the check run."""
    categories = sorted({j.category.value for j in jobs})
    title = f"{len(jobs)} failed job(s) diagnosed: {', '.join(categories)}"
    summary = "\n".join(
        f"- {_code(j.job_name)}: **{j.category.value}** — {sanitize(j.diagnosis.summary, 200)}"
        for j in jobs
    )
    text = "\n".join(job_section(j) for j in jobs)
    return title, summary, text


def annotations_for(jobs: Sequence[JobDiagnosis]) -> list[Annotation]:
    out: list[Annotation] = []
    seen: set[tuple[str, int]] = set()
    for job in jobs:
        for loc in job.locations:
            if (loc.path, loc.line) in seen:
                continue
            seen.add((loc.path, loc.line))
            out.append(
                Annotation(
                    path=loc.path,
                    start_line=loc.line,
                    end_line=loc.line,
                    level="failure",
                    message=loc.message or job.diagnosis.summary,
                    title=f"{job.category.value} in {sanitize(job.job_name, 100)}",
                )
            )
    return out[:MAX_ANNOTATIONS]


def agent_prompt(run: RunInfo, job: JobDiagnosis, *, create_pr: bool) -> str:
    """The instructions (ours) plus everything from the repository and the log, fenced.

    Only our own words, numbers and the category are outside the block: the repository,
    workflow, job and branch names, the commit and its message, the run's link and the
    pull request titles (in `display_title`) are quoted inside it by render_for_agent.
    """
    action = (
        "Open a pull request against the branch named in the block that fixes the cause, "
        "with a short explanation."
        if create_pr
        else "Propose a patch in your reply; do not open a pull request."
    )
    context = [
        ("repository", run.repository),
        ("workflow", run.workflow_name),
        ("job", job.job_name),
        ("branch", run.head_branch or "(the default branch)"),
        ("commit", run.head_sha),
        ("commit message or pull request title", run.display_title),
        ("run", run.html_url),
    ]
    return "\n".join(
        [
            f"A CI job failed in a GitHub repository: run {run.run_id} (attempt "
            f"{run.run_attempt}). The block below names the repository, workflow, job, "
            "branch and commit.",
            "",
            f"Task: find the cause of this failure in the repository and fix it. {action} "
            "Do not disable or skip tests to make the job pass.",
            "",
            render_for_agent(job.diagnosis, context=[(k, v) for k, v in context if v]),
        ]
    )


def actions_table(results: Sequence[ActionResult]) -> str:
    if not results:
        return "_No action taken._\n"
    rows = ["| action | status | target | detail |", "|---|---|---|---|"]
    for r in results:
        target = f"[{r.target}]({r.url})" if r.url else r.target
        detail = md_cell(r.detail)
        rows.append(f"| {r.kind} | {r.status} | {target.replace('|', '/')} | {detail} |")
    return "\n".join(rows) + "\n"
