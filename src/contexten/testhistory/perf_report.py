"""CI duration comparison → JSON, Markdown and tables, for `contexten perf` and the workflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contexten.analysis.ci_timing import BranchComparison, Growth, Suggestion
from contexten.analysis.markdown import Table
from contexten.analysis.regression import Comparison, RegressionVerdict

VERDICT_MARK = {
    RegressionVerdict.REGRESSED: "🔴 regressed",
    RegressionVerdict.IMPROVED: "🟢 improved",
    RegressionVerdict.SAME: "same",
    RegressionVerdict.UNKNOWN: "unknown: need more runs",
}


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if abs(seconds) < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "verdict": c.verdict.value,
        "baseline_runs": c.baseline_n,
        "head_runs": c.head_n,
        "baseline_median_seconds": c.baseline_median,
        "head_median_seconds": c.head_median,
        "change_percent": c.change_percent,
        "ci95_percent": [c.ci_low_percent, c.ci_high_percent]
        if c.ci_low_percent is not None
        else None,
        "p_value": c.p_value,
        "reason": c.reason,
    }


def _growth_json(g: Growth) -> dict[str, Any]:
    return {"job": g.job, "step": g.step, **comparison_json(g.comparison)}


def perf_json(
    comparisons: Sequence[BranchComparison], suggestions: dict[str, list[Suggestion]]
) -> dict[str, Any]:
    return {
        "regressed": any(c.regressed for c in comparisons),
        "workflows": [
            {
                "workflow": c.workflow,
                "baseline_branch": c.baseline_branch,
                "head_branch": c.head_branch,
                "threshold_percent": c.threshold_percent,
                "regressed": c.regressed,
                "run_time": comparison_json(c.runs),
                "queue_time": comparison_json(c.queue),
                "grown": [_growth_json(g) for g in c.grown],
                "jobs": [_growth_json(g) for g in c.jobs],
                "job_queues": [_growth_json(g) for g in c.job_queues],
                "steps": [_growth_json(g) for g in c.steps[:50]],
                "suggestions": [
                    {"target": s.target, "median_seconds": s.seconds, "advice": s.advice}
                    for s in suggestions.get(c.workflow, [])
                ],
            }
            for c in comparisons
        ],
    }


def summary_table(comparisons: Sequence[BranchComparison]) -> Table:
    rows = []
    for c in comparisons:
        for what, comp in (("run time", c.runs), ("queue time", c.queue)):
            rows.append(
                (
                    c.workflow,
                    what,
                    f"{minutes(comp.baseline_median)} ({comp.baseline_n})",
                    f"{minutes(comp.head_median)} ({comp.head_n})",
                    _pct(comp.change_percent),
                    "-" if comp.p_value is None else f"{comp.p_value:.2g}",
                    VERDICT_MARK[comp.verdict],
                )
            )
    first = comparisons[0] if comparisons else None
    base = first.baseline_branch if first else "baseline"
    head = first.head_branch if first else "head"
    return Table(
        (
            "workflow",
            "",
            f"{base} median (runs)",
            f"{head} median (runs)",
            "change",
            "p",
            "verdict",
        ),
        tuple(rows),
        title="CI duration: head vs baseline",
    )


def growth_table(c: BranchComparison, limit: int = 15) -> Table:
    items = [*c.jobs, *c.steps]
    items.sort(key=lambda g: -(g.comparison.delta or 0.0))
    return Table(
        ("job › step", "baseline", "head", "change", "p", "verdict"),
        tuple(
            (
                g.label,
                minutes(g.comparison.baseline_median),
                minutes(g.comparison.head_median),
                _pct(g.comparison.change_percent),
                "-" if g.comparison.p_value is None else f"{g.comparison.p_value:.2g}",
                VERDICT_MARK[g.comparison.verdict],
            )
            for g in items[:limit]
        ),
        title=f"{c.workflow}: jobs and steps by growth",
    )


def perf_markdown(
    comparisons: Sequence[BranchComparison],
    suggestions: dict[str, list[Suggestion]],
    notes: Sequence[str] = (),
) -> str:
    if not comparisons:
        return "# CI performance\n\nNo CI timings for these branches yet.\n" + "".join(
            f"\n- {n}" for n in notes
        )
    first = comparisons[0]
    lines = [
        "# CI performance",
        "",
        f"`{first.head_branch}` against `{first.baseline_branch}`; a regression is a"
        f" median change over {first.threshold_percent:g}% that is also significant"
        " (Mann-Whitney U, p < 0.05, at least 8 runs per side). Run time excludes the wait"
        " for a runner, which is compared on its own.",
        "",
        summary_table(comparisons).to_markdown(),
        "",
    ]
    for c in comparisons:
        if c.regressed:
            lines.append(f"## {c.workflow}: regressed")
            for comp, what in ((c.runs, "run time"), (c.queue, "queue time")):
                if comp.verdict is RegressionVerdict.REGRESSED:
                    ci = (
                        f", 95% CI {comp.ci_low_percent:+.0f}% to {comp.ci_high_percent:+.0f}%"
                        if comp.ci_low_percent is not None and comp.ci_high_percent is not None
                        else ""
                    )
                    lines.append(f"- {what}: {comp.reason}{ci}")
        else:
            lines.append(f"## {c.workflow}")
        grown = c.grown
        if grown:
            lines.append("")
            lines.append("Grew the most:")
            lines += [
                f"- **{g.label}**: {minutes(g.comparison.baseline_median)} →"
                f" {minutes(g.comparison.head_median)} ({_pct(g.comparison.change_percent)},"
                f" {VERDICT_MARK[g.comparison.verdict]})"
                for g in grown
            ]
        if c.jobs or c.steps:
            lines += ["", growth_table(c).to_markdown()]
        advice = suggestions.get(c.workflow, [])
        if advice:
            lines += ["", "Suggestions (slowest first):"]
            lines += [f"- **{s.target}** ({minutes(s.seconds)}): {s.advice}" for s in advice]
        lines.append("")
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines).rstrip() + "\n"
