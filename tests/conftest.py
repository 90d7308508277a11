"""Test isolation for the whole suite.

Every test session gets its own CONTEXTEN_HOME and PREFECT_HOME, no credentials from the
machine's environment, and a Prefect API URL that points at a closed port, so code that
reaches for the Prefect engine by accident fails at once instead of starting an ephemeral
server (10-20 s). Tests that need a real server use the `prefect_server` fixture.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="ctx-tests-"))
# The system temp directory of the session is private too: recovery's resource cleanup
# deletes old `contexten-*` entries there, and must never reach the machine's real /tmp.
_SESSION_TMP = _SESSION_HOME / "tmp"
_SESSION_TMP.mkdir()
# Others may traverse (not list) them: the throw-away PostgreSQL runs as the postgres user.
_SESSION_HOME.chmod(0o711)
_SESSION_TMP.chmod(0o711)
os.environ["TMPDIR"] = str(_SESSION_TMP)
tempfile.tempdir = str(_SESSION_TMP)

# Variables the suite must not inherit from the developer's or CI's machine.
_SCRUBBED_PREFIXES = (
    "CODEGEN_",
    "GITHUB_",
    "SLACK_",
    "LINEAR_",
    "PREFECT_",
    "DATABASE_URL",
    "ALERT_",
    "WEBHOOK_",
    "AUTO_FIX",
    "ROUTING_RULES",
)
for _name in list(os.environ):
    if _name.startswith(_SCRUBBED_PREFIXES):
        del os.environ[_name]

os.environ["CONTEXTEN_HOME"] = str(_SESSION_HOME / "home")
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect-home")
os.environ["PREFECT_API_URL"] = "http://127.0.0.1:9/api"  # closed port: fail fast
os.environ["PREFECT_CLIENT_MAX_RETRIES"] = "0"
os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["WORKFLOW_RETRY_DELAY"] = "0"


@pytest.fixture
def data_dir() -> Path:
    """tests/data: real public data copied with attribution (see its README), never modified."""
    return TEST_DATA


@pytest.fixture
def contexten_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh CONTEXTEN_HOME (and settings re-read) for one test."""
    from contexten.config import reload_settings

    home = tmp_path / "contexten-home"
    monkeypatch.setenv("CONTEXTEN_HOME", str(home))
    reload_settings()
    yield home
    monkeypatch.undo()
    reload_settings()


@pytest.fixture(autouse=True)
def _restore_prefect_environment() -> Iterator[None]:
    """The orchestrator points this process at a server it finds (os.environ); undo that
    after each test so later tests still run in-process."""
    saved = {
        name: os.environ.get(name)
        for name in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_API_KEY")
    }
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# Tests that share an expensive session server run on one xdist worker (the README's
# command uses `--dist loadgroup`), so the suite starts one Prefect server and one
# PostgreSQL server however many workers there are.
_GROUPS = (
    ("prefect_server", "prefect-server"),
    ("postgres_server", "postgres"),
)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, group in _GROUPS:
            if fixture in names:
                item.add_marker(pytest.mark.xdist_group(group))
                break


class _GroupCheck:
    """In an xdist worker with --dist loadgroup, runs after xdist has suffixed each grouped
    test's node id with `@group`; a pytest/xdist pair that cannot do that would silently
    start one shared server per worker (see the pytest pin in pyproject.toml)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if not getattr(config.option, "loadgroup", False):
            return
        lost = [
            i.nodeid for i in items if any(i.iter_markers("xdist_group")) and "@" not in i.nodeid
        ]
        if lost:
            raise pytest.UsageError(
                f"--dist loadgroup is not grouping ({lost[0]} has no @group suffix): "
                "this pytest-xdist cannot group tests on this pytest"
            )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_GroupCheck(), "contexten-group-check")
