"""A real PostgreSQL server for the tests in tests/postgres (one per session).

It is started from the installed server binaries in a temp dir on 127.0.0.1 (see
`throwaway_postgres`); when PostgreSQL is not installed or cannot start, every test that
needs it is skipped with the reason, never failed. `.ci/run` installs the package.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from throwaway_postgres import PostgresUnavailable, ThrowawayPostgres

_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """The session's PostgreSQL server (skips the test when there can be none)."""
    try:
        server = ThrowawayPostgres.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL is not available: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_server: ThrowawayPostgres, request: pytest.FixtureRequest) -> str:
    """A new empty database for one test; its psycopg SQLAlchemy URL."""
    stem = "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:40]
    return postgres_server.create_database(f"t{next(_names)}_{stem}")
