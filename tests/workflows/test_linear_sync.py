"""The linear_sync workflow: one issue per signature, and closing fixed ones (sandbox)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_failure_analysis import (  # fixtures and helpers shared by this area's tests
    TEST_JOB,
    analyse,
    context,
    counts,
    fast,
    issues_of,
    log,
    repo,
    sandbox,
    seed_test_failure,
    settings_for,
    store,
)

from contexten.config import Settings
from contexten.orchestration.workflows import LinearSyncParameters
from contexten.sandbox.github import JobSpec
from contexten.sandbox.server import SandboxServer
from contexten.store.db import Store
from contexten.workflows import linear_sync
from contexten.workflows.base import WorkflowError, WorkflowOutcome

__all__ = ["fast", "repo", "sandbox", "store"]


def sync(settings: Settings, store: Store, **params: Any) -> WorkflowOutcome:
    ctx = context(settings, store, "sync")
    return asyncio.run(linear_sync.run(LinearSyncParameters(**params), ctx))


def without_linear(sandbox: SandboxServer, repo: str, home: Path) -> Settings:
    return settings_for(sandbox, repo, home, linear_api_key=None, linear_team_id=None)


def test_an_escalated_signature_keeps_its_one_issue(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    analyse(settings, store, seed_test_failure(sandbox, repo))
    before = counts(sandbox, repo)
    outcome = sync(settings, store, repository=repo)
    assert outcome.data["created"] == 0 and outcome.data["open"] == 1
    assert counts(sandbox, repo) == before  # no new issue, no comment


def test_missing_issues_are_created_once_per_signature(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    quiet = without_linear(sandbox, repo, tmp_path / "home")
    analyse(quiet, store, seed_test_failure(sandbox, repo))
    analyse(quiet, store, seed_test_failure(sandbox, repo))  # the same failure twice
    assert counts(sandbox, repo)["issue"] == 0
    settings = settings_for(sandbox, repo, tmp_path / "home")
    outcome = sync(settings, store, repository=repo)
    assert outcome.data["created"] == 1
    assert counts(sandbox, repo)["issue"] == 1
    assert sync(settings, store, repository=repo).data["created"] == 0
    assert counts(sandbox, repo)["issue"] == 1


def test_an_issue_is_closed_after_a_later_passing_run_and_reopened_as_new_on_regression(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    analyse(settings, store, seed_test_failure(sandbox, repo))
    # only the older passing run exists: nothing is fixed yet
    assert sync(settings, store, repository=repo).data["closed"] == 0
    gh = sandbox.state.github
    fixed = gh.add_run(
        repo,
        workflow="Tests",
        jobs=[JobSpec(TEST_JOB, log=log("pytest-pass.log"))],
        created_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    outcome = sync(settings, store, repository=repo)
    assert outcome.data["closed"] == 1
    issue = issues_of(sandbox, repo)[0]
    assert sandbox.state.linear.issue_state_type(issue.id) == "completed"
    closing = sandbox.state.linear.comments(issue.id)[-1].body
    assert f"run [{fixed.id}]" in closing and "Fixed" in closing
    assert sync(settings, store, repository=repo).data["closed"] == 0  # once

    slack_before = counts(sandbox, repo)["slack"]
    gh.add_commit(repo, "main", {"again.py": "x"}, "Break it again")
    regressed = gh.add_run(
        repo,
        workflow="Tests",
        jobs=[JobSpec(TEST_JOB, conclusion="failure", log=log("pytest-fail.log"))],
        created_at=datetime.now(UTC) + timedelta(minutes=10),
    )
    analyse(settings, store, regressed.id)
    assert counts(sandbox, repo)["issue"] == 2  # a new issue for the regression
    assert counts(sandbox, repo)["slack"] == slack_before + 1


def test_without_linear_the_workflow_says_what_to_set(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    with pytest.raises(WorkflowError, match="Linear is not configured: set LINEAR_API_KEY"):
        sync(without_linear(sandbox, repo, tmp_path / "home"), store)
