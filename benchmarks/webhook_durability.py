"""Durability of the webhook intake under kill -9.

Starts `contexten webhook serve` (receiver + dispatcher) in a subprocess on 127.0.0.1,
sends N signed workflow_job failure deliveries (each for its own run, so each has its own
idempotency key) over several connections, SIGKILLs the server midway, restarts it on the
same database, redelivers what was not acknowledged (as a person would from GitHub's
"Recent deliveries" page) plus some that were, and checks that every acknowledged
delivery was turned into exactly one workflow run.

The server's trigger is `file_trigger` below: an idempotent stand-in for the orchestrator
(one run per key, like Prefect's idempotency key) that also counts calls, so re-triggers
after the crash are visible.

    python benchmarks/webhook_durability.py [--deliveries 1000] [--kill-after 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "tests/data/webhooks/payload-examples"
EXAMPLE = EXAMPLES / "workflow_job/completed.failure.with-organization.payload.json"
SECRET = "durability-secret"
RUNS_DB_ENV = "DURABILITY_RUNS_DB"
DISPATCH_CONCURRENCY = 5


# ----- the trigger the server process loads with --trigger webhook_durability:file_trigger -----
def _runs_db(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS runs (key TEXT PRIMARY KEY, run_id TEXT, "
        "workflow_type TEXT, calls INTEGER NOT NULL)"
    )
    return connection


def file_trigger(
    _settings: Any, _store: Any
) -> Callable[[str, dict[str, Any], str], Awaitable[str]]:
    path = os.environ[RUNS_DB_ENV]

    def record(workflow_type: str, key: str) -> str:
        connection = _runs_db(path)
        try:
            connection.execute(
                "INSERT INTO runs (key, run_id, workflow_type, calls) VALUES (?, ?, ?, 1) "
                "ON CONFLICT(key) DO UPDATE SET calls = calls + 1",
                (key, f"run-{key}", workflow_type),
            )
            row = connection.execute("SELECT run_id FROM runs WHERE key = ?", (key,)).fetchone()
            return str(row[0])
        finally:
            connection.close()

    async def trigger(workflow_type: str, _parameters: dict[str, Any], key: str) -> str:
        return await asyncio.to_thread(record, workflow_type, key)

    return trigger


# ----- the harness -----
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    workdir: Path
    port: int
    lease_seconds: float
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "GITHUB_"))}
        pythonpath = [str(Path(__file__).resolve().parent), str(REPO / "src")]
        if env.get("PYTHONPATH"):
            pythonpath.append(env["PYTHONPATH"])
        env.update(
            PYTHONPATH=os.pathsep.join(pythonpath),
            CONTEXTEN_HOME=str(self.workdir / "home"),
            DATABASE_URL=f"sqlite:///{self.workdir / 'inbox.db'}",
            GITHUB_WEBHOOK_SECRET=SECRET,
            MAX_CONCURRENT_WORKFLOWS=str(DISPATCH_CONCURRENCY),
            WORKFLOW_RETRY_DELAY="0",
            **{RUNS_DB_ENV: str(self.workdir / "runs.db")},
        )
        return env

    def start(self, timeout: float = 60.0, extra_args: list[str] | None = None) -> None:
        self.starts += 1
        log = (self.workdir / f"server-{self.starts}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "contexten.cli",
            "webhook",
            "serve",
            "--port",
            str(self.port),
            *(extra_args or ["--trigger", "webhook_durability:file_trigger"]),
            "--lease-seconds",
            str(self.lease_seconds),
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(
            command, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s; see {log.name}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> int | None:
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self.process = None
        return code


def make_deliveries(count: int) -> list[tuple[str, bytes, str]]:
    """(delivery id, body, expected key): each delivery is a failed job of its own run."""
    template = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    repository = template["repository"]["full_name"]
    deliveries = []
    for n in range(count):
        payload = dict(template)
        payload["workflow_job"] = dict(template["workflow_job"], run_id=10_000 + n)
        body = json.dumps(payload).encode()
        key = f"failure_analysis:{repository}:{10_000 + n}:1"
        deliveries.append((f"durability-{n:05d}", body, key))
    return deliveries


def headers_for(delivery_id: str, body: bytes) -> dict[str, str]:
    from contexten.events.signature import sign

    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "workflow_job",
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": sign(SECRET, body),
    }


@dataclass
class DurabilityReport:
    sent: int = 0
    acknowledged: set[str] = field(default_factory=set)
    acknowledged_before_kill: int = 0
    refused_by_kill: int = 0
    redelivered: int = 0
    duplicates_answered: int = 0
    runs: int = 0
    missing_runs: list[str] = field(default_factory=list)
    unexpected_runs: int = 0
    retriggered: int = 0
    not_dispatched: list[str] = field(default_factory=list)
    seconds: float = 0.0
    clean_exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return (
            not self.missing_runs
            and not self.not_dispatched
            and self.unexpected_runs == 0
            and self.retriggered <= DISPATCH_CONCURRENCY
        )

    def lines(self) -> list[str]:
        return [
            f"deliveries sent:                 {self.sent}",
            f"acknowledged (2xx):              {len(self.acknowledged)}",
            f"  before the SIGKILL:            {self.acknowledged_before_kill}",
            f"lost to the kill (no answer):    {self.refused_by_kill} (redelivered after restart)",
            f"redeliveries sent:               {self.redelivered}",
            f"  answered 'duplicate':          {self.duplicates_answered}",
            f"workflow runs started:           {self.runs}",
            f"acknowledged without a run:      {len(self.missing_runs)}",
            f"acknowledged, not dispatched:    {len(self.not_dispatched)}",
            f"runs for unknown keys:           {self.unexpected_runs}",
            f"re-triggers absorbed by the key: {self.retriggered} (at most {DISPATCH_CONCURRENCY})",
            f"wall time:                       {self.seconds:.1f} s",
            f"exit code after SIGTERM:         {self.clean_exit_code}",
            f"verdict:                         {'EXACTLY ONCE' if self.ok else 'FAILED'}",
        ]


async def _send_all(
    url: str,
    items: list[tuple[str, bytes, str]],
    connections: int,
    on_ack: Callable[[str, int], None],
    stop_after_acks: int | None = None,
) -> tuple[set[str], set[str]]:
    """Send items; returns (acknowledged ids, ids without an answer)."""
    acknowledged: set[str] = set()
    unanswered: set[str] = set()
    queue: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as client:

        async def worker() -> None:
            while not queue.empty():
                delivery_id, body, _key = queue.get_nowait()
                try:
                    response = await client.post(
                        "/webhook", content=body, headers=headers_for(delivery_id, body)
                    )
                except httpx.HTTPError:
                    unanswered.add(delivery_id)
                    continue
                if response.status_code in (200, 202):
                    acknowledged.add(delivery_id)
                    on_ack(delivery_id, response.status_code)
                    if response.json().get("status") == "duplicate":
                        on_ack(delivery_id, -1)
                else:
                    unanswered.add(delivery_id)

        await asyncio.gather(*(worker() for _ in range(connections)))
    return acknowledged, unanswered


def _wait_settled(workdir: Path, expected_ids: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    inbox = sqlite3.connect(workdir / "inbox.db", timeout=30)
    try:
        while time.monotonic() < deadline:
            open_rows = inbox.execute(
                "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'claimed')"
            ).fetchone()[0]
            if open_rows == 0:
                return
            time.sleep(0.1)
    finally:
        inbox.close()
    raise RuntimeError(f"inbox not settled after {timeout}s")


def run(
    deliveries: int = 1000,
    kill_after: int | None = None,
    connections: int = 8,
    lease_seconds: float = 2.0,
    workdir: Path | None = None,
) -> DurabilityReport:
    """Run the scenario; the report says whether it held exactly-once."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="contexten-durability-"))
    kill_after = deliveries // 2 if kill_after is None else kill_after
    items = make_deliveries(deliveries)
    by_id = {item[0]: item for item in items}
    report = DurabilityReport(sent=deliveries)
    server = Server(workdir, free_port(), lease_seconds)
    started = time.monotonic()
    server.start()
    acks = 0
    killed = False

    def on_ack(_delivery_id: str, status: int) -> None:
        nonlocal acks, killed
        if status == -1:
            report.duplicates_answered += 1
            return
        acks += 1
        if not killed and acks >= kill_after:
            killed = True
            report.acknowledged_before_kill = acks
            server.kill()  # SIGKILL while other requests are in flight

    try:
        first_acked, unanswered = asyncio.run(_send_all(server.url, items, connections, on_ack))
        report.acknowledged |= first_acked
        report.refused_by_kill = len(unanswered)
        server.start()  # same database; the dispatcher resumes from the inbox
        # Redeliver everything unanswered, plus every tenth acknowledged one.
        again = [by_id[d] for d in sorted(unanswered)]
        again += [by_id[d] for d in sorted(first_acked)[::10]]
        report.redelivered = len(again)
        second_acked, still_unanswered = asyncio.run(
            _send_all(server.url, again, connections, on_ack)
        )
        report.acknowledged |= second_acked
        if still_unanswered:
            raise RuntimeError(f"{len(still_unanswered)} redeliveries got no answer")
        _wait_settled(workdir, report.acknowledged, timeout=60 + lease_seconds)
    finally:
        report.clean_exit_code = server.stop()
    report.seconds = time.monotonic() - started
    _check(workdir, report, {item[0]: item[2] for item in items})
    return report


def _check(workdir: Path, report: DurabilityReport, keys: dict[str, str]) -> None:
    runs = _runs_db(str(workdir / "runs.db"))
    rows = {key: calls for key, calls in runs.execute("SELECT key, calls FROM runs")}
    runs.close()
    report.runs = len(rows)
    report.retriggered = sum(calls - 1 for calls in rows.values())
    report.missing_runs = sorted(d for d in report.acknowledged if keys[d] not in rows)
    report.unexpected_runs = len(set(rows) - set(keys.values()))
    inbox = sqlite3.connect(workdir / "inbox.db")
    status = dict(inbox.execute("SELECT delivery_id, status FROM deliveries").fetchall())
    inbox.close()
    report.not_dispatched = sorted(d for d in report.acknowledged if status.get(d) != "dispatched")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--kill-after", type=int, default=None, help="default: half")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--lease-seconds", type=float, default=2.0)
    args = parser.parse_args()
    report = run(args.deliveries, args.kill_after, args.connections, args.lease_seconds)
    print("webhook durability (SIGKILL midway, restart, redeliver)")
    for line in report.lines():
        print("  " + line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
