"""`contexten health-check`: table, --json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contexten.cli import main
from contexten.monitoring import health
from contexten.monitoring.health import Resources


class Machine:
    def __init__(self) -> None:
        self.percent = 10.0

    def __call__(self, data_dir: Path, *, cpu_interval: float = 0.2) -> Resources:
        p = self.percent
        return Resources(p, p, p, 10**11, str(data_dir), 1, 10**8)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, contexten_home: Path) -> Machine:
    from contexten.config import reload_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    reload_settings()
    fake = Machine()
    monkeypatch.setattr(health, "measure_resources", fake)
    return fake


def test_json_healthy(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health-check", "--json", "--no-integrations"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "healthy" and data["score"] == 100.0
    names = [c["name"] for c in data["components"]]
    assert names[:2] == ["store", "prefect"]
    assert data["run_id"]


def test_unhealthy_exits_1(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    machine.percent = 99.0
    assert main(["health-check", "--json", "--no-integrations"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "unhealthy"
    assert any(p.startswith("disk unhealthy") for p in data["problems"])


def test_unreachable_prefect_is_degraded_not_fatal(
    machine: Machine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.config import reload_settings

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    reload_settings()
    assert main(["health-check", "--no-integrations"]) == 0
    out = capsys.readouterr().out
    assert "health degraded" in out
    assert "prefect" in out and "unhealthy" in out


def test_table_output_and_recorded_run(
    machine: Machine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health-check", "--no-integrations"]) == 0
    out = capsys.readouterr().out
    assert "health healthy: 100/100" in out
    assert "component" in out and "store" in out
    assert main(["health-check", "--json", "--no-integrations"]) == 0
    data = json.loads(capsys.readouterr().out)
    error_rate = next(c for c in data["components"] if c["name"] == "error_rate")
    assert "of the last 1 runs failed" in error_rate["detail"]  # the first run, recorded
