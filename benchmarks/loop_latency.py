"""Latency from a failed-run webhook to the re-run request arriving at the sandbox.

For each event a new `CI` run fails with a network error (the job's log is the demo's
synthetic one; a passing run of the same job is the baseline). The clock starts just before
the signed `workflow_run` webhook is POSTed to the receiver and stops when the sandbox
GitHub receives `POST .../rerun-failed-jobs` for that run. In between: signature check,
inbox, dispatcher, orchestrator, failure_analysis (run, jobs, log download, baseline run
lookup, cached baseline log, diagnosis, recovery policy), the re-run call. After each event
the re-run's passing result is delivered too, which confirms the recovery (so the same
signature keeps being re-run rather than escalated), and the next event starts when both
are settled. The first event of each mode warms the process up and is not counted.

Modes:
- in-process: the receiver's dispatcher runs failure_analysis in this process;
- prefect: a `contexten server` (Prefect server + runner serving the deployments) is
  started for the benchmark, pointed at the sandbox; the dispatcher calls run_deployment
  and the runner starts each flow run as a subprocess;
- prefect-local: the same server, with DISPATCH_MODE=local as `contexten server` sets for
  its webhook dispatcher: the flow runs in the dispatcher's warm process, tracked by the
  server (a Prefect flow run with its logs and artifacts), no subprocess per run.

Goal: p50 < 2 s with a warm server.

    python benchmarks/loop_latency.py [--events 30] [--prefect-events 10]
        [--mode in-process|prefect|both]
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from contexten.config import Settings
from contexten.demo import scenario
from contexten.demo.loop import ReceiverThread, in_process_trigger, patched_environ
from contexten.events.dispatcher import DispatchOutcome, Trigger
from contexten.orchestration.execution import FINAL_STATUSES as FINAL
from contexten.orchestration.execution import load_execution
from contexten.sandbox.github import JobSpec
from contexten.sandbox.server import SandboxServer
from contexten.store.db import open_store

REPO = "bench/app"
SECRET = "loop-latency-secret"
FIXTURES = Path(scenario.__file__).resolve().parent / "fixtures"


class TimedSandbox(SandboxServer):
    """Records when each run's re-run request reaches the GitHub app."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reruns: dict[int, float] = {}
        self.arrived = threading.Condition()

    def _build_app(self, name: str) -> Any | None:
        app = super()._build_app(name)
        if app is None or name != "github":
            return app
        reruns, arrived = self.reruns, self.arrived

        async def timed(scope: Any, receive: Any, send: Any) -> None:
            path = scope.get("path", "") if scope["type"] == "http" else ""
            if scope["type"] == "http" and path.endswith("/rerun-failed-jobs"):
                run_id = int(path.rstrip("/").split("/")[-2])
                with arrived:
                    reruns.setdefault(run_id, time.monotonic())
                    arrived.notify_all()
            await app(scope, receive, send)

        return timed

    def wait_rerun(self, run_id: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while run_id not in self.reruns:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no re-run of run {run_id} within {timeout:.0f}s")
                self.arrived.wait(left)
            return self.reruns[run_id]


def new_failure(sandbox: SandboxServer) -> int:
    run = sandbox.state.github.add_run(
        REPO,
        jobs=[
            JobSpec(
                "build",
                conclusion="failure",
                log=(FIXTURES / "network-fail.log").read_bytes(),
                pass_log=(FIXTURES / "network-pass.log").read_bytes(),
            )
        ],
        rerun_outcomes=["success"],
    )
    return run.id


def measure(
    sandbox: TimedSandbox, trigger: Trigger, settings: Settings, events: int, label: str
) -> list[float]:
    from contexten.events.service import build_app

    store = open_store(settings.effective_database_url)
    outcomes: queue.Queue[DispatchOutcome] = queue.Queue()
    app = build_app(
        settings,
        store,
        trigger=trigger,
        rules=scenario.demo_rules(),
        poll_interval=0.5,
        on_outcome=outcomes.put,
    )
    receiver = ReceiverThread(app).start()
    payloads = scenario.Payloads(sandbox.github_url, sandbox.env()["GITHUB_TOKEN"], repo=REPO)
    latencies: list[float] = []

    def settle(delivery: scenario.ScriptedWebhook) -> None:
        """Until the delivery's workflow run has finished (queued runs count as pending)."""
        while True:
            outcome = outcomes.get(timeout=300)
            if outcome.delivery_id == delivery.delivery_id:
                break
        if outcome.status != "dispatched":
            raise RuntimeError(f"{label}: delivery {outcome.status}: {outcome.error}")
        deadline = time.monotonic() + 300
        for run_id in outcome.run_ids:
            while (row := load_execution(store, run_id)) is None or row.status not in FINAL:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{label}: workflow run {run_id} did not finish")
                time.sleep(0.2)

    try:
        with httpx.Client(base_url=receiver.url, timeout=30) as client:
            for n in range(events + 1):
                run_id = new_failure(sandbox)
                failed = payloads.workflow_run(run_id, "failed", "failed run")
                started = time.monotonic()
                response = client.post(
                    "/webhook", content=failed.body, headers=failed.headers(SECRET)
                )
                response.raise_for_status()
                arrived = sandbox.wait_rerun(run_id, timeout=300)
                if n > 0:  # the first event warms up
                    latencies.append(arrived - started)
                settle(failed)
                passed = payloads.workflow_run(run_id, "passed", "re-run passed")
                client.post("/webhook", content=passed.body, headers=passed.headers(SECRET))
                settle(passed)
    finally:
        payloads.close()
        receiver.stop()
    return latencies


def report(label: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"{label:<12} events={len(ordered):>3}  p50={statistics.median(ordered):.3f}s  "
        f"p95={p95:.3f}s  min={ordered[0]:.3f}s  max={ordered[-1]:.3f}s  "
        f"goal p50 < 2 s: {'met' if statistics.median(ordered) < 2 else 'NOT met'}"
    )


def environ_for(sandbox: SandboxServer, home: Path, api_url: str | None) -> dict[str, str | None]:
    values: dict[str, str | None] = dict(sandbox.env())
    values.update(
        CONTEXTEN_HOME=str(home),
        DATABASE_URL=None,
        GITHUB_WEBHOOK_SECRET=SECRET,
        GITHUB_REPOSITORY=REPO,
        PREFECT_API_URL=api_url,
        PREFECT_LOGGING_LEVEL="WARNING",
        ROUTING_RULES_FILE=None,
    )
    return values


def start_server(home: Path, env: dict[str, str | None]) -> tuple[subprocess.Popen[bytes], str]:
    """`contexten server` (Prefect server + runner) for the benchmark; (process, API URL)."""
    from contexten.orchestration.prefect_server import api_healthy, read_server_record

    child_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    child_env.pop("PREFECT_API_URL", None)
    log = (home / "server.out").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "contexten.cli", "server", "--port", "0", "--no-webhook"],
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    settings = Settings(contexten_home=home)
    while time.monotonic() < deadline:
        record = read_server_record(settings)
        if record and api_healthy(str(record["api_url"])):
            return process, str(record["api_url"])
        if process.poll() is not None:
            raise RuntimeError(f"contexten server exited; see {home / 'server.out'}")
        time.sleep(0.5)
    raise RuntimeError("contexten server did not start within 180 s")


def prefect_trigger_with_wait(settings: Settings) -> Trigger:
    """The orchestrator's trigger, retried until the runner has registered the deployments."""
    from contexten.orchestration import OrchestratorError, PrefectOrchestrator

    orchestrator = PrefectOrchestrator(settings=settings)
    assert orchestrator.mode == "prefect", "the Prefect server is not reachable"

    async def trigger(workflow_type: str, parameters: dict[str, Any], key: str) -> str:
        import asyncio

        for _ in range(120):
            try:
                return await orchestrator.trigger_workflow(
                    workflow_type, parameters, idempotency_key=key
                )
            except OrchestratorError as exc:
                if "is not registered" not in str(exc):
                    raise
                await asyncio.sleep(1)
        raise RuntimeError("deployments were never registered")

    return trigger


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--prefect-events", type=int, default=10)
    parser.add_argument("--mode", choices=("in-process", "prefect", "both"), default="both")
    args = parser.parse_args()
    print(f"cpus={os.cpu_count()}  python={sys.version.split()[0]}")
    with TimedSandbox() as sandbox:
        gh = sandbox.state.github
        gh.add_repo(REPO, default_branch="main")
        gh.add_run(REPO, jobs=[JobSpec("build", log=(FIXTURES / "network-pass.log").read_bytes())])
        if args.mode in ("in-process", "both"):
            home = Path(tempfile.mkdtemp(prefix="contexten-bench-"))
            with patched_environ(environ_for(sandbox, home, None)):
                settings = Settings()
                trigger = in_process_trigger(settings, open_store(settings.effective_database_url))
                report("in-process", measure(sandbox, trigger, settings, args.events, "in-process"))
        if args.mode in ("prefect", "both"):
            home = Path(tempfile.mkdtemp(prefix="contexten-bench-server-"))
            env = environ_for(sandbox, home, None)
            started = time.monotonic()
            process, api_url = start_server(home, env)
            print(f"contexten server ready in {time.monotonic() - started:.1f}s at {api_url}")
            try:
                with patched_environ({**env, "PREFECT_API_URL": api_url}):
                    settings = Settings()
                    latencies = measure(
                        sandbox,
                        prefect_trigger_with_wait(settings),
                        settings,
                        args.prefect_events,
                        "prefect",
                    )
                report("prefect", latencies)
                # DISPATCH_MODE=local, as `contexten server` runs its webhook dispatcher:
                # the flow runs in this warm process, tracked by the same server.
                with patched_environ({**env, "PREFECT_API_URL": api_url, "DISPATCH_MODE": "local"}):
                    settings = Settings()
                    latencies = measure(
                        sandbox,
                        prefect_trigger_with_wait(settings),
                        settings,
                        args.prefect_events,
                        "prefect-local",
                    )
                report("prefect-local", latencies)
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
