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
