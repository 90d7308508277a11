"""The workflow_optimization workflow body: lint results as outcome, table and SARIF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contexten.config import Settings
from contexten.orchestration.workflows import WorkflowOptimizationParameters
from contexten.store import open_store
from contexten.workflows.base import WorkflowContext, WorkflowError
from contexten.workflows.workflow_optimization import run

REPO_ROOT = Path(__file__).resolve().parents[2]
RISKY = """\
on: pull_request_target
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""
LOW_ONLY = """\
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
"""


def context(tmp_path: Path) -> WorkflowContext:
    values: dict[str, Any] = {"contexten_home": tmp_path / "home"}
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    return WorkflowContext(settings=Settings(**values), store=store, run_id="lint-run")


def write(root: Path, name: str, text: str) -> None:
    workflows = root / ".github" / "workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    (workflows / name).write_text(text)


async def test_risky_workflow_fails_with_located_findings(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo, "pr.yml", RISKY)
    outcome = await run(WorkflowOptimizationParameters(path=str(repo)), context(tmp_path))
    assert outcome.ok is False
    rules = outcome.data["by_rule"]
    assert rules["untrusted-checkout"] == 1 and rules["script-injection"] == 1
    locations = {row[0] for row in outcome.tables[0].rows}
    assert ".github/workflows/pr.yml:8:16" in locations
    assert "| `.github/workflows/pr.yml:9:" in outcome.markdown
    sarif = json.loads(Path(outcome.data["sarif_path"]).read_text())
    assert len(sarif["runs"][0]["results"]) == len(outcome.data["findings"])


async def test_low_findings_only_is_ok(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo, "ci.yml", LOW_ONLY)
    outcome = await run(WorkflowOptimizationParameters(path=str(repo)), context(tmp_path))
    assert outcome.ok is True
    assert outcome.data["by_rule"] == {"missing-timeout": 1}
    assert outcome.summary == "1 finding(s) in 1 workflow file(s), 0 of medium severity or above"


async def test_our_own_repository_has_nothing_serious(tmp_path: Path) -> None:
    # tests/analysis/test_workflow_lint_repo.py holds the strict per-file check.
    outcome = await run(WorkflowOptimizationParameters(path=str(REPO_ROOT)), context(tmp_path))
    assert outcome.ok is True, outcome.markdown
    assert ".github/workflows/ci.yml" in outcome.data["files"]
    assert all(f["severity"] == "low" for f in outcome.data["findings"])


async def test_invalid_yaml_fails_the_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo, "broken.yml", "on: [push\n")
    outcome = await run(WorkflowOptimizationParameters(path=str(repo)), context(tmp_path))
    assert outcome.ok is False and "invalid YAML" in outcome.data["errors"][0]


async def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="no such file"):
        await run(WorkflowOptimizationParameters(path=str(tmp_path / "x")), context(tmp_path))
    with pytest.raises(WorkflowError, match="auto_optimize is not supported"):
        await run(
            WorkflowOptimizationParameters(path=str(tmp_path), auto_optimize=True),
            context(tmp_path),
        )
