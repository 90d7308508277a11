"""The distributed deployment on one host, for tests and benchmarks.

A Prefect server (on PostgreSQL, or SQLite for comparison), a `process` work pool with
deployments registered by `contexten initialize --work-pool NAME`, N `prefect worker start`
processes and the webhook receiver (with its dispatcher), each a separate process talking
to the others only through the databases and the Prefect API, as on several hosts.

    with DistributedStack(StackConfig(prefect_db, store_db, workers=2), workdir) as stack:
        ...  # stack.receiver_url, stack.api_url, stack.flow_runs(), stack.submissions()

The test process itself never imports Prefect: it reads the API over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from contexten.orchestration.prefect_server import PrefectServerProcess, free_port

FAILURE_ANALYSIS = "failure-analysis/failure-analysis"
_SUBMITTING = re.compile(r"Worker '[^']+' submitting flow run '([0-9a-f-]{36})'")
# Two workers may pick up the same scheduled run; the server lets one move it to PENDING
# and tells the other to abort: that one never starts it.
_ABORTED = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")
_SCRUBBED = ("PREFECT_", "DATABASE_URL", "CONTEXTEN_", "GITHUB_", "LINEAR_", "SLACK_", "CODEGEN_")


def _default_sigint() -> None:
    # A Prefect worker stops on SIGTERM by sending itself SIGINT; if this process was
    # started with SIGINT ignored (a background job), the worker would inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class StackError(Exception):
    """A component of the stack did not start; the message holds the end of its log."""


@dataclass(frozen=True)
class StackConfig:
    prefect_database_url: str  # postgresql+asyncpg://… or sqlite+aiosqlite:///…
    store_database_url: str  # postgresql+psycopg://… or sqlite:///…
    workers: int = 2
    worker_limit: int = 2
    pool: str = "contexten-pool"
    service_env: dict[str, str] = field(default_factory=dict)  # e.g. SandboxServer.env()
    receiver: bool = True
    max_concurrent_workflows: int = 8
    # Warm dispatchers instead of workers: N `contexten webhook dispatch` processes with
    # DISPATCH_MODE=local claim deliveries from the shared inbox and run each flow in their
    # own long-lived process (reported to the Prefect server); the receiver only records.
    dispatchers: int = 0


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode


class DistributedStack:
    def __init__(self, config: StackConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.server: PrefectServerProcess | None = None
        self.children: list[_Child] = []
        self.receiver_url = ""
        self.initialize_report: dict[str, Any] = {}

    # ----- lifecycle -----
    def __enter__(self) -> DistributedStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        if self.server is None:
            raise StackError("the Prefect server is not running")
        return self.server.api_url

    def env(self) -> dict[str, str]:
        """The environment every component gets (as a deployment's env file would hold)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
        env.update(self.config.service_env)
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.workdir / "prefect-client"),
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_WORKER_PREFETCH_SECONDS="1",
            PREFECT_LOGGING_TO_API_ENABLED="false",
            PREFECT_LOGGING_LEVEL="INFO",  # the worker logs which flow runs it submits
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DATABASE_URL=self.config.store_database_url,
            CONTEXTEN_HOME=str(self.workdir / "contexten-home"),
            MAX_CONCURRENT_WORKFLOWS=str(self.config.max_concurrent_workflows),
            WORKFLOW_RETRY_DELAY="0",
        )
        return env

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.server = PrefectServerProcess(
            home=self.workdir / "prefect-server",
            database_url=self.config.prefect_database_url,
            ui=False,
            extra_env={
                # Runs come from events here; schedules would only add load.
                "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
            },
        )
        self.server.start(timeout=180)
        self._initialize()
        for index in range(self.config.workers):
            self._spawn(
                f"worker-{index + 1}",
                [
                    "-m",
                    "prefect",
                    "worker",
                    "start",
                    "--pool",
                    self.config.pool,
                    "--type",
                    "process",
                    "--limit",
                    str(self.config.worker_limit),
                    "--name",
                    f"worker-{index + 1}",
                ],
            )
        for index in range(self.config.dispatchers):
            self._spawn(
                f"dispatcher-{index + 1}",
                ["-m", "contexten.cli", "webhook", "dispatch", "--poll-seconds", "0.2"],
                extra_env={"DISPATCH_MODE": "local", "LOG_LEVEL": "INFO"},
            )
        if self.config.receiver:
            port = free_port()
            self._spawn(
                "receiver",
                [
                    *("-m", "contexten.cli", "webhook", "serve", "--host", "127.0.0.1"),
                    *("--port", str(port), "--log-level", "warning"),
                    *(("--no-dispatch",) if self.config.dispatchers else ()),
                ],
            )
            self.receiver_url = f"http://127.0.0.1:{port}"
        self._wait_ready()

    def _initialize(self) -> None:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "contexten.cli", "initialize"),
                *("--work-pool", self.config.pool, "--json"),
            ],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise StackError(
                f"contexten initialize exited {result.returncode}: "
                f"{(result.stderr or result.stdout)[-1500:]}"
            )
        self.initialize_report = json.loads(result.stdout)

    def _spawn(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, *argv],
                env={**self.env(), **(extra_env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_default_sigint,
            )
        self.children.append(_Child(name, process, log))

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = {child.name for child in self.children}
        while waiting and time.monotonic() < deadline:
            for child in self.children:
                if child.name not in waiting:
                    continue
                if child.process.poll() is not None:
                    raise StackError(f"{child.name} exited: {child.tail()}")
                if self._ready(child):
                    waiting.discard(child.name)
            time.sleep(0.2)
        if waiting:
            raise StackError(f"not ready after {timeout:.0f} s: {sorted(waiting)}")

    def _ready(self, child: _Child) -> bool:
        if child.name == "receiver":
            try:
                return httpx.get(f"{self.receiver_url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        if child.name.startswith("dispatcher-"):
            return " started (concurrency " in child.tail(100_000)
        return f"Worker '{child.name}' started" in child.tail(100_000)

    def stop(self) -> dict[str, int | None]:
        """Stop receiver and workers (SIGTERM, then the server); their exit codes."""
        codes = {child.name: child.stop() for child in reversed(self.children)}
        if self.server is not None:
            self.server.stop()
            self.server = None
        return codes

    # ----- observation -----
    def submissions(self) -> dict[str, list[str]]:
        """Flow run ids each worker started (submitted and not aborted), from their logs."""
        found: dict[str, list[str]] = {}
        for child in self.children:
            if child.name.startswith("worker-"):
                text = child.tail(50_000_000)
                submitted = Counter(m.group(1) for m in _SUBMITTING.finditer(text))
                submitted.subtract(m.group(1) for m in _ABORTED.finditer(text))
                found[child.name] = sorted(submitted.elements())
        return found

    def deployment_id(self, name: str = FAILURE_ANALYSIS) -> str:
        response = httpx.get(f"{self.api_url}/deployments/name/{name}", timeout=10)
        response.raise_for_status()
        return str(response.json()["id"])

    def flow_runs(self, name: str = FAILURE_ANALYSIS) -> list[dict[str, Any]]:
        """Every flow run of deployment `name` (with warm dispatchers, which run flows
        without a deployment: of its flow), as the Prefect API returns it."""
        if self.config.dispatchers:
            which: dict[str, Any] = {"flows": {"name": {"any_": [name.split("/")[0]]}}}
        else:
            which = {"deployments": {"id": {"any_": [self.deployment_id(name)]}}}
        runs: list[dict[str, Any]] = []
        while True:
            response = httpx.post(
                f"{self.api_url}/flow_runs/filter",
                json={
                    **which,
                    "limit": 200,
                    "offset": len(runs),
                    "sort": "EXPECTED_START_TIME_ASC",
                },
                timeout=30,
            )
            response.raise_for_status()
            page = response.json()
            runs.extend(page)
            if len(page) < 200:
                return runs


# A job that failed because the network was down while installing: transient, so
# failure_analysis re-runs its failed jobs (the action counted at the sandbox).
TRANSIENT_LOG = """\
2024-05-01T10:00:00.0000000Z ##[group]Run pip install -r requirements.txt
2024-05-01T10:00:01.0000000Z Collecting requests
2024-05-01T10:00:02.0000000Z WARNING: Retrying (Retry(total=0, connect=None, read=None, \
redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.\
urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: \
[Errno 101] Network is unreachable')': /simple/requests/
2024-05-01T10:00:03.0000000Z ERROR: Could not find a version that satisfies the requirement \
requests (from versions: none)
2024-05-01T10:00:03.0000000Z ERROR: No matching distribution found for requests
2024-05-01T10:00:03.1000000Z ##[error]Process completed with exit code 1.
"""


def seed_failed_runs(github_state: Any, repository: str, count: int) -> list[Any]:
    """`count` runs whose one job failed transiently and passes when re-run."""
    from contexten.sandbox.github import JobSpec

    github_state.add_repo(repository)
    return [
        github_state.add_run(
            repository,
            jobs=(JobSpec("build", conclusion="failure", log=TRANSIENT_LOG),),
            rerun_outcomes=["success"],
        )
        for _ in range(count)
    ]
