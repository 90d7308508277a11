"""Fixtures for the sandbox tests: a GitHub sandbox, a webhook receiver."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from contexten.sandbox.github import GitHubState
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import RecordingEndpoint, recording_endpoint, running_sandbox


@pytest.fixture(scope="session")
def github_only() -> Iterator[SandboxServer]:
    with running_sandbox(services=("github",)) as server:
        yield server


@pytest.fixture
def github_state(github_only: SandboxServer) -> Iterator[GitHubState]:
    yield github_only.state.github
    github_only.faults["github"].clear()
    github_only.faults["github"].reseed(0)


@pytest.fixture
def repo_name(github_state: GitHubState) -> str:
    name = f"octo/sandbox-{uuid.uuid4().hex[:10]}"
    github_state.add_repo(name, files={"README.md": "# hi\n", "docs/guide.md": "guide\n"})
    return name


@pytest.fixture
def receiver() -> Iterator[tuple[RecordingEndpoint, str]]:
    with recording_endpoint() as endpoint:
        yield endpoint, f"{endpoint.url}/hook"
