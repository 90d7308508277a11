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


def test_database_password_is_url_escaped_into_the_url(tmp_path: Path) -> None:
    from pydantic import SecretStr
    from sqlalchemy.engine import make_url

    odd = "p@ss:w/rd%#? &x"
    settings = Settings(
        contexten_home=tmp_path,
        database_url="postgresql+psycopg://contexten@postgres:5432/contexten",
        database_password=SecretStr(odd),
    )
    url = make_url(settings.effective_database_url)
    assert (url.username, url.password, url.host, url.database) == (
        "contexten",
        odd,
        "postgres",
        "contexten",
    )
    assert odd in settings.secret_values()
    assert not any("DATABASE" in p for p in settings.validate())
    userless = Settings(
        contexten_home=tmp_path,
        database_url="postgresql+psycopg://postgres/contexten",
        database_password=SecretStr(odd),
    )
    assert any("DATABASE_PASSWORD is set" in p for p in userless.validate())
