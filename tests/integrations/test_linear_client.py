"""The Linear client against the Linear sandbox over real sockets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate
from graphql.execution.values import get_variable_values
from graphql.language import OperationDefinitionNode

from contexten.integrations.http import RetryPolicy
from contexten.integrations.idempotency import ActionLedger
from contexten.integrations.interface import ErrorReason, IssueTrackerError
from contexten.integrations.linear import (
    OPERATIONS,
    LinearClient,
    client_uuid,
    open_issue_filter,
)
from contexten.sandbox.linear import SCHEMA_PATH, LinearState
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import running_sandbox
from contexten.store.db import Store

SHARED_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "contracts" / "linear-schema.graphql"


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def policy(sleep: FakeSleep) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=8, base_delay=0.01, max_total_seconds=60, timeout_seconds=5, sleep=sleep
    )


@pytest.fixture
def ledger(tmp_path: Path, policy: RetryPolicy) -> Iterator[ActionLedger]:
    store = Store(f"sqlite:///{tmp_path / 'contexten.db'}")
    store.migrate()
    yield ActionLedger(store, policy=policy)
    store.dispose()


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with running_sandbox(services=("linear",)) as running:
        yield running


@pytest.fixture
def linear(server: SandboxServer) -> LinearState:
    state = server.state.linear
    assert isinstance(state, LinearState)
    return state


def make_client(
    server: SandboxServer, ledger: ActionLedger, policy: RetryPolicy, **kw: str
) -> LinearClient:
    state = server.state.linear
    return LinearClient(
        api_key=kw.get("api_key", state.api_key),
        team_id=kw.get("team_id", state.team_id),
        ledger=ledger,
        api_url=server.linear_url,
        policy=policy,
    )


# ----------------------------------------------------------------------------- schema


def test_every_operation_validates_against_linears_schema() -> None:
    schema = build_schema(SHARED_SCHEMA.read_text(encoding="utf-8"))
    for name, text in OPERATIONS.items():
        document = parse(text)
        assert validate(schema, document) == [], name
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        assert operation.name is not None and operation.name.value == name


def test_variables_we_send_coerce_to_the_schemas_input_types() -> None:
    schema = build_schema(SHARED_SCHEMA.read_text(encoding="utf-8"))
    samples = {
        "FindOpenIssue": {"filter": open_issue_filter("team-1", title="t", label="ci")},
        "CreateIssue": {
            "input": {
                "id": client_uuid("k"),
                "teamId": "team-1",
                "title": "t",
                "description": "**md**",
                "priority": 2,
                "labelIds": ["l1"],
            }
        },
        "UpdateIssue": {"id": "ENG-1", "input": {"stateId": "s1"}},
        "CreateComment": {"input": {"id": client_uuid("c"), "issueId": "ENG-1", "body": "x"}},
        "FindLabels": {"filter": {"name": {"in": ["ci", "flaky"]}}},
        "CreateLabel": {"input": {"id": client_uuid("l"), "name": "ci", "teamId": "team-1"}},
    }
    for name, variables in samples.items():
        operation = next(
            d for d in parse(OPERATIONS[name]).definitions if isinstance(d, OperationDefinitionNode)
        )
        coerced = get_variable_values(schema, operation.variable_definitions, variables)
        assert not isinstance(coerced, list), (name, coerced)
    bad = next(
        d
        for d in parse(OPERATIONS["CreateIssue"]).definitions
        if isinstance(d, OperationDefinitionNode)
    )
    assert isinstance(
        get_variable_values(schema, bad.variable_definitions, {"input": {"title": "x"}}), list
    )


def test_packaged_schema_is_linears_schema_unchanged() -> None:
    packaged = SCHEMA_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
    body = "".join(line for line in packaged if not line.startswith("# ") or line.startswith("#  "))
    header = [line for line in packaged[:6] if line.startswith("#")]
    assert any("MIT" in line for line in header) and any("d044ca65" in line for line in header)
    assert body == SHARED_SCHEMA.read_text(encoding="utf-8")


def test_client_uuid_is_stable_and_v4_shaped() -> None:
    a, b = client_uuid("x", 1), client_uuid("x", 1)
    assert a == b and a != client_uuid("x", 2)
    assert a[14] == "4" and a[19] in "89ab"


# ----------------------------------------------------------------------------- behaviour


async def test_create_find_comment_close(
    server: SandboxServer, linear: LinearState, ledger: ActionLedger, policy: RetryPolicy
) -> None:
    client = make_client(server, ledger, policy)
    try:
        ref = await client.create_issue(
            title="CI failure: pytest assertion in tests/test_api.py",
            description="## Evidence\n```\nE   assert 1 == 2\n```",
            priority=2,
            labels=["ci-failure", "contexten"],
        )
        assert ref.identifier.startswith("ENG-") and ref.state == "backlog"
        [stored] = linear.issues()
        assert stored.id == ref.id and stored.priority == 2
        assert stored.description is not None and "assert 1 == 2" in stored.description
        assert sorted(linear.issue_labels(ref.id)) == ["ci-failure", "contexten"]

        by_title = await client.find_open_issue(title=ref.title)
        by_label = await client.find_open_issue(label="ci-failure")
        assert by_title == by_label == ref
        assert await client.find_open_issue(title="something else") is None

        comment_id = await client.comment(ref.id, "Seen again in run 42")
        again = await client.comment(ref.id, "Seen again in run 42")
        assert comment_id == again
        assert [c.body for c in linear.comments(ref.id)] == ["Seen again in run 42"]

        closed = await client.close_issue(ref.identifier)
        assert closed.state == "completed" and linear.issue_state_type(ref.id) == "completed"
        assert await client.find_open_issue(title=ref.title) is None
    finally:
        await client.aclose()


async def test_same_key_never_makes_a_second_issue(
    server: SandboxServer, linear: LinearState, ledger: ActionLedger, policy: RetryPolicy
) -> None:
    client = make_client(server, ledger, policy)
    try:
        first = await client.create_issue(title="Flaky: test_x", description="d", key="sig-1")
        second = await client.create_issue(title="Flaky: test_x", description="d", key="sig-1")
        assert first == second and len(linear.issues()) == 1
        # A second process (new ledger rows lost) still finds it by the client-chosen id.
        other_store = Store(f"sqlite:///{ledger.store.url.split('///')[1]}.other")
        other_store.migrate()
        other = make_client(server, ActionLedger(other_store, policy=policy), policy)
        try:
            third = await other.create_issue(title="Flaky: test_x", description="d", key="sig-1")
        finally:
            await other.aclose()
            other_store.dispose()
        assert third.id == first.id and len(linear.issues()) == 1
    finally:
        await client.aclose()


async def test_existing_workspace_label_is_reused_not_recreated(
    server: SandboxServer, linear: LinearState, ledger: ActionLedger, policy: RetryPolicy
) -> None:
    workspace_label = linear.add_label("infra")
    client = make_client(server, ledger, policy)
    try:
        ref = await client.create_issue(
            title="Runner lost", description="d", labels=["infra", "infra"]
        )
    finally:
        await client.aclose()
    assert linear.issues()[0].label_ids == [workspace_label]
    assert [la.name for la in linear.labels.values()].count("infra") == 1
    assert ref.title == "Runner lost"


@pytest.mark.parametrize("style", ["400", "429"])
async def test_rate_limit_retried_with_retry_after(
    style: str,
    server: SandboxServer,
    linear: LinearState,
    ledger: ActionLedger,
    policy: RetryPolicy,
    sleep: FakeSleep,
) -> None:
    client = make_client(server, ledger, policy)
    try:
        linear.rate_limit_next(2, style=style, retry_after=7)  # type: ignore[arg-type]
        ref = await client.create_issue(title="rate limited", description="d")
    finally:
        await client.aclose()
    assert sleep.delays == [7.0, 7.0]
    assert [i.id for i in linear.issues()] == [ref.id]


async def test_rate_limit_without_retry_after_waits_for_the_reset_header(
    server: SandboxServer,
    linear: LinearState,
    ledger: ActionLedger,
    policy: RetryPolicy,
    sleep: FakeSleep,
) -> None:
    client = make_client(server, ledger, policy)
    try:
        linear.rate_limit_next(1, style="400", retry_after=None)
        assert await client.find_open_issue(title="x") is None
    finally:
        await client.aclose()
    # x-ratelimit-requests-reset is in epoch milliseconds, about 3 s ahead (+1 s rounding).
    assert len(sleep.delays) == 1 and 2.0 < sleep.delays[0] <= 5.0


async def test_exhausted_budget_fails_fast_with_reset_time(
    server: SandboxServer, linear: LinearState, ledger: ActionLedger, sleep: FakeSleep
) -> None:
    linear.requests_limit = 1
    policy = RetryPolicy(max_attempts=5, max_total_seconds=30, sleep=sleep)
    client = make_client(server, ledger, policy)
    try:
        await client.find_open_issue(title="uses the one request")
        with pytest.raises(IssueTrackerError) as info:
            await client.find_open_issue(title="x")
    finally:
        await client.aclose()
    assert info.value.rate_limited and info.value.reset_at is not None
    assert sleep.delays == []  # an hour-long wait is not slept through


async def test_bad_key_is_an_auth_error_without_the_key(
    server: SandboxServer,
    ledger: ActionLedger,
    policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_key = "lin_api_wrongKeyWrongKeyWrongKey0000000000"
    client = make_client(server, ledger, policy, api_key=bad_key)
    try:
        with pytest.raises(IssueTrackerError) as info:
            await client.find_open_issue(title="x")
        result = await client.check()
    finally:
        await client.aclose()
    assert info.value.reason is ErrorReason.AUTH
    assert result.status == "down" and "authenticat" in result.detail.lower()
    for text in (str(info.value), repr(info.value), repr(client), result.detail, caplog.text):
        assert bad_key not in text


async def test_check_reports_rate_limit_left(
    server: SandboxServer, ledger: ActionLedger, policy: RetryPolicy
) -> None:
    client = make_client(server, ledger, policy)
    unknown_team = make_client(server, ledger, policy, team_id="no-such-team")
    try:
        result = await client.check()
        missing = await unknown_team.check()
    finally:
        await client.aclose()
        await unknown_team.aclose()
    assert result.status == "ok" and result.rate_limit_remaining == 4999
    assert result.rate_limit_reset_at is not None and result.latency_ms is not None
    assert missing.status == "down" and "Team" in missing.detail


async def test_invalid_input_is_not_retried(
    server: SandboxServer, ledger: ActionLedger, policy: RetryPolicy, sleep: FakeSleep
) -> None:
    client = make_client(server, ledger, policy)
    try:
        with pytest.raises(IssueTrackerError) as info:
            await client.comment("ENG-999", "no such issue")
        with pytest.raises(IssueTrackerError) as bad_priority:
            await client.create_issue(title="x", description="d", priority=7)
    finally:
        await client.aclose()
    assert info.value.reason is ErrorReason.NOT_FOUND and sleep.delays == []
    assert bad_priority.value.reason is ErrorReason.INVALID


async def test_no_lost_or_duplicated_issues_at_20_percent_faults(
    server: SandboxServer,
    linear: LinearState,
    ledger: ActionLedger,
    sleep: FakeSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = server.faults["linear"]
    faults.add(error_rate=0.05, drop_before_rate=0.05, error_after_rate=0.05, drop_rate=0.05)
    faults.rate_limit(2, style="linear_429", wait=1)
    policy = RetryPolicy(
        max_attempts=12, base_delay=0.01, max_total_seconds=600, timeout_seconds=5, sleep=sleep
    )
    ledger = ActionLedger(ledger.store, policy=policy)
    client = make_client(server, ledger, policy)
    titles = [f"CI failure signature {n:02d}" for n in range(25)]
    refs = {}
    try:
        for delivery in range(2):  # every event delivered twice
            for title in titles:
                ref = await client.create_issue(
                    title=title,
                    description=f"about {title}",
                    labels=["ci-failure"],
                    key=f"sig:{title}",
                )
                assert refs.setdefault(title, ref.id) == ref.id, delivery
                await client.comment(ref.id, f"seen: {title}", key=f"seen:{title}")
    finally:
        await client.aclose()
    stored = linear.issues()
    assert sorted(i.title for i in stored) == sorted(titles)  # none lost, none twice
    assert len(linear.comments()) == len(titles)
    assert sum(faults.counts.values()) >= 10  # the faults really happened
    assert faults.counts["error_after"] + faults.counts["drop_after"] >= 3
    assert linear.api_key not in caplog.text


async def test_factory_builds_the_client_from_sandbox_env(server: SandboxServer) -> None:
    from contexten.config import Settings
    from contexten.integrations.factory import linear_client

    env = {k.lower(): v for k, v in server.env().items()}
    assert linear_client(Settings(linear_api_key=None)) is None
    client = linear_client(Settings(**env))
    assert client is not None
    try:
        assert (await client.check()).status == "ok"
        ref = await client.create_issue(title="from the factory", description="d")  # no store
        assert ref.title == "from the factory"
    finally:
        await client.aclose()
