"""The dependency_management workflow: plan, test on a branch, one PR, against the GitHub
sandbox and a local package index over real sockets on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexten.config import Settings
from contexten.depsources.local_index import LocalIndexServer, osv_record, project_document
from contexten.orchestration.workflows import DependencyManagementParameters
from contexten.sandbox.testing import running_sandbox
from contexten.store import open_store
from contexten.workflows.base import WorkflowContext, WorkflowError
from contexten.workflows.dependency_management import run

REPO = "acme/app"
PYPROJECT = """\
[project]
name = "app"
dependencies = [
    "web==1.0.0",  # framework
    "util>=1,<2",
]
"""
REQUIREMENTS = "# pinned for CI\nutil==1.0.0\n"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def index() -> Iterator[LocalIndexServer]:
    projects = {
        "web": project_document("web", {"1.0.0": {}, "1.0.3": {}, "1.2.0": {}, "2.0.0": {}}),
        "util": project_document("util", {"1.0.0": {}, "1.5.0": {}}),
    }
    vulns = [osv_record("GHSA-web", "web", fixed="1.0.3", severity="HIGH", summary="XSS")]
    with LocalIndexServer(projects, vulns) as server:
        yield server


@pytest.fixture
def sandbox() -> Iterator[Any]:
    with running_sandbox(services=("github",)) as server:
        yield server


def make_checkout(root: Path, subdir: str = "") -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    project = root / subdir if subdir else root
    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "requirements.txt").write_text(REQUIREMENTS)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return project


def context(tmp_path: Path, index: LocalIndexServer, sandbox: Any | None) -> WorkflowContext:
    values: dict[str, Any] = {
        "contexten_home": tmp_path / "home",
        "pypi_index_url": index.pypi_url,
        "osv_api_url": index.url,
        "http_max_attempts": 1,
    }
    if sandbox is not None:
        values.update(
            github_api_url=sandbox.github_url,
            github_token=sandbox.env()["GITHUB_TOKEN"],
            github_repository=REPO,
        )
    settings = Settings(**values)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    return WorkflowContext(settings=settings, store=store, run_id="test-run")


def seed_remote(sandbox: Any, subdir: str = "") -> None:
    prefix = f"{subdir}/" if subdir else ""
    sandbox.state.github.add_repo(
        REPO,
        files={f"{prefix}pyproject.toml": PYPROJECT, f"{prefix}requirements.txt": REQUIREMENTS},
    )


def params(project: Path, **extra: Any) -> DependencyManagementParameters:
    return DependencyManagementParameters(path=str(project), **extra)


async def test_plan_only_reports_and_changes_nothing(
    tmp_path: Path, index: LocalIndexServer
) -> None:
    project = make_checkout(tmp_path / "checkout")
    outcome = await run(params(project), context(tmp_path, index, None))
    assert outcome.ok
    assert outcome.summary.startswith("2 update(s) to apply (smart)")
    assert "1 vulnerable package(s), 0 without an automatic fix" in outcome.summary
    items = {i["name"]: i for i in outcome.data["plan"]["items"]}
    assert items["web"]["target"] == "1.2.0" and items["web"]["fixes"] == ["GHSA-web"]
    assert outcome.tables[0].rows[0][0] == "web"
    assert "| web | 1.0.0 | 1.2.0 | minor | pyproject.toml | GHSA-web |" in outcome.markdown
    assert (project / "pyproject.toml").read_text() == PYPROJECT


async def test_create_pr_tests_then_opens_one_pr(
    tmp_path: Path, index: LocalIndexServer, sandbox: Any
) -> None:
    seed_remote(sandbox)
    project = make_checkout(tmp_path / "checkout")
    ctx = context(tmp_path, index, sandbox)
    # the test command checks the updated files, and that no credential reached it
    check = (
        "import os, sys, pathlib; "
        "text = pathlib.Path('pyproject.toml').read_text(); "
        "sys.exit(0 if 'web==1.2.0' in text and not os.environ.get('GITHUB_TOKEN') else 1)"
    )
    command = f'{sys.executable} -c "{check}"'
    outcome = await run(params(project, create_pr=True, test_command=command), ctx)
    assert outcome.ok, outcome.summary
    pr = outcome.data["pull_request"]
    assert pr["new"] is True and pr["head"].startswith("contexten/deps-")
    assert outcome.data["tests"]["passed"] is True
    repo = sandbox.state.github.repo(REPO)
    pulls = list(repo.pulls.values())
    assert len(pulls) == 1
    assert pulls[0].title == "fix(deps): update 2 dependencies (1 security)"
    assert "| web | 1.0.0 | 1.2.0 | minor | pyproject.toml | GHSA-web |" in (pulls[0].body or "")
    assert "Tests passed with these updates" in (pulls[0].body or "")
    files = repo.files_at(pr["head"])
    assert files["pyproject.toml"].decode() == PYPROJECT.replace("web==1.0.0", "web==1.2.0")
    assert files["requirements.txt"].decode() == "# pinned for CI\nutil==1.5.0\n"
    # the user's checkout is untouched; the tested commit is on a local branch
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    shown = git(project, "show", f"{pr['head']}:pyproject.toml")
    assert "web==1.2.0" in shown

    again = await run(params(project, create_pr=True, test_command=command), ctx)
    assert again.ok and again.data["pull_request"]["number"] == pr["number"]
    assert again.data["pull_request"]["new"] is False
    assert "already exists for this plan" in again.summary
    assert len(repo.pulls) == 1


async def test_failing_tests_open_no_pr(
    tmp_path: Path, index: LocalIndexServer, sandbox: Any
) -> None:
    seed_remote(sandbox)
    project = make_checkout(tmp_path / "checkout")
    ctx = context(tmp_path, index, sandbox)
    command = f"{sys.executable} -c \"import sys; print('2 failed'); sys.exit(1)\""
    outcome = await run(params(project, create_pr=True, test_command=command), ctx)
    assert not outcome.ok
    assert "tests failed with the updates" in outcome.summary and "no PR opened" in outcome.summary
    assert "2 failed" in outcome.data["tests"]["output_tail"]
    assert "### Tests failed" in outcome.markdown
    repo = sandbox.state.github.repo(REPO)
    assert repo.pulls == {} and list(repo.branches) == ["main"]


async def test_project_in_a_subdirectory_without_tests(
    tmp_path: Path, index: LocalIndexServer, sandbox: Any
) -> None:
    seed_remote(sandbox, "services/api")
    project = make_checkout(tmp_path / "mono", "services/api")
    ctx = context(tmp_path, index, sandbox)
    outcome = await run(params(project, create_pr=True, test_before_merge=False), ctx)
    assert outcome.ok and outcome.data["tests"] is None
    repo = sandbox.state.github.repo(REPO)
    files = repo.files_at(outcome.data["pull_request"]["head"])
    assert b"web==1.2.0" in files["services/api/pyproject.toml"]


async def test_remote_that_differs_is_an_error(
    tmp_path: Path, index: LocalIndexServer, sandbox: Any
) -> None:
    sandbox.state.github.add_repo(
        REPO, files={"pyproject.toml": "[project]\n", "requirements.txt": "util==0.1\n"}
    )
    project = make_checkout(tmp_path / "checkout")
    ctx = context(tmp_path, index, sandbox)
    with pytest.raises(WorkflowError, match="differs from the local checkout"):
        await run(params(project, create_pr=True, test_before_merge=False), ctx)


async def test_bad_inputs_are_workflow_errors(tmp_path: Path, index: LocalIndexServer) -> None:
    ctx = context(tmp_path, index, None)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pyproject.toml").write_text("[project\n")
    with pytest.raises(WorkflowError, match=r"pyproject\.toml: not valid TOML"):
        await run(params(broken), ctx)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "requirements.txt").write_text("web==1.0.0\n")
    with pytest.raises(WorkflowError, match="create_pr needs a repository"):
        await run(params(plain, create_pr=True), ctx)
    with pytest.raises(WorkflowError, match="create_pr needs a git repository"):
        await run(params(plain, create_pr=True, repository=REPO), ctx)


def test_unknown_strategy_is_rejected_by_the_parameters() -> None:
    from contexten.orchestration.workflows import WorkflowParameterError, validate_parameters

    with pytest.raises(WorkflowParameterError, match="update_strategy"):
        validate_parameters("dependency_management", {"update_strategy": "yolo"})


async def test_closed_pr_for_the_same_plan_is_not_reopened(
    tmp_path: Path, index: LocalIndexServer, sandbox: Any
) -> None:
    seed_remote(sandbox)
    project = make_checkout(tmp_path / "checkout")
    first = await run(
        params(project, create_pr=True, test_before_merge=False),
        context(tmp_path / "one", index, sandbox),
    )
    repo = sandbox.state.github.repo(REPO)
    (pull,) = repo.pulls.values()
    pull.state = "closed"  # a person closed it
    # another worker with its own store: only the remote lookup can prevent a duplicate
    second = await run(
        params(project, create_pr=True, test_before_merge=False),
        context(tmp_path / "two", index, sandbox),
    )
    assert second.data["pull_request"]["number"] == first.data["pull_request"]["number"]
    assert len(repo.pulls) == 1
