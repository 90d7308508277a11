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


def _template_db() -> Path:
    """The pre-migrated Prefect database template of tests/orchestration/conftest.py."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "orchestration" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_contexten_orchestration_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module._template_db())


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server for this module only. Unlike the session fixture it leaves
    PREFECT_API_URL alone: the code under test is given the URL explicitly."""
    import shutil

    from contexten.orchestration.prefect_server import PrefectServerProcess

    home = tmp_path_factory.mktemp("prefect-monitoring")
    database = home / "prefect.db"
    shutil.copyfile(_template_db(), database)
    server = PrefectServerProcess(
        home=home,
        database_url=f"sqlite+aiosqlite:///{database}",
        ui=False,
        extra_env={
            "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
            "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        },
    )
    url = server.start(timeout=120)
    try:
        yield url
    finally:
        server.stop()
