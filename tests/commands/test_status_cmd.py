from __future__ import annotations

import json
from pathlib import Path

import pytest

from contexten.cli import main


def test_status_json_in_process(contexten_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "in-process"
    assert data["prefect_api_url"] is None
    assert data["config_problems"] == []
    assert data["store"].startswith("sqlite:///")


def test_status_shows_config_problems(
    contexten_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contexten.config import reload_settings

    monkeypatch.setenv("CODEGEN_TOKEN", "cg-secret-token-value")
    monkeypatch.setenv("ALERT_CPU_PERCENT", "140")
    reload_settings()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "CODEGEN_ORG_ID is missing" in out
    assert "ALERT_CPU_PERCENT=140.0 must be between 0 and 100" in out
    assert "cg-secret-token-value" not in out
