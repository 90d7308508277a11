"""The release_management workflow: version and changelog from git, a draft release in the
GitHub sandbox (real client, real sockets), made once per tag."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexten.config import Settings
from contexten.orchestration.workflows import ReleaseManagementParameters
from contexten.sandbox.testing import running_sandbox
from contexten.store import open_store
from contexten.workflows.base import WorkflowContext, WorkflowError
from contexten.workflows.release_management import run, web_url

REPO = "acme/tool"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def commit(repo: Path, subject: str, body: str = "") -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", subject, *(["-m", body] if body else []))


@pytest.fixture
def sandbox() -> Iterator[Any]:
    with running_sandbox(services=("github",)) as server:
        server.state.github.add_repo(REPO, files={"README.md": "tool\n"})
        yield server


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "tool"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "feat: initial")
    git(root, "tag", "v1.1.0")
    commit(root, "fix: off by one")
    commit(root, "feat(cli): add --json", "Closes #7")
    return root


def context(tmp_path: Path, sandbox: Any | None) -> WorkflowContext:
    values: dict[str, Any] = {"contexten_home": tmp_path / "home"}
    if sandbox is not None:
        values.update(
            github_api_url=sandbox.github_url,
            github_token=sandbox.env()["GITHUB_TOKEN"],
            github_repository=REPO,
        )
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    return WorkflowContext(settings=Settings(**values), store=store, run_id="release-run")


async def test_drafts_release_once(tmp_path: Path, checkout: Path, sandbox: Any) -> None:
    ctx = context(tmp_path, sandbox)
    outcome = await run(ReleaseManagementParameters(path=str(checkout)), ctx)
    assert outcome.ok, outcome.summary
    assert outcome.data["plan"]["version"] == "1.2.0"
    assert outcome.summary.startswith("next version 1.2.0 (minor bump, 2 conventional commit(s)")
    release = outcome.data["release"]
    assert release["tag"] == "v1.2.0"
    records = sandbox.state.github.repo(REPO).releases
    assert len(records) == 1
    record = records[0]
    assert record.draft is True and record.tag_name == "v1.2.0"
    assert record.target_commitish == git(checkout, "rev-parse", "HEAD").strip()
    assert "### Features" in record.body and "**cli:** add --json" in record.body
    assert f"{sandbox.github_url}/{REPO}/compare/v1.1.0...v1.2.0" in record.body

    again = await run(ReleaseManagementParameters(path=str(checkout)), ctx)
    assert again.data["release"]["id"] == release["id"]
    assert len(sandbox.state.github.repo(REPO).releases) == 1


async def test_no_release_due(tmp_path: Path, sandbox: Any) -> None:
    root = tmp_path / "quiet"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "feat: x")
    git(root, "tag", "v2.0.0")
    commit(root, "chore: deps")
    outcome = await run(ReleaseManagementParameters(path=str(root)), context(tmp_path, sandbox))
    assert outcome.ok and outcome.data["plan"]["releasable"] is False
    assert outcome.summary.startswith("no release: 1 commit(s) since v2.0.0")
    assert sandbox.state.github.repo(REPO).releases == []


async def test_without_draft_or_repository_nothing_is_created(
    tmp_path: Path, checkout: Path
) -> None:
    ctx = context(tmp_path, None)
    outcome = await run(ReleaseManagementParameters(path=str(checkout)), ctx)
    assert outcome.ok and outcome.data["release"] is None
    assert "no repository" in outcome.summary
    plain = await run(ReleaseManagementParameters(path=str(checkout), draft=False), ctx)
    assert plain.summary == "next version 1.2.0 (minor bump, 2 conventional commit(s) since v1.1.0)"
    assert plain.markdown.startswith("## 1.2.0 (")


async def test_bad_paths(tmp_path: Path) -> None:
    ctx = context(tmp_path, None)
    with pytest.raises(WorkflowError, match="not a git repository"):
        await run(ReleaseManagementParameters(path=str(tmp_path)), ctx)
    with pytest.raises(WorkflowError, match="not a directory"):
        await run(ReleaseManagementParameters(path=str(tmp_path / "nope")), ctx)


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ("https://api.github.com", "https://github.com/o/r"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/o/r"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123/o/r"),
    ],
)
def test_web_url(api: str, expected: str) -> None:
    assert web_url(api, "o/r") == expected
