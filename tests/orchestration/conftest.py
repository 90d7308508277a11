"""A real Prefect server shared by the tests that need one (started once per session).

It starts from a pre-migrated SQLite template (made once per Prefect version and cached),
so a session pays about 5 s instead of migrating a new database every time.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.orchestration.prefect_server import PrefectServerProcess


def _template_db() -> Path:
    import prefect

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "contexten-tests"
    cache.mkdir(parents=True, exist_ok=True)
    template = cache / f"prefect-{prefect.__version__}.db"
    if template.exists():
        return template
    # Several pytest processes (xdist workers, parallel checkouts) may get here at once.
    with (cache / "template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            _make_template(template, cache)
    return template


def _make_template(template: Path, cache: Path) -> None:
    partial = template.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{partial}",
        "PREFECT_HOME": str(cache / "prefect-home"),
    }
    env.pop("PREFECT_API_URL", None)
    subprocess.run(
        [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    partial.replace(template)


@pytest.fixture(scope="session")
def prefect_template_db() -> Path:
    """A migrated Prefect SQLite database to copy (a server started on a copy skips the
    migrations)."""
    return _template_db()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API URL of a running Prefect server (use it with prefect's temporary_settings)."""
    home = tmp_path_factory.mktemp("prefect-server")
    database = home / "prefect.db"
    shutil.copyfile(_template_db(), database)
    server = PrefectServerProcess(
        home=home,
        database_url=f"sqlite+aiosqlite:///{database}",
        ui=False,
        extra_env={
            "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
            "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
        },
    )
    api_url = server.start(timeout=120)
    # The environment is left alone (PREFECT_API_URL keeps pointing at a closed port) so
    # tests elsewhere still run in-process; tests here use prefect's temporary_settings.
    try:
        yield api_url
    finally:
        _drain_prefect_workers()
        server.stop()


def _drain_prefect_workers() -> None:
    """Flush Prefect's background log/event workers, or the process hangs at exit."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
    except Exception:
        pass
