"""Distributed mode end to end on a real PostgreSQL: Prefect server and our store on
PostgreSQL, a `process` work pool with deployments from `contexten initialize --work-pool`,
two `prefect worker start --limit 2` processes and the webhook receiver. Six failed
GitHub runs arrive as webhooks (some redelivered, some also reported per job); each is
analysed exactly once and its failed jobs re-run exactly once, counted at the sandbox and
in Prefect."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from distributed_stack import DistributedStack, StackConfig, seed_failed_runs
from sqlalchemy import text
from throwaway_postgres import ThrowawayPostgres

from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import running_sandbox
from contexten.sandbox.webhooks import WebhookSender
from contexten.store.db import Store

pytestmark = pytest.mark.postgres

REPOSITORY = "octo/distributed"
FAILED_RUNS = 6  # more than both workers' limits together (2 + 2), so both take work
REDELIVERED = 3  # GitHub redelivers: same delivery id
ALSO_PER_JOB = 3  # a workflow_job delivery for the same run: same run attempt, same key
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox(services=("github",)) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    postgres_server: ThrowawayPostgres,
    sandbox: SandboxServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DistributedStack]:
    postgres_server.create_database("prefect_workers")
    config = StackConfig(
        prefect_database_url=postgres_server.url("prefect_workers", driver="asyncpg"),
        store_database_url=postgres_server.create_database("store_workers"),
        workers=2,
        worker_limit=2,
        pool="contexten-test-pool",
        service_env=sandbox.env(),
    )
    with DistributedStack(config, tmp_path_factory.mktemp("distributed")) as running:
        yield running


async def _deliver(sandbox: SandboxServer, url: str, runs: list[Any]) -> Counter[str]:
    state = sandbox.state.github
    sender = WebhookSender(state, f"{url}/webhook")
    first = await asyncio.gather(*(sender.workflow_run(run.id) for run in runs))
    again = [await sender.redeliver(d.guid) for d in first[:REDELIVERED]]
    per_job = [
        await sender.workflow_job(run.attempts[0].jobs[0].id) for run in runs[-ALSO_PER_JOB:]
    ]
    return Counter(
        f"{d.status_code} {json.loads(d.response_text)['status']}"
        for d in (*first, *again, *per_job)
    )


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.timeout(480)  # a server, 4 processes and a flow-run process per run on 2 cores
def test_every_failed_run_analysed_and_rerun_exactly_once(
    stack: DistributedStack, sandbox: SandboxServer
) -> None:
    assert "failure-analysis/failure-analysis" in stack.initialize_report["deployments"]
    runs = seed_failed_runs(sandbox.state.github, REPOSITORY, FAILED_RUNS)
    answers = asyncio.run(_deliver(sandbox, stack.receiver_url, runs))
    assert answers == {
        "202 accepted": FAILED_RUNS + ALSO_PER_JOB,
        "200 duplicate": REDELIVERED,
    }

    store = Store(stack.config.store_database_url)
    try:

        def settled() -> bool:
            with store.engine.connect() as connection:
                return (
                    connection.execute(
                        text("SELECT count(*) FROM deliveries WHERE status = 'dispatched'")
                    ).scalar()
                    == FAILED_RUNS + ALSO_PER_JOB
                )

        _wait(settled, 120, "the inbox to be dispatched")
        flow_runs = _wait(
            lambda: (
                (r := stack.flow_runs())
                and len(r) >= FAILED_RUNS
                and all(run["state"]["type"] in FINAL for run in r)
                and r
            ),
            240,
            f"{FAILED_RUNS} failure-analysis flow runs to finish",
        )
        with store.engine.connect() as connection:
            executions = connection.execute(
                text(
                    "SELECT run_id, status, mode FROM workflow_executions "
                    "WHERE workflow_type = 'failure_analysis'"
                )
            ).all()
    finally:
        store.dispose()

    # In Prefect: one flow run per failed run, each completed after a single execution.
    assert len(flow_runs) == FAILED_RUNS
    assert Counter(run["state"]["type"] for run in flow_runs) == {"COMPLETED": FAILED_RUNS}
    assert [run["run_count"] for run in flow_runs] == [1] * FAILED_RUNS
    analysed = sorted(run["parameters"]["parameters"]["workflow_run_id"] for run in flow_runs)
    assert analysed == sorted(run.id for run in runs)  # one flow run per GitHub run
    ids = {run["id"] for run in flow_runs}
    # Each flow run was started by exactly one worker, and both workers took work.
    submitted = stack.submissions()
    assert sorted(i for found in submitted.values() for i in found) == sorted(ids)
    assert all(submitted.values()), submitted
    # At the sandbox: each failed run's jobs re-run once (attempt 2), no run twice.
    github = sandbox.state.github
    assert github.received["rerun_failed_jobs"] == FAILED_RUNS
    assert [len(run.attempts) for run in runs] == [2] * FAILED_RUNS
    # In our store: the same runs, recorded as completed Prefect executions.
    assert {row.run_id for row in executions} == ids
    assert {(row.status, row.mode) for row in executions} == {("completed", "prefect")}
