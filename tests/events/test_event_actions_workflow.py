""".github/workflows/autonomous-ci.yml: the triggers the seed describes, hardened as we preach."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from contexten.orchestration.workflows import parse_workflow_type

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "autonomous-ci.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean True.
    return workflow.get("on") or workflow[True]


def test_triggers_match_the_seed(workflow: dict[str, Any]) -> None:
    on = _triggers(workflow)
    assert on["workflow_run"]["types"] == ["completed"]
    assert on["push"]["branches"] == ["develop"]
    crons = [entry["cron"] for entry in on["schedule"]]
    assert "*/15 * * * *" in crons and len(crons) == 2
    daily = next(c for c in crons if c != "*/15 * * * *")
    assert daily.split()[2:] == ["*", "*", "*"]  # once a day
    mode = on["workflow_dispatch"]["inputs"]["mode"]
    assert mode["type"] == "choice" and "health-check" in mode["options"]
    for option in mode["options"]:  # every mode names a real workflow type
        parse_workflow_type(option.replace("-", "_"))


def test_schedules_run_the_workflows_they_promise(workflow: dict[str, Any]) -> None:
    script = workflow["jobs"]["scheduled"]["steps"][-1]["run"]
    crons = [entry["cron"] for entry in _triggers(workflow)["schedule"]]
    assert f'"{crons[0]}") contexten gha --workflow dependency_management' in script
    assert '"*/15 * * * *") contexten gha --workflow health_check' in script


def test_hardening(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("permissions"), dict) and job["permissions"], name
        assert "write-all" not in str(job["permissions"]), name
        assert isinstance(job.get("timeout-minutes"), int), name
        assert job.get("concurrency", {}).get("group"), name
        for step in job["steps"]:
            if "uses" in step:
                assert PINNED.match(step["uses"]), step["uses"]
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
            assert "${{" not in step.get("run", ""), f"{name}: expression inside a script"


def test_pins_carry_a_version_comment() -> None:
    for line in WORKFLOW.read_text(encoding="utf-8").splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_failure_job_only_for_failed_runs_of_this_repository(workflow: dict[str, Any]) -> None:
    condition = workflow["jobs"]["failure-analysis"]["if"]
    assert "'failure'" in condition and "'timed_out'" in condition
    assert "head_repository.full_name == github.repository" in condition
    permissions = workflow["jobs"]["failure-analysis"]["permissions"]
    assert permissions["actions"] == "write"  # re-running failed jobs needs it


def test_zizmor_reports_nothing_medium_or_high() -> None:
    zizmor = shutil.which("zizmor") or str(Path(sys.executable).with_name("zizmor"))
    if not Path(zizmor).exists():
        pytest.skip("zizmor is not installed")
    result = subprocess.run(
        [zizmor, "--offline", "--min-severity", "medium", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
