"""`contexten alerts list|resolve|process`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contexten.cli import main
from contexten.config import get_settings
from contexten.store.db import open_store
from contexten.store.models import AlertRecord


@pytest.fixture
def alerts(contexten_home: Path) -> list[int]:
    store = open_store(get_settings().effective_database_url)
    with store.session() as s:
        rows = [
            AlertRecord(key="health:github", severity="critical", message="github down"),
            AlertRecord(key="health:cpu", severity="warning", message="cpu 90%"),
            AlertRecord(key="old", severity="info", message="gone", status="resolved"),
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def test_list_firing_json(alerts: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {a["key"] for a in data} == {"health:github", "health:cpu"}
    assert main(["alerts", "list", "--status", "all", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_list_table(alerts: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # Not a terminal: tab-separated, the column names first, one alert a line, nothing cut.
    assert lines[0] == "id\tkey\tseverity\tstatus\tcount\tlast seen\tmessage"
    assert len(lines) == 3
    assert any(line.split("\t")[1:4] == ["health:github", "critical", "firing"] for line in lines)


def test_resolve_by_id_and_key(alerts: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "resolve", str(alerts[0]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "resolved"
    assert main(["alerts", "resolve", "health:cpu"]) == 0
    assert "resolved health:cpu" in capsys.readouterr().out
    assert main(["alerts", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_bad_input(alerts: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "list", "--status", "loud"]) == 2
    assert "--status 'loud' is not one of" in capsys.readouterr().err
    assert main(["alerts", "resolve", "999999"]) == 2
    assert "no alert with id 999999" in capsys.readouterr().err
    assert main(["alerts", "resolve", "old"]) == 1
    assert "is not firing" in capsys.readouterr().err


def test_process(alerts: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "process", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "completed"
    assert data["ok"] is False  # health:github is critical and firing
