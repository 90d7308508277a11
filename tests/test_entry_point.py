"""The `contexten` entry point: every kind of bad input is one line on stderr, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
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


def _with_env(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    from contexten.config import get_settings

    monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _settings_reread_after_each_test() -> Iterator[None]:
    from contexten.config import get_settings

    yield
    get_settings.cache_clear()


# (environment variable, value, argv, expected fragment of the one error line). `{tmp}` is
# replaced by the test's temp directory. Each row is one line of the README's table
# "Exit codes and bad input".
BAD_ENVIRONMENT = [
    pytest.param(
        "DATABASE_URL",
        "notaurl",
        ["alerts", "list"],
        "DATABASE_URL is not a database URL",
        id="garbage-database-url",
    ),
    pytest.param(
        "DATABASE_URL",
        "foo://user:hunter2@host/db",
        ["alerts", "list"],
        "DATABASE_URL names an unknown database (foo://user:***@host/db)",
        id="unknown-database",
    ),
    pytest.param(
        "CONTEXTEN_HOME",
        "{tmp}/a-file",
        ["alerts", "list"],
        "CONTEXTEN_HOME='{tmp}/a-file' is not a directory",
        id="home-is-a-file",
    ),
    pytest.param(
        "ALERT_ROUTES_FILE",
        "{tmp}/routes.json",
        ["health-check"],
        "ALERT_ROUTES_FILE: {tmp}/routes.json: not valid JSON",
        id="invalid-alert-routes-file",
    ),
    pytest.param(
        "ALERT_ROUTES_FILE",
        "{tmp}/missing.json",
        ["alerts", "list"],
        "ALERT_ROUTES_FILE='{tmp}/missing.json' is not a file",
        id="missing-alert-routes-file",
    ),
    pytest.param(
        "HTTP_TIMEOUT_SECONDS",
        "-5",
        ["alerts", "list"],
        "HTTP_TIMEOUT_SECONDS=-5.0 must be a positive number of seconds",
        id="negative-http-timeout",
    ),
    pytest.param(
        "WEBHOOK_PORT",
        "70000",
        ["webhook", "routes"],
        "WEBHOOK_PORT=70000 must be between 1 and 65535",
        id="webhook-port-out-of-range",
    ),
]


@pytest.mark.parametrize(("name", "value", "argv", "fragment"), BAD_ENVIRONMENT)
def test_invalid_environment_value_is_one_line_exit_2(
    contexten_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    argv: list[str],
    fragment: str,
) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    (tmp_path / "routes.json").write_text("{bad json")
    _with_env(monkeypatch, name, value.replace("{tmp}", str(tmp_path)))
    assert main(argv) == 2
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert fragment.replace("{tmp}", str(tmp_path)) in line
    assert "hunter2" not in line
    assert captured.out == ""


def test_help_still_works_with_an_invalid_environment(
    contexten_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_env(monkeypatch, "MAX_CONCURRENT_WORKFLOWS", "0")
    assert main(["execute", "--help"]) == 0
    assert "--operation" in capsys.readouterr().out


def test_more_than_one_invalid_value_names_the_first_and_counts_the_rest(
    contexten_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "0")
    _with_env(monkeypatch, "WEBHOOK_PORT", "0")
    assert main(["alerts", "list"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "(and 1 more; see `contexten status`)" in line


def test_unreachable_store_is_one_line_exit_1(
    contexten_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Well-formed, but nothing listens on port 9: the configuration is fine, the service
    # is not (exit 1, not 2); the password never shows.
    _with_env(monkeypatch, "DATABASE_URL", "postgresql+psycopg://u:hunter2@127.0.0.1:9/db")
    assert main(["alerts", "list"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "cannot migrate the store at postgresql+psycopg://u:***@127.0.0.1:9/db" in line
    assert "hunter2" not in line


def test_unexpected_error_is_one_line_naming_the_log_exit_3(
    contexten_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import contexten.commands.alerts as alerts_command

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom with ghp_secret_token_value inside\nsecond line")

    monkeypatch.setattr(alerts_command, "_manager", broken)
    _with_env(monkeypatch, "GITHUB_TOKEN", "ghp_secret_token_value")
    assert main(["alerts", "list"]) == 3
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("contexten: internal error in `contexten alerts`: RuntimeError")
    assert "Traceback" not in err and "ghp_secret_token_value" not in err
    log = Path(lines[0].split("the traceback is in ")[1].split(";")[0])
    assert log.parent == contexten_home / "logs"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert "in broken" in text and "second line" in text
    assert "ghp_secret_token_value" not in text
    assert log.stat().st_mode & 0o077 == 0  # readable by the user only


def test_no_command_offers_shell_completion_install(capsys: pytest.CaptureFixture[str]) -> None:
    # `--install-completion` would install a completion for "contexten audit", not contexten.
    from contexten.cli import COMMANDS

    for name in COMMANDS:
        assert main([name, "--help"]) == 0, name
        assert "--install-completion" not in capsys.readouterr().out, name


def test_a_service_failure_that_reaches_the_handler_is_one_line_exit_1(
    contexten_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import contexten.commands.alerts as alerts_command
    from contexten.integrations.interface import IntegrationError

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise IntegrationError("github: list alerts failed: cannot connect", service="github")

    monkeypatch.setattr(alerts_command, "_manager", unreachable)
    assert main(["alerts", "list"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line == "contexten: error: github: list alerts failed: cannot connect"
