"""Run one workflow body, record it in the store, retry transient errors with back-off.

The same code runs inside a Prefect flow and in-process (the fallback when no Prefect
server is reachable), so both modes record, retry and report alike. No Prefect import here.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from contexten.config import Settings
from contexten.orchestration.workflows import (
    REGISTRY,
    AutonomousWorkflowType,
    WorkflowParameters,
    validate_parameters,
)
from contexten.store.db import Store
from contexten.store.models import WorkflowExecution
from contexten.workflows.base import (
    Artifact,
    WorkflowContext,
    WorkflowError,
    WorkflowOutcome,
)

logger = logging.getLogger("contexten.orchestration")

TIMED_OUT = "timed_out"
FINAL_STATUSES = frozenset({"completed", "failed", "crashed", "cancelled", TIMED_OUT})

Sleep = Callable[[float], Awaitable[None]]
ALERT_BUDGET_SECONDS = 45.0  # for the alert about a timed-out run


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What a finished workflow run produced."""

    run_id: str
    workflow_type: AutonomousWorkflowType
    status: str  # completed | failed | timed_out
    ok: bool
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    artifacts: tuple[Artifact, ...] = ()
    duration_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow_type": self.workflow_type.value,
            "status": self.status,
            "ok": self.ok,
            "summary": self.summary,
            "data": self.data,
            "error": self.error,
            "duration_seconds": round(self.duration_seconds, 3),
        }


def _is_retryable(exc: BaseException) -> bool:
    """Integration faults and OS-level hiccups are worth a retry; our own verdicts are not."""
    if isinstance(exc, WorkflowError):
        return False
    try:
        from contexten.integrations.interface import IntegrationError
    except ImportError:  # pragma: no cover - integrations always ship with the package
        return isinstance(exc, OSError | TimeoutError)
    if isinstance(exc, IntegrationError):
        return bool(getattr(exc, "retryable", True))
    return isinstance(exc, OSError | TimeoutError | asyncio.TimeoutError)


def record_execution(store: Store, run_id: str, **fields: Any) -> None:
    """Insert or update the WorkflowExecution row for run_id (safe against a racing insert)."""
    for _ in range(3):
        try:
            with store.session() as session:
                row = session.scalars(
                    select(WorkflowExecution).where(WorkflowExecution.run_id == run_id)
                ).first()
                if row is None:
                    row = WorkflowExecution(run_id=run_id, **fields)
                    session.add(row)
                else:
                    for name, value in fields.items():
                        setattr(row, name, value)
            return
        except IntegrityError:
            continue
    raise RuntimeError(f"could not record workflow execution {run_id}")


def load_execution(store: Store, run_id: str) -> WorkflowExecution | None:
    with store.session() as session:
        return session.scalars(
            select(WorkflowExecution).where(WorkflowExecution.run_id == run_id)
        ).first()


def find_by_idempotency_key(store: Store, key: str) -> WorkflowExecution | None:
    with store.session() as session:
        return session.scalars(
            select(WorkflowExecution).where(WorkflowExecution.idempotency_key == key)
        ).first()


def claim_idempotency_key(
    store: Store, key: str, run_id: str, workflow_type: AutonomousWorkflowType, mode: str
) -> str | None:
    """Reserve `key` for a new run; return the existing run id when it was taken already."""
    try:
        with store.session() as session:
            session.add(
                WorkflowExecution(
                    run_id=run_id,
                    idempotency_key=key,
                    workflow_type=workflow_type.value,
                    mode=mode,
                    status="scheduled",
                    parameters={},
                )
            )
        return None
    except IntegrityError:
        existing = find_by_idempotency_key(store, key)
        return existing.run_id if existing is not None else None


async def run_body(
    params: WorkflowParameters, workflow_type: AutonomousWorkflowType, ctx: WorkflowContext
) -> WorkflowOutcome:
    module = importlib.import_module(f"contexten.workflows.{workflow_type.value}")
    outcome = await module.run(params, ctx)
    if not isinstance(outcome, WorkflowOutcome):
        raise TypeError(f"workflow {workflow_type.value} returned {type(outcome).__name__}")
    return outcome


async def execute_workflow(
    workflow_type: AutonomousWorkflowType | str,
    parameters: dict[str, Any] | None,
    *,
    settings: Settings,
    store: Store,
    run_id: str | None = None,
    mode: str = "in-process",
    sleep: Sleep = asyncio.sleep,
) -> ExecutionResult:
    """Validate, run with retries, record. Raises WorkflowParameterError on bad parameters."""
    params = validate_parameters(workflow_type, parameters)
    wtype = AutonomousWorkflowType(workflow_type)
    spec = REGISTRY[wtype]
    run_id = run_id or str(uuid.uuid4())
    started = datetime.now(UTC)
    clock = time.monotonic()
    record_execution(
        store,
        run_id,
        workflow_type=wtype.value,
        mode=mode,
        status="running",
        parameters=params.model_dump(mode="json"),
        started_at=started,
    )
    delays = spec.retry_delays(settings.workflow_retry_delay)
    ctx = WorkflowContext(
        settings=settings, store=store, run_id=run_id, in_prefect=mode.startswith("prefect")
    )
    outcome: WorkflowOutcome | None = None
    error: str | None = None
    timeout = spec.effective_timeout(settings.workflow_default_timeout)
    timed_out = False
    try:
        # The type's timeout covers every attempt and back-off, as a Prefect flow timeout.
        async with asyncio.timeout(timeout) as deadline:
            attempt = 0
            while True:
                try:
                    outcome = await run_body(params, wtype, ctx)
                    break
                except Exception as exc:
                    if deadline.expired():
                        raise
                    error = _describe(exc)
                    if attempt < len(delays) and _is_retryable(exc):
                        logger.warning(
                            "%s attempt %d failed (%s); retrying in %ss",
                            wtype.value,
                            attempt + 1,
                            error,
                            delays[attempt],
                        )
                        await sleep(delays[attempt])
                        attempt += 1
                        continue
                    break
    except TimeoutError:
        if not deadline.expired():
            raise
        timed_out = True
    duration = time.monotonic() - clock
    finished = datetime.now(UTC)
    if timed_out:
        error = f"timed out after {timeout}s (the {wtype.value} timeout)"
        record_execution(
            store,
            run_id,
            status=TIMED_OUT,
            error=error,
            finished_at=finished,
            duration_seconds=duration,
        )
        await _alert_timed_out(settings, store, wtype, run_id, timeout)
        return ExecutionResult(
            run_id=run_id,
            workflow_type=wtype,
            status=TIMED_OUT,
            ok=False,
            summary=error,
            error=error,
            artifacts=tuple(ctx.artifacts),
            duration_seconds=duration,
        )
    if outcome is None:
        record_execution(
            store,
            run_id,
            status="failed",
            error=error,
            finished_at=finished,
            duration_seconds=duration,
        )
        return ExecutionResult(
            run_id=run_id,
            workflow_type=wtype,
            status="failed",
            ok=False,
            summary=error or "failed",
            error=error,
            artifacts=tuple(ctx.artifacts),
            duration_seconds=duration,
        )
    if outcome.markdown:
        ctx.publish_markdown(f"{wtype.value}-report", outcome.markdown)
    for index, table in enumerate(outcome.tables):
        ctx.publish_table(f"{wtype.value}-table-{index + 1}", table)
    result_data = {"ok": outcome.ok, "summary": outcome.summary, "data": outcome.data}
    record_execution(
        store,
        run_id,
        status="completed",
        result=_jsonable(result_data),
        error=None,
        finished_at=finished,
        duration_seconds=duration,
    )
    _emit_events(settings, store, wtype, run_id, params.model_dump(mode="json"), outcome.data)
    return ExecutionResult(
        run_id=run_id,
        workflow_type=wtype,
        status="completed",
        ok=outcome.ok,
        summary=outcome.summary,
        data=outcome.data,
        artifacts=tuple(ctx.artifacts),
        duration_seconds=duration,
    )


def _emit_events(
    settings: Settings,
    store: Store,
    wtype: AutonomousWorkflowType,
    run_id: str,
    parameters: dict[str, Any],
    data: dict[str, Any],
) -> None:
    """The outcome's internal events into the inbox; a failure here never fails the run
    (the outcome is recorded; the follow-up work is what is lost, and logged)."""
    try:
        from contexten.events.internal import emit_for_outcome

        emitted = emit_for_outcome(settings, store, wtype.value, run_id, parameters, data)
    except Exception as exc:
        logger.error("%s run %s: cannot emit its events: %s", wtype.value, run_id, _describe(exc))
        return
    if emitted:
        logger.info("%s run %s emitted %s", wtype.value, run_id, ", ".join(emitted))


async def _alert_timed_out(
    settings: Settings, store: Store, wtype: AutonomousWorkflowType, run_id: str, timeout: int
) -> None:
    """A timed-out run raises an alert (channels as routed); alerting never fails the run."""
    try:
        from contexten.monitoring.run_alerts import alert_run_timed_out

        # within the grace Prefect's own flow timeout leaves (a down Slack must not hang it)
        async with asyncio.timeout(ALERT_BUDGET_SECONDS):
            await alert_run_timed_out(settings, store, wtype.value, run_id, timeout)
    except Exception as exc:
        logger.warning("alert for timed-out run %s failed: %s", run_id, _describe(exc))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))
