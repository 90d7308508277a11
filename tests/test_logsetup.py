"""LOG_LEVEL and DEBUG decide what the command prints on stderr; secrets never show."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from contexten.config import Settings
from contexten.logsetup import configured_logging

TOKEN = SecretStr("ghp_secretTokenValue123")


def bare_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root logger as in a plain `contexten` process: no handlers (pytest adds its own
    at the start of each test phase, so call this inside the test)."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


def _emit(settings: Settings) -> None:  # the token is a secret of `settings` (masked)
    log = logging.getLogger("contexten.test")
    with configured_logging(settings):
        log.debug("debug detail")
        log.info("info note")
        log.warning("warning with %s", "ghp_secretTokenValue123")


def test_log_level_filters_and_secrets_are_masked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare_root(monkeypatch)
    token = TOKEN
    _emit(Settings(contexten_home=tmp_path, log_level="WARNING", github_token=token))
    assert capsys.readouterr().err.splitlines() == ["WARNING contexten.test: warning with ***"]
    _emit(Settings(contexten_home=tmp_path, log_level="info", github_token=token))
    assert capsys.readouterr().err.splitlines() == [
        "INFO contexten.test: info note",
        "WARNING contexten.test: warning with ***",
    ]
    _emit(Settings(contexten_home=tmp_path, github_token=token))  # default: warnings only
    assert capsys.readouterr().err.splitlines() == ["WARNING contexten.test: warning with ***"]
    _emit(Settings(contexten_home=tmp_path, log_level="ERROR", debug=True, github_token=token))
    assert capsys.readouterr().err.splitlines()[0] == "DEBUG contexten.test: debug detail"


def test_logging_is_restored_after_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bare_root(monkeypatch)
    logger = logging.getLogger("contexten")
    before = (logger.level, logger.propagate, list(logger.handlers))
    with configured_logging(Settings(contexten_home=tmp_path, debug=True)):
        assert logger.level == logging.DEBUG and len(logger.handlers) == len(before[2]) + 1
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


def test_an_existing_logging_setup_prints_the_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # e.g. Prefect configured the root logger in a runner: no second handler, level applies
    with caplog.at_level(logging.DEBUG):
        _emit(Settings(contexten_home=tmp_path, log_level="WARNING", github_token=TOKEN))
    assert [r.getMessage() for r in caplog.records if r.name == "contexten.test"] == [
        "warning with ***"
    ]
    assert "contexten.test" not in capsys.readouterr().err
