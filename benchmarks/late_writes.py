"""The demo loop when writes complete after the client gave up: every count exact.

Runs `contexten demo` (in-process) several times with the sandbox's `late` fault on a
share of every write to GitHub, Linear, Slack and Codegen: the request is read at once and
takes effect `--delay` seconds later, while the client times out after
`--client-timeout` seconds (HTTP_TIMEOUT_SECONDS). The client must look each unclear
write up by its key (HTTP_LATE_WRITE_SECONDS, at least its timeout) before writing
again. The demo's own checks count every comment, check run, issue, message, re-run and
agent run at the sandbox; a duplicate or a lost action fails them.

    python benchmarks/late_writes.py [--runs 5] [--rate 0.2] [--delay 4] [--client-timeout 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.2, help="share of late writes")
    parser.add_argument("--delay", type=float, default=4.0, help="seconds until they land")
    parser.add_argument("--client-timeout", type=float, default=1.0)
    parser.add_argument("--late-write-seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=240.0, help="per demo run")
    args = parser.parse_args()

    from contexten.demo.loop import run_demo
    from contexten.sandbox.faults import FaultRule

    injected: Counter[str] = Counter()

    def late_writes(sandbox: Any, number: int) -> None:
        for index, injector in enumerate(sandbox.faults.values()):
            injector.reseed(100 * number + index)  # the same faults on every invocation
            for method in ("POST", "PATCH", "PUT"):
                injector.add(
                    FaultRule(path="*", method=method, late_rate=args.rate, late_delay=args.delay)
                )

    environ = {
        "HTTP_TIMEOUT_SECONDS": str(args.client_timeout),
        "HTTP_LATE_WRITE_SECONDS": str(args.late_write_seconds),
        "HTTP_MAX_TOTAL_SECONDS": "600",
    }
    failures = 0
    print(
        f"demo loop with {args.rate:.0%} of writes landing {args.delay:g} s late "
        f"(client timeout {args.client_timeout:g} s), {args.runs} runs"
    )
    for number in range(1, args.runs + 1):
        started = time.monotonic()
        sandboxes: list[Any] = []

        def prepare(sandbox: Any, sandboxes: list[Any] = sandboxes, number: int = number) -> None:
            sandboxes.append(sandbox)
            late_writes(sandbox, number)

        with tempfile.TemporaryDirectory(prefix="late-writes-") as home:
            result = run_demo(
                Path(home),
                use_prefect=False,
                timeout=args.timeout,
                prepare_sandbox=prepare,
                extra_environ=environ,
            )
        late = sum(s.faults[name].counts["late"] for s in sandboxes for name in s.faults)
        injected["late"] += late
        wrong = [c for c in result.checks if not c.ok]
        failures += bool(wrong) or result.error is not None
        verdict = "every count exact" if not wrong and result.error is None else "FAILED"
        print(
            f"  run {number}: {len(result.checks)} checks, {late} late writes, "
            f"{time.monotonic() - started:.0f} s: {verdict}"
        )
        for check in wrong:
            print(f"    {check.name}: expected {check.expected}, got {check.observed}")
        if result.error:
            print(f"    error: {result.error}")
    print(f"late writes injected: {injected['late']}; failed runs: {failures} of {args.runs}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
