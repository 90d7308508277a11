"""Speed of monitoring: the health check, metrics over a full history, alert deduplication.

    .venv/bin/python benchmarks/monitoring_speed.py [--history 1000] [--fires 500]

Prints
1. `contexten health-check --json --no-integrations`, cold (a new process each time): wall
   time, best and median of 5;
2. the health check in-process (HealthChecker.run, no integrations, CPU sampling off): best
   and median of 20;
3. compute_metrics and render_prometheus over a store holding N finished workflow runs and
   N recoveries (N = PERFORMANCE_HISTORY_SIZE): best of 5;
4. AlertManager.fire of one key N times (the deduplicated path an outage takes): fires/s;
5. 50 concurrent recoveries with MAX_CONCURRENT_RECOVERIES=3: peak concurrency observed.
Everything runs against a SQLite store in a temporary CONTEXTEN_HOME.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def timed(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--fires", type=int, default=500)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="contexten-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITHUB_"))}
    env["CONTEXTEN_HOME"] = str(home)

    cold = timed(
        lambda: subprocess.run(
            [sys.executable, "-m", "contexten.cli", "health-check", "--json", "--no-integrations"],
            env=env,
            capture_output=True,
            check=False,
        ),
        5,
    )
    print(
        f"1. health-check CLI, cold process: best {min(cold):.2f} s, "
        f"median {statistics.median(cold):.2f} s"
    )

    from contexten.config import Settings
    from contexten.monitoring.alerts import Alert, AlertManager, Severity
    from contexten.monitoring.health import HealthChecker
    from contexten.monitoring.metrics import compute_metrics, render_prometheus
    from contexten.recovery.failures import Failure
    from contexten.recovery.manager import RecoveryManager
    from contexten.recovery.policy import FailureCategory
    from contexten.store.db import Store
    from contexten.store.models import RecoveryRecord, WorkflowExecution

    settings = Settings(
        contexten_home=home, prefect_api_url=None, performance_history_size=args.history
    )
    store = Store(settings.effective_database_url)
    store.migrate()

    checker = HealthChecker(settings, store, check_integrations=False, cpu_interval=0.0)
    warm = timed(lambda: asyncio.run(checker.run()), 20)
    print(
        f"2. health check in-process: best {min(warm) * 1000:.0f} ms, "
        f"median {statistics.median(warm) * 1000:.0f} ms"
    )

    now = datetime.now(UTC)
    with store.session() as s:
        for i in range(args.history):
            s.add(
                WorkflowExecution(
                    run_id=f"bench-{i}",
                    workflow_type=("health_check", "failure_analysis", "linear_sync")[i % 3],
                    mode="in-process",
                    status="failed" if i % 9 == 0 else "completed",
                    duration_seconds=1.0 + i % 7,
                )
            )
            s.add(
                RecoveryRecord(
                    key=f"k{i % 50}",
                    failure_type="network",
                    strategy="retry_with_backoff",
                    outcome="succeeded" if i % 4 else "failed",
                    failure_seen_at=now - timedelta(seconds=60),
                    started_at=now - timedelta(seconds=50),
                    finished_at=now,
                )
            )
    metrics_t = timed(lambda: compute_metrics(store, settings), 5)
    prom_t = timed(lambda: render_prometheus(store, settings), 5)
    print(
        f"3. over {args.history} runs + {args.history} recoveries: compute_metrics best "
        f"{min(metrics_t) * 1000:.0f} ms; render_prometheus best {min(prom_t) * 1000:.0f} ms"
    )

    alerts = AlertManager(store, settings)

    async def fire_many() -> None:
        for _ in range(args.fires):
            await alerts.fire(Alert("bench:outage", Severity.WARNING, "still down"))

    start = time.perf_counter()
    asyncio.run(fire_many())
    elapsed = time.perf_counter() - start
    count = alerts.list_alerts(status="firing")[0].count
    print(
        f"4. {args.fires} fires of one key: {args.fires / elapsed:.0f} fires/s; "
        f"1 record, count {count}"
    )

    async def recover_many() -> int:
        async def slow() -> None:
            await asyncio.sleep(0.01)

        manager = RecoveryManager(settings, store, sleep=lambda s: asyncio.sleep(0))
        failures = [
            Failure(key=f"bench-{i}", category=FailureCategory.NETWORK, operation=slow)
            for i in range(50)
        ]
        await manager.recover_many(failures)
        return manager.peak_concurrency

    peak = asyncio.run(recover_many())
    print(f"5. 50 recoveries at once, MAX_CONCURRENT_RECOVERIES=3: peak concurrency {peak}")
    store.dispose()


if __name__ == "__main__":
    main()
