"""Two receiver replicas (separate `contexten webhook serve` processes, as behind a load
balancer) share one inbox in PostgreSQL: every delivery is recorded once, even when GitHub
redelivers it to the other replica, and dispatched by exactly one of the two dispatchers
(claims use SELECT … FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from recording_trigger import CREATE_TABLE
from sqlalchemy import text

from contexten.orchestration.prefect_server import free_port
from contexten.sandbox.github import JobSpec
from contexten.sandbox.testing import running_sandbox
from contexten.sandbox.webhooks import WebhookSender
from contexten.store.db import Store

pytestmark = pytest.mark.postgres

HERE = Path(__file__).resolve().parent
SECRET = "replica-test-secret"
REPOSITORY = "octo/app"
FAILED_RUNS = 40


def _receiver_env(database_url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        DATABASE_URL=database_url,
        CONTEXTEN_HOME=str(home),
        GITHUB_WEBHOOK_SECRET=SECRET,
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return env


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"receiver exited: {log.read_text(errors='replace')[-800:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"receiver at {url} not ready after 90 s")


@pytest.fixture
def replicas(postgres_database: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two receiver+dispatcher processes on one PostgreSQL inbox; their base URLs."""
    store = Store(postgres_database)
    store.migrate()  # once, before the replicas start (the documented procedure)
    with store.engine.begin() as connection:
        connection.execute(text(CREATE_TABLE))
    store.dispose()
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for index in range(2):
            port = free_port()
            log = tmp_path / f"replica{index}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "contexten.cli",
                        "webhook",
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--trigger",
                        "recording_trigger:factory",
                        "--log-level",
                        "warning",
                    ],
                    env=_receiver_env(postgres_database, tmp_path / f"home{index}"),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
        for index, (url, process) in enumerate(zip(urls, processes, strict=True)):
            _wait_ready(url, process, tmp_path / f"replica{index}.log")
        yield urls
        for process in processes:  # a clean stop drains the dispatcher: exit code 0
            process.send_signal(signal.SIGTERM)
        assert [p.wait(timeout=60) for p in processes] == [0, 0]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


async def _deliver_twice(urls: list[str]) -> tuple[Counter[str], set[str]]:
    """Each failed run's delivery to one replica, then the same delivery to the other."""
    with running_sandbox(services=("github",)) as sandbox:
        state = sandbox.state.github
        state.add_repo(REPOSITORY)
        runs = [
            state.add_run(REPOSITORY, jobs=(JobSpec("build", conclusion="failure"),))
            for _ in range(FAILED_RUNS)
        ]
        sender = WebhookSender(state, urls[0], secret=SECRET)
        with state.lock:
            requests = [
                sender.request("workflow_run", sender.payloads.workflow_run(run, "completed"))
                for run in runs
            ]
    expected = {f"failure_analysis:{REPOSITORY}:{run.id}:1" for run in runs}
    answers: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=30) as client:

        async def post(url: str, body: bytes, headers: dict[str, str]) -> None:
            response = await client.post(f"{url}/webhook", content=body, headers=headers)
            answers[f"{response.status_code} {response.json()['status']}"] += 1

        for first in (0, 1):  # then the redeliveries, to the other replica
            await asyncio.gather(
                *(
                    post(urls[(n + first) % 2], body, headers)
                    for n, (_guid, body, headers) in enumerate(requests)
                )
            )
    return answers, expected


def _wait_settled(store: Store, total: int) -> dict[str, int]:
    deadline = time.monotonic() + 60
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        with store.engine.connect() as connection:
            counts = dict(
                connection.execute(
                    text("SELECT status, count(*) FROM deliveries GROUP BY status")
                ).all()
            )
        if counts.get("dispatched", 0) + counts.get("failed", 0) >= total:
            return counts
        time.sleep(0.2)
    return counts


def test_two_replicas_dispatch_each_delivery_exactly_once(
    replicas: list[str], postgres_database: str
) -> None:
    answers, expected_keys = asyncio.run(_deliver_twice(replicas))
    assert answers == {"202 accepted": FAILED_RUNS, "200 duplicate": FAILED_RUNS}

    store = Store(postgres_database)
    try:
        counts = _wait_settled(store, FAILED_RUNS)
        assert counts == {"dispatched": FAILED_RUNS}, counts
        with store.engine.connect() as connection:
            calls = connection.execute(text("SELECT key, pid FROM trigger_calls")).all()
            claimers = connection.execute(
                text("SELECT DISTINCT split_part(claimed_by, ':', 2) FROM deliveries")
            ).scalars()
            claimer_pids = set(claimers)
    finally:
        store.dispose()
    keys = [key for key, _pid in calls]
    assert len(keys) == FAILED_RUNS, Counter(keys).most_common(3)
    assert set(keys) == expected_keys  # each failed run dispatched once, none twice
    assert len({pid for _key, pid in calls}) == 2, "both dispatchers should have taken work"
    assert len(claimer_pids) == 2
