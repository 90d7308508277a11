"""Writes that complete at the service after the client timed out are done once.

The sandbox's `late_rate` fault reads the request at once, then lets it take effect
`late_delay` seconds later, after the client (with a shorter timeout) gave up. The client
sees an ambiguous failure and must look the write up by its key (comment marker, check
run external_id, Slack message metadata, Codegen run metadata) for at least the request
timeout before it writes again. These tests take real time: a second or two each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.integrations.codegen import CodegenClient
from contexten.integrations.github import GitHubClient
from contexten.integrations.http import RetryPolicy
from contexten.integrations.idempotency import ActionLedger
from contexten.integrations.interface import Message
from contexten.integrations.slack import SlackNotifier
from contexten.sandbox.faults import FaultInjector, FaultRule
from contexten.sandbox.github import GitHubState
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import running_sandbox
from contexten.store.db import Store

CLIENT_TIMEOUT = 0.5
LATE_BY = 1.2  # the write lands this long after the request arrived


def real_policy(*, late_write_seconds: float) -> RetryPolicy:
    """Real time: the lookups must really wait for the late write to land."""
    return RetryPolicy(
        max_attempts=4,
        base_delay=0.05,
        max_delay=0.2,
        max_total_seconds=60,
        timeout_seconds=CLIENT_TIMEOUT,
        late_write_seconds=late_write_seconds,
    )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    the_store = Store(f"sqlite:///{tmp_path / 'actions.db'}")
    the_store.migrate()
    yield the_store
    the_store.dispose()


def late_once(faults: FaultInjector, path: str, late_by: float = LATE_BY) -> FaultRule:
    """The next write to `path` completes `late_by` seconds after the client gave up."""
    return faults.add(
        FaultRule(path=path, method="POST", late_rate=1.0, late_delay=late_by, times=1)
    )


async def landed(faults: FaultInjector, rule: FaultRule, before: int) -> None:
    """Wait until the late write took effect (so a duplicate would already be visible)."""
    while faults.counts["late_completed"] <= before:
        await asyncio.sleep(0.05)
    faults.rules.remove(rule)


def github(sandbox: SandboxServer, store: Store, policy: RetryPolicy) -> GitHubClient:
    return GitHubClient(
        base_url=sandbox.github_url,
        token=sandbox.env()["GITHUB_TOKEN"],
        policy=policy,
        ledger=ActionLedger(store, policy=policy),
    )


def new_repo(state: GitHubState, name: str) -> str:
    import uuid

    repo = f"octo/{name}-{uuid.uuid4().hex[:8]}"
    state.add_repo(repo, files={"README.md": "# late\n"})
    return repo


# The control lands well after the retry, however slow a loaded machine makes it.
@pytest.mark.parametrize(
    ("window", "late_by"), [(3.0, LATE_BY), (0.0, 4.0)], ids=["looked-up-long-enough", "too-short"]
)
async def test_a_late_comment_is_found_by_its_marker_not_posted_again(
    sandbox: SandboxServer, store: Store, window: float, late_by: float
) -> None:
    state = sandbox.state.github
    repo = new_repo(state, "comments")
    pr = state.add_pull_request(repo, "feature")
    faults = sandbox.faults["github"]
    before = faults.counts["late_completed"]
    rule = late_once(faults, f"/repos/{repo}/issues/*/comments", late_by)
    client = github(sandbox, store, real_policy(late_write_seconds=window))
    try:
        await client.create_issue_comment(repo, pr.number, "diagnosis: flaky network")
    finally:
        await client.aclose()
    await landed(faults, rule, before)
    comments = state.comments(repo, pr.number)
    if window > late_by:
        assert len(comments) == 1  # the late one, found by its marker
    else:
        assert len(comments) == 2  # the fault is real: a short look-up duplicates


async def test_a_late_check_run_is_found_by_its_external_id(
    sandbox: SandboxServer, store: Store
) -> None:
    state = sandbox.state.github
    repo = new_repo(state, "checks")
    sha = state.repo(repo).branches["main"]
    faults = sandbox.faults["github"]
    before = faults.counts["late_completed"]
    rule = late_once(faults, f"/repos/{repo}/check-runs")
    client = github(sandbox, store, real_policy(late_write_seconds=3.0))
    try:
        check = await client.create_check_run(
            repo,
            name="contexten/diagnosis",
            head_sha=sha,
            title="t",
            summary="s",
            conclusion="neutral",
        )
    finally:
        await client.aclose()
    await landed(faults, rule, before)
    runs = state.check_runs(repo)
    assert len(runs) == 1 and runs[0].id == check.id


async def test_a_late_slack_message_is_found_by_its_metadata(
    sandbox: SandboxServer, store: Store
) -> None:
    slack = sandbox.state.slack
    faults = sandbox.faults["slack"]
    before_count = len(slack.messages(slack.channel))
    before = faults.counts["late_completed"]
    rule = late_once(faults, "/api/chat.postMessage")
    policy = real_policy(late_write_seconds=3.0)
    notifier = SlackNotifier(
        ledger=ActionLedger(store, policy=policy),
        bot_token=slack.bot_token,
        channel=slack.channel,
        api_url=sandbox.slack_api_url,
        policy=policy,
    )
    posted = await notifier.post(Message(text="CI failed: flaky network (late write test)"))
    await landed(faults, rule, before)
    messages = slack.messages(slack.channel)[before_count:]
    assert len(messages) == 1 and messages[0].ts == posted.ts


async def test_a_late_codegen_run_is_found_by_its_metadata(
    sandbox: SandboxServer, store: Store
) -> None:
    codegen = sandbox.state.codegen
    faults = sandbox.faults["codegen"]
    before_runs = len(codegen.runs())
    before = faults.counts["late_completed"]
    rule = late_once(faults, "/v1/organizations/*/agent/run")
    policy = real_policy(late_write_seconds=3.0)
    client = CodegenClient(
        token=codegen.token,
        org_id=codegen.org_id,
        ledger=ActionLedger(store, policy=policy),
        api_url=sandbox.codegen_url,
        policy=policy,
    )
    try:
        run = await client.create_run("Fix the failing test (late write)", key="late-run-key")
    finally:
        await client.aclose()
    await landed(faults, rule, before)
    made = codegen.runs()[before_runs:]
    assert len(made) == 1 and str(made[0].id) == str(run.id)
