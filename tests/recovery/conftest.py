"""Fixtures for the monitoring tests: a migrated SQLite store and settings in a temp home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.config import Settings
from contexten.store.db import Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(contexten_home=tmp_path / "home", performance_history_size=50)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.effective_database_url)
    store.migrate()
    yield store
    store.dispose()
