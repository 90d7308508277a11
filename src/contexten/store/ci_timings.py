"""The CI timings repository (`ci_timings`): durations of runs, jobs and steps.

A run attempt's rows are replaced as a whole when it is collected again, so collection is
idempotent (the table's unique key cannot do it alone: SQL NULLs never collide). For job
and step rows `created_at` holds the time the job or step started.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import SQLAlchemyError

from contexten.analysis.ci_timing import TimingSample
from contexten.store.db import Store
from contexten.store.models import CiTiming
from contexten.store.test_history import TestHistoryError, to_utc


def _cut(value: str | None, length: int) -> str | None:
    return value if value is None or len(value) <= length else value[:length]


def store_samples(store: Store, repository: str, samples: Iterable[TimingSample]) -> int:
    """Replace the stored rows of every run attempt in `samples`; returns rows written."""
    by_run: dict[tuple[int, int], list[TimingSample]] = {}
    for s in samples:
        by_run.setdefault((s.run_id, s.run_attempt), []).append(s)
    rows = 0
    try:
        with store.session() as session:
            for (run_id, attempt), group in by_run.items():
                session.execute(
                    delete(CiTiming).where(
                        CiTiming.repository == repository,
                        CiTiming.run_id == run_id,
                        CiTiming.run_attempt == attempt,
                    )
                )
                for s in group:
                    session.add(
                        CiTiming(
                            repository=repository,
                            workflow_name=_cut(s.workflow_name, 300) or "",
                            run_id=s.run_id,
                            run_attempt=s.run_attempt,
                            job_name=_cut(s.job_name, 300),
                            step_name=_cut(s.step_name, 300),
                            branch=_cut(s.branch, 300),
                            event=_cut(s.event, 50),
                            head_sha=_cut(s.head_sha, 64),
                            conclusion=_cut(s.conclusion, 30),
                            queued_seconds=s.queued_seconds,
                            duration_seconds=s.duration_seconds,
                            created_at=to_utc(s.started_at) if s.started_at else None,
                        )
                    )
                    rows += 1
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot store CI timings in {store.safe_url}: {type(exc).__name__}"
        ) from None
    return rows


def load_samples(
    store: Store,
    repository: str,
    *,
    workflow: str | None = None,
    branches: Sequence[str] | None = None,
) -> list[TimingSample]:
    query = select(CiTiming).where(CiTiming.repository == repository)
    if workflow is not None:
        query = query.where(CiTiming.workflow_name == workflow)
    if branches is not None:
        query = query.where(CiTiming.branch.in_(list(branches)))
    try:
        with store.session() as session:
            return [
                TimingSample(
                    r.workflow_name,
                    int(r.run_id),
                    r.run_attempt,
                    r.job_name,
                    r.step_name,
                    r.branch,
                    r.event,
                    r.head_sha,
                    r.conclusion,
                    r.queued_seconds,
                    r.duration_seconds,
                    to_utc(r.created_at) if r.created_at else None,
                )
                for r in session.scalars(query.order_by(CiTiming.run_id, CiTiming.id))
            ]
    except SQLAlchemyError as exc:
        raise TestHistoryError(
            f"cannot read CI timings from {store.safe_url}: {type(exc).__name__}"
        ) from None


def known_runs(
    store: Store, repository: str, keys: Iterable[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Which (run id, attempt) pairs already have a run row."""
    wanted = list(keys)
    found: set[tuple[int, int]] = set()
    with store.session() as session:
        for start in range(0, len(wanted), 300):
            chunk = wanted[start : start + 300]
            query = select(CiTiming.run_id, CiTiming.run_attempt).where(
                CiTiming.repository == repository,
                CiTiming.job_name.is_(None),
                tuple_(CiTiming.run_id, CiTiming.run_attempt).in_(chunk),
            )
            found.update((int(a), int(b)) for a, b in session.execute(query))
    return found


def workflows(store: Store, repository: str) -> list[str]:
    with store.session() as session:
        return sorted(
            session.scalars(
                select(CiTiming.workflow_name).where(CiTiming.repository == repository).distinct()
            )
        )
