"""`contexten tests ...`: ingest JUnit reports; flaky and slow tests; shards; quarantine; gate.

  contexten tests ingest reports/ --run-id 123 --attempt 2 --commit abc --branch main
  contexten tests report [--window-days 14] [--json] [--markdown report.md]
  contexten tests flaky | slow [--top 20 --by p95]
  contexten tests shard --shards 4 --index 1 --format pytest > shard-1.txt   # pytest @shard-1.txt
  contexten tests quarantine list | add TEST --reason ... | release TEST | update [--dry-run]
  contexten tests quarantine export --output quarantine.json
  contexten tests gate reports/ [--quarantine-file quarantine.json]     # exit 1 on real failures

In GitHub Actions the run id, attempt, commit, branch, job and repository default to the
GITHUB_* variables. Exit codes: 0 ok, 1 failures (gate) or the store failed, 2 bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from contexten.commands import tests_gate, tests_ingest, tests_quarantine, tests_shard
from contexten.commands._common import EXIT_OK, fail, print_json, stdout_is_terminal
from contexten.commands.tests_common import (
    BranchOption,
    JsonOption,
    RepositoryOption,
    WindowOption,
    build_report,
    print_test_table,
    report_options,
)

# One module a subcommand group: ingest, shard, quarantine and gate are in tests_<name>;
# report, flaky and slow (reading the history) are here.
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(tests_quarantine.app, name="quarantine")
app.command()(tests_ingest.ingest)


@app.command()
def report(
    repository: str | None = RepositoryOption,
    branch: str | None = BranchOption,
    window_days: int = WindowOption,
    top: int = typer.Option(20, "--top", min=1, max=1000),
    by: str = typer.Option("p50", "--by", help="rank slow tests by p50 or p95"),
    markdown: Path | None = typer.Option(None, "--markdown", help="also write Markdown here"),
    as_json: bool = JsonOption,
) -> None:
    """Flaky, broken, slow and slower tests, and the quarantine plan, over a window."""
    from contexten.testhistory.report import report_json, report_markdown

    built = build_report(report_options(repository, branch, window_days, top, by))
    text = report_markdown(built)
    if markdown is not None:
        try:
            markdown.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--markdown {markdown}: cannot write: {exc.strerror or exc}")
    if as_json:
        print_json(report_json(built))
    elif not stdout_is_terminal():
        sys.stdout.write(text)  # the Markdown itself: nothing folded to a guessed width
    else:
        from rich.markdown import Markdown

        from contexten.commands._common import console

        console().print(Markdown(text))
    raise typer.Exit(EXIT_OK)


@app.command()
def flaky(
    repository: str | None = RepositoryOption,
    branch: str | None = BranchOption,
    window_days: int = WindowOption,
    top: int = typer.Option(50, "--top", min=1, max=10000),
    as_json: bool = JsonOption,
) -> None:
    """Tests that passed and failed on the same commit (or passed on retry), with evidence."""
    from contexten.testhistory.report import report_json, report_tables

    built = build_report(report_options(repository, branch, window_days, top))
    if as_json:
        data = report_json(built)
        print_json({"window": data["window"], "flaky": data["flaky"][:top]})
    else:
        print_test_table(report_tables(built)[0])
        links = _Links.from_settings(built.options.repository)
        for finding in built.flaky[:top]:
            event = finding.stats.flaky_events[0] if finding.stats.flaky_events else None
            if event is not None:
                where = f"commit {links.commit(event.commit)}" if event.commit else "no commit"
                print(
                    f"  {built.name(finding.stats.test_id)}: {where};"
                    f" failed in {', '.join(map(links.run, event.failed_runs)) or '-'};"
                    f" passed in {', '.join(map(links.run, event.passed_runs)) or '-'}"
                )
    raise typer.Exit(EXIT_OK)


class _Links:
    """Evidence a person can follow: commit and run pages on GitHub when the repository is
    known (-R or GITHUB_REPOSITORY) and the run id is a GitHub Actions run id."""

    def __init__(self, web: str | None, repository: str | None) -> None:
        self.base = f"{web}/{repository}" if web and repository else None

    @classmethod
    def from_settings(cls, repository: str | None) -> _Links:
        from urllib.parse import urlparse

        from contexten.config import get_settings

        api = urlparse(get_settings().github_api_url)
        host = api.netloc.removeprefix("api.") if api.netloc == "api.github.com" else api.netloc
        web = f"{api.scheme}://{host}" if api.scheme and host else None
        return cls(web, repository)

    def commit(self, sha: str) -> str:
        return f"{self.base}/commit/{sha}" if self.base else sha

    def run(self, label: str) -> str:
        """`123#2 (job)` → the run attempt's page; other labels (local uploads) as they are."""
        import re

        found = re.match(r"^(\d+)(?:#(\d+))?(?= |$)", label)
        if self.base is None or found is None:
            return label
        url = f"{self.base}/actions/runs/{found[1]}"
        if found[2]:
            url += f"/attempts/{found[2]}"
        return f"{label} <{url}>"


@app.command()
def slow(
    repository: str | None = RepositoryOption,
    branch: str | None = BranchOption,
    window_days: int = WindowOption,
    top: int = typer.Option(20, "--top", min=1, max=10000),
    by: str = typer.Option("p50", "--by", help="p50 or p95"),
    as_json: bool = JsonOption,
) -> None:
    """The slowest tests by p50 or p95, and tests getting slower."""
    from contexten.testhistory.report import report_json, report_tables

    built = build_report(report_options(repository, branch, window_days, top, by))
    if as_json:
        data = report_json(built)
        print_json(
            {
                "window": data["window"],
                "slowest": data["slowest"],
                "getting_slower": data["getting_slower"],
            }
        )
    else:
        tables = report_tables(built)
        print_test_table(tables[1])
        print_test_table(tables[2])
    raise typer.Exit(EXIT_OK)


app.command()(tests_shard.shard)
app.command()(tests_gate.gate)
