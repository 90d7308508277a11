"""The Codegen client against the Codegen sandbox over real sockets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.integrations.codegen import CodegenClient
from contexten.integrations.http import RetryPolicy
from contexten.integrations.idempotency import ActionLedger
from contexten.integrations.interface import CodingAgentError, ErrorReason
from contexten.sandbox.codegen import CodegenState
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import ManualClock, fast_policy, running_sandbox
from contexten.store.db import Store


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def policy(clock: ManualClock) -> RetryPolicy:
    return fast_policy(clock, max_attempts=12, max_total_seconds=600)


@pytest.fixture
def ledger(tmp_path: Path, policy: RetryPolicy) -> Iterator[ActionLedger]:
    store = Store(f"sqlite:///{tmp_path / 'contexten.db'}")
    store.migrate()
    yield ActionLedger(store, policy=policy)
    store.dispose()


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with running_sandbox(services=("codegen",)) as running:
        yield running


@pytest.fixture
def codegen(server: SandboxServer) -> CodegenState:
    state = server.state.codegen
    assert isinstance(state, CodegenState)
    return state


@pytest.fixture
async def client(
    server: SandboxServer, codegen: CodegenState, ledger: ActionLedger, policy: RetryPolicy
) -> CodegenClient:
    made = CodegenClient(
        token=codegen.token,
        org_id=codegen.org_id,
        ledger=ledger,
        api_url=server.codegen_url,
        policy=policy,
    )
    yield made
    await made.aclose()


async def test_run_to_completion_with_pr_links(
    client: CodegenClient, codegen: CodegenState, clock: ManualClock
) -> None:
    codegen.script_next_run(
        statuses=["PENDING", "RUNNING", "RUNNING", "COMPLETE"],
        pull_request={"title": "Fix flaky test", "number": 17},
    )
    run = await client.create_run("Fix the failing test", metadata={"signature": "abc"})
    assert run.status == "PENDING" and not run.finished
    done = await client.wait(run.id, timeout=600, poll_interval=10)
    assert done.succeeded and done.status == "COMPLETE"
    assert [p.url for p in done.pull_requests] == ["https://github.com/sandbox/app/pull/17"]
    assert done.pull_requests[0].title == "Fix flaky test"
    assert clock.sleeps == [10, 15]  # polled with back-off
    assert codegen.run(run.id).metadata == {
        "signature": "abc",
        "contexten_key": codegen.run(run.id).metadata["contexten_key"],
    }


@pytest.mark.parametrize(
    ("case", "final", "succeeded"),
    [
        ("lower", "COMPLETE", True),
        ("lower", "FAILED", False),
        ("upper", "ERROR", False),
        ("upper", "STOPPED", False),
        ("lower", "CANCELLED", False),
    ],
)
async def test_statuses_compare_case_insensitively(
    case: str, final: str, succeeded: bool, client: CodegenClient, codegen: CodegenState
) -> None:
    codegen.status_case = case  # type: ignore[assignment]
    codegen.script_next_run(final=final)
    run = await client.create_run(f"task ending {final} {case}")
    done = await client.wait(run.id, timeout=100, poll_interval=1)
    assert done.finished and done.succeeded is succeeded
    assert done.status == (
        final if case == "upper" else {"COMPLETE": "completed"}.get(final, final.lower())
    )
    assert done.pull_requests == ()


async def test_wait_times_out_with_a_clear_error(
    client: CodegenClient, codegen: CodegenState, clock: ManualClock
) -> None:
    codegen.script_next_run(statuses=["PENDING"] + ["RUNNING"] * 100 + ["COMPLETE"])
    run = await client.create_run("slow task")
    with pytest.raises(CodingAgentError) as info:
        await client.wait(run.id, timeout=120, poll_interval=10)
    assert info.value.reason is ErrorReason.UNAVAILABLE and "within 120 s" in str(info.value)
    assert "RUNNING" in str(info.value) and clock.elapsed == pytest.approx(120)


async def test_same_key_starts_one_run_even_across_processes(
    server: SandboxServer,
    client: CodegenClient,
    codegen: CodegenState,
    policy: RetryPolicy,
    tmp_path: Path,
) -> None:
    first = await client.create_run("fix it", key="sig-1")
    second = await client.create_run("fix it", key="sig-1")
    store = Store(f"sqlite:///{tmp_path / 'other.db'}")
    store.migrate()
    other = CodegenClient(
        token=codegen.token,
        org_id=codegen.org_id,
        ledger=ActionLedger(store, policy=policy),
        api_url=server.codegen_url,
        policy=policy,
    )
    no_store = CodegenClient(
        token=codegen.token, org_id=codegen.org_id, api_url=server.codegen_url, policy=policy
    )
    try:
        # A new process with an empty ledger starts a new run: the ledger is the guarantee.
        assert (await other.find_run("sig-1")) is not None
        third = await no_store.create_run("fix it", key="sig-1")
    finally:
        await other.aclose()
        await no_store.aclose()
        store.dispose()
    assert first.id == second.id == third.id and len(codegen.runs()) == 1


async def test_create_limit_of_10_a_minute_is_waited_out(
    client: CodegenClient, codegen: CodegenState, clock: ManualClock
) -> None:
    codegen.clock = clock.wall  # the sandbox's minute passes when the client sleeps
    runs = [await client.create_run(f"task {n}") for n in range(11)]
    assert len({r.id for r in runs}) == 11 and len(codegen.runs()) == 11
    assert len(clock.sleeps) == 1 and 59 <= clock.sleeps[0] <= 61  # Retry-After honoured


async def test_rate_limited_create_waits_for_retry_after(
    server: SandboxServer, client: CodegenClient, codegen: CodegenState, clock: ManualClock
) -> None:
    server.faults["codegen"].rate_limit(2, style="codegen_429", wait=7)
    run = await client.create_run("rate limited")
    assert clock.sleeps == [7.0, 7.0] and [r.id for r in codegen.runs()] == [run.id]


async def test_errors_map_to_reasons(
    server: SandboxServer,
    codegen: CodegenState,
    ledger: ActionLedger,
    policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_token = "sk-wrong-codegen-token-000000000000"
    wrong = CodegenClient(
        token=bad_token,
        org_id=codegen.org_id,
        ledger=ledger,
        api_url=server.codegen_url,
        policy=policy,
    )
    other_org = CodegenClient(
        token=codegen.token, org_id=99, ledger=ledger, api_url=server.codegen_url, policy=policy
    )
    good = CodegenClient(
        token=codegen.token,
        org_id=codegen.org_id,
        ledger=ledger,
        api_url=server.codegen_url,
        policy=policy,
    )
    try:
        with pytest.raises(CodingAgentError) as auth:
            await wrong.create_run("x")
        with pytest.raises(CodingAgentError) as missing:
            await good.get_run(424242)
        codegen.orgs[codegen.org_id].run_limit = 0
        with pytest.raises(CodingAgentError) as plan:
            await good.create_run("over the plan")
        checks = [await wrong.check(), await other_org.check(), await good.check()]
    finally:
        for c in (wrong, other_org, good):
            await c.aclose()
    assert auth.value.reason is ErrorReason.AUTH and missing.value.reason is ErrorReason.NOT_FOUND
    assert plan.value.status_code == 402
    assert [c.status for c in checks] == ["down", "down", "ok"]
    assert "organization 99" in checks[1].detail
    for text in (str(auth.value), repr(wrong), checks[0].detail, caplog.text):
        assert bad_token not in text and codegen.token not in text


async def test_no_lost_or_duplicated_runs_at_20_percent_faults(
    server: SandboxServer,
    client: CodegenClient,
    codegen: CodegenState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    codegen.create_limit_per_minute = None
    codegen.requests_limit_per_30s = None
    faults = server.faults["codegen"]
    faults.add(error_rate=0.05, drop_before_rate=0.05, error_after_rate=0.05, drop_rate=0.05)
    faults.rate_limit(2, wait=1)
    prompts = [f"Fix failure signature {n:02d}" for n in range(30)]
    ids: dict[str, int] = {}
    for _ in range(2):  # every event delivered twice
        for prompt in prompts:
            run = await client.create_run(prompt, key=f"sig:{prompt}")
            assert ids.setdefault(prompt, run.id) == run.id
    assert sorted(r.prompt for r in codegen.runs()) == sorted(prompts)
    assert sum(faults.counts.values()) >= 5
    assert codegen.token not in caplog.text


async def test_resume_and_logs(client: CodegenClient, codegen: CodegenState) -> None:
    run = await client.create_run("first task")
    done = await client.wait(run.id, timeout=60, poll_interval=1)
    resumed = await client.resume(done.id, "also update the changelog")
    assert resumed.status == "RUNNING"
    again = await client.wait(run.id, timeout=60, poll_interval=1)
    assert again.succeeded and codegen.run(run.id).follow_ups == ["also update the changelog"]


async def test_factory_builds_the_client_from_sandbox_env(
    server: SandboxServer, tmp_path: Path
) -> None:
    from contexten.config import Settings
    from contexten.integrations.factory import codegen_agent

    env = {k.lower(): v for k, v in server.env().items()}
    assert codegen_agent(Settings(codegen_token=None, codegen_org_id=None)) is None
    store = Store(f"sqlite:///{tmp_path / 'factory.db'}")
    store.migrate()
    agent = codegen_agent(Settings(**env), store)
    assert agent is not None and agent.ledger is not None
    try:
        assert (await agent.check()).status == "ok"
    finally:
        await agent.aclose()
        store.dispose()
