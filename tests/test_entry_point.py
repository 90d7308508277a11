"""The `contexten` entry point: every kind of bad input is one line on stderr, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from contexten.cli import main


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("contexten: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["execute", "-o", "health_check", "--bogus"], "No such option: --bogus"),
        (["execute"], "Missing option '--operation'"),
        (["status", "--limit", "0"], "--limit"),
        (["alerts", "bogus"], "No such command 'bogus'"),
    ],
)
def test_usage_errors_are_one_line_with_a_help_hint(
    contexten_home: Path, argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert fragment in line
    assert f"`contexten {argv[0]}" in line and "--help`" in line
    assert captured.out == ""


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("MAX_CONCURRENT_WORKFLOWS", "abc", "MAX_CONCURRENT_WORKFLOWS"),
        ("ALERT_CPU_PERCENT", "high", "ALERT_CPU_PERCENT"),
        ("DEBUG", "maybe", "DEBUG"),
    ],
)
def test_bad_environment_variable_is_one_line_exit_2(
    contexten_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    fragment: str,
) -> None:
    from contexten.config import get_settings

    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        assert main(["status"]) == 2
    finally:
        monkeypatch.delenv(name)
        get_settings.cache_clear()
    line = _one_error_line(capsys.readouterr().err)
    assert f"environment variable {fragment}" in line
    assert value not in line  # values are never echoed: they may be secrets


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("notaurl", "DATABASE_URL is not a database URL"),
        ("foo://user:hunter2@host/db", "cannot open the store (foo://user:***@host/db)"),
    ],
)
def test_bad_database_url_is_one_line_without_the_password(
    contexten_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str,
    fragment: str,
) -> None:
    from contexten.config import get_settings

    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        assert main(["status"]) == 1
    finally:
        monkeypatch.delenv("DATABASE_URL")
        get_settings.cache_clear()
    line = _one_error_line(capsys.readouterr().err)
    assert fragment in line
    assert "hunter2" not in line


def test_no_command_offers_shell_completion_install(capsys: pytest.CaptureFixture[str]) -> None:
    # `--install-completion` would install a completion for "contexten audit", not contexten.
    from contexten.cli import COMMANDS

    for name in COMMANDS:
        assert main([name, "--help"]) == 0, name
        assert "--install-completion" not in capsys.readouterr().out, name
