"""Fixtures for the event-intake tests: a fresh store, settings with a secret, signing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from intake_helpers import SECRET

from contexten.config import Settings
from contexten.store.db import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    the_store = Store(f"sqlite:///{tmp_path / 'events.db'}")
    the_store.migrate()
    yield the_store
    the_store.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        github_webhook_secret=SECRET,
        contexten_home=tmp_path / "home",
        baseline_branch="develop",
        webhook_max_body_bytes=64 * 1024,
        workflow_retry_delay=0,
    )


@pytest.fixture
def examples(data_dir: Path) -> Path:
    return data_dir / "webhooks" / "payload-examples"
