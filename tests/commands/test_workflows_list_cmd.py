from __future__ import annotations

import json

import pytest

from contexten.cli import main


def test_list_json_has_all_types_with_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 13
    by_type = {row["type"]: row for row in rows}
    fa = by_type["failure_analysis"]
    assert fa["parameters"]["workflow_run_id"]["required"] is True
    assert fa["parameters"]["auto_fix_enabled"]["default"] is False
    assert by_type["health_check"]["schedule"] == "every 300s"
    assert by_type["dependency_management"]["parameters"]["update_strategy"]["default"] == "smart"


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "list"]) == 0
    out = capsys.readouterr().out
    assert "release_management" in out and "health_check" in out
