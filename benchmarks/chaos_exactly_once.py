"""Exactly once under kill -9: deliveries, workflow runs and external actions.

Starts the GitHub sandbox (in this process) and `contexten webhook serve` (receiver and
dispatcher, workflow runs in-process) in a subprocess, sends N signed workflow_job
failure deliveries, and SIGKILLs the server at random moments (at least `--kills` times,
while deliveries arrive and while runs execute), restarting it each time; deliveries
without a 2xx answer are sent again, as GitHub's redelivery would.

The server's failure_analysis body is replaced (by the `chaos_trigger` factory below,
which then returns the real orchestrator trigger) with one that sleeps a random while,
comments once on a sandbox issue through the GitHub client and the action ledger (key:
the run), and sleeps again: a kill lands before, during or after the external action.
Runs of killed processes are taken over when their lease (EXECUTION_LEASE_SECONDS) ends.

Counted at the end, at the sandbox and in the store: deliveries acknowledged, runs per
key, comments per run. Exactly once = every delivery has one completed run and one
comment; none has two.

`--mode server` runs the same through `contexten server` instead (embedded Prefect
server, runner, receiver with its dispatcher running the flows locally, tracked by
Prefect; AUTO_RESTART_ENABLED): each kill -9 hits the receiver/dispatcher process, which
the server restarts. The chaos body reaches that process through a `sitecustomize` module
on its PYTHONPATH.

`--mode distributed` runs it on Prefect's distributed execution (tests/postgres/
distributed_stack.py): the Prefect server and the store on a throw-away PostgreSQL (or
SQLite with `--prefect-sqlite`), a `process` work pool, 2 `prefect worker start --limit 2`
and the receiver with its dispatcher. Each kill -9 hits one worker *together with its
flow-run processes* (a host or container dying), which is then started again. Runs killed
that way stay Running or Pending in Prefect until the zombie automation crashes them (no
heartbeat for 120 s); the dispatcher's sweep then starts each again under its
idempotency key. Counted: completed flow runs per delivery, crashed runs, comments.

    python benchmarks/chaos_exactly_once.py [--deliveries 1000] [--kills 5] [--seed 7]
        [--mode dispatcher|server|distributed]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhook_durability import Server, free_port

REPOSITORY = "octo/chaos"
PER_ISSUE = 50  # comments per sandbox issue (a look-up lists one issue's comments)
CHAOS_ENV = "CHAOS_GITHUB_ISSUES"


# ----- loaded in the server process by --trigger chaos_exactly_once:chaos_trigger -----
def chaos_trigger(settings: Any, store: Any) -> Any:
    """Install the chaos failure_analysis body, then return the real orchestrator trigger."""
    from contexten.events.service import orchestrator_trigger

    install_chaos_body()
    return orchestrator_trigger(settings, store)


def install_chaos_body() -> None:
    """Replace failure_analysis's body in this process (see the module docstring)."""
    import types

    module = types.ModuleType("contexten.workflows.failure_analysis")

    async def run(params: Any, ctx: Any) -> Any:
        from contexten.integrations import factory
        from contexten.integrations.idempotency import idempotency_key
        from contexten.workflows.base import WorkflowOutcome

        run_id = int(params.workflow_run_id)
        issue = 1 + (run_id % 100_000) // PER_ISSUE
        await asyncio.sleep(random.uniform(0.0, 0.4))
        client = factory.github_client(ctx.settings, ctx.store)
        assert client is not None, "GITHUB_TOKEN / GITHUB_API_URL not set"
        try:
            await client.create_issue_comment(
                params.repository,
                issue,
                f"chaos run {run_id}",
                key=idempotency_key("chaos-comment", params.repository, run_id),
            )
        finally:
            await client.aclose()
        await asyncio.sleep(random.uniform(0.0, 0.3))
        return WorkflowOutcome(ok=True, summary=f"commented for run {run_id}")

    module.run = run  # type: ignore[attr-defined]
    sys.modules["contexten.workflows.failure_analysis"] = module


SITECUSTOMIZE = """
import os
if os.environ.get("CHAOS_BODY") == "1":
    try:
        import chaos_exactly_once
        chaos_exactly_once.install_chaos_body()
    except Exception as exc:  # never stop an unrelated process from starting
        print("chaos: cannot install the body:", exc)
"""


class ServerUnderTest:
    """`contexten server`; kill() hits its receiver/dispatcher child, which it restarts."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        import subprocess

        self.workdir = workdir
        self.port = free_port()
        custom = workdir / "site"
        custom.mkdir(exist_ok=True)
        (custom / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        here = str(Path(__file__).resolve().parent)
        repo_src = str(Path(__file__).resolve().parents[1] / "src")
        path = os.pathsep.join([str(custom), here, repo_src, env.get("PYTHONPATH", "")])
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITHUB_"))},
            **env,
            "PYTHONPATH": path,
            "CHAOS_BODY": "1",
            "CONTEXTEN_HOME": str(workdir / "home"),
            "DATABASE_URL": f"sqlite:///{workdir / 'store.db'}",
            "WEBHOOK_PORT": str(self.port),
            "AUTO_RESTART_ENABLED": "true",
            "WEBHOOK_LEASE_SECONDS": env.get("EXECUTION_LEASE_SECONDS", "4"),
            "WORKFLOW_RETRY_DELAY": "0",
        }
        self.log = (workdir / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "contexten.cli", "server", "--port", "0"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"contexten server exited; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the receiver is not ready after {timeout}s; see {self.log.name}")

    def kill(self) -> None:
        import signal

        import psutil

        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if "webhook" in child.cmdline() and "serve" in child.cmdline():
                    os.kill(child.pid, signal.SIGKILL)
            except psutil.Error:
                continue

    def start(self, timeout: float = 240.0, _args: Any = None) -> None:
        time.sleep(0.5)  # let the supervisor notice the death (it checks every 2 s)
        self.wait_ready(timeout)

    def stop(self) -> None:
        import signal
        import subprocess

        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


class DistributedUnderTest:
    """The distributed stack; kill() is kill -9 of one worker with its flow-run processes."""

    def __init__(self, workdir: Path, env: dict[str, str], args: Any, rng: random.Random) -> None:
        repo = Path(__file__).resolve().parents[1]
        sys.path.insert(0, str(repo / "tests" / "postgres"))
        from distributed_stack import DistributedStack, StackConfig
        from throwaway_postgres import ThrowawayPostgres

        from contexten.orchestration.deploy import heartbeat_env

        self.rng = rng
        self.postgres: Any = None
        if args.prefect_sqlite:
            prefect_url = f"sqlite+aiosqlite:///{workdir / 'prefect.db'}"
            store_url = f"sqlite:///{workdir / 'store.db'}"
        else:
            self.postgres = ThrowawayPostgres.start()
            self.postgres.create_database("prefect_chaos")
            prefect_url = self.postgres.url("prefect_chaos", driver="asyncpg")
            store_url = self.postgres.create_database("store_chaos")
        custom = workdir / "site"
        custom.mkdir(exist_ok=True)
        (custom / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        here = str(Path(__file__).resolve().parent)
        path = os.pathsep.join([str(custom), here, str(repo / "src")])
        self.database_url = store_url
        self.config = StackConfig(
            prefect_database_url=prefect_url,
            store_database_url=store_url,
            workers=args.workers,
            worker_limit=2,
            pool="chaos-pool",
            service_env={
                **env,
                **heartbeat_env(),
                "PYTHONPATH": path,
                "CHAOS_BODY": "1",
                "LOG_LEVEL": "WARNING",
            },
            # slots held by killed runs stay taken until their lease (300 s) ends
            max_concurrent_workflows=8 * args.workers,
        )
        self.stack = DistributedStack(self.config, workdir)
        self.stack.start()
        self.killed_processes = 0

    @property
    def url(self) -> str:
        return str(self.stack.receiver_url)

    def workers(self) -> list[Any]:
        return [child for child in self.stack.children if child.name.startswith("worker-")]

    def kill(self) -> None:
        """kill -9 of a worker and every process under it, all at once (a host dying)."""
        import signal

        import psutil

        worker = self.rng.choice(self.workers())
        try:
            tree = [psutil.Process(worker.process.pid)]
            tree += tree[0].children(recursive=True)
        except psutil.Error:
            tree = []
        for process in tree:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(tree, timeout=10)
        worker.process.wait(timeout=10)
        self.killed_processes += len(tree)
        self.stack.children.remove(worker)
        self._dead = worker.name

    def start(self, timeout: float = 120.0, _args: Any = None) -> None:
        """The host comes back: its worker starts again under the same name."""
        name = self._dead
        self.stack._spawn(
            name,
            [
                *("-m", "prefect", "worker", "start", "--pool", self.config.pool),
                *("--type", "process", "--limit", str(self.config.worker_limit)),
                *("--name", name),
            ],
        )
        self.stack._wait_ready(timeout)

    def database(self) -> str:
        return self.database_url

    def flow_runs(self) -> list[dict[str, Any]]:
        return list(self.stack.flow_runs())

    def stop(self) -> None:
        self.stack.stop()
        if self.postgres is not None:
            self.postgres.stop()


def distributed_counts(
    server: DistributedUnderTest, deliveries: int
) -> tuple[int, int, int, list[int], list[int], int]:
    """(flow runs, completed, crashed, deliveries without a completed run, deliveries with
    2+ completed runs, runs not final yet) from the Prefect API."""
    completed: Counter[int] = Counter()
    crashed = unfinished = 0
    found = server.flow_runs()
    for run in found:
        parameters = (run.get("parameters") or {}).get("parameters") or {}
        number = int(parameters.get("workflow_run_id", 0)) - 100_000
        state = (run.get("state") or {}).get("type")
        if state == "COMPLETED":
            completed[number] += 1
        elif state == "CRASHED":
            crashed += 1
        elif state not in ("FAILED", "CANCELLED"):
            unfinished += 1
    missing = [n for n in range(deliveries) if completed[n] == 0]
    twice = [n for n, count in completed.items() if count > 1]
    return len(found), sum(completed.values()), crashed, missing, twice, unfinished


# ----- the harness -----
def payload(n: int) -> bytes:
    run_id = 100_000 + n
    return json.dumps(
        {
            "action": "completed",
            "workflow_job": {
                "id": 900_000 + n,
                "run_id": run_id,
                "run_attempt": 1,
                "name": "test",
                "status": "completed",
                "conclusion": "failure",
                "head_branch": "main",
                "head_sha": "0" * 40,
            },
            "repository": {"full_name": REPOSITORY, "name": "chaos", "owner": {"login": "octo"}},
        }
    ).encode()


@dataclass
class ChaosReport:
    deliveries: int
    kills: int = 0
    acknowledged: set[int] = field(default_factory=set)
    sends: int = 0
    executions: int = 0
    completed: int = 0
    taken_over: int = 0
    missing_runs: list[int] = field(default_factory=list)
    comments: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    distributed: bool = False
    twice_completed: list[int] = field(default_factory=list)
    killed_processes: int = 0

    @property
    def lost(self) -> list[int]:
        return [n for n in range(self.deliveries) if self.comments[100_000 + n] == 0]

    @property
    def duplicated(self) -> list[int]:
        return [run for run, count in self.comments.items() if count > 1]

    @property
    def ok(self) -> bool:
        return (
            len(self.acknowledged) == self.deliveries
            and not self.missing_runs
            and not self.twice_completed
            and not self.lost
            and not self.duplicated
            and self.kills > 0
        )

    def lines(self) -> list[str]:
        if self.distributed:
            runs = [
                f"kill -9 of a worker + its runs:      {self.kills}"
                f" ({self.killed_processes} processes)",
                f"posts sent (incl. redeliveries):     {self.sends}",
                f"acknowledged (2xx):                  {len(self.acknowledged)}",
                f"flow runs in Prefect:                {self.executions}",
                f"  completed:                         {self.completed}",
                f"  crashed (killed), started again:   {self.taken_over}",
                f"deliveries without a completed run:  {len(self.missing_runs)}",
                f"deliveries with 2+ completed runs:   {len(self.twice_completed)}",
            ]
        else:
            runs = [
                f"kill -9 of the server (restarted):   {self.kills}",
                f"posts sent (incl. redeliveries):     {self.sends}",
                f"acknowledged (2xx):                  {len(self.acknowledged)}",
                f"workflow runs (one per key):         {self.executions}",
                f"  completed:                         {self.completed}",
                f"  taken over from a killed process:  {self.taken_over}",
                f"deliveries without a completed run:  {len(self.missing_runs)}",
            ]
        return [
            f"deliveries:                          {self.deliveries}",
            *runs,
            f"comments at the sandbox:             {sum(self.comments.values())}",
            f"  deliveries without a comment:      {len(self.lost)}",
            f"  deliveries with 2+ comments:       {len(self.duplicated)}",
            f"wall time:                           {self.seconds:.1f} s",
            f"verdict:                             {'EXACTLY ONCE' if self.ok else 'FAILED'}",
        ]


def _headers(delivery: str, body: bytes, secret: str) -> dict[str, str]:
    from contexten.events.signature import sign

    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "workflow_job",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(secret, body),
    }


async def send_until_acknowledged(
    server: Any, report: ChaosReport, secret: str, connections: int, done: asyncio.Event
) -> None:
    """Send every delivery; those without a 2xx go to the back of the queue (redelivery)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(report.deliveries):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        while len(report.acknowledged) < report.deliveries:
            try:
                n = queue.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.05)
                continue
            body = payload(n)
            report.sends += 1
            try:
                response = await client.post(
                    f"{server.url}/webhook",
                    content=body,
                    headers=_headers(f"chaos-{n:05d}", body, secret),
                )
                if 200 <= response.status_code < 300:
                    report.acknowledged.add(n)
                    continue
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)  # the server is down or restarting
            queue.put_nowait(n)

    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    done.set()


def completed_runs(database_url: str, deliveries: int) -> tuple[int, int, int, list[int]]:
    """(runs, completed, taken over, delivery numbers without a completed run)."""
    from contexten.store import executions as runs
    from contexten.store.db import Store

    store = Store(database_url)
    try:
        rows = runs.recent(store, limit=10 * deliveries + 100)
    finally:
        store.dispose()
    by_key = {row.idempotency_key: row for row in rows if row.idempotency_key}
    missing = []
    for n in range(deliveries):
        row = by_key.get(f"failure_analysis:{REPOSITORY}:{100_000 + n}:1")
        if row is None or row.status != "completed":
            missing.append(n)
    completed = sum(1 for row in rows if row.status == "completed")
    return len(rows), completed, sum(1 for row in rows if row.takeovers > 0), missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=5, help="at least this many kill -9")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--lease-seconds", type=float, default=4.0, help="runs and deliveries")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--timeout", type=float, help="give up after (s; default 900, distributed 3600)"
    )
    parser.add_argument(
        "--mode", choices=("dispatcher", "server", "distributed"), default="dispatcher"
    )
    parser.add_argument("--workers", type=int, default=2, help="distributed: worker processes")
    parser.add_argument(
        "--prefect-sqlite", action="store_true", help="distributed: SQLite, not PostgreSQL"
    )
    parser.add_argument(
        "--kill-every",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="seconds between kills (default 1 5; distributed: 20 60)",
    )
    parser.add_argument("--workdir", type=Path, help="keep logs and databases here")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    from contexten.sandbox.testing import running_sandbox

    started = time.monotonic()
    distributed = args.mode == "distributed"
    report = ChaosReport(args.deliveries, distributed=distributed)
    with (
        running_sandbox(services=("github",)) as sandbox,
        contextlib.nullcontext(str(args.workdir))
        if args.workdir
        else tempfile.TemporaryDirectory(prefix="chaos-") as tmp,
    ):
        Path(tmp).mkdir(parents=True, exist_ok=True)
        state = sandbox.state.github
        state.add_repo(REPOSITORY, files={"README.md": "# chaos\n"})
        for _ in range(args.deliveries // PER_ISSUE + 1):
            state.add_issue(REPOSITORY, "chaos target")
        env = sandbox.env()
        settings_env = {
            "GITHUB_API_URL": env["GITHUB_API_URL"],
            "GITHUB_TOKEN": env["GITHUB_TOKEN"],
            "GITHUB_WEBHOOK_SECRET": env["GITHUB_WEBHOOK_SECRET"],
            "EXECUTION_LEASE_SECONDS": str(max(1, int(args.lease_seconds))),
            "MAX_CONCURRENT_WORKFLOWS": "8",
            "HTTP_TIMEOUT_SECONDS": "10",
        }
        server: Any
        trigger = ["--trigger", "chaos_exactly_once:chaos_trigger"]
        if args.mode == "server":
            server = ServerUnderTest(Path(tmp), settings_env)
            server.wait_ready()
            database_url = server.database_url()
        elif args.mode == "distributed":
            server = DistributedUnderTest(Path(tmp), settings_env, args, rng)
            database_url = server.database()
        else:
            server = Server(Path(tmp), free_port(), lease_seconds=args.lease_seconds)
            base_env = server.env

            def server_env() -> dict[str, str]:
                return {**base_env(), **settings_env}

            server.env = server_env  # type: ignore[method-assign]
            server.start(extra_args=trigger)
            database_url = server_env()["DATABASE_URL"]

        async def scenario() -> None:
            done = asyncio.Event()
            sender = asyncio.create_task(
                send_until_acknowledged(
                    server, report, env["GITHUB_WEBHOOK_SECRET"], args.connections, done
                )
            )
            # Kills while deliveries arrive and after, while runs execute.
            low, high = args.kill_every or ((20.0, 60.0) if distributed else (1.0, 5.0))
            while report.kills < args.kills or not done.is_set():
                await asyncio.sleep(rng.uniform(low, high))
                if report.kills >= args.kills and done.is_set():
                    break
                server.kill()
                report.kills += 1
                await asyncio.to_thread(server.start, 120.0, trigger)
            await sender

        def count(deadline: float) -> None:
            """Wait until every delivery has its completed run (or the deadline), then
            count runs."""
            if distributed:
                while True:
                    total, completed, taken, missing, twice, unfinished = distributed_counts(
                        server, args.deliveries
                    )
                    if (not missing and not unfinished) or time.monotonic() > deadline:
                        break
                    time.sleep(5.0)
                report.twice_completed = twice
                report.killed_processes = server.killed_processes
            else:
                while True:
                    total, completed, taken, missing = completed_runs(database_url, args.deliveries)
                    if not missing or time.monotonic() > deadline:
                        break
                    time.sleep(1.0)
            report.executions, report.completed, report.taken_over = total, completed, taken
            report.missing_runs = missing

        try:
            asyncio.run(scenario())
            count(time.monotonic() + (args.timeout or (3600.0 if distributed else 900.0)))
        finally:
            server.stop()
        pattern = re.compile(r"^chaos run (\d+)")
        for comment in state.comments(REPOSITORY):
            found = pattern.match(comment.body or "")
            if found:
                report.comments[int(found.group(1))] += 1
    report.seconds = time.monotonic() - started
    what = {
        "server": "contexten server: kill -9 of its receiver/dispatcher, local flow runs on "
        "Prefect",
        "dispatcher": "receiver + dispatcher, in-process runs",
        "distributed": f"Prefect server on {'SQLite' if args.prefect_sqlite else 'PostgreSQL'}, "
        f"{args.workers} process workers: kill -9 of a worker with its flow-run processes",
    }[args.mode]
    print(f"exactly once under kill -9 ({what}, GitHub sandbox)")
    for line in report.lines():
        print("  " + line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.exit(main())
