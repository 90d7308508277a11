"""The log cache repository: compressed logs of passing jobs, the baselines of diagnoses.

Keyed by job id (a finished job's log never changes); bounded in total size, the oldest
entries evicted first.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from contexten.store.db import Store
from contexten.store.models import LogCacheEntry


def cached_log(store: Store, job_id: int) -> bytes | None:
    with store.session() as session:
        entry = session.get(LogCacheEntry, job_id)
        return None if entry is None else bytes(entry.data)


def cache_log(
    store: Store, repository: str, job_id: int, blob: bytes, *, max_total_bytes: int
) -> None:
    """Keep a compressed log; evict the oldest entries past `max_total_bytes` in total."""
    try:
        with store.session() as session:
            session.add(
                LogCacheEntry(job_id=job_id, repository=repository, size_bytes=len(blob), data=blob)
            )
    except IntegrityError:
        return  # cached meanwhile by another run
    with store.session() as session:
        total = session.scalar(select(func.coalesce(func.sum(LogCacheEntry.size_bytes), 0))) or 0
        if total <= max_total_bytes:
            return
        rows = session.execute(
            select(LogCacheEntry.job_id, LogCacheEntry.size_bytes).order_by(
                LogCacheEntry.stored_at, LogCacheEntry.job_id
            )
        ).all()
        doomed = []
        for cached_job, size in rows:
            if total <= max_total_bytes:
                break
            doomed.append(cached_job)
            total -= size
        session.execute(delete(LogCacheEntry).where(LogCacheEntry.job_id.in_(doomed)))
