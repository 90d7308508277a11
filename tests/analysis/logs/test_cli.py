"""`contexten analyze-log`: formats, stdin, bad input, baselines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contexten.cli import main

CORPUS = Path(__file__).resolve().parents[2] / "data" / "logs" / "corpus"
PYTEST_LOG = CORPUS / "test-pytest.log"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["analyze-log", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([str(PYTEST_LOG), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["category"] == "test"
    assert data["failing_tests"] == ["tests/test_auth.py::test_login"]
    assert {"line", "text"} <= set(data["evidence"][0])


def test_text_markdown_and_explain(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([str(PYTEST_LOG), "--explain"], capsys)
    assert code == 0 and "pytest-failed" in out and "assert 401 == 200" in out
    code, out, _ = _run([str(PYTEST_LOG), "--format", "markdown", "--explain"], capsys)
    assert code == 0 and out.startswith("### CI failure: `test`") and "| pytest-failed |" in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.log", "does not exist"),
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: _binary(tmp), "looks binary"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, make: object, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    for args in ([str(path)], [str(PYTEST_LOG), "--baseline-log", str(path)]):
        code, out, err = _run(args, capsys)
        assert code == 2 and out == ""
        assert message in err and len(err.strip().splitlines()) == 1


def _binary(tmp: Path) -> Path:
    path = tmp / "a.bin"
    path.write_bytes(b"\x7fELF\x00\x00\x01" * 100)
    return path


def test_stdin_and_baseline() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "contexten.cli",
            "analyze-log",
            "-",
            "--json",
            "--baseline-log",
            str(CORPUS / "test-pytest.pass.log"),
        ],
        input=PYTEST_LOG.read_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["baseline"]["used"] == 1
    assert all(e["status"] in {"new", "changed", "present"} for e in data["evidence"])


def test_stdin_only_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["-", "--baseline-log", "-"], capsys)
    assert code == 2 and "only once" in err


def test_command_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, contexten.commands.analyze_log, contexten.analysis.logs;"
        "names = ('prefect', 'githubkit', 'scipy', 'matplotlib', 'numpy', 'sqlalchemy');"
        "heavy = [m for m in names if m in sys.modules];"
        "print(','.join(heavy))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == ""
