"""What performance_monitoring does about a significant regression.

- An alert (`perf-regression:<repo>:<head branch>`, warning) through the routed channels;
  a regression that persists counts on the firing alert, and a later run without one
  resolves it.
- For a pull request or a push (`head_sha` given), a check run on the head commit naming
  the slowed workflows and jobs with the statistics (medians, change, 95 % interval,
  Mann-Whitney p, runs compared). One check run per commit (idempotency key).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contexten.analysis.ci_timing import BranchComparison
from contexten.analysis.regression import Comparison, RegressionVerdict
from contexten.workflows.base import WorkflowContext

CHECK_NAME = "contexten / CI performance"
MAX_JOB_ROWS = 20


def alert_key(repository: str, head_branch: str) -> str:
    return f"perf-regression:{repository}:{head_branch}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"


def _stats(c: Comparison) -> str:
    change = "-" if c.change_percent is None else f"{c.change_percent:+.1f}%"
    interval = (
        f" (95% CI {c.ci_low_percent:+.0f}%..{c.ci_high_percent:+.0f}%)"
        if c.ci_low_percent is not None and c.ci_high_percent is not None
        else ""
    )
    p = "-" if c.p_value is None else f"{c.p_value:.2g}"
    return (
        f"{_seconds(c.baseline_median)} → {_seconds(c.head_median)} {change}{interval}, "
        f"p={p}, runs {c.baseline_n}/{c.head_n}"
    )


def regression_lines(regressed: Sequence[BranchComparison]) -> list[str]:
    """One line per regressed workflow: which time grew, by how much, how sure."""
    lines = []
    for c in regressed:
        which = c.runs if c.runs.verdict is RegressionVerdict.REGRESSED else c.queue
        label = "run time" if which is c.runs else "queue time"
        lines.append(f"{c.workflow} {label}: {_stats(which)}")
    return lines


def check_summary(regressed: Sequence[BranchComparison], baseline: str, head: str) -> str:
    lines = [f"CI durations of `{head}` regressed significantly against `{baseline}`:", ""]
    lines.extend(f"- {line}" for line in regression_lines(regressed))
    return "\n".join(lines)


def check_text(regressed: Sequence[BranchComparison]) -> str:
    """The slowed jobs (and steps) with their statistics, as a Markdown table."""
    rows = [
        "| workflow | job / step | baseline median | head median | change | p | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in regressed:
        for g in c.grown[:MAX_JOB_ROWS]:
            s = g.comparison
            change = "-" if s.change_percent is None else f"{s.change_percent:+.1f}%"
            p = "-" if s.p_value is None else f"{s.p_value:.2g}"
            label = g.label.replace("|", "\\|")
            rows.append(
                f"| {c.workflow} | {label} | {_seconds(s.baseline_median)} | "
                f"{_seconds(s.head_median)} | {change} | {p} | {s.baseline_n}/{s.head_n} |"
            )
    if len(rows) == 2:
        rows.append("| - | no single job or step grew significantly | | | | | |")
    return "## Slowed jobs and steps\n\n" + "\n".join(rows) + "\n"


async def act_on_regressions(
    ctx: WorkflowContext,
    provider: Any,
    repository: str,
    comparisons: Sequence[BranchComparison],
    *,
    baseline: str,
    head: str,
    head_sha: str | None,
) -> list[dict[str, Any]]:
    """Alert (or resolve) and, with a head commit, annotate it with a check run."""
    from contexten.monitoring.alerts import Alert, Severity, alert_manager_for
    from contexten.monitoring.clients import build_clients

    regressed = [c for c in comparisons if c.regressed]
    actions: list[dict[str, Any]] = []
    key = alert_key(repository, head)
    clients = build_clients(ctx.settings, ctx.store)
    try:
        manager = alert_manager_for(ctx.store, ctx.settings, clients)
        if regressed:
            message = f"{repository}: {head} is slower than {baseline}: " + "; ".join(
                regression_lines(regressed)
            )
            decision = await manager.fire(
                Alert(
                    key,
                    Severity.WARNING,
                    message,
                    data={"head_sha": head_sha, "workflows": [c.workflow for c in regressed]},
                    repository=repository,
                )
            )
            actions.append(
                {
                    "kind": "alert",
                    "key": key,
                    "action": decision.action,
                    "channels": list(decision.channels),
                }
            )
        elif comparisons:
            decision = await manager.resolve(key, reason=f"{head} no longer regressed")
            if decision.action != "not_firing":
                actions.append({"kind": "alert", "key": key, "action": decision.action})
    finally:
        await clients.aclose()
    if regressed and head_sha and provider is not None:
        from contexten.integrations.idempotency import idempotency_key

        check = await provider.create_check_run(
            repository,
            name=CHECK_NAME,
            head_sha=head_sha,
            title=f"{len(regressed)} workflow(s) slower than {baseline}",
            summary=check_summary(regressed, baseline, head),
            text=check_text(regressed),
            conclusion="neutral",
            key=idempotency_key("perf_check", repository, head_sha),
        )
        actions.append(
            {"kind": "check_run", "id": check.id, "head_sha": head_sha, "url": check.html_url}
        )
    return actions
