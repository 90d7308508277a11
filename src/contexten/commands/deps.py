"""`contexten deps plan|apply [PATH]`: dependency update plans for a project directory.

`plan` reads the project's dependency files, asks the package index (PYPI_INDEX_URL) for
releases and OSV (OSV_API_URL) for advisories, and prints what the strategy would update.
`apply` writes the plan into the files (only the changed requirements; everything else in
the files stays as it was); with `--test-command` it runs the tests afterwards and puts the
files back when they fail. Pull requests come from the dependency_management workflow.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from contexten.commands._common import EXIT_FAILED, fail, print_json

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Dependency update plans.")

PATH_ARGUMENT = typer.Argument(Path("."), help="project directory")
STRATEGY = typer.Option(
    "smart", "--strategy", "-s", help="conservative (patch), smart (minor), aggressive (latest)"
)
COOLDOWN = typer.Option(3, "--cooldown-days", min=0, help="wait this long after a release")
SECURITY_PRIORITY = typer.Option(
    True,
    "--security-priority/--no-security-priority",
    help="vulnerable packages first; security fixes may go beyond the strategy",
)
PRERELEASES = typer.Option(False, "--pre", help="consider pre-releases")
ADVISORIES = typer.Option(
    True, "--advisories/--no-advisories", help="look up known vulnerabilities (OSV)"
)
INDEX_URL = typer.Option(None, "--index-url", help="PyPI JSON API base (default PYPI_INDEX_URL)")
OSV_URL = typer.Option(None, "--osv-url", help="OSV API base (default OSV_API_URL)")
AS_JSON = typer.Option(False, "--json", help="print one JSON document")
TEST_TIMEOUT_SECONDS = 3600


def _plan(
    path: Path,
    strategy: str,
    cooldown_days: int,
    security_priority: bool,
    prereleases: bool,
    advisories: bool,
    index_url: str | None,
    osv_url: str | None,
) -> tuple[Any, Any]:
    import asyncio

    from contexten.analysis.deps import DependencyFileError, PlanError, PlanPolicy, check_strategy
    from contexten.config import get_settings
    from contexten.depsources.project import load_project
    from contexten.integrations.packages import PackageIndexError, VulnerabilityDatabaseError

    try:
        chosen = check_strategy(strategy)
    except PlanError as exc:
        fail(f"--strategy: {exc}")
    try:
        loaded = load_project(path)
    except DependencyFileError as exc:
        fail(str(exc))
    settings = get_settings()
    policy = PlanPolicy(
        strategy=chosen,
        security_priority=security_priority,
        cooldown_days=cooldown_days,
        allow_prereleases=prereleases,
    )
    try:
        plan = asyncio.run(
            _fetch_and_plan(loaded.project, settings, policy, advisories, index_url, osv_url)
        )
    except (PackageIndexError, VulnerabilityDatabaseError) as exc:
        fail(str(exc), code=EXIT_FAILED)
    except PlanError as exc:
        fail(str(exc))
    return loaded, plan


async def _fetch_and_plan(
    project: Any,
    settings: Any,
    policy: Any,
    advisories: bool,
    index_url: str | None,
    osv_url: str | None,
) -> Any:
    from contexten.depsources.planning import build_plan
    from contexten.integrations.http import RetryPolicy
    from contexten.integrations.osv import OSVDatabase
    from contexten.integrations.pypi import PyPIJsonIndex

    retry = RetryPolicy.from_settings(settings)
    index = PyPIJsonIndex(index_url or settings.pypi_index_url, policy=retry)
    database = OSVDatabase(osv_url or settings.osv_api_url, policy=retry) if advisories else None
    try:
        return await build_plan(project, index, database, policy, advisories_optional=True)
    finally:
        await index.aclose()
        if database is not None:
            await database.aclose()


def _print_plan(plan: Any) -> None:
    from rich.text import Text

    from contexten.commands._common import console, print_table

    out = console()
    unchecked = " (advisories: NOT CHECKED)" if plan.advisories_not_checked else ""
    if not plan.items:
        out.print(f"Everything is up to date ({plan.strategy}){unchecked}.")
        return
    colours = {"apply": "green", "hold": "yellow", "manual": "red"}
    rows = []
    for item in plan.items:
        known = ", ".join(a.id for a in item.advisories) or "-"
        rows.append(
            (
                Text(item.name, style="bold red" if item.security else ""),
                item.current or "-",
                item.target or item.latest or "-",
                (item.kind or "-") + (" (breaking)" if item.breaking else ""),
                Text(item.action, style=colours[item.action]),
                "not checked" if plan.advisories_not_checked else known,
                item.reason,
            )
        )
    print_table(
        f"Dependency updates ({plan.strategy}){unchecked}",
        ("Package", "Current", "Target", "Update", "Action", "Advisories", "Why"),
        rows,
        wrap=[5, 6],
    )
    for item in plan.items:
        for advisory in item.advisories:
            fixed = ", ".join(advisory.fixed_versions) or "no fix yet"
            out.print(
                f"  {item.name} {item.current}: {advisory.id} ({advisory.severity}; "
                f"fixed in {fixed}) {advisory.summary}",
                markup=False,
            )


@app.command("plan")
def plan_command(
    path: Path = PATH_ARGUMENT,
    strategy: str = STRATEGY,
    cooldown_days: int = COOLDOWN,
    security_priority: bool = SECURITY_PRIORITY,
    prereleases: bool = PRERELEASES,
    advisories: bool = ADVISORIES,
    index_url: str | None = INDEX_URL,
    osv_url: str | None = OSV_URL,
    as_json: bool = AS_JSON,
    markdown: bool = typer.Option(False, "--markdown", help="print the pull-request body"),
) -> None:
    """Show what would be updated and why, with known vulnerabilities."""
    from contexten.analysis.deps import plan_markdown, plan_to_dict

    _loaded, plan = _plan(
        path,
        strategy,
        cooldown_days,
        security_priority,
        prereleases,
        advisories,
        index_url,
        osv_url,
    )
    _warn_if_unchecked(plan)
    if as_json:
        print_json(plan_to_dict(plan))
    elif markdown:
        typer.echo(plan_markdown(plan), nl=False)
    else:
        _print_plan(plan)


def _warn_if_unchecked(plan: Any) -> None:
    """One line on stderr when the advisory service could not be asked (the plan still
    printed; its vulnerable packages may be missing)."""
    if plan.advisories_not_checked:
        print(
            "contexten: warning: known vulnerabilities were not checked "
            f"({plan.advisories_not_checked}); the plan is from the package index alone. "
            "Run again when the advisory service (OSV_API_URL) is reachable",
            file=sys.stderr,
        )


def _run_tests(command: str, cwd: Path) -> tuple[bool, str]:
    """The workflow's runner: environment without our credentials, output redacted."""
    from contexten.config import get_settings
    from contexten.workflows.base import WorkflowError
    from contexten.workflows.dependency_management import run_suite_command

    try:
        run = run_suite_command(command, cwd, get_settings(), TEST_TIMEOUT_SECONDS)
    except WorkflowError as exc:
        fail(f"--{exc}".replace("--test_command", "--test-command", 1))
    return run.passed, run.output_tail


@app.command("apply")
def apply_command(
    path: Path = PATH_ARGUMENT,
    strategy: str = STRATEGY,
    cooldown_days: int = COOLDOWN,
    security_priority: bool = SECURITY_PRIORITY,
    prereleases: bool = PRERELEASES,
    advisories: bool = ADVISORIES,
    index_url: str | None = INDEX_URL,
    osv_url: str | None = OSV_URL,
    dry_run: bool = typer.Option(False, "--dry-run", help="print a diff; change nothing"),
    test_command: str | None = typer.Option(
        None, "--test-command", help="run after applying; on failure put the files back"
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Write the plan's updates into the dependency files."""
    import difflib

    from contexten.analysis.deps import PlanError, apply_plan, plan_to_dict
    from contexten.depsources.project import write_files

    loaded, plan = _plan(
        path,
        strategy,
        cooldown_days,
        security_priority,
        prereleases,
        advisories,
        index_url,
        osv_url,
    )
    _warn_if_unchecked(plan)
    try:
        changed = apply_plan(plan, loaded.texts)
    except PlanError as exc:
        fail(str(exc))
    result: dict[str, Any] = {
        "plan": plan_to_dict(plan),
        "changed_files": sorted(changed),
        "written": False,
        "tests": None,
    }
    if dry_run:
        diff = "".join(
            "".join(
                difflib.unified_diff(
                    loaded.texts[name].splitlines(keepends=True),
                    changed[name].splitlines(keepends=True),
                    fromfile=f"a/{name}",
                    tofile=f"b/{name}",
                )
            )
            for name in sorted(changed)
        )
        result["diff"] = diff
        if as_json:
            print_json(result)
        else:
            typer.echo(diff or "No changes.", nl=not diff)
        return
    write_files(loaded.root, changed)
    result["written"] = bool(changed)
    if test_command and changed:
        passed, tail = _run_tests(test_command, loaded.root)
        result["tests"] = {"command": test_command, "passed": passed, "output_tail": tail}
        if not passed:
            write_files(loaded.root, {name: loaded.texts[name] for name in changed})
            result["written"] = False
    if as_json:
        print_json(result)
    else:
        _print_plan(plan)
        if changed:
            typer.echo(f"Updated: {', '.join(sorted(changed))}")
        else:
            typer.echo("No changes to write.")
        if result["tests"] and not result["tests"]["passed"]:
            typer.echo(f"Tests failed; files restored.\n{result['tests']['output_tail']}")
    if result["tests"] and not result["tests"]["passed"]:
        raise typer.Exit(EXIT_FAILED)
