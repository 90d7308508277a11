"""`contexten recover`: dry run, targets, validation, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contexten.cli import main
from contexten.monitoring import health
from contexten.monitoring.health import Resources


class Machine:
    def __init__(self) -> None:
        self.disk = 10.0

    def __call__(self, data_dir: Path, *, cpu_interval: float = 0.2) -> Resources:
        return Resources(5.0, 5.0, self.disk, 10**11, str(data_dir), 1, 10**8)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, contexten_home: Path) -> Machine:
    from contexten.config import reload_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    reload_settings()
    fake = Machine()
    monkeypatch.setattr(health, "measure_resources", fake)
    return fake


def test_nothing_to_recover(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recover"]) == 0
    assert "nothing to recover" in capsys.readouterr().out


def test_dry_run_table(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    machine.disk = 99.0
    assert main(["recover", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("dry run: 1 recovery plan(s)")
    assert lines[1] == "key\tfailure\tplan\toutcome\tdetail"
    key, _failure, plan, outcome, _detail = lines[2].split("\t")
    assert key == "disk" and plan.startswith("resource_cleanup") and outcome == "planned"


def test_failed_recovery_exits_1_with_json(
    machine: Machine, capsys: pytest.CaptureFixture[str]
) -> None:
    machine.disk = 99.0
    assert main(["recover", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    [report] = data["data"]["recoveries"]
    assert report["key"] == "disk" and report["outcome"] == "failed"


def test_named_component_and_type(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["recover", "--component", "disk", "--failure-type", "oom", "--dry-run", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["data"]["recoveries"][0]["category"] == "resource_exhaustion"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--component", "toaster"], "--component 'toaster' is not one of"),
        (["--failure-type", "auth"], "--failure-type needs --component"),
        (["--component", "github", "--failure-type", "gremlins"], "unknown failure_type"),
    ],
)
def test_bad_input_exits_2(
    machine: Machine, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recover", *argv]) == 2
    assert message in capsys.readouterr().err


def _dead_health_check_run(run_id: str) -> None:
    from datetime import UTC, datetime, timedelta

    from contexten.config import get_settings
    from contexten.store import executions as runs
    from contexten.store import open_store

    store = open_store(get_settings().effective_database_url)
    runs.record(
        store,
        run_id,
        idempotency_key=f"key-{run_id}",
        workflow_type="health_check",
        mode="in-process",
        status="running",
        parameters={},
        lease_owner="deadhost:1:abc",
        lease_expires_at=datetime.now(UTC) - timedelta(seconds=5),
    )


def test_dry_run_lists_runs_of_dead_processes_without_touching_them(
    machine: Machine, capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_health_check_run("run-dead-1")
    assert main(["recover", "--dry-run", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    [stale] = data["stale_runs"]
    assert stale["run_id"] == "run-dead-1" and stale["dead_owner"] == "deadhost:1:abc"
    assert stale["status_after_rerun"] is None
    assert main(["recover", "--dry-run"]) == 0
    assert "would take over 1" in capsys.readouterr().out


def test_recover_takes_over_and_reruns_runs_of_dead_processes(
    machine: Machine, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.config import get_settings
    from contexten.store import executions as runs
    from contexten.store import open_store

    _dead_health_check_run("run-dead-2")
    main(["recover", "--json"])
    data = json.loads(capsys.readouterr().out)
    [stale] = data["stale_runs"]
    assert stale["run_id"] == "run-dead-2"
    assert stale["status_after_rerun"] in ("completed", "failed")  # it ran to an end
    row = runs.load(open_store(get_settings().effective_database_url), "run-dead-2")
    assert row is not None and row.takeovers == 1 and row.status == stale["status_after_rerun"]
    main(["recover", "--json"])
    assert json.loads(capsys.readouterr().out)["stale_runs"] == []  # once only


def test_workers_component_is_checked_not_refused(
    machine: Machine, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["recover", "--component", "workers", "--json"])
    out = capsys.readouterr().out
    assert "no check for component" not in out
    assert code == 0 and json.loads(out)["data"]["recoveries"] == []  # no Prefect: nothing
