"""Fixtures for the audit tests: the fixture repository and a local OSV service."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexten.audit.osv_local import serve_osv

DATA = Path(__file__).resolve().parents[1] / "data" / "audit"


@pytest.fixture(scope="session")
def osv_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((DATA / "osv" / "records.json").read_text())
    return records


@pytest.fixture(scope="session")
def osv_url(osv_records: list[dict[str, Any]]) -> Iterator[str]:
    with serve_osv(osv_records) as url:
        yield url


@pytest.fixture
def audit_repo(tmp_path: Path) -> Path:
    """A private copy of the fixture repository, free to change."""
    target = tmp_path / "repo"
    shutil.copytree(DATA / "repo", target)
    return target
