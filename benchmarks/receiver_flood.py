"""Memory of `contexten webhook serve` flooded with 25 MiB posts it must not keep.

Starts the receiver with its dispatcher in a subprocess on 127.0.0.1 (with a webhook
secret), measures its RSS at rest, then floods it from raw sockets, several posts at once:

1. `unsigned`: 25 MiB bodies without X-Hub-Signature-256 (refused before the body is read);
2. `bad-signature`: 25 MiB bodies with a well-formed but wrong signature (read within the
   WEBHOOK_MAX_BUFFERED_BYTES budget, then refused; the rest wait or get 503);
3. `huge-headers`: requests whose head never ends (431 at WEBHOOK_MAX_HEADER_BYTES);

sampling the server's RSS every 20 ms. Afterwards one signed delivery must still be
accepted. Prints the answers by status and the RSS at rest, peak and after, per phase.

Goal: peak RSS under 200 MB.

    python benchmarks/receiver_flood.py [--posts 64] [--concurrency 16] [--mib 25]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webhook_durability import SECRET, Server, free_port

CHUNK = b"\0" * (1 << 20)


class RssSampler:
    """The peak RSS of one process, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


async def post(port: int, kind: str, mib: int, number: int) -> str:
    """One flood request over a raw socket; returns the answer's status code, with
    `early` when it came before the body was sent (the sender waits 0.5 s for one)."""
    size = mib << 20
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return f"connect:{type(exc).__name__}"
    head = [
        "POST /webhook HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        "X-GitHub-Event: workflow_job",
        f"X-GitHub-Delivery: flood-{kind}-{number}",
    ]
    if kind == "bad-signature":
        head.append("X-Hub-Signature-256: sha256=" + "0" * 64)
    if kind == "huge-headers":  # a head that never ends: 1 MiB of one header, then more
        first = ("\r\n".join(head) + "\r\nX-Padding: ").encode() + b"a" * len(CHUNK)
        filler = b"a" * len(CHUNK)
    else:
        first = ("\r\n".join([*head, f"Content-Length: {size}"]) + "\r\n\r\n").encode()
        filler = CHUNK
    status = "no answer"
    try:
        writer.write(first)
        await writer.drain()
        try:
            line = await asyncio.wait_for(reader.readline(), 0.5)
            status = "early " + _code(line)
        except TimeoutError:
            left = size
            while left > 0:
                piece = filler if left >= len(filler) else filler[:left]
                writer.write(piece)
                await writer.drain()
                left -= len(piece)
            status = _code(await asyncio.wait_for(reader.readline(), 60))
    except (ConnectionError, TimeoutError) as exc:
        status = f"closed:{type(exc).__name__}"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return status


def _code(status_line: bytes) -> str:
    parts = status_line.split()
    return parts[1].decode() if len(parts) > 1 else "closed"


async def flood(port: int, kind: str, posts: int, concurrency: int, mib: int) -> Counter[str]:
    gate = asyncio.Semaphore(concurrency)
    answers: Counter[str] = Counter()

    async def one(number: int) -> None:
        async with gate:
            answers[await post(port, kind, mib, number)] += 1

    await asyncio.gather(*(one(n) for n in range(posts)))
    return answers


def signed_delivery(url: str) -> int:
    from contexten.events.signature import sign

    body = json.dumps({"action": "completed", "workflow_job": {"id": 1, "run_id": 2}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "workflow_job",
        "X-GitHub-Delivery": "after-the-flood",
        "X-Hub-Signature-256": sign(SECRET, body),
    }
    return httpx.post(f"{url}/webhook", content=body, headers=headers, timeout=30).status_code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=64, help="posts per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--mib", type=int, default=25, help="body size of each post")
    args = parser.parse_args()
    mb = 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="contexten-flood-") as tmp:
        server = Server(Path(tmp), free_port(), lease_seconds=30)
        server.start()
        try:
            assert server.process is not None
            rss = RssSampler(server.process.pid)
            rest = rss.rss()
            print(f"receiver at rest: {rest / mb:.0f} MB RSS")
            worst = rest
            for kind in ("unsigned", "bad-signature", "huge-headers"):
                started = time.monotonic()
                with rss as sampler:
                    answers = asyncio.run(
                        flood(server.port, kind, args.posts, args.concurrency, args.mib)
                    )
                after = rss.rss()
                worst = max(worst, sampler.peak)
                print(
                    f"{kind:>13}: {args.posts} x {args.mib} MiB, {args.concurrency} at once, "
                    f"{time.monotonic() - started:.1f} s; answers {dict(sorted(answers.items()))}; "
                    f"RSS peak {sampler.peak / mb:.0f} MB, after {after / mb:.0f} MB"
                )
                rss = RssSampler(server.process.pid)
            status = signed_delivery(server.url)
            print(f"a signed delivery after the flood: HTTP {status}")
            verdict = "PASS" if worst < 200 * mb and status == 202 else "FAIL"
            print(f"peak RSS {worst / mb:.0f} MB (goal < 200 MB): {verdict}")
            return 0 if verdict == "PASS" else 1
        finally:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
