"""`contexten demo`: the whole loop in a subprocess, and its bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from contexten.cli import main
from contexten.commands import demo as demo_cmd
from contexten.demo import scenario
from contexten.demo.loop import Check, DemoResult, EventRecord


def test_the_demo_observes_every_expected_outcome_and_exits_0(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "contexten.cli",
            "demo",
            "--json",
            "--in-process",
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=dict(os.environ),
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    document = json.loads(done.stdout)
    assert document["ok"] is True and document["mode"] == "in-process"
    failed = [c for c in document["checks"] if not c["ok"]]
    assert failed == []
    names = {c["name"] for c in document["checks"]}
    assert "GitHub: failed jobs re-run (network failure only)" in names
    assert "Codegen: one agent run (compile error only)" in names
    reports = [r["report"] for e in document["events"] for r in e["runs"] if r.get("report")]
    assert reports and all(Path(p).is_file() for p in reports)
    assert (home / "contexten.db").is_file()


def test_a_home_that_is_a_file_is_bad_input(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert main(["demo", "--home", str(not_a_dir)]) == 2


def test_the_rich_report_names_checks_and_where_to_look(tmp_path: Path) -> None:
    delivery = scenario.ScriptedWebhook("n", "network failure", "workflow_run", "d-1", b"{}")
    record = EventRecord(delivery, 202, "accepted")
    record.runs = [
        {
            "workflow_type": "failure_analysis",
            "run_id": "r-1",
            "status": "completed",
            "summary": "re-ran",
            "actions": [
                {"kind": "rerun", "status": "done", "detail": "network", "url": "http://x"}
            ],
            "report": str(tmp_path / "r.md"),
        }
    ]
    result = DemoResult(
        mode="in-process",
        home=tmp_path,
        events=[record],
        checks=[Check("GitHub: re-run", "1", "0", False)],
    )
    buffer = io.StringIO()
    demo_cmd._print(Console(file=buffer, width=200), result)
    text = buffer.getvalue()
    assert "network failure" in text and "rerun done: network http://x" in text
    assert "✗" in text and "some outcomes missing" in text
    assert str(tmp_path / "r.md") in text and "start `contexten server`" in text
