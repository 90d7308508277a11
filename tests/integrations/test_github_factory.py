"""Building the GitHub client from Settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from contexten.config import Settings
from contexten.integrations.factory import github_client
from contexten.integrations.interface import CIProviderError
from contexten.integrations.redaction import clear_secrets, redact
from contexten.store.db import Store


def test_not_configured_gives_none() -> None:
    assert github_client(Settings()) is None


def test_token_client_with_ledger_and_redaction(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    settings = Settings(
        github_token=SecretStr("ghp_factoryTestToken000000000000000000"),
        github_api_url="http://127.0.0.1:9",
        http_max_attempts=2,
    )
    try:
        client = github_client(settings, store)
        assert client is not None and client.ledger is not None
        assert client.auth_kind == "token" and client.policy.max_attempts == 2
        assert client.base_url == "http://127.0.0.1:9/"
        assert "ghp_factory" not in repr(client)
        assert redact("token ghp_factoryTestToken000000000000000000") == "token ***"
    finally:
        clear_secrets()


def test_app_settings_without_key_is_a_typed_error() -> None:
    settings = Settings(github_app_id="1", github_app_installation_id=2)
    with pytest.raises(CIProviderError, match="GITHUB_APP_PRIVATE_KEY"):
        github_client(settings)
