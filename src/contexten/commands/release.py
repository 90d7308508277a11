"""`contexten release plan [PATH]`: the next version and changelog from conventional commits.

Reads the commits since the last `<prefix>X.Y.Z` tag reachable from HEAD. Drafting the
GitHub release is the release_management workflow's job (`contexten execute -o
release_management`), so this command changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from contexten.commands._common import fail, print_json

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Next version and changelog.")


@app.callback()
def release() -> None:
    """Next version and changelog from conventional commits."""


@app.command("plan")
def plan_command(
    path: Path = typer.Argument(Path("."), help="git repository"),
    tag_prefix: str = typer.Option("v", "--tag-prefix", help="tags look like <prefix>1.2.3"),
    breaking_pre_major: str = typer.Option(
        "minor", "--breaking-pre-major", help="below 1.0.0 a breaking change bumps: minor|major"
    ),
    feat_pre_major: str = typer.Option(
        "minor", "--feat-pre-major", help="below 1.0.0 a feature bumps: minor|patch"
    ),
    initial_version: str | None = typer.Option(
        None, "--initial-version", help="the first version when there is no tag yet"
    ),
    all_types: bool = typer.Option(
        False, "--all-types", help="also list docs, chore, ci, ... in the changelog"
    ),
    repo_url: str | None = typer.Option(
        None, "--repo-url", help="https://github.com/owner/name, for links in the changelog"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
) -> None:
    """Print the next version and its changelog. Exit 0 also when no release is due."""
    from contexten.analysis.release import ReleaseError, ReleasePolicy, plan_release, plan_to_dict
    from contexten.workflows.base import WorkflowError
    from contexten.workflows.release_management import read_history

    if breaking_pre_major not in ("minor", "major"):
        fail(f"--breaking-pre-major must be minor or major, got {breaking_pre_major!r}")
    if feat_pre_major not in ("minor", "patch"):
        fail(f"--feat-pre-major must be minor or patch, got {feat_pre_major!r}")
    try:
        tag, commits, head = read_history(path, tag_prefix)
    except WorkflowError as exc:
        fail(str(exc))
    policy = ReleasePolicy(
        breaking_pre_major="major" if breaking_pre_major == "major" else "minor",
        feat_pre_major="patch" if feat_pre_major == "patch" else "minor",
        initial_version=initial_version,
        show_all_types=all_types,
    )
    try:
        plan = plan_release(
            commits,
            tag,
            tag_prefix=tag_prefix,
            policy=policy,
            date=datetime.now(UTC).date().isoformat(),
            repo_url=repo_url.rstrip("/") if repo_url else None,
        )
    except ReleaseError as exc:
        fail(str(exc))
    if as_json:
        print_json({**plan_to_dict(plan), "head": head})
        return
    since = f"since {tag}" if tag else "(no tag yet)"
    if not plan.releasable:
        typer.echo(
            f"No release due: {len(commits)} commit(s) {since}, no feat/fix/breaking change."
        )
        return
    typer.echo(f"{plan.previous_version or 'none'} -> {plan.version} ({plan.bump}) {since}")
    typer.echo("")
    typer.echo(plan.changelog, nl=False)
