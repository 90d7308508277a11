"""Run one workflow body, record it in the store, retry transient errors with back-off.

The same code runs inside a Prefect flow and in-process (the fallback when no Prefect
server is reachable), so both modes record, retry and report alike. No Prefect import here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from contexten.config import Settings
from contexten.orchestration.workflows import (
    REGISTRY,
    AutonomousWorkflowType,
    WorkflowParameters,
    validate_parameters,
)
from contexten.store import executions as runs
from contexten.store.db import Store
from contexten.store.executions import FINAL_STATUSES as FINAL_STATUSES
from contexten.store.executions import LEASED_MODES, Claim, Execution
from contexten.workflows.base import (
    ReportArtifact,
    WorkflowContext,
    WorkflowError,
    WorkflowOutcome,
)

logger = logging.getLogger("contexten.orchestration")

TIMED_OUT = "timed_out"

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
    artifacts: tuple[ReportArtifact, ...] = ()
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
    """Only what may succeed later is retried: a transient integration fault (rate limited
    or unavailable) and OS-level hiccups. Our own verdicts, rejected credentials, missing
    objects, conflicts and invalid requests fail at once: a retry would do the same again.
    """
    if isinstance(exc, WorkflowError):
        return False
    from contexten.integrations.interface import IntegrationError

    if isinstance(exc, IntegrationError):
        return exc.transient
    return isinstance(exc, OSError | TimeoutError | asyncio.TimeoutError)


def record_execution(store: Store, run_id: str, **fields: Any) -> None:
    """Insert or update the WorkflowExecution row for run_id (safe against a racing insert)."""
    runs.record(store, run_id, **fields)


def load_execution(store: Store, run_id: str) -> Execution | None:
    return runs.load(store, run_id)


def find_by_idempotency_key(store: Store, key: str) -> Execution | None:
    return runs.find_by_key(store, key)


def claim_run(
    store: Store,
    key: str,
    run_id: str,
    workflow_type: AutonomousWorkflowType,
    mode: str,
    *,
    parameters: dict[str, Any],
    owner: str | None = None,
    lease_seconds: float,
) -> Claim:
    """Reserve `key` under a lease held by `owner` (default: this process).

    `owned`: the caller must run it (`run_id` is new, or with `taken_over` the stale run
    of a process that died, re-run from the start under its old id).
    """
    return runs.claim(
        store,
        key,
        run_id,
        workflow_type.value,
        mode,
        parameters=parameters,
        owner=owner or runs.process_owner(),
        lease_seconds=lease_seconds,
    )


class LeaseLost(Exception):
    """Another process took the run over (this one's heartbeat could not renew in time)."""


@asynccontextmanager
async def hold_lease(
    store: Store, run_id: str, *, owner: str, lease_seconds: float
) -> AsyncIterator[None]:
    """Renew `owner`'s lease on the run every quarter lease while the block runs.

    If the lease was lost (the run was taken over after this process stalled), the block
    is cancelled and LeaseLost raised: the new owner runs it; this one must stop.
    """
    task = asyncio.current_task()
    lost = False

    async def beat() -> None:
        nonlocal lost
        interval = max(lease_seconds / 4, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                gone = await asyncio.to_thread(
                    runs.renew, store, [run_id], owner=owner, lease_seconds=lease_seconds
                )
            except Exception as exc:  # a store hiccup: try again at the next beat
                logger.warning("cannot renew the lease of run %s: %s", run_id, _describe(exc))
                continue
            if gone:
                lost = True
                logger.error("run %s was taken over by another process; stopping it", run_id)
                if task is not None:
                    task.cancel()
                return

    beater = asyncio.create_task(beat(), name=f"lease-{run_id}")
    try:
        yield
    except asyncio.CancelledError:
        if lost and task is not None:
            task.uncancel()
            raise LeaseLost(f"run {run_id} was taken over by another process") from None
        raise
    finally:
        beater.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beater


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
    owner: str | None = None,
) -> ExecutionResult:
    """Validate, run with retries, record. Raises WorkflowParameterError on bad parameters.

    In the leased modes (in-process, prefect-local) the run is held under `owner`'s lease
    (default: this process), renewed while it runs; should another process take it over,
    this one stops (LeaseLost) and records nothing more.
    """
    params = validate_parameters(workflow_type, parameters)
    wtype = AutonomousWorkflowType(workflow_type)
    run_id = run_id or str(uuid.uuid4())
    if mode not in LEASED_MODES:
        return await _execute(params, wtype, settings, store, run_id, mode, sleep, None)
    holder = owner or runs.process_owner()
    lease = float(settings.execution_lease_seconds)
    async with hold_lease(store, run_id, owner=holder, lease_seconds=lease):
        return await _execute(params, wtype, settings, store, run_id, mode, sleep, holder)


async def _execute(
    params: WorkflowParameters,
    wtype: AutonomousWorkflowType,
    settings: Settings,
    store: Store,
    run_id: str,
    mode: str,
    sleep: Sleep,
    owner: str | None,
) -> ExecutionResult:
    spec = REGISTRY[wtype]
    started = datetime.now(UTC)
    clock = time.monotonic()
    lease: dict[str, Any] = {}
    if owner is not None:
        expires = started + timedelta(seconds=settings.execution_lease_seconds)
        lease = {"lease_owner": owner, "lease_expires_at": expires}
    elif mode == "prefect":
        # No lease (Prefect's heartbeats govern the run), but the process is named: should
        # the run crash, its replacement takes over the action claims this process left.
        lease = {"lease_owner": runs.process_owner(), "lease_expires_at": None}
    if not runs.record(
        store,
        run_id,
        owner=owner,
        workflow_type=wtype.value,
        mode=mode,
        status="running",
        parameters=params.model_dump(mode="json"),
        started_at=started,
        error=None,
        **lease,
    ):
        raise LeaseLost(f"run {run_id} is held by another process")
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
        runs.record(
            store,
            run_id,
            owner=owner,
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
        runs.record(
            store,
            run_id,
            owner=owner,
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
    runs.record(
        store,
        run_id,
        owner=owner,
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
        from contexten.orchestration.outcome_events import emit_for_outcome

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
