"""The github_automation workflow: PR comment and check run for a diagnosed run (sandbox)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_failure_analysis import (  # fixtures and helpers shared by this area's tests
    analyse,
    context,
    counts,
    fast,
    repo,
    sandbox,
    seed_network,
    seed_test_failure,
    settings_for,
    store,
)

from contexten.config import Settings
from contexten.orchestration.workflows import GithubAutomationParameters
from contexten.sandbox.server import SandboxServer
from contexten.store.db import Store
from contexten.workflows import github_automation
from contexten.workflows.base import WorkflowError, WorkflowOutcome

__all__ = ["fast", "repo", "sandbox", "store"]


def automate(settings: Settings, store: Store, run_id: int, **params: Any) -> WorkflowOutcome:
    ctx = context(settings, store, f"gh-{run_id}")
    parameters = GithubAutomationParameters(workflow_run_id=run_id, **params)
    return asyncio.run(github_automation.run(parameters, ctx))


def test_a_run_already_handled_gets_no_second_comment_or_check(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    run_id = seed_test_failure(sandbox, repo, branch="feature", pull=True)
    analyse(settings, store, run_id)
    before = counts(sandbox, repo)
    outcome = automate(settings, store, run_id)
    assert outcome.ok
    assert counts(sandbox, repo) == before
    assert {(a["kind"], a["status"]) for a in outcome.data["actions"]} == {
        ("pr_comment", "existing"),
        ("check_run", "existing"),
    }


def test_a_check_run_on_request_even_without_file_and_line(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    run_id = seed_network(sandbox, repo, outcomes=())
    analyse(settings, store, run_id, auto_recovery=False)
    assert counts(sandbox, repo)["check_run"] == 0
    outcome = automate(settings, store, run_id)
    assert outcome.ok
    assert counts(sandbox, repo)["check_run"] == 1  # asked for: made without annotations
    check = sandbox.state.github.check_runs(repo)[0]
    assert check.annotations == [] and "network" in (check.title or "")
    assert "does not belong to a pull request" in outcome.data["notes"][0]


def test_links_to_the_tracked_issue_in_the_pr_comment(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    run_id = seed_test_failure(sandbox, repo, branch="feature", pull=True)
    analyse(settings, store, run_id)
    body = sandbox.state.github.comments(repo)[0].body
    assert "Linear: [ENG-" in body and "linear.app" in body


def test_a_run_without_a_diagnosis_is_refused(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    with pytest.raises(WorkflowError, match="has no recorded diagnosis: run failure_analysis"):
        automate(settings, store, 777)
