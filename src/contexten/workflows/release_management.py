"""The release_management workflow body.

Reads the commits since the last `<tag_prefix>X.Y.Z` tag reachable from HEAD (git, in
`path`), computes the next version and a grouped changelog from conventional commits
(`contexten.analysis.release`), and with `draft` (the default) drafts a GitHub release for
the new tag through the GitHub client: a draft a person reviews and publishes, never a
published release. The draft is made once per repository and tag (action ledger).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from contexten.analysis.release import (
    Commit,
    ReleaseError,
    ReleasePlan,
    ReleasePolicy,
    latest_tag,
    plan_release,
    plan_to_dict,
)
from contexten.catalog import ReleaseManagementParameters
from contexten.workflows.base import WorkflowContext, WorkflowError, WorkflowOutcome, ci_provider
from contexten.workflows.dependency_management import GitError, git

if TYPE_CHECKING:
    from contexten.integrations.interface import CIProvider

MAX_COMMITS = 10_000
_FIELD, _RECORD = "\x1f", "\x1e"


def read_history(path: Path | str, tag_prefix: str) -> tuple[str | None, list[Commit], str]:
    """(last tag or None, commits since it newest first, HEAD sha) of the repository at path."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise WorkflowError(f"{root}: not a directory")
    try:
        git(root, "rev-parse", "--show-toplevel")
    except GitError:
        raise WorkflowError(f"{root}: not a git repository") from None
    try:
        head = git(root, "rev-parse", "--verify", "HEAD").strip()
    except GitError:
        raise WorkflowError(f"{root}: the repository has no commits yet") from None
    tags = git(root, "tag", "--list", f"{tag_prefix}*", "--merged", "HEAD").splitlines()
    found = latest_tag(tags, tag_prefix)
    tag = found[0] if found else None
    revision = f"{tag}..HEAD" if tag else "HEAD"
    log = git(
        root,
        "log",
        "--no-merges",
        f"-n{MAX_COMMITS}",
        f"--format=%H{_FIELD}%s{_FIELD}%b{_RECORD}",
        revision,
        "--",
    )
    commits: list[Commit] = []
    for record in log.split(_RECORD):
        fields = record.strip("\n").split(_FIELD)
        if len(fields) == 3 and fields[0]:
            commits.append(Commit(fields[0].strip(), fields[1], fields[2].strip()))
    return tag, commits, head


def web_url(api_url: str, repo: str) -> str:
    """The repository's web address from the API base (api.github.com or GHES /api/v3)."""
    parsed = urlparse(api_url)
    host = parsed.netloc
    if host == "api.github.com":
        return f"https://github.com/{repo}"
    base = parsed.path.rstrip("/")
    base = base[: -len("/api/v3")] if base.endswith("/api/v3") else base
    return f"{parsed.scheme}://{host}{base}/{repo}"


async def draft_release(
    ci: CIProvider, ctx: WorkflowContext, repo: str, plan: ReleasePlan, head: str
) -> dict[str, Any]:
    from contexten.integrations.idempotency import ActionLedger, idempotency_key

    assert plan.tag is not None  # only releasable plans are drafted
    tag = plan.tag
    key = idempotency_key("release-draft", repo, tag)

    async def perform() -> dict[str, Any]:
        release = await ci.create_release(
            repo,
            tag_name=tag,
            name=tag,
            body=plan.changelog,
            target_commitish=head,
            draft=True,
            prerelease=bool(plan.version and plan.version.prerelease),
        )
        return {"id": release.id, "tag": release.tag_name, "html_url": release.html_url}

    return await ActionLedger(ctx.store).once(key, "release_draft", repo, perform)


async def run(
    params: ReleaseManagementParameters, ctx: WorkflowContext, *, ci: CIProvider | None = None
) -> WorkflowOutcome:
    tag, commits, head = read_history(params.path, params.tag_prefix)
    repo = params.repository or ctx.settings.github_repository
    repo_url = web_url(ctx.settings.github_api_url, repo) if repo else None
    try:
        plan = plan_release(
            commits,
            tag,
            tag_prefix=params.tag_prefix,
            policy=ReleasePolicy(),
            date=datetime.now(UTC).date().isoformat(),
            repo_url=repo_url,
        )
    except ReleaseError as exc:
        raise WorkflowError(str(exc)) from None
    data: dict[str, Any] = {"plan": plan_to_dict(plan), "head": head, "release": None}
    since = f"since {tag}" if tag else "in the whole history"
    if not plan.releasable:
        summary = (
            f"no release: {len(commits)} commit(s) {since}, none is a feat, fix or breaking change"
        )
        return WorkflowOutcome(True, summary, markdown=f"{summary}\n", data=data)
    counted = f"{len(plan.commits)} conventional commit(s) {since}"
    summary = f"next version {plan.version} ({plan.bump} bump, {counted})"
    if not params.draft:
        return WorkflowOutcome(True, summary, markdown=plan.changelog, data=data)
    if not repo:
        return WorkflowOutcome(
            True,
            f"{summary}; no repository (parameter or GITHUB_REPOSITORY), so no draft release",
            markdown=plan.changelog,
            data=data,
        )
    own_ci = ci is None
    ci = ci or ci_provider(ctx)
    try:
        release = await draft_release(ci, ctx, repo, plan, head)
    finally:
        if own_ci:
            await ci.aclose()
    data["release"] = release
    return WorkflowOutcome(
        True,
        f"{summary}; draft release {release['tag']}: {release['html_url']}",
        markdown=plan.changelog,
        data=data,
    )
