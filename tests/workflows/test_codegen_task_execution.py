"""The codegen_task_execution workflow: a fenced task to the agent, followed to its PR."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_failure_analysis import (  # fixtures and helpers shared by this area's tests
    agent_runs_of,
    analyse,
    context,
    fast,
    issues_of,
    repo,
    sandbox,
    seed_compile_failure,
    seed_network,
    settings_for,
    store,
)

from contexten.config import Settings
from contexten.orchestration.workflows import CodegenTaskParameters
from contexten.sandbox.server import SandboxServer
from contexten.store.db import Store
from contexten.workflows import codegen_task_execution
from contexten.workflows.base import WorkflowError, WorkflowOutcome

__all__ = ["fast", "repo", "sandbox", "store"]


def task(settings: Settings, store: Store, **params: Any) -> WorkflowOutcome:
    ctx = context(settings, store, "codegen")
    return asyncio.run(codegen_task_execution.run(CodegenTaskParameters(**params), ctx))


def test_a_diagnosed_run_goes_to_the_agent_once_and_its_pr_is_linked(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    run_id = seed_compile_failure(sandbox, repo)
    analyse(settings, store, run_id)  # escalated, auto-fix off: no agent yet
    assert agent_runs_of(sandbox, repo) == []
    sandbox.state.codegen.script_next_run(pull_request=True)
    outcome = task(settings, store, workflow_run_id=run_id, repository=repo, timeout_seconds=30)
    assert outcome.ok, outcome.summary
    runs = agent_runs_of(sandbox, repo)
    assert len(runs) == 1
    assert "BEGIN-LOG-" in runs[0].prompt and "END-LOG-" in runs[0].prompt
    assert runs[0].metadata and runs[0].metadata["workflow_run_id"] == run_id
    url = outcome.data["pull_requests"][0]
    issue = issues_of(sandbox, repo)[0]
    assert any(url in c.body for c in sandbox.state.linear.comments(issue.id))
    again = task(settings, store, workflow_run_id=run_id, repository=repo, timeout_seconds=30)
    assert again.ok and len(agent_runs_of(sandbox, repo)) == 1  # followed, not restarted
    assert {a["status"] for a in again.data["actions"] if a["kind"] == "agent_run"} == {"existing"}


def test_an_operator_prompt_is_sent_as_given(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    sandbox.state.codegen.script_next_run(pull_request=True)
    prompt = f"Upgrade the pinned actions in repository {repo}."
    outcome = task(settings_for(sandbox, repo, tmp_path / "home"), store, prompt=prompt)
    assert outcome.ok
    assert [r.prompt for r in agent_runs_of(sandbox, repo)] == [prompt]


def test_a_failed_agent_run_is_a_failed_outcome(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    sandbox.state.codegen.script_next_run(final="FAILED")
    outcome = task(
        settings_for(sandbox, repo, tmp_path / "home"),
        store,
        prompt=f"Fix the flaky test in repository {repo}.",
    )
    assert not outcome.ok
    pr = next(a for a in outcome.data["actions"] if a["kind"] == "agent_pr")
    assert (pr["status"], pr["detail"]) == ("failed", "the agent run ended FAILED")


def test_an_agent_that_does_not_finish_in_time(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    sandbox.state.codegen.script_next_run(statuses=["PENDING"] + ["RUNNING"] * 500 + ["COMPLETE"])
    outcome = task(
        settings_for(sandbox, repo, tmp_path / "home"),
        store,
        prompt=f"Refactor repository {repo}.",
        timeout_seconds=1,
    )
    assert not outcome.ok
    pr = next(a for a in outcome.data["actions"] if a["kind"] == "agent_pr")
    assert pr["status"] == "skipped" and "not finished after 1s" in pr["detail"]


def test_transient_failures_are_not_for_the_agent(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    run_id = seed_network(sandbox, repo)
    analyse(settings, store, run_id)
    outcome = task(settings, store, workflow_run_id=run_id, repository=repo)
    assert not outcome.ok and agent_runs_of(sandbox, repo) == []
    assert "network failures are not for the agent" in outcome.data["notes"][0]


@pytest.mark.parametrize(
    ("overrides", "params", "message"),
    [
        ({}, {}, "needs a prompt or a workflow_run_id"),
        (
            {"codegen_token": None, "codegen_org_id": None},
            {"prompt": "x"},
            "Codegen is not configured",
        ),
    ],
)
def test_bad_requests_are_clear_errors(
    sandbox: SandboxServer,
    repo: str,
    store: Store,
    tmp_path: Path,
    overrides: dict[str, Any],
    params: dict[str, Any],
    message: str,
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home", **overrides)
    with pytest.raises(WorkflowError, match=message):
        task(settings, store, **params)
