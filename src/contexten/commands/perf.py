"""`contexten perf ...`: CI duration regressions of a branch against the baseline branch.

  contexten perf collect -R owner/name --branch develop --branch feature-x   # from GitHub
  contexten perf import runs/*.json -R owner/name                          # saved `gh api` JSON
  contexten perf compare -R owner/name --head feature-x [--baseline develop] [--plot trend.png]
  contexten perf trend -R owner/name --branch develop --workflow CI         # change points

Exit codes: 0 ok, 1 a significant regression with --fail-on-regression (or GitHub or the
store failed), 2 bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from contexten.commands._common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, fail, print_json

if TYPE_CHECKING:
    from contexten.store.db import Store

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

RepositoryOption = typer.Option(
    None, "--repository", "-R", help="owner/name; default GITHUB_REPOSITORY"
)


def _repository(value: str | None) -> str:
    from contexten.config import get_settings

    repository = value or get_settings().github_repository
    if not repository:
        fail("no repository: pass --repository owner/name or set GITHUB_REPOSITORY")
    if repository.count("/") != 1 or " " in repository:
        fail(f"--repository {repository!r} must be owner/name")
    return repository


def _store() -> Store:
    from contexten.store.db import StoreError, open_store

    try:
        return open_store()
    except StoreError as exc:
        fail(str(exc), code=exc.exit_code)


@app.command("import")
def import_(
    paths: list[Path] = typer.Argument(..., help="saved GitHub REST JSON: runs with their jobs"),
    repository: str | None = RepositoryOption,
) -> None:
    """Store run, job and step durations from saved GitHub REST JSON files."""
    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory.ci_timings import TimingImportError, samples_from_json, store_samples

    repo = _repository(repository)
    store = _store()
    bad = 0
    total = 0
    for path in paths:
        try:
            data = path.read_bytes()
            samples = samples_from_json(data, str(path))
        except OSError as exc:
            print(f"contexten: error: {path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            bad += 1
            continue
        except TimingImportError as exc:
            print(f"contexten: error: {exc}", file=sys.stderr)
            bad += 1
            continue
        try:
            rows = store_samples(store, repo, samples)
        except TestHistoryError as exc:
            fail(str(exc), code=EXIT_FAILED)
        runs = sum(1 for s in samples if s.level == "run")
        total += rows
        print(f"{path}: {runs} runs, {rows} timings stored")
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_OK)


@app.command()
def collect(
    branch: list[str] = typer.Option(..., "--branch", "-b", help="branch to collect (repeatable)"),
    repository: str | None = RepositoryOption,
    workflow: str | None = typer.Option(None, "--workflow", "-w", help="only this workflow"),
    max_runs: int = typer.Option(30, "--max-runs", min=1, max=1000, help="newest runs per branch"),
) -> None:
    """Collect the newest completed runs' durations from GitHub into the store."""
    import asyncio

    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory.ci_timings import collect as collect_runs

    repo = _repository(repository)
    store = _store()
    provider = _provider()
    try:
        result = asyncio.run(
            _collect_and_close(provider, collect_runs, store, repo, branch, workflow, max_runs)
        )
    except TestHistoryError as exc:
        fail(str(exc), code=EXIT_FAILED)
    for problem in result.problems:
        print(f"contexten: warning: {problem}", file=sys.stderr)
    print(
        f"{result.runs_seen} runs listed, {result.runs_collected} new runs collected,"
        f" {result.rows} timings stored"
    )
    raise typer.Exit(EXIT_FAILED if result.problems and not result.runs_collected else EXIT_OK)


async def _collect_and_close(provider: Any, collect_runs: Any, *args: Any) -> Any:
    store, repo, branches, workflow, max_runs = args
    try:
        return await collect_runs(
            provider, store, repo, branches=branches, workflow=workflow, max_runs=max_runs
        )
    finally:
        await provider.aclose()


def _provider() -> Any:
    from contexten.config import get_settings
    from contexten.integrations.factory import github_client

    try:
        client = github_client(get_settings(), _store())
    except Exception as exc:  # configuration problems, e.g. an unreadable App key
        fail(f"cannot create the GitHub client: {exc}", code=EXIT_FAILED)
    if client is None:
        fail("GitHub is not configured: set GITHUB_TOKEN (or the GitHub App variables)")
    return client


@app.command()
def compare(
    head: str = typer.Option(..., "--head", help="branch to check"),
    baseline: str | None = typer.Option(
        None, "--baseline", help="baseline branch (default BASELINE_BRANCH, develop)"
    ),
    repository: str | None = RepositoryOption,
    workflow: str | None = typer.Option(None, "--workflow", "-w", help="default: every workflow"),
    threshold: float = typer.Option(20.0, "--threshold", min=0.1, max=1000, help="alert %"),
    window_runs: int = typer.Option(30, "--window-runs", min=2, max=1000),
    min_samples: int = typer.Option(8, "--min-samples", min=3, max=1000),
    plot: Path | None = typer.Option(None, "--plot", help="write a PNG trend plot here"),
    markdown: Path | None = typer.Option(None, "--markdown", help="write the report here"),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Median run, queue, job and step durations of head vs baseline, with significance."""
    from contexten.config import get_settings
    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory.perf_report import perf_json, perf_markdown

    repo = _repository(repository)
    base = baseline or get_settings().baseline_branch
    if base == head:
        fail(f"--head and --baseline are both {head!r}; compare two different branches")
    try:
        comparisons, suggestions = compare_from_store(
            _store(), repo, base, head, workflow, threshold, window_runs, min_samples
        )
    except TestHistoryError as exc:
        fail(str(exc), code=EXIT_FAILED)
    if not comparisons:
        fail(
            f"no CI timings for {repo} on {base!r} and {head!r}"
            + (f" in workflow {workflow!r}" if workflow else "")
            + ": run `contexten perf collect` or `contexten perf import` first",
            code=EXIT_BAD_INPUT,
        )
    if plot is not None:
        _plot(plot, comparisons[0], threshold)
    text = perf_markdown(comparisons, suggestions)
    if markdown is not None:
        try:
            markdown.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--markdown {markdown}: cannot write: {exc.strerror or exc}")
    if as_json:
        print_json(perf_json(comparisons, suggestions))
    else:
        from rich.markdown import Markdown

        from contexten.commands._common import console

        console().print(Markdown(text))
    regressed = any(c.regressed for c in comparisons)
    raise typer.Exit(EXIT_FAILED if regressed and fail_on_regression else EXIT_OK)


def compare_from_store(
    store: Store,
    repo: str,
    base: str,
    head: str,
    workflow: str | None,
    threshold: float,
    window_runs: int,
    min_samples: int,
) -> tuple[list[Any], dict[str, list[Any]]]:
    from contexten.analysis.ci_timing import compare_branches, suggest
    from contexten.testhistory.ci_timings import load_samples

    samples = load_samples(store, repo, workflow=workflow, branches=[base, head])
    names = sorted(
        {s.workflow_name for s in samples if s.branch == head}
        & {s.workflow_name for s in samples if s.branch == base}
    )
    comparisons = [
        compare_branches(
            samples,
            workflow=name,
            baseline_branch=base,
            head_branch=head,
            threshold_percent=threshold,
            window_runs=window_runs,
            min_samples=min_samples,
        )
        for name in names
    ]
    suggestions = {name: suggest(samples, workflow=name, branch=head) for name in names}
    return comparisons, suggestions


def _plot(path: Path, comparison: Any, threshold: float) -> None:
    from contexten.testhistory.plots import plot_trend

    try:
        plot_trend(
            path,
            title=f"{comparison.workflow}: run time per run",
            baseline_label=comparison.baseline_branch,
            baseline=comparison.baseline_series,
            head_label=comparison.head_branch,
            head=comparison.head_series,
            threshold_percent=threshold,
        )
    except OSError as exc:
        fail(f"--plot {path}: cannot write: {exc.strerror or exc}")


@app.command()
def trend(
    branch: str = typer.Option(..., "--branch", "-b"),
    workflow: str = typer.Option(..., "--workflow", "-w"),
    repository: str | None = RepositoryOption,
    job: str | None = typer.Option(None, "--job", help="a job's durations instead of the run's"),
    min_change: float = typer.Option(10.0, "--min-change", min=0.1, help="minimum shift, %"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change points in one branch's durations over time (when did it get slower?)."""
    from contexten.analysis.regression import change_points
    from contexten.store.test_history import TestHistoryError
    from contexten.testhistory.ci_timings import load_samples

    repo = _repository(repository)
    try:
        samples = load_samples(_store(), repo, workflow=workflow, branches=[branch])
    except TestHistoryError as exc:
        fail(str(exc), code=EXIT_FAILED)
    level = [
        s
        for s in samples
        if s.step_name is None
        and (s.job_name == job if job is not None else s.job_name is None)
        and s.duration_seconds is not None
        and s.started_at is not None
        and s.conclusion in ("success", None)
    ]
    level.sort(key=lambda s: (s.started_at, s.run_id))
    if not level:
        fail(f"no timings for {workflow!r} on {branch!r}" + (f" job {job!r}" if job else ""))
    series = [s.duration_seconds or 0.0 for s in level]
    points = change_points(series, min_magnitude_percent=min_change)
    found: list[dict[str, Any]] = [
        {
            "run_id": level[p.index].run_id,
            "head_sha": level[p.index].head_sha,
            "started_at": level[p.index].started_at,
            "before_median_seconds": p.before_median,
            "after_median_seconds": p.after_median,
            "change_percent": p.change_percent,
            "p_value": p.p_value,
        }
        for p in points
    ]
    if as_json:
        print_json({"runs": len(series), "change_points": found})
    else:
        print(f"{len(series)} runs of {workflow!r} on {branch!r}")
        if not found:
            print("no change point (p ≤ 0.001 and at least the minimum shift)")
        for f in found:
            print(
                f"run {f['run_id']} ({(f['head_sha'] or '')[:10]}, {f['started_at']:%Y-%m-%d}):"
                f" {f['before_median_seconds']:.0f} s → {f['after_median_seconds']:.0f} s"
                f" ({f['change_percent']:+.1f}%, p={f['p_value']:.1g})"
            )
    raise typer.Exit(EXIT_OK)
