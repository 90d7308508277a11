"""A local package index (PyPI JSON + OSV shapes) on 127.0.0.1 for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contexten.depsources.local_index import LocalIndexServer
from contexten.integrations.http import RetryPolicy


async def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def index_server() -> Iterator[LocalIndexServer]:
    server = LocalIndexServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fast_retries() -> RetryPolicy:
    """Retries without waiting, so failure tests stay fast."""
    return RetryPolicy(max_attempts=3, timeout_seconds=5.0, sleep=_no_sleep, jitter=False)
