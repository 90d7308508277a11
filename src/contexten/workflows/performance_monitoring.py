"""The performance_monitoring workflow body: CI durations, head branch vs baseline branch.

1. Collect the newest completed runs of both branches from GitHub (runs, jobs with their
   steps, run timing) into the store; runs already stored are not fetched again. Without
   GitHub credentials the stored timings are analysed as they are, and the report says so.
2. Per workflow: median run time (without queue) and queue time of head vs baseline, with a
   Mann-Whitney U test; a regression is significant AND over `alert_threshold_percent`;
   too few runs is "unknown", not "same". Jobs and steps that grew are named.
3. Report: Markdown and tables, a PNG trend plot per workflow; with `auto_optimize`,
   suggestions pointing at the slowest steps (caches, shallow checkout, shards, parallel
   jobs, runner queue).

The outcome is not ok when a workflow regressed; a regression raises an alert and, with
`head_sha` (a pull request's or push's run), a check run on that commit
(`regression_actions`), and emits `regression.detected`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from contexten.catalog import PerformanceMonitoringParameters
from contexten.workflows.base import WorkflowContext, WorkflowError, WorkflowOutcome, ci_provider

if TYPE_CHECKING:
    from contexten.integrations.interface import RunsAndJobs

MAX_PLOTS = 5


async def run(params: PerformanceMonitoringParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    from contexten.store.test_history import TestHistoryError

    provider = ci_provider(ctx) if ctx.settings.enabled_integrations().get("github") else None
    try:
        return await monitor(params, ctx, provider)
    except TestHistoryError as exc:
        raise WorkflowError(str(exc)) from None
    finally:
        if provider is not None:
            await provider.aclose()


async def monitor(
    params: PerformanceMonitoringParameters, ctx: WorkflowContext, provider: RunsAndJobs | None
) -> WorkflowOutcome:
    from contexten.analysis.ci_timing import compare_branches, suggest
    from contexten.testhistory.ci_timings import collect, load_samples
    from contexten.testhistory.perf_report import (
        growth_table,
        perf_json,
        perf_markdown,
        summary_table,
    )

    repository = params.repository or ctx.settings.github_repository
    if not repository:
        raise WorkflowError("no repository: set `repository` or GITHUB_REPOSITORY")
    baseline = params.baseline_branch
    notes: list[str] = []
    head = params.head_branch or await _infer_head(ctx, provider, repository, baseline)
    if head == baseline:
        raise WorkflowError(f"head and baseline branch are both {baseline!r}")
    if provider is not None:
        result = await collect(
            provider,
            ctx.store,
            repository,
            branches=[baseline, head],
            workflow=params.workflow_name,
            max_runs=params.window_runs,
        )
        notes.append(
            f"collected {result.runs_collected} new runs from GitHub ({result.runs_seen} listed)"
        )
        notes.extend(result.problems)
    else:
        notes.append("GitHub is not configured: analysed the timings already in the store")

    samples = load_samples(
        ctx.store, repository, workflow=params.workflow_name, branches=[baseline, head]
    )
    names = sorted(
        {s.workflow_name for s in samples if s.branch == head}
        & {s.workflow_name for s in samples if s.branch == baseline}
    )
    comparisons = [
        compare_branches(
            samples,
            workflow=name,
            baseline_branch=baseline,
            head_branch=head,
            threshold_percent=params.alert_threshold_percent,
            window_runs=params.window_runs,
        )
        for name in names
    ]
    suggestions = (
        {name: suggest(samples, workflow=name, branch=head) for name in names}
        if params.auto_optimize
        else {}
    )
    markdown = perf_markdown(comparisons, suggestions, notes)
    images = tuple(_plots(ctx, comparisons[:MAX_PLOTS], params.alert_threshold_percent))
    tables = []
    if comparisons:
        tables.append(summary_table(comparisons))
        tables.extend(growth_table(c) for c in comparisons)
    ctx.publish_markdown("ci-performance", markdown)
    for n, table in enumerate(tables):
        ctx.publish_table("ci-performance-summary" if n == 0 else f"ci-growth-{n}", table)

    regressed = [c for c in comparisons if c.regressed]
    if not comparisons:
        summary = (
            f"no workflow has runs on both {baseline!r} and {head!r} in {repository}"
            " yet: nothing to compare"
        )
    elif regressed:
        parts = []
        for c in regressed:
            what = c.runs if c.runs.verdict.value == "regressed" else c.queue
            label = "run time" if what is c.runs else "queue time"
            grown = ", ".join(g.label for g in c.grown[:3])
            parts.append(
                f"{c.workflow} {label} {what.change_percent:+.0f}% (p={what.p_value:.2g})"
                + (f"; grew: {grown}" if grown else "")
            )
        summary = f"{head} regressed against {baseline}: " + "; ".join(parts)
    else:
        unknown = [c.workflow for c in comparisons if c.runs.verdict.value == "unknown"]
        summary = (
            f"no significant regression of {head} against {baseline}"
            f" in {len(comparisons)} workflows"
        )
        if unknown:
            summary += f" ({len(unknown)} with too few runs to judge: {', '.join(unknown[:3])})"
    data: dict[str, Any] = perf_json(comparisons, suggestions)
    data.update(
        repository=repository,
        baseline_branch=baseline,
        head_branch=head,
        notes=notes,
        plots=[str(p) for p in images],
    )
    if ctx.settings.monitoring_enabled:
        from contexten.workflows.regression_actions import act_on_regressions

        data["actions"] = await act_on_regressions(
            ctx,
            provider,
            repository,
            comparisons,
            baseline=baseline,
            head=head,
            head_sha=params.head_sha,
        )
    return WorkflowOutcome(
        ok=not regressed,
        summary=summary,
        markdown=markdown,
        data=data,
        tables=tuple(tables),
        images=images,
    )


def _plots(ctx: WorkflowContext, comparisons: list[Any], threshold: float) -> list[Any]:
    from contexten.testhistory.plots import plot_trend

    paths = []
    for n, c in enumerate(comparisons, start=1):
        if not c.baseline_series and not c.head_series:
            continue
        paths.append(
            plot_trend(
                ctx.reports_dir / f"ci-trend-{n}.png",
                title=f"{c.workflow}: run time per run",
                baseline_label=c.baseline_branch,
                baseline=c.baseline_series,
                head_label=c.head_branch,
                head=c.head_series,
                threshold_percent=threshold,
            )
        )
    return paths


async def _infer_head(
    ctx: WorkflowContext, provider: RunsAndJobs | None, repository: str, baseline: str
) -> str:
    """The repository's default branch, as seen in its push runs (never the baseline)."""
    from contexten.testhistory.ci_timings import load_samples

    branches: Counter[str] = Counter()
    if provider is not None:
        from contexten.integrations.interface import CIProviderError

        try:
            runs = await provider.list_workflow_runs(repository, event="push", max_items=100)
            branches.update(r.head_branch for r in runs if r.head_branch)
        except CIProviderError as exc:
            ctx.logger.warning("cannot list runs to find the default branch: %s", exc)
    if not branches:
        branches.update(
            s.branch for s in load_samples(ctx.store, repository) if s.level == "run" and s.branch
        )
    branches.pop(baseline, None)
    for preferred in ("main", "master", "trunk"):
        if preferred in branches:
            return preferred
    if branches:
        return branches.most_common(1)[0][0]
    raise WorkflowError(
        "head_branch not given and the repository's default branch is unknown: set head_branch"
    )
