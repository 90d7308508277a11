"""Shared by the tests that talk to the session's real Prefect server."""

from __future__ import annotations

from typing import Any


def prefect_settings(api_url: str) -> Any:
    """Point Prefect's client at the test server; retry its 503s (SQLite "database is locked").

    The suite sets PREFECT_CLIENT_MAX_RETRIES=0 so that an accidental engine call fails fast;
    the SQLite-backed test server answers 503 under load, which these tests must ride out.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    return temporary_settings({PREFECT_API_URL: api_url, PREFECT_CLIENT_MAX_RETRIES: 5})
