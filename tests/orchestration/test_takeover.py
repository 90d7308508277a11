"""A run whose process died is taken over under its key and re-run from the start."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from contexten.config import Settings
from contexten.events.dispatcher import Dispatcher
from contexten.events.inbox import Inbox
from contexten.integrations.idempotency import ActionLedger
from contexten.orchestration import PrefectOrchestrator
from contexten.orchestration.execution import LeaseLost, execute_workflow
from contexten.store import executions as runs
from contexten.store.db import Store
from contexten.store.models import WorkflowExecution
from contexten.workflows.base import WorkflowOutcome

DEAD = "deadhost:4242:0123456789ab"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        contexten_home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        prefect_api_url="http://127.0.0.1:9/api",  # closed: in-process
        workflow_retry_delay=0,
        execution_lease_seconds=60,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    the_store = Store(settings.effective_database_url)
    the_store.migrate()
    yield the_store
    the_store.dispose()


@pytest.fixture
def body(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """linear_sync's body, counting its calls; `gate` holds it until set (when given)."""
    state = types.SimpleNamespace(calls=0, run_ids=[], gate=None)
    module = types.ModuleType("contexten.workflows.linear_sync")

    async def run(params: object, ctx: Any) -> WorkflowOutcome:
        state.calls += 1
        state.run_ids.append(ctx.run_id)
        if state.gate is not None:
            await state.gate.wait()
        return WorkflowOutcome(ok=True, summary=f"call {state.calls}")

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "contexten.workflows.linear_sync", module)
    return state


def _dead_run(store: Store, run_id: str, key: str | None, *, status: str = "running") -> None:
    """What a process killed mid-run leaves: a leased row nobody renews any more."""
    runs.record(
        store,
        run_id,
        idempotency_key=key,
        workflow_type="linear_sync",
        mode="in-process",
        status=status,
        parameters={},
        lease_owner=DEAD,
        lease_expires_at=datetime.now(UTC) - timedelta(seconds=5),
    )


async def test_a_retry_of_the_key_takes_over_the_dead_run_and_runs_it(
    settings: Settings, store: Store, body: types.SimpleNamespace
) -> None:
    _dead_run(store, "run-dead", "github-delivery:d1:linear_sync")
    orchestrator = PrefectOrchestrator(settings=settings, store=store)
    run_id = await orchestrator.trigger_workflow(
        "linear_sync", {}, idempotency_key="github-delivery:d1:linear_sync"
    )
    assert run_id == "run-dead" and body.calls == 1 and body.run_ids == ["run-dead"]
    row = runs.load(store, "run-dead")
    assert row is not None and row.status == "completed" and row.takeovers == 1
    assert row.taken_over_from == DEAD and row.lease_owner == runs.process_owner()
    # a second retry finds it completed: nothing runs again
    again = await orchestrator.trigger_workflow(
        "linear_sync", {}, idempotency_key="github-delivery:d1:linear_sync"
    )
    assert again == "run-dead" and body.calls == 1


async def test_a_live_run_is_not_taken_over(
    settings: Settings, store: Store, body: types.SimpleNamespace
) -> None:
    _dead_run(store, "run-live", "k-live")
    with store.session() as session:  # its owner still renews it
        session.execute(
            update(WorkflowExecution)
            .where(WorkflowExecution.run_id == "run-live")
            .values(lease_expires_at=datetime.now(UTC) + timedelta(seconds=60))
        )
    orchestrator = PrefectOrchestrator(settings=settings, store=store)
    assert await orchestrator.trigger_workflow("linear_sync", {}, idempotency_key="k-live") == (
        "run-live"
    )
    assert body.calls == 0
    row = runs.load(store, "run-live")
    assert row is not None and row.status == "running" and row.takeovers == 0


async def test_recover_stale_runs_reruns_every_dead_run_once(
    settings: Settings, store: Store, body: types.SimpleNamespace
) -> None:
    _dead_run(store, "run-a", "k-a")
    _dead_run(store, "run-b", None, status="scheduled")
    orchestrator = PrefectOrchestrator(settings=settings, store=store)
    taken = await orchestrator.recover_stale_runs()
    assert sorted(r.run_id for r in taken) == ["run-a", "run-b"]
    assert sorted(body.run_ids) == ["run-a", "run-b"]
    assert await orchestrator.recover_stale_runs() == []  # nothing left
    for run_id in ("run-a", "run-b"):
        row = runs.load(store, run_id)
        assert row is not None and row.status == "completed" and row.takeovers == 1
    assert [r.run_id for r in runs.taken_over(store)] != []


async def test_a_process_whose_run_was_taken_over_stops_and_writes_nothing(
    settings: Settings, store: Store, body: types.SimpleNamespace
) -> None:
    quick = settings.model_copy(update={"execution_lease_seconds": 1})
    body.gate = asyncio.Event()  # the body never finishes by itself
    running = asyncio.create_task(
        execute_workflow("linear_sync", {}, settings=quick, store=store, run_id="run-x")
    )
    while body.calls == 0:
        await asyncio.sleep(0.01)
    # another process takes it over (as if this one had stalled past its lease)
    with store.session() as session:
        session.execute(
            update(WorkflowExecution)
            .where(WorkflowExecution.run_id == "run-x")
            .values(lease_owner="otherhost:1:x", takeovers=1, status="running")
        )
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(running, 30)
    row = runs.load(store, "run-x")
    assert row is not None and row.status == "running" and row.lease_owner == "otherhost:1:x"


async def test_the_dispatcher_sweeps_for_dead_runs_when_it_starts(
    settings: Settings, store: Store, body: types.SimpleNamespace
) -> None:
    _dead_run(store, "run-acked", "github-delivery:old:linear_sync")
    orchestrator = PrefectOrchestrator(settings=settings, store=store)

    async def trigger(workflow_type: str, parameters: dict[str, Any], key: str) -> str:
        return await orchestrator.trigger_workflow(workflow_type, parameters, idempotency_key=key)

    async def sweep() -> int:
        return len(await orchestrator.recover_stale_runs(wait=True))

    dispatcher = Dispatcher(
        Inbox(store), trigger, settings, poll_interval=0.01, sweep=sweep, wake_delay=0
    )
    running = asyncio.create_task(dispatcher.run(grace_seconds=5))
    while dispatcher.taken_over == 0:
        await asyncio.sleep(0.01)
    dispatcher.stop()
    await asyncio.wait_for(running, 30)
    assert body.run_ids == ["run-acked"]
    row = runs.load(store, "run-acked")
    assert row is not None and row.status == "completed"


async def test_actions_of_a_dead_owner_are_taken_over_at_once(store: Store) -> None:
    dead = ActionLedger(store, owner=DEAD, lease_seconds=900)
    started = asyncio.Event()

    async def hang() -> dict[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        return {}

    task = asyncio.create_task(dead.once("action-key", "comment", "pr 1", hang))
    await started.wait()
    task.cancel()  # the process "dies": its claim stays pending with a 900 s lease
    await asyncio.gather(task, return_exceptions=True)
    with store.session() as session:  # (cancel recorded failed; put the pending claim back)
        from contexten.store.models import ActionRecord

        session.execute(
            update(ActionRecord)
            .where(ActionRecord.idempotency_key == "action-key")
            .values(
                status="pending",
                result={"claim": {"owner": DEAD, "lease_until": time.time() + 900}},
            )
        )
    waiter = ActionLedger(store, max_wait_seconds=0.05, poll_interval=0.01)
    with pytest.raises(Exception, match="in progress elsewhere"):
        await waiter.once("action-key", "comment", "pr 1", _done)
    _dead_run(store, "run-of-dead", "k-dead")  # its run is taken over: the owner is gone
    (stale,) = runs.stale(store, lease_seconds=60)
    assert runs.take_over(store, stale, owner=runs.process_owner(), lease_seconds=60)
    assert await waiter.once("action-key", "comment", "pr 1", _done) == {"posted": 1}


async def _done() -> dict[str, Any]:
    return {"posted": 1}


CHILD = textwrap.dedent(
    """
    import asyncio, sys, types
    from pathlib import Path
    from contexten.config import Settings
    from contexten.orchestration import PrefectOrchestrator
    from contexten.workflows.base import WorkflowOutcome

    marker = Path(sys.argv[2])
    module = types.ModuleType("contexten.workflows.linear_sync")

    async def run(params, ctx):
        partial = marker.with_suffix(".partial")
        partial.write_text(ctx.run_id)
        partial.replace(marker)  # whole or absent: the test reads the id after the kill
        await asyncio.sleep(3600)  # killed before it ends
        return WorkflowOutcome(ok=True, summary="never")

    module.run = run
    sys.modules["contexten.workflows.linear_sync"] = module
    settings = Settings(
        database_url=sys.argv[1], prefect_api_url="http://127.0.0.1:9/api",
        execution_lease_seconds=1,
    )
    asyncio.run(
        PrefectOrchestrator(settings=settings).trigger_workflow(
            "linear_sync", {}, idempotency_key="github-delivery:killed:linear_sync"
        )
    )
    """
)


async def test_a_run_killed_mid_way_is_taken_over_and_completed(
    settings: Settings, store: Store, body: types.SimpleNamespace, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, settings.effective_database_url, str(marker)],
        env={**os.environ, "CONTEXTEN_HOME": str(tmp_path / "child-home")},
    )
    try:
        deadline = time.monotonic() + 180  # importing Prefect on a busy machine is slow
        while time.monotonic() < deadline:
            if marker.exists() or child.poll() is not None:
                break
            await asyncio.sleep(0.01)
        assert marker.exists(), "the child never started its run"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    run_id = marker.read_text()
    row = runs.load(store, run_id)
    assert row is not None and row.status == "running"  # left behind by the dead process
    while not runs.stale(store, lease_seconds=1):  # its 1 s lease runs out, unrenewed
        await asyncio.sleep(0.05)
    orchestrator = PrefectOrchestrator(settings=settings, store=store)
    again = await orchestrator.trigger_workflow(
        "linear_sync", {}, idempotency_key="github-delivery:killed:linear_sync"
    )
    assert again == run_id and body.run_ids == [run_id]
    row = runs.load(store, run_id)
    assert row is not None and row.status == "completed" and row.takeovers == 1
    assert row.taken_over_from is not None and f":{child.pid}:" in row.taken_over_from


def test_status_lists_stale_and_taken_over_runs(
    contexten_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from contexten.cli import main
    from contexten.config import get_settings
    from contexten.store import open_store

    the_store = open_store(get_settings().effective_database_url)
    _dead_run(the_store, "run-stale-1", "k1")
    _dead_run(the_store, "run-taken-2", "k2")
    (_, taken) = runs.stale(the_store, lease_seconds=60)
    assert runs.take_over(the_store, taken, owner="newhost:7:c", lease_seconds=60)
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in data["stale_runs"]] == ["run-stale-1"]
    assert data["stale_runs"][0]["lease_owner"] == DEAD
    (moved,) = data["taken_over_runs"]
    assert moved["run_id"] == "run-taken-2" and moved["taken_over_from"] == DEAD
    assert moved["lease_owner"] == "newhost:7:c" and moved["takeovers"] == 1
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "stale run: run-stal" in text and "taken over: run-take" in text


async def test_a_run_that_breaks_outside_its_body_is_released_and_run_by_the_retry(
    settings: Settings, store: Store, body: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contexten.orchestration import orchestrator as module

    real = module.execute_workflow

    async def store_hiccup(*args: Any, **kwargs: Any) -> Any:
        raise OSError("database disk image is busy")

    orchestrator = PrefectOrchestrator(settings=settings, store=store)
    monkeypatch.setattr(module, "execute_workflow", store_hiccup)
    with pytest.raises(OSError):
        await orchestrator.trigger_workflow("linear_sync", {}, idempotency_key="k-hiccup")
    (row,) = [r for r in runs.recent(store) if r.idempotency_key == "k-hiccup"]
    assert row.status == "scheduled" and body.calls == 0  # released, not reported failed
    monkeypatch.setattr(module, "execute_workflow", real)
    again = await orchestrator.trigger_workflow("linear_sync", {}, idempotency_key="k-hiccup")
    assert again == row.run_id and body.calls == 1  # the dispatcher's retry runs it
    done = runs.load(store, row.run_id)
    assert done is not None and done.status == "completed"
