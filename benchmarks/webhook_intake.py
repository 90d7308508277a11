"""Sustained webhook intake: deliveries/s and latency of `contexten webhook serve`.

Starts the receiver in a subprocess on 127.0.0.1 (uvicorn, no access log, SQLite store in
WAL mode), then sends signed workflow_job deliveries (about 8 KB each, every one a new
delivery id, so each is verified, parsed and committed to the inbox) from several client
processes, each with several keep-alive connections (httpx async). Prints the rate, the
latency percentiles seen by the clients and the CPU time each side used.

Goal: >= 1,000 deliveries/s and p99 < 50 ms on loopback.

    python benchmarks/webhook_intake.py [--deliveries 6000] [--clients 2] [--connections 8]
        [--dispatch]   # also run the dispatcher (no-op trigger) in the server process
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhook_durability import EXAMPLE, SECRET, Server, free_port


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


def _client(args: tuple[str, str, int, int, float, str]) -> tuple[list[float], int, float, float]:
    url, prefix, count, connections, start_at, kind = args
    prepared = _bodies(prefix, count)
    drive = _drive_raw if kind == "raw" else _drive
    cpu_before = time.process_time()
    while time.time() < start_at:  # every client starts together
        time.sleep(0.001)
    latencies, errors, elapsed = asyncio.run(drive(url, prepared, connections))
    return latencies, errors, elapsed, time.process_time() - cpu_before


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(
    deliveries: int, clients: int, connections: int, dispatch: bool, client: str = "httpx"
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="contexten-intake-"))
    server = Server(workdir, free_port(), lease_seconds=60)
    extra = ["--trigger", "webhook_intake:noop_trigger"] if dispatch else ["--no-dispatch"]
    server.start(extra_args=extra)
    assert server.process is not None
    proc = psutil.Process(server.process.pid)
    try:
        # Warm up: connections, imports, SQLite pages.
        asyncio.run(_drive(server.url, _bodies("warmup", 300), connections))
        cpu_before = proc.cpu_times()
        per_client = deliveries // clients
        start_at = time.time() + 1.0
        jobs = [
            (server.url, f"c{i}", per_client, connections, start_at, client) for i in range(clients)
        ]
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            results = pool.map(_client, jobs)
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
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--connections", type=int, default=8, help="connections per client")
    parser.add_argument("--dispatch", action="store_true", help="run the dispatcher too")
    parser.add_argument(
        "--client",
        choices=("httpx", "raw", "both"),
        default="both",
        help="httpx async clients, a minimal raw HTTP/1.1 client, or one run of each",
    )
    args = parser.parse_args()
    kinds = ("httpx", "raw") if args.client == "both" else (args.client,)
    for kind in kinds:
        figures = run(args.deliveries, args.clients, args.connections, args.dispatch, kind)
        report(figures)
    return 0


def report(figures: dict[str, Any]) -> None:
    goal = figures["rate"] >= 1000 and figures["p99_ms"] < 50
    print(f"webhook intake with {figures['client']} clients (loopback, SQLite WAL, no access log)")
    print(
        f"  setup:     {figures['clients']} client processes x {figures['connections']} "
        f"connections, dispatcher {'on' if figures['dispatch'] else 'off'}, "
        f"{figures['cores']} cores shared by clients and server"
    )
    print(
        f"  delivered: {figures['deliveries']} in {figures['seconds']:.2f} s "
        f"({figures['errors']} errors)"
    )
    print(f"  rate:      {figures['rate']:.0f} deliveries/s")
    print(
        f"  latency:   p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms"
    )
    per_delivery = 1000 * figures["server_cpu_s"] / figures["deliveries"]
    print(
        f"  CPU:       server {figures['server_cpu_s']:.2f} s ({per_delivery:.2f} ms/delivery), "
        f"clients {figures['client_cpu_s']:.2f} s"
    )
    print(f"  goal (>= 1000/s, p99 < 50 ms): {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
