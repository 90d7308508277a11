"""Scale-out: the same failed-run deliveries through the distributed stack, three ways.

For each configuration a fresh stack is started on this host (see
tests/postgres/distributed_stack.py): a Prefect server, a `process` work pool with the
deployments of `contexten initialize --work-pool`, N `prefect worker start --limit K`
processes and the webhook receiver with its dispatcher; our store and Prefect share one
database engine:

    postgres, 1 worker    Prefect and the store on PostgreSQL
    postgres, 2 workers   the same with a second worker
    sqlite,   1 worker    Prefect and the store on SQLite files (the embedded default)
    warm,     1 / 2       PostgreSQL, and instead of workers N warm dispatchers
                          (`contexten webhook dispatch`, DISPATCH_MODE=local): each claims
                          deliveries from the shared inbox and runs the flow in its own
                          long-lived process, reported to Prefect (no process per run)

The same number of GitHub runs, each with one job that failed transiently (network down
during `pip install`) and passes on re-run, is seeded in the sandbox, and their
`workflow_run` completed deliveries are sent to the receiver at once (a burst). Each one
becomes a failure_analysis flow run on a worker, which diagnoses the log and asks the
sandbox to re-run the failed jobs.

    event  = the delivery was sent to the receiver (and answered 202)
    action = the re-run request reached the sandbox (the new attempt's creation time)

Printed per configuration: runs/s (runs / (last action - first event)) and p50/p95/max of
event-to-action latency, side by side. A throw-away PostgreSQL is started from the
installed server binaries (or pass --postgres-url-base postgresql://user@host:port).

    python benchmarks/scale_out.py [--deliveries 100] [--worker-limit 2] [--only sqlite-1]
                                   [--rate 1]   (deliveries per second instead of a burst)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "postgres"))

from distributed_stack import (  # noqa: E402
    DistributedStack,
    StackConfig,
    StackError,
    seed_failed_runs,
)
from throwaway_postgres import PostgresUnavailable, ThrowawayPostgres  # noqa: E402

from contexten.sandbox.testing import running_sandbox  # noqa: E402
from contexten.sandbox.webhooks import WebhookSender  # noqa: E402

CONFIGURATIONS = ("postgres-1", "postgres-2", "sqlite-1", "warm-1", "warm-2")
REPOSITORY = "bench/scale-out"
SEND_CONCURRENCY = 20


@dataclass(frozen=True)
class Result:
    configuration: str
    workers: int
    worker_limit: int
    deliveries: int
    accepted: int
    actions: int
    completed_flow_runs: int
    seconds: float
    runs_per_second: float
    p50_seconds: float
    p95_seconds: float
    max_seconds: float
    startup_seconds: float
    load_average: float  # of the whole machine while measuring: other work skews figures
    note: str = ""


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (values need not be sorted); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


async def send_burst(
    sender: WebhookSender, runs: list[Any], rate: float | None = None
) -> dict[int, float]:
    """Deliver each run's `workflow_run` completed event (all at once, or `rate` per
    second); run id -> wall time it was sent, for those answered 202."""
    with sender.state.lock:
        requests = [
            (run.id, sender.request("workflow_run", sender.payloads.workflow_run(run, "completed")))
            for run in runs
        ]
    accepted: dict[int, float] = {}
    gate = asyncio.Semaphore(SEND_CONCURRENCY)
    async with httpx.AsyncClient(timeout=30) as client:

        async def post(index: int, run_id: int, body: bytes, headers: dict[str, str]) -> None:
            if rate:
                await asyncio.sleep(index / rate)
            async with gate:
                sent = time.time()
                response = await client.post(sender.url, content=body, headers=headers)
            if response.status_code == 202:
                # The time it was sent, not answered: the answer can reach this process
                # (which also runs the sandbox, busy serving the workers) after the re-run.
                accepted[run_id] = sent

        await asyncio.gather(
            *(
                post(index, run_id, body, headers)
                for index, (run_id, (_guid, body, headers)) in enumerate(requests)
            )
        )
    return accepted


class LoadSampler:
    """The mean 1-minute load average of the machine over a measurement."""

    def __init__(self, interval: float = 5.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(interval):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else math.nan


class RerunClock:
    """The wall time each run's first re-run request reached the sandbox, to the
    microsecond (the sandbox's own timestamps are whole seconds, as GitHub's are, which
    made sub-second latencies read as 0 or even negative)."""

    def __init__(self, github_state: Any) -> None:
        self.times: dict[int, float] = {}
        original = github_state.rerun

        def rerun(run: Any, **options: Any) -> Any:
            self.times.setdefault(run.id, time.time())
            return original(run, **options)

        github_state.rerun = rerun


def action_times(runs: list[Any], clock: RerunClock) -> dict[int, float]:
    """Run id -> wall time its failed jobs were re-run, for the runs re-run."""
    return {run.id: clock.times[run.id] for run in runs if run.id in clock.times}


def run_configuration(
    name: str,
    *,
    deliveries: int,
    worker_limit: int,
    workdir: Path,
    postgres: ThrowawayPostgres | None,
    timeout: float,
    rate: float | None = None,
) -> Result:
    engine, _, count = name.partition("-")
    workers = int(count)
    warm = engine == "warm"
    with running_sandbox(services=("github",)) as sandbox:
        service_env = sandbox.env()
        if engine in ("postgres", "warm"):
            if postgres is None:
                raise StackError("no PostgreSQL server")
            database = name.replace("-", "_")
            postgres.create_database(f"prefect_{database}")
            prefect_url = postgres.url(f"prefect_{database}", driver="asyncpg")
            store_url = postgres.create_database(f"store_{database}")
        else:
            prefect_url = f"sqlite+aiosqlite:///{workdir / 'prefect.db'}"
            store_url = f"sqlite:///{workdir / 'contexten.db'}"
        config = StackConfig(
            prefect_database_url=prefect_url,
            store_database_url=store_url,
            workers=0 if warm else workers,
            worker_limit=worker_limit,
            pool=f"bench-{name}",
            service_env=service_env,
            # warm: each dispatcher runs up to 8 flows at once; the global limit allows all
            max_concurrent_workflows=8 * workers if warm else max(8, workers * worker_limit),
            dispatchers=workers if warm else 0,
        )
        started = time.monotonic()
        with DistributedStack(config, workdir) as stack:
            startup = time.monotonic() - started
            runs = seed_failed_runs(sandbox.state.github, REPOSITORY, deliveries)
            clock = RerunClock(sandbox.state.github)
            sender = WebhookSender(sandbox.state.github, f"{stack.receiver_url}/webhook")
            with LoadSampler() as load:
                accepted = asyncio.run(send_burst(sender, runs, rate))
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    if len(action_times(runs, clock)) >= len(accepted):
                        break
                    time.sleep(0.5)
            actions = action_times(runs, clock)
            completed = _completed_when_final(stack, len(accepted), deadline)
    latencies = [actions[run_id] - at for run_id, at in accepted.items() if run_id in actions]
    span = (max(actions.values()) - min(accepted.values())) if actions and accepted else math.nan
    note = "" if len(actions) == len(accepted) else f"timed out after {timeout:.0f} s"
    return Result(
        configuration=name,
        workers=workers,
        worker_limit=worker_limit,
        deliveries=deliveries,
        accepted=len(accepted),
        actions=len(actions),
        completed_flow_runs=completed,
        seconds=span,
        runs_per_second=len(actions) / span if span and span > 0 else math.nan,
        p50_seconds=percentile(latencies, 0.50),
        p95_seconds=percentile(latencies, 0.95),
        max_seconds=max(latencies) if latencies else math.nan,
        startup_seconds=startup,
        load_average=load.mean,
        note=note,
    )


def _completed_when_final(stack: DistributedStack, expected: int, deadline: float) -> int:
    """Completed failure-analysis flow runs once all are final (or at the deadline)."""
    final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
    runs: list[dict[str, Any]] = []
    while True:
        try:
            runs = stack.flow_runs()
        except httpx.HTTPError:
            runs = []
        done = len(runs) >= expected and all(r["state"]["type"] in final for r in runs)
        if done or time.monotonic() > deadline:
            return sum(1 for r in runs if r["state"]["type"] == "COMPLETED")
        time.sleep(1.0)


def print_table(results: list[Result]) -> None:
    header = (
        f"{'configuration':<14}{'workers':>9}{'runs':>6}{'re-run':>8}{'completed':>11}"
        f"{'runs/s':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'startup s':>11}{'load':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.configuration:<14}{f'{r.workers}x{r.worker_limit}':>9}{r.deliveries:>6}"
            f"{r.actions:>8}{r.completed_flow_runs:>11}{r.runs_per_second:>8.2f}"
            f"{r.p50_seconds:>8.1f}{r.p95_seconds:>8.1f}{r.max_seconds:>8.1f}"
            f"{r.startup_seconds:>11.1f}{r.load_average:>7.1f}"
            + (f"  ({r.note})" if r.note else "")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=100)
    parser.add_argument("--worker-limit", type=int, default=2, help="--limit of each worker")
    parser.add_argument("--only", choices=CONFIGURATIONS, action="append")
    parser.add_argument("--timeout", type=float, default=900.0, help="per configuration, s")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument(
        "--rate", type=float, default=None, help="deliveries per second (default: one burst)"
    )
    args = parser.parse_args(argv)
    if args.deliveries < 1 or args.worker_limit < 1:
        parser.error("--deliveries and --worker-limit must be at least 1")
    # A clean stop on SIGTERM too: the stack's processes and PostgreSQL are torn down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for name in list(os.environ):  # this process only reads the sandbox and HTTP APIs
        if name.startswith(("PREFECT_", "DATABASE_URL")):
            del os.environ[name]
    chosen = args.only or list(CONFIGURATIONS)
    # Not "contexten-…": resource cleanup removes such entries of the system temp dir.
    base = Path(tempfile.mkdtemp(prefix="scale-out-bench-"))
    postgres: ThrowawayPostgres | None = None
    results: list[Result] = []
    try:
        if any(name.startswith(("postgres", "warm")) for name in chosen):
            try:
                postgres = ThrowawayPostgres.start()
            except PostgresUnavailable as exc:
                print(f"skipping the PostgreSQL configurations: {exc}", file=sys.stderr)
                chosen = [n for n in chosen if not n.startswith(("postgres", "warm"))]
        for name in chosen:
            print(f"== {name}: {args.deliveries} deliveries ...", file=sys.stderr, flush=True)
            results.append(
                run_configuration(
                    name,
                    deliveries=args.deliveries,
                    worker_limit=args.worker_limit,
                    workdir=base / name,
                    postgres=postgres,
                    timeout=args.timeout,
                    rate=args.rate,
                )
            )
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(base, ignore_errors=True)
    how = f"at {args.rate:g}/s" if args.rate else "in one burst"
    print(
        f"{args.deliveries} failed-run deliveries {how} per configuration; "
        "event = delivery sent to the receiver (answered 202), action = re-run request at the "
        "sandbox; "
        f"load = mean 1-min load average while measuring ({os.cpu_count()} CPUs)"
    )
    print_table(results)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
