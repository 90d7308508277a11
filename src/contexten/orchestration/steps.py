"""The steps of a workflow run (fetch, diagnose, recover, escalate, report) as Prefect tasks.

In a Prefect flow run, `WorkflowContext.step(name, fn)` runs `fn` as a task named `name`,
so the UI shows each step's duration and which one failed. A step given a `cache_key` is
an expensive deterministic one (the diagnosis of a job id, the audit of a commit, the
dependency plan of a lock file): its result is persisted and a later run asking for the
same key gets it back (state "Cached") instead of doing the work again, until
`CACHE_EXPIRATION` passes. Outside Prefect (in-process runs) steps are plain calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")

CACHE_EXPIRATION = timedelta(days=7)


async def run_step(
    name: str,
    fn: Callable[[], Awaitable[T]],
    *,
    cache_key: str | None = None,
    cache_expiration: timedelta = CACHE_EXPIRATION,
) -> T:
    """Run `fn` as a Prefect task of the current flow run (no retries: the run retries)."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    async def body() -> T:
        return await fn()

    body.__name__ = body.__qualname__ = name.replace(" ", "_")
    options: dict[str, Any] = {"name": name, "task_run_name": name, "retries": 0}
    if cache_key is None:
        options.update(cache_policy=NO_CACHE, persist_result=False)
    else:
        key = cache_key

        def key_fn(_context: Any, _parameters: dict[str, Any]) -> str:
            return key

        options.update(cache_key_fn=key_fn, persist_result=True, cache_expiration=cache_expiration)
    runner: Any = task(**options)(body)
    result: T = await runner()
    return result
