from __future__ import annotations

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
