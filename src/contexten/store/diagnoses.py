"""The diagnoses and escalations repository: DiagnosisRecord rows, human-escalation
RecoveryRecords, and the tracking state of each failure signature (`store.state`).

Takes and returns the values of `analysis.failures` (RunInfo, JobDiagnosis).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from contexten.analysis.failures import JobDiagnosis, RunInfo
from contexten.analysis.taxonomy import RecoveryStrategy
from contexten.store.db import Store
from contexten.store.models import DiagnosisRecord, RecoveryRecord, utcnow
from contexten.store.state import StateKind, list_state, merge_state, read_state


def _job(row: DiagnosisRecord) -> JobDiagnosis:
    return JobDiagnosis.from_record_data(
        int(row.job_id or 0), row.job_name or "job", dict(row.data or {})
    )


def _run(row: DiagnosisRecord) -> RunInfo:
    return RunInfo.from_dict(dict((row.data or {}).get("run") or {}))


def save_diagnosis(store: Store, run: RunInfo, job: JobDiagnosis) -> bool:
    """Record one job's diagnosis once per (run attempt, job); False if it was there."""
    with store.session() as session:
        existing = session.scalar(
            select(DiagnosisRecord.id).where(
                DiagnosisRecord.repository == run.repository,
                DiagnosisRecord.run_id == run.run_id,
                DiagnosisRecord.run_attempt == run.run_attempt,
                DiagnosisRecord.job_id == job.job_id,
            )
        )
        if existing is not None:
            return False
        d = job.diagnosis
        session.add(
            DiagnosisRecord(
                repository=run.repository,
                run_id=run.run_id,
                run_attempt=run.run_attempt,
                job_id=job.job_id,
                job_name=job.job_name[:300],
                category=d.category.value,
                confidence=float(d.confidence),
                signature=d.signature,
                transient=bool(d.transient),
                data=job.to_record_data(run),
            )
        )
    return True


def load_run_diagnoses(
    store: Store, repository: str, run_id: int, run_attempt: int | None = None
) -> tuple[RunInfo | None, list[JobDiagnosis]]:
    """The recorded diagnoses of a run's attempt (default: the newest attempt recorded)."""
    with store.session() as session:
        query = select(DiagnosisRecord).where(
            DiagnosisRecord.repository == repository, DiagnosisRecord.run_id == run_id
        )
        rows = list(session.scalars(query.order_by(DiagnosisRecord.id)).all())
    if not rows:
        return None, []
    attempt = run_attempt or max(row.run_attempt for row in rows)
    chosen = [row for row in rows if row.run_attempt == attempt]
    if not chosen:
        return None, []
    run = RunInfo.from_dict(dict((chosen[0].data or {}).get("run") or {}))
    return run, [_job(row) for row in chosen]


def signatures_of_run(store: Store, repository: str, run_id: int) -> list[str]:
    """Distinct signatures recorded for any attempt of a run, oldest first."""
    with store.session() as session:
        rows = session.scalars(
            select(DiagnosisRecord.signature)
            .where(DiagnosisRecord.repository == repository, DiagnosisRecord.run_id == run_id)
            .order_by(DiagnosisRecord.id)
        ).all()
    return list(dict.fromkeys(rows))


def load_signature_state(store: Store, repository: str, signature: str) -> dict[str, Any]:
    return read_state(store, StateKind.ESCALATION, f"{repository}:{signature}") or {}


def save_signature_state(
    store: Store, repository: str, signature: str, **values: Any
) -> dict[str, Any]:
    """Merge `values` into the signature's tracking state; returns the new state."""
    return merge_state(
        store,
        StateKind.ESCALATION,
        f"{repository}:{signature}",
        values,
        {"repository": repository, "signature": signature},
    )


def tracked_signatures(store: Store) -> list[dict[str, Any]]:
    """Every signature state (repository, signature, issue, generation, ...)."""
    return [value for _name, value in list_state(store, StateKind.ESCALATION)]


def record_escalation(
    store: Store, run: RunInfo, job: JobDiagnosis, detail: dict[str, Any]
) -> None:
    """One RecoveryRecord per escalated (run attempt, signature): human escalation."""
    marker = f"{run.repository}#{run.run_id}@{run.run_attempt}"
    now = utcnow()
    with store.session() as session:
        rows = session.scalars(
            select(RecoveryRecord).where(
                RecoveryRecord.key == job.signature[:200],
                RecoveryRecord.strategy == RecoveryStrategy.HUMAN_ESCALATION.value,
            )
        ).all()
        if any((row.detail or {}).get("run") == marker for row in rows):
            return
        session.add(
            RecoveryRecord(
                key=job.signature[:200],
                failure_type=job.category.value,
                strategy=RecoveryStrategy.HUMAN_ESCALATION.value,
                outcome="escalated",
                detail={"run": marker, "job": job.job_name, **detail},
                failure_seen_at=now,
                started_at=now,
                finished_at=now,
            )
        )


def recent_escalations(
    store: Store, since: datetime, repository: str | None
) -> list[tuple[RunInfo, JobDiagnosis]]:
    """The newest diagnosis of each signature that needs a person, diagnosed since `since`."""
    with store.session() as session:
        query = select(DiagnosisRecord).where(DiagnosisRecord.created_at >= since)
        if repository:
            query = query.where(DiagnosisRecord.repository == repository)
        rows = list(session.scalars(query.order_by(DiagnosisRecord.id)).all())
        escalated = set(
            session.scalars(
                select(RecoveryRecord.key).where(
                    RecoveryRecord.strategy == RecoveryStrategy.HUMAN_ESCALATION.value
                )
            ).all()
        )
    newest: dict[tuple[str, str], DiagnosisRecord] = {}
    for row in rows:
        if row.transient and row.signature not in escalated:
            continue  # re-run, not a person's problem (yet)
        if (row.data or {}).get("diagnosis", {}).get("status") in ("no_failure", "empty"):
            continue
        newest[(row.repository, row.signature)] = row
    return [(_run(row), _job(row)) for row in newest.values()]


def last_diagnosed_run_created_at(store: Store, repository: Any, signature: Any) -> str | None:
    """When the run of the newest diagnosis of a signature started (as stored), or None."""
    with store.session() as session:
        row = session.scalars(
            select(DiagnosisRecord)
            .where(DiagnosisRecord.repository == repository, DiagnosisRecord.signature == signature)
            .order_by(DiagnosisRecord.id.desc())
            .limit(1)
        ).first()
        return None if row is None else ((row.data or {}).get("run") or {}).get("created_at")
