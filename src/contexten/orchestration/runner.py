"""The runner process of `contexten server`: serves all 13 deployments with their schedules.

Run as `python -m contexten.orchestration.runner` with PREFECT_API_URL set. It executes
flow runs as subprocesses, at most MAX_CONCURRENT_WORKFLOWS at once.
"""

from __future__ import annotations

import asyncio
import sys

from contexten.config import get_settings


async def serve_all() -> None:
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
    await aserve(
        *deployments, limit=settings.max_concurrent_workflows, print_starting_message=False
    )


def main(argv: list[str] | None = None) -> int:
    try:
        asyncio.run(serve_all())
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
