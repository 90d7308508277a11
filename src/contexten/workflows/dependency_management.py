"""The dependency_management workflow body.

1. Read the project's dependency files (`path`), fetch releases and advisories, plan by
   `update_strategy` (see `contexten.analysis.deps`).
2. Report the plan (a table of changes and advisories).
3. With `create_pr`: commit the changes on a local branch `contexten/deps-<plan key>` in a
   separate git worktree (the user's checkout is never touched), run the test command there
   when `test_before_merge`, and only if it passes push the same changes through the GitHub
   client and open one pull request against the checkout's current branch (the remote copy
   of each file gets the same rewrites, so a remote that differs is an error). The branch
   name and the action ledger key both come from the plan, so a second run of the same plan
   finds the first PR (open or closed) instead of opening another.

The test command runs the project's own code with new dependency versions: it gets an
environment without our credentials, and its output is redacted before it is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from contexten.analysis.deps import (
    DependencyFileError,
    PlanError,
    PlanPolicy,
    UpdatePlan,
    apply_plan,
    plan_markdown,
    plan_to_dict,
    pull_request_title,
)
from contexten.catalog import DependencyManagementParameters
from contexten.workflows.base import (
    Table,
    WorkflowContext,
    WorkflowError,
    WorkflowOutcome,
    ci_provider,
)

if TYPE_CHECKING:
    from contexten.integrations.interface import CIProvider
    from contexten.integrations.packages import PackageIndex, VulnerabilityDatabase

DEFAULT_TEST_COMMAND = "python -m pytest -q"
OUTPUT_TAIL_LINES = 40
GIT_TIMEOUT_SECONDS = 120
BRANCH_PREFIX = "contexten/deps-"
# Environment variables never handed to the project's test command.
SECRET_ENV_NAMES = frozenset(
    {
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GITHUB_APP_PRIVATE_KEY",
        "GITHUB_WEBHOOK_SECRET",
        "CODEGEN_TOKEN",
        "SLACK_WEBHOOK_URL",
        "SLACK_BOT_TOKEN",
        "LINEAR_API_KEY",
        "PREFECT_API_KEY",
        "DATABASE_URL",
    }
)


@dataclass(frozen=True, slots=True)
class SuiteRun:
    command: str
    passed: bool
    exit_code: int | None
    output_tail: str


class GitError(WorkflowError):
    """A git command in the target repository failed."""


def git(cwd: Path, *args: str, timeout: float = GIT_TIMEOUT_SECONDS) -> str:
    """Run git in `cwd`; its stdout, or GitError with git's first error line."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f}s") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise GitError(f"git {args[0]} failed in {cwd}: {detail[0] if detail else done.returncode}")
    return done.stdout


def suite_environment(settings: Any) -> dict[str, str]:
    """Our environment without credentials, for running someone else's code."""
    secrets = set(settings.secret_values())
    return {
        name: value
        for name, value in os.environ.items()
        if name not in SECRET_ENV_NAMES and value not in secrets
    }


def _redact(text: str, settings: Any) -> str:
    from contexten.integrations.redaction import redact

    return redact(text, settings.secret_values())


def run_suite_command(command: str, cwd: Path, settings: Any, timeout: float) -> SuiteRun:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise WorkflowError(f"test_command {command!r} cannot be split: {exc}") from None
    if not argv:
        raise WorkflowError("test_command is empty")
    from contexten.limits import from_settings, limited_argv

    try:
        done = subprocess.run(
            limited_argv(argv, from_settings(settings)),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=suite_environment(settings),
        )
    except FileNotFoundError:
        raise WorkflowError(f"test_command: {argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        return SuiteRun(command, False, None, f"timed out after {timeout:.0f}s")
    lines = (done.stdout + done.stderr).strip().splitlines()
    tail = _redact("\n".join(lines[-OUTPUT_TAIL_LINES:]), settings)
    return SuiteRun(command, done.returncode == 0, done.returncode, tail)


def run_suite_on_branch(
    repo_root: Path,
    subdir: str,
    branch: str,
    changed: dict[str, str],
    message: str,
    command: str,
    settings: Any,
) -> SuiteRun:
    """Commit `changed` on `branch` in a temporary worktree and run the tests there."""
    from contexten.depsources.project import write_files

    scratch = Path(tempfile.mkdtemp(prefix="contexten-deps-"))
    worktree = scratch / "worktree"
    try:
        git(repo_root, "worktree", "prune")  # forget worktrees of runs that died
        git(repo_root, "worktree", "add", "--quiet", "-B", branch, str(worktree), "HEAD")
        project = worktree / subdir if subdir else worktree
        written = write_files(project, changed)
        paths = [(PurePosixPath(subdir) / w).as_posix() if subdir else w for w in written]
        git(worktree, "add", "--", *paths)
        git(
            worktree,
            "-c",
            "user.name=contexten",
            "-c",
            "user.email=contexten@users.noreply.github.com",
            "commit",
            "--quiet",
            "--no-verify",
            "-m",
            message,
        )
        return run_suite_command(
            command, project, settings, float(settings.workflow_default_timeout)
        )
    finally:
        # the scratch directory goes below either way; `git worktree prune` tidies up
        with contextlib.suppress(GitError):
            git(repo_root, "worktree", "remove", "--force", str(worktree))
        shutil.rmtree(scratch, ignore_errors=True)


def _table(plan: UpdatePlan) -> Table:
    rows = tuple(
        (
            i.name,
            i.current or "-",
            i.target or i.latest or "-",
            (i.kind or "-") + (" (breaking)" if i.breaking else ""),
            i.action,
            ", ".join(a.id for a in i.advisories) or "-",
            i.reason,
        )
        for i in plan.items
    )
    return Table(
        ("package", "current", "target", "update", "action", "advisories", "why"),
        rows,
        title=f"Dependency updates ({plan.strategy})",
    )


def _summary(plan: UpdatePlan) -> str:
    applied = plan.applicable
    vulnerable = [i for i in plan.items if i.security]
    unfixed = [i for i in vulnerable if i.action != "apply"]
    parts = [f"{len(applied)} update(s) to apply ({plan.strategy})"]
    held = len(plan.items) - len(applied)
    if held:
        parts.append(f"{held} not applied")
    if vulnerable:
        parts.append(
            f"{len(vulnerable)} vulnerable package(s), {len(unfixed)} without an automatic fix"
        )
    return "; ".join(parts)


async def open_pull_request(
    ci: CIProvider,
    ctx: WorkflowContext,
    *,
    repo: str,
    base: str,
    branch: str,
    subdir: str,
    plan: UpdatePlan,
    body: str,
) -> dict[str, Any]:
    """Create the branch from `base`, put the updated files, open the PR: once per plan."""
    from contexten.integrations.idempotency import ActionLedger, idempotency_key, marker
    from contexten.integrations.interface import CIProviderError

    key = idempotency_key("dependency-pr", repo, plan.key)
    title = pull_request_title(plan)
    files = sorted({r.file for i in plan.applicable for r in i.rewrites})

    def remote(path: str) -> str:
        return (PurePosixPath(subdir) / path).as_posix() if subdir else path

    async def find_existing() -> dict[str, Any] | None:
        found = await ci.find_pull_request(repo, head=branch, state="all")
        if found is None:
            return None
        return {"number": found.number, "html_url": found.html_url, "head": branch, "new": False}

    async def perform() -> dict[str, Any]:
        base_ref = await ci.get_ref(repo, f"heads/{base}")
        await ci.create_branch(repo, branch, base_ref.sha)
        originals: dict[str, str] = {}
        for path in files:
            found = await ci.get_file(repo, remote(path), ref=base_ref.sha)
            originals[path] = found.content.decode("utf-8")
        try:
            updated = apply_plan(plan, originals)
        except PlanError as exc:
            raise WorkflowError(f"{repo}@{base} differs from the local checkout: {exc}") from None
        for path, text in sorted(updated.items()):
            content = text.encode("utf-8")
            try:
                current = await ci.get_file(repo, remote(path), ref=branch)
                sha: str | None = current.sha
                if current.content == content:
                    continue  # an earlier attempt put it already
            except CIProviderError as exc:
                if not exc.not_found:
                    raise
                sha = None
            await ci.put_file(
                repo, remote(path), content, message=f"{title}\n\n{path}", branch=branch, sha=sha
            )
        pr = await ci.create_pull_request(
            repo, head=branch, base=base, title=title, body=f"{body}\n{marker(key)}\n"
        )
        return {"number": pr.number, "html_url": pr.html_url, "head": branch, "new": True}

    existing = await find_existing()
    if existing is not None:
        return existing
    ledger = ActionLedger(ctx.store)
    return await ledger.once(key, "dependency_pr", repo, perform, find_existing)


def _default_branch(repo_root: Path) -> str:
    try:
        name = git(repo_root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    except GitError:
        return "main"
    return name if name and name != "HEAD" else "main"


def plan_cache_key(texts: dict[str, str], policy: PlanPolicy, settings: Any) -> str:
    """The dependency files' contents, the policy, the sources and today's date."""
    import hashlib
    import json
    from datetime import UTC, datetime

    digest = hashlib.sha256(
        json.dumps(
            [
                sorted(texts.items()),
                repr(policy),
                settings.pypi_index_url,
                settings.osv_api_url,
                datetime.now(UTC).date().isoformat(),
            ]
        ).encode()
    ).hexdigest()
    return f"dependency-plan:{digest}"


async def run(
    params: DependencyManagementParameters,
    ctx: WorkflowContext,
    *,
    ci: CIProvider | None = None,
    index: PackageIndex | None = None,
    vulnerabilities: VulnerabilityDatabase | None = None,
) -> WorkflowOutcome:
    from contexten.depsources.planning import build_plan
    from contexten.depsources.project import load_project
    from contexten.integrations.osv import OSVDatabase
    from contexten.integrations.pypi import PyPIJsonIndex

    try:
        loaded = load_project(params.path)
    except DependencyFileError as exc:
        raise WorkflowError(str(exc)) from None
    policy = PlanPolicy(
        strategy=params.update_strategy,
        security_priority=params.security_priority,
        cooldown_days=params.cooldown_days,
    )
    own_index = index is None
    own_database = vulnerabilities is None
    index = index or PyPIJsonIndex.from_settings(ctx.settings)
    vulnerabilities = vulnerabilities or OSVDatabase.from_settings(ctx.settings)
    try:
        # the plan of a lock file, an index and a day: computed once (cached in Prefect)
        plan = await ctx.step(
            "plan",
            functools.partial(build_plan, loaded.project, index, vulnerabilities, policy),
            cache_key=plan_cache_key(loaded.texts, policy, ctx.settings),
            cache_days=1.0,
        )
    finally:
        if own_index:
            await index.aclose()
        if own_database:
            await vulnerabilities.aclose()

    report = plan_markdown(plan)
    data: dict[str, Any] = {"plan": plan_to_dict(plan), "pull_request": None, "tests": None}
    summary = _summary(plan)
    ctx.logger.info("dependency plan %s: %s", plan.key[:12], summary)
    tables = (_table(plan),)
    if not params.create_pr or not plan.applicable:
        return WorkflowOutcome(True, summary, markdown=report, data=data, tables=tables)

    repo = params.repository or ctx.settings.github_repository
    if not repo:
        raise WorkflowError("create_pr needs a repository (parameter or GITHUB_REPOSITORY)")
    try:
        repo_root = Path(git(loaded.root, "rev-parse", "--show-toplevel").strip())
    except GitError as exc:
        raise WorkflowError(f"create_pr needs a git repository at {params.path}: {exc}") from None
    subdir = (
        ""
        if loaded.root == repo_root.resolve()
        else loaded.root.relative_to(repo_root.resolve()).as_posix()
    )
    branch = f"{BRANCH_PREFIX}{plan.key[:12]}"
    own_ci = ci is None
    ci = ci or ci_provider(ctx)
    try:
        existing = await ci.find_pull_request(repo, head=branch, state="all")
        if existing is not None:
            data["pull_request"] = {
                "number": existing.number,
                "html_url": existing.html_url,
                "head": branch,
                "new": False,
            }
            return WorkflowOutcome(
                True,
                f"{summary}; PR #{existing.number} already exists for this plan",
                markdown=report,
                data=data,
                tables=tables,
            )
        changed = apply_plan(plan, loaded.texts)
        body = report
        if params.test_before_merge:
            command = params.test_command or DEFAULT_TEST_COMMAND
            ctx.logger.info("testing %d changed file(s) on %s: %s", len(changed), branch, command)
            tests = await asyncio.to_thread(
                run_suite_on_branch,
                repo_root,
                subdir,
                branch,
                changed,
                pull_request_title(plan),
                command,
                ctx.settings,
            )
            data["tests"] = {
                "command": tests.command,
                "passed": tests.passed,
                "exit_code": tests.exit_code,
                "output_tail": tests.output_tail,
            }
            if not tests.passed:
                failed = f"{report}\n### Tests failed\n\n```\n{tests.output_tail}\n```\n"
                return WorkflowOutcome(
                    False,
                    f"{summary}; tests failed with the updates (`{command}`); no PR opened",
                    markdown=failed,
                    data=data,
                    tables=tables,
                )
            body = f"{report}\nTests passed with these updates: `{command}`.\n"
        pr = await open_pull_request(
            ci,
            ctx,
            repo=repo,
            base=params.base_branch or _default_branch(repo_root),
            branch=branch,
            subdir=subdir,
            plan=plan,
            body=body,
        )
    except PlanError as exc:
        raise WorkflowError(str(exc)) from None
    finally:
        if own_ci:
            await ci.aclose()
    data["pull_request"] = pr
    verb = "opened" if pr.get("new") else "found"
    return WorkflowOutcome(
        True,
        f"{summary}; PR #{pr['number']} {verb}: {pr['html_url']}",
        markdown=report,
        data=data,
        tables=tables,
    )
