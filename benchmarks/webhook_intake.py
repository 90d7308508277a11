"""Sustained webhook intake: deliveries/s and latency of `contexten webhook serve`.

Starts the receiver in a subprocess on 127.0.0.1 (uvicorn, no access log, SQLite store in
WAL mode), then sends signed workflow_job deliveries (about 11 KB each, every one a new
delivery id, so each is verified, parsed and committed to the inbox) from several client
processes, each with several keep-alive connections. Prints the rate, the latency
percentiles seen by the clients, their ratio to the targets and the CPU time each side used.

Closed loop (default): each connection sends its next delivery when the previous one is
answered (httpx and/or a minimal raw HTTP/1.1 client). Open loop (`--rate R`, raw client):
delivery i is due at start + i/R whatever came back before, and its latency counts from
when it was due, so a stalled server cannot hide its stall.

`--dispatch` also runs the dispatcher (no-op trigger) in the server process, as `webhook
serve` does; the benchmark then samples the inbox and reports how far dispatch lags.

Goal: >= 1,000 deliveries/s and p99 < 50 ms on loopback, with the dispatcher running and
every delivery dispatched within a second of the last answer.

    python benchmarks/webhook_intake.py [--deliveries 6000] [--clients 2] [--connections 8]
        [--dispatch] [--rate 1000] [--client httpx|raw|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhook_durability import EXAMPLE, SECRET, Server, free_port

WARMUP = 300


def noop_trigger(_settings: Any, _store: Any) -> Any:
    async def trigger(workflow_type: str, _parameters: dict[str, Any], key: str) -> str:
        return key

    return trigger


def _bodies(prefix: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    from contexten.events.signature import sign

    template = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    prepared = []
    for n in range(count):
        payload = dict(template)
        payload["workflow_job"] = dict(template["workflow_job"], run_id=1_000_000 + n)
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": f"{prefix}-{n:07d}",
            "X-Hub-Signature-256": sign(SECRET, body),
        }
        prepared.append((body, headers))
    return prepared


async def _drive(url: str, prepared: list[tuple[bytes, dict[str, str]]], connections: int) -> Any:
    latencies: list[float] = []
    errors = 0
    index = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            nonlocal index, errors
            while index < len(prepared):
                body, headers = prepared[index]
                index += 1
                started = time.perf_counter()
                response = await client.post("/webhook", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 202:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    return latencies, errors, elapsed


async def _drive_raw(
    url: str, prepared: list[tuple[bytes, dict[str, str]]], connections: int
) -> Any:
    """A minimal HTTP/1.1 keep-alive client: pre-built request bytes, Content-Length reads.

    It costs a fraction of httpx's CPU per request, so on a machine where the clients and
    the server share two cores it shows what the server itself can take.
    """
    host, port = url.removeprefix("http://").split(":")
    requests = []
    for body, headers in prepared:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        requests.append(
            (
                f"POST /webhook HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
                f"{head}\r\n"
            ).encode()
            + body
        )
    latencies: list[float] = []
    errors = 0
    index = 0

    async def worker() -> None:
        nonlocal index, errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while index < len(requests):
                request = requests[index]
                index += 1
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 202"):
                    errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, errors, time.perf_counter() - began


def _raw_requests(url: str, prepared: list[tuple[bytes, dict[str, str]]]) -> list[bytes]:
    host = url.removeprefix("http://").split(":")[0]
    requests = []
    for body, headers in prepared:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        requests.append(
            (
                f"POST /webhook HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
                f"{head}\r\n"
            ).encode()
            + body
        )
    return requests


async def _drive_paced(
    url: str,
    prepared: list[tuple[bytes, dict[str, str]]],
    connections: int,
    rate: float,
    start_at: float,
) -> Any:
    """Open loop: request i is due at start_at + i / rate, whatever came back before.

    Each connection takes every `connections`-th request; a request sent late (its
    connection still busy) counts its latency from the time it was due, not from when it
    went out, so a stalled server cannot hide its stall (no coordinated omission).
    """
    host, port = url.removeprefix("http://").split(":")
    requests = _raw_requests(url, prepared)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    # time.time() is shared by the client processes; the loop's clock is per process.
    start_loop = loop.time() + (start_at - time.time())

    async def worker(first: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for index in range(first, len(requests), connections):
                due = start_loop + index / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(requests[index])
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(loop.time() - due)
                if not head.startswith(b"HTTP/1.1 202"):
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    return latencies, errors, loop.time() - start_loop


def _client(
    args: tuple[str, str, int, int, float, str, float | None],
) -> tuple[list[float], int, float, float]:
    url, prefix, count, connections, start_at, kind, rate = args
    prepared = _bodies(prefix, count)
    cpu_before = time.process_time()
    if rate is not None:
        result = asyncio.run(_drive_paced(url, prepared, connections, rate, start_at))
        latencies, errors, elapsed = result
        return latencies, errors, elapsed, time.process_time() - cpu_before
    drive = _drive_raw if kind == "raw" else _drive
    while time.time() < start_at:  # every client starts together
        time.sleep(0.001)
    latencies, errors, elapsed = asyncio.run(drive(url, prepared, connections))
    return latencies, errors, elapsed, time.process_time() - cpu_before


class BacklogWatcher:
    """Samples the inbox (read-only) during a run: how far dispatch lags behind intake."""

    def __init__(self, database: Path, interval: float = 0.1) -> None:
        self.database = database
        self.interval = interval
        self.max_backlog = 0
        self.samples: list[tuple[float, int, int]] = []  # (time, recorded, dispatched)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def counts(self) -> tuple[int, int]:
        """(rows recorded, rows not yet settled: pending or claimed)."""
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)
        try:
            rows = connection.execute(
                "SELECT status, count(*) FROM deliveries GROUP BY status"
            ).fetchall()
        finally:
            connection.close()
        found = dict(rows)
        return sum(found.values()), found.get("pending", 0) + found.get("claimed", 0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            recorded, backlog = self.counts()
            self.samples.append((time.time(), recorded, backlog))
            self.max_backlog = max(self.max_backlog, backlog)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def drained_at(self, expected: int, timeout: float) -> float | None:
        """Wall time when `expected` rows are recorded and none is left to dispatch."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            recorded, backlog = self.counts()
            if recorded >= expected and backlog == 0:
                return time.time()
            time.sleep(0.02)
        return None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(
    deliveries: int,
    clients: int,
    connections: int,
    dispatch: bool,
    client: str = "httpx",
    rate: float | None = None,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="contexten-intake-"))
    server = Server(workdir, free_port(), lease_seconds=60)
    extra = ["--trigger", "webhook_intake:noop_trigger"] if dispatch else ["--no-dispatch"]
    server.start(extra_args=extra)
    assert server.process is not None
    proc = psutil.Process(server.process.pid)
    try:
        # Warm up: connections, imports, SQLite pages.
        asyncio.run(_drive(server.url, _bodies("warmup", WARMUP), connections))
        watcher = BacklogWatcher(workdir / "inbox.db") if dispatch else None
        if watcher is not None:
            watcher.drained_at(WARMUP, 30.0)  # the warm-up's rows are settled first
            watcher.start()
        cpu_before = proc.cpu_times()
        per_client = deliveries // clients
        # spawn + imports + preparing the bodies take a while before the clients can start
        start_at = time.time() + 3.0
        client_rate = rate / clients if rate is not None else None
        jobs = [
            (server.url, f"c{i}", per_client, connections, start_at, client, client_rate)
            for i in range(clients)
        ]
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            results = pool.map(_client, jobs)
        sent_end = time.time()
        drained = None
        if watcher is not None:
            drained = watcher.drained_at(WARMUP + per_client * clients, 60.0)
            watcher.stop()
        cpu_after = proc.cpu_times()
    finally:
        server.stop()
    latencies = [x for r in results for x in r[0]]
    errors = sum(r[1] for r in results)
    wall = max(r[2] for r in results)
    server_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    return {
        "deliveries": len(latencies),
        "errors": errors,
        "seconds": wall,
        "rate": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * _percentile(latencies, 0.95),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies),
        "server_cpu_s": server_cpu,
        "client_cpu_s": sum(r[3] for r in results),
        "cores": os.cpu_count(),
        "dispatch": dispatch,
        "clients": clients,
        "connections": connections,
        "client": client,
        "target_rate": rate,
        # dispatch: how long after the last acknowledgement every delivery was dispatched
        "drain_s": (drained - sent_end) if drained is not None else None,
        "dispatched_per_s": (
            per_client * clients / (drained - start_at) if drained is not None else None
        ),
        "max_backlog": watcher.max_backlog if watcher is not None else None,
    }


TARGET_RATE = 1000.0  # deliveries/s
TARGET_P99_MS = 50.0
OPEN_LOOP_SHARE = 0.99  # of the offered rate, measured over the run's first to last answer
DRAIN_LIMIT_S = 1.0  # dispatch keeps up: the backlog is gone this soon after the last delivery


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--connections", type=int, default=8, help="connections per client")
    parser.add_argument("--dispatch", action="store_true", help="run the dispatcher too")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: send this many deliveries/s in all (raw clients; latency counted "
        "from when each was due); default: closed loop, as fast as answers come back",
    )
    parser.add_argument(
        "--client",
        choices=("httpx", "raw", "both"),
        default="both",
        help="httpx async clients, a minimal raw HTTP/1.1 client, or one run of each",
    )
    args = parser.parse_args()
    if args.deliveries < args.clients or args.clients < 1 or args.connections < 1:
        parser.error("--deliveries >= --clients >= 1 and --connections >= 1")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    kinds = ("httpx", "raw") if args.client == "both" else (args.client,)
    if args.rate is not None:
        kinds = ("raw",)
    for kind in kinds:
        load_before = os.getloadavg()[0]
        figures = run(
            args.deliveries, args.clients, args.connections, args.dispatch, kind, args.rate
        )
        figures["load"] = (load_before, os.getloadavg()[0])
        report(figures)
    return 0


def report(figures: dict[str, Any]) -> None:
    keeps_up = not figures["dispatch"] or (
        figures["drain_s"] is not None and figures["drain_s"] <= DRAIN_LIMIT_S
    )
    offered = figures["target_rate"]
    if offered is None:
        rate_ok = figures["rate"] >= TARGET_RATE
    else:  # open loop: the rate offered, and (ramp and tail aside) all of it carried
        rate_ok = offered >= TARGET_RATE and figures["rate"] >= OPEN_LOOP_SHARE * offered
    goal = rate_ok and figures["p99_ms"] < TARGET_P99_MS and keeps_up
    loop = (
        f"open loop at {figures['target_rate']:.0f}/s"
        if figures["target_rate"] is not None
        else "closed loop"
    )
    print(
        f"webhook intake, {loop}, {figures['client']} clients (loopback, SQLite WAL, no access log)"
    )
    print(
        f"  setup:     {figures['clients']} client processes x {figures['connections']} "
        f"connections, dispatcher {'on (no-op trigger)' if figures['dispatch'] else 'off'}, "
        f"{figures['cores']} cores shared by clients and server, "
        f"load {figures['load'][0]:.2f} before / {figures['load'][1]:.2f} after"
    )
    print(
        f"  delivered: {figures['deliveries']} in {figures['seconds']:.2f} s "
        f"({figures['errors']} errors)"
    )
    print(
        f"  rate:      {figures['rate']:.0f} deliveries/s "
        f"({figures['rate'] / TARGET_RATE:.2f} x the {TARGET_RATE:.0f}/s target)"
    )
    print(
        f"  latency:   p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms ({figures['p99_ms'] / TARGET_P99_MS:.2f} x the "
        f"{TARGET_P99_MS:.0f} ms limit), max {figures['max_ms']:.1f} ms"
    )
    if figures["dispatch"]:
        drain = figures["drain_s"]
        print(
            "  dispatch:  "
            + (
                f"all dispatched {drain:.2f} s after the last answer "
                f"({figures['dispatched_per_s']:.0f}/s overall), "
                if drain is not None
                else "NOT all dispatched within 60 s of the last answer, "
            )
            + f"backlog at most {figures['max_backlog']} rows"
        )
    per_delivery = 1000 * figures["server_cpu_s"] / figures["deliveries"]
    print(
        f"  CPU:       server {figures['server_cpu_s']:.2f} s ({per_delivery:.2f} ms/delivery), "
        f"clients {figures['client_cpu_s']:.2f} s"
    )
    what = f">= {TARGET_RATE:.0f}/s, p99 < {TARGET_P99_MS:.0f} ms"
    if figures["dispatch"]:
        what += f", dispatched within {DRAIN_LIMIT_S:.0f} s"
    print(f"  goal ({what}): {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
