from __future__ import annotations

from pathlib import Path

import pytest

from contexten.config import Settings


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "")
    monkeypatch.setenv("LINEAR_API_KEY", "")
    monkeypatch.setenv("ALERT_CPU_PERCENT", "")
    settings = Settings()
    assert settings.github_token is None
    assert settings.enabled_integrations()["github"] is False
    assert settings.alert_thresholds.cpu_percent == 80.0
    assert settings.validate() == []


def test_problems_are_listed_not_raised() -> None:
    settings = Settings(codegen_org_id="abc", max_concurrent_workflows=0, linear_api_key="k")
    problems = settings.validate()
    assert "CODEGEN_ORG_ID='abc' must be a number" in problems
    assert "MAX_CONCURRENT_WORKFLOWS=0 must be at least 1" in problems
    assert "LINEAR_API_KEY is set but LINEAR_TEAM_ID is missing" in problems
    assert all("\\n" not in p for p in problems)


def test_errors_and_warnings_are_separate_and_validate_lists_both() -> None:
    settings = Settings(http_timeout_seconds=-5, max_concurrent_workflows=0, linear_api_key="k")
    assert settings.errors() == [
        "MAX_CONCURRENT_WORKFLOWS=0 must be at least 1",
        "HTTP_TIMEOUT_SECONDS=-5.0 must be a positive number of seconds",
    ]
    assert settings.warnings() == ["LINEAR_API_KEY is set but LINEAR_TEAM_ID is missing"]
    assert settings.validate() == settings.errors() + settings.warnings()


def test_check_raises_one_line_config_error_with_exit_2() -> None:
    from contexten.config import ConfigError
    from contexten.errors import ContextenError

    with pytest.raises(ConfigError) as info:
        Settings(max_concurrent_workflows=-1, http_max_total_seconds=0).check()
    assert isinstance(info.value, ContextenError) and info.value.exit_code == 2
    assert str(info.value) == (
        "MAX_CONCURRENT_WORKFLOWS=-1 must be at least 1 (and 1 more; see `contexten status`)"
    )
    Settings(linear_api_key="k").check()  # warnings alone do not raise


def test_home_that_is_a_file_and_bad_routes_file_are_errors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("")
    routes = tmp_path / "routes.json"
    routes.write_text('{"rules": [{"channels": ["pager"]}]}')
    errors = Settings(contexten_home=home, alert_routes_file=routes).errors()
    assert errors == [
        f"CONTEXTEN_HOME={str(home)!r} is not a directory",
        f"ALERT_ROUTES_FILE: {routes}: rules[0].channels: 'pager' is not one of "
        "log, slack, linear, github",
    ]


def test_database_url_problem_never_shows_the_value() -> None:
    errors = Settings(database_url="user:hunter2@host").errors()
    assert len(errors) == 1 and errors[0].startswith("DATABASE_URL is not a database URL")
    assert "hunter2" not in errors[0]
    assert Settings(database_url="postgresql+psycopg://u:p@h/db").errors() == []


def test_seed_api_still_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    from contexten.orchestration.config import get_default_config, reload_settings

    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "-5")
    try:
        problems = reload_settings() and get_default_config().validate()
    finally:
        monkeypatch.undo()
        reload_settings()
    assert problems == ["HTTP_TIMEOUT_SECONDS=-5.0 must be a positive number of seconds"]


def test_orchestrator_refuses_a_zero_concurrency_limit() -> None:
    # A semaphore of 0 would make every in-process run wait forever.
    from contexten.config import ConfigError
    from contexten.orchestration import PrefectOrchestrator

    with pytest.raises(ConfigError, match="MAX_CONCURRENT_WORKFLOWS=0 must be at least 1"):
        PrefectOrchestrator(settings=Settings(max_concurrent_workflows=0))
