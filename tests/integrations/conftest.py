"""Fixtures for the integration tests: a GitHub sandbox over real sockets, fresh repos.

`github_sandbox` (session) serves the GitHub sandbox only, so these tests do not depend
on the other services; `sandbox` (session) serves all four for whoever needs them.
Each test gets its own repository (`gh_repo`), and faults are cleared after every test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.integrations.github import GitHubClient
from contexten.integrations.http import RetryPolicy
from contexten.integrations.idempotency import ActionLedger
from contexten.sandbox.github import GitHubState
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import ManualClock, fast_policy, running_sandbox
from contexten.store.db import Store


@pytest.fixture(scope="session")
def github_sandbox() -> Iterator[SandboxServer]:
    with running_sandbox(services=("github",)) as server:
        yield server


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        yield server


@pytest.fixture
def gh_state(github_sandbox: SandboxServer) -> Iterator[GitHubState]:
    yield github_sandbox.state.github
    github_sandbox.faults["github"].clear()
    github_sandbox.faults["github"].reseed(0)


@pytest.fixture
def gh_repo(gh_state: GitHubState) -> str:
    name = f"octo/repo-{uuid.uuid4().hex[:10]}"
    gh_state.add_repo(name, files={"README.md": "# test\n", "src/app.py": "print('hi')\n"})
    return name


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gh_policy(clock: ManualClock) -> RetryPolicy:
    return fast_policy(clock)


@pytest.fixture
def action_store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'actions.db'}")
    store.migrate()
    return store


@pytest.fixture
def gh(github_sandbox: SandboxServer, gh_policy: RetryPolicy, action_store: Store) -> GitHubClient:
    return GitHubClient(
        base_url=github_sandbox.github_url,
        token=github_sandbox.env()["GITHUB_TOKEN"],
        policy=gh_policy,
        ledger=ActionLedger(action_store, policy=gh_policy),
    )
