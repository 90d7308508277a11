"""The runner process of `contexten server`: serves all 13 deployments with their schedules.

Run as `python -m contexten.orchestration.runner [--sweep]` with PREFECT_API_URL set. It
executes flow runs as subprocesses, at most MAX_CONCURRENT_WORKFLOWS at once. With
`--sweep` (`contexten server --no-webhook`, where no dispatcher runs) it also takes over,
every half lease, the runs whose process died, as a dispatcher does.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from contexten.config import Settings, get_settings
from contexten.orchestration.orchestrator import PrefectOrchestrator

logger = logging.getLogger("contexten.orchestration.runner")


def sweep_interval(settings: Settings) -> float:
    """Half a run lease, at most 30 s (as the dispatcher's): a dead run is taken over soon
    after its lease ends."""
    return min(30.0, max(1.0, settings.execution_lease_seconds / 2))


async def sweep_forever(orchestrator: PrefectOrchestrator, interval: float) -> None:
    """The dispatcher's sweep without a dispatcher: `recover_stale_runs(wait=False)`
    (runs of dead processes taken over and re-run here, crashed deployment runs started
    again under their key) every `interval` seconds until cancelled."""
    while True:
        try:
            taken = await orchestrator.recover_stale_runs(wait=False)
        except Exception as exc:  # housekeeping must never stop the runner
            logger.warning("sweep for runs of dead processes failed: %s", exc)
        else:
            if taken:
                logger.warning("took over %d run(s) whose process died", len(taken))
        await asyncio.sleep(interval)


async def serve_all(*, sweep: bool = False) -> None:
    from prefect.flows import aserve

    from contexten.orchestration.deploy import (
        build_deployments,
        ensure_concurrency_limit,
        ensure_zombie_automation,
    )

    settings = get_settings()
    await ensure_concurrency_limit(settings.max_concurrent_workflows)
    await ensure_zombie_automation()
    deployments = await build_deployments(settings)
    sweeper: asyncio.Task[None] | None = None
    if sweep:
        orchestrator = PrefectOrchestrator(settings=settings)
        sweeper = asyncio.create_task(
            sweep_forever(orchestrator, sweep_interval(settings)), name="sweep"
        )
    try:
        await aserve(
            *deployments, limit=settings.max_concurrent_workflows, print_starting_message=False
        )
    finally:
        if sweeper is not None:
            sweeper.cancel()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    unknown = [arg for arg in args if arg != "--sweep"]
    if unknown:
        print(f"unknown argument(s): {' '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_all(sweep="--sweep" in args))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
