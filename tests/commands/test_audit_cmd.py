"""`contexten audit`: formats, --fail-on exit codes, baselines, offline, bad input."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.audit.osv_local import serve_osv
from contexten.cli import main
from contexten.config import reload_settings

DATA = Path(__file__).resolve().parents[1] / "data" / "audit"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(DATA / "repo", target)
    return target


@pytest.fixture
def osv(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    records = json.loads((DATA / "osv" / "records.json").read_text())
    with serve_osv(records) as url:
        monkeypatch.setenv("OSV_API_URL", url)
        reload_settings()
        yield url
    reload_settings()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OSV_API_URL", "http://127.0.0.1:9")
    reload_settings()
    yield
    reload_settings()


def test_json_report_and_fail_on(repo: Path, osv: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", str(repo), "--format", "json", "--fail-on", "critical"])
    out = capsys.readouterr().out
    data = json.loads(out)
    assert code == 1 and data["failed"] is True
    assert {t["tool"]: t["state"] for t in data["tools"]} == {
        "pip-audit": "ok",
        "bandit": "ok",
        "secrets": "ok",
    }
    assert data["counts"]["critical"] == 3


def test_fail_on_threshold_above_every_finding_exits_0(
    repo: Path, osv: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only bandit's medium finding remains once the others are switched off or excluded.
    (repo / "app" / "runner.py").write_text("import yaml\n\n\ndef f(t):\n    return yaml.load(t)\n")
    args = ["audit", str(repo), "--no-secrets", "--no-dependencies", "--fail-on"]
    assert main([*args, "high"]) == 0
    assert main([*args, "medium"]) == 1
    assert main([*args, "none"]) == 0
    assert "B506" in capsys.readouterr().out


def test_sarif_output_to_a_file(
    repo: Path, osv: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "audit.sarif"
    code = main(["audit", str(repo), "--format", "sarif", "--output", str(target)])
    assert code == 1
    log = json.loads(target.read_text())
    assert log["version"] == "2.1.0" and len(log["runs"]) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and "report written to" in captured.err


def test_baseline_round_trip(
    repo: Path, osv: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    assert main(["audit", str(repo), "--write-baseline", str(baseline), "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["audit", str(repo), "--baseline", str(baseline), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["findings"] == [] and len(data["baselined"]) == 17


def test_offline_reports_the_error_and_does_not_pass(
    repo: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["audit", str(repo), "--no-secrets", "--no-code", "--fail-on", "critical"])
    captured = capsys.readouterr()
    assert code == 1
    assert "pip-audit: error: vulnerability service unreachable" in captured.out
    assert "contexten: error: pip-audit:" in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_markdown(repo: Path, osv: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["audit", str(repo), "--format", "markdown", "--no-code", "--no-dependencies"])
    out = capsys.readouterr().out
    assert out.startswith("## Security audit") and "| critical | secrets | private-key |" in out
    assert "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" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "--format 'xml': expected one of text, json, sarif, markdown"),
        (["--fail-on", "urgent"], "--fail-on 'urgent'"),
        (["--min-confidence", "sure"], "--min-confidence"),
        (["--baseline", "/nonexistent/b.json"], "baseline file not found"),
        (["--config", "/nonexistent/c.toml"], "configuration file not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    repo: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(repo), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_path_and_bad_config_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(repo / "nope")]) == 2
    (repo / ".contexten-audit.toml").write_text("[[ignore]]\nid = 'B602'\n")
    assert main(["audit", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "not a directory" in err and "'reason' is required" in err


def test_progress_names_each_stage_on_a_terminal(
    repo: Path, osv: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from rich.console import Console

    import contexten.commands.audit as audit_command

    stderr = io.StringIO()
    terminal = Console(file=stderr, force_terminal=True, width=100, color_system=None)
    monkeypatch.setattr(audit_command, "_progress_console", lambda: terminal)
    main(["audit", str(repo), "--fail-on", "none"])
    shown = stderr.getvalue()
    for stage in ("listing files", "pip-audit: dependencies", "bandit: scanning", "secrets:"):
        assert f"done {stage}" in shown, shown
    assert capsys.readouterr().err == ""  # only the terminal console shows progress


def test_no_progress_when_stderr_is_not_a_terminal(
    repo: Path, osv: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(repo), "--fail-on", "none"]) == 0
    assert capsys.readouterr().err == ""
