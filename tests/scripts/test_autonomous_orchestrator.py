"""The seed-compatible shim forwards exactly the seed's flags to `contexten`."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SHIM = Path(__file__).resolve().parents[2] / ".github" / "scripts" / "autonomous_orchestrator.py"


def load_shim():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("autonomous_orchestrator", SHIM)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_forwarded_argv() -> None:
    shim = load_shim()
    parser_args = [
        "--action",
        "execute",
        "--operation",
        "failure_analysis",
        "--parameters",
        '{"workflow_run_id": "12345"}',
        "--wait",
    ]
    import argparse

    ns = argparse.Namespace(
        action="execute",
        operation="failure_analysis",
        parameters='{"workflow_run_id": "12345"}',
        wait=True,
    )
    assert shim.build_argv(ns) == [
        "execute",
        "--operation",
        "failure_analysis",
        "--parameters",
        '{"workflow_run_id": "12345"}',
        "--wait",
    ]
    assert parser_args[1] == "execute"


def test_execute_without_operation_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    shim = load_shim()
    assert shim.main(["--action", "execute"]) == 2
    assert "needs --operation" in capsys.readouterr().err


def test_status_runs_through_the_console_command(contexten_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SHIM), "--action", "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "mode: in-process" in result.stdout


def test_unknown_action_rejected() -> None:
    result = subprocess.run(
        [sys.executable, str(SHIM), "--action", "explode"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_status_json_is_one_document(contexten_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "contexten.cli", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mode"] == "in-process"


def test_without_the_package_installed_it_says_how_to_install_exit_2(tmp_path: Path) -> None:
    # -I -S: no site-packages and no current directory, as with a Python that lacks contexten.
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(SHIM), "--action", "status"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "autonomous_orchestrator: error: cannot import 'contexten': install contexten first "
        "with `pip install -e .` in the repository root\n"
    )
