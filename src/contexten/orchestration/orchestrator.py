"""PrefectOrchestrator: the programmatic API (initialize, trigger, status, metrics, shutdown).

Runs go through a Prefect server when one is reachable (PREFECT_API_URL, or the one
`contexten server` recorded): `run_deployment` with an idempotency key. When none is
reachable, the workflow runs in-process and the result says so (mode "in-process").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from contexten.config import ConfigError, Settings, get_settings
from contexten.errors import ContextenError
from contexten.orchestration.execution import (
    FINAL_STATUSES,
    ExecutionResult,
    LeaseLost,
    claim_run,
    execute_workflow,
    find_by_idempotency_key,
    hold_lease,
    load_execution,
    record_execution,
)
from contexten.orchestration.workflows import (
    REGISTRY,
    AutonomousWorkflowType,
    parse_workflow_type,
    validate_parameters,
)
from contexten.store import executions as runs
from contexten.store.db import Store, open_store
from contexten.store.executions import Claim, Execution

logger = logging.getLogger("contexten.orchestration")


# Prefect states of a run that will never act on its delivery: a trigger of its key starts
# a new run instead (at most MAX_DEAD_RUN_RESTARTS times per key).
DEAD_STATES = frozenset({"CRASHED", "CANCELLED", "CANCELLING"})
MAX_DEAD_RUN_RESTARTS = 5
RESTART_SUFFIX = "#restart-"
# A crashed deployment run whose key was started again carries this tag (the sweep skips it).
RESTARTED_TAG = "contexten:restarted"
CRASHED_LOOKBACK = timedelta(days=2)  # how far back the sweep looks for crashed runs


class OrchestratorError(ContextenError):
    """The orchestrator could not do what was asked; the message says why."""


@dataclass(frozen=True, slots=True)
class WorkflowStatus:
    run_id: str
    workflow_type: str
    mode: str
    status: str
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def ok(self) -> bool:
        return self.status == "completed" and bool((self.result or {}).get("ok", True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow_type": self.workflow_type,
            "mode": self.mode,
            "status": self.status,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_seconds": self.duration_seconds,
            "result": self.result,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class InitializeReport:
    problems: tuple[str, ...]
    prefect_api_url: str | None
    deployments: tuple[str, ...] = ()
    secret_blocks: tuple[str, ...] = ()
    concurrency_limit: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "problems": list(self.problems),
            "prefect_api_url": self.prefect_api_url,
            "deployments": list(self.deployments),
            "secret_blocks": list(self.secret_blocks),
            "concurrency_limit": self.concurrency_limit,
            "notes": list(self.notes),
        }


def _settings_with_overrides(base: Settings, overrides: dict[str, Any]) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if not values:
        return base
    for name in ("codegen_token", "github_token", "slack_webhook_url"):
        if name in values and not isinstance(values[name], SecretStr):
            values[name] = SecretStr(str(values[name]))
    return base.model_copy(update=values)


def use_prefect_api(api_url: str, settings: Settings) -> None:
    """Point this process's Prefect client at `api_url` (must run before Prefect is used)."""
    os.environ["PREFECT_API_URL"] = api_url
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    if settings.prefect_api_key is not None:
        os.environ["PREFECT_API_KEY"] = settings.prefect_api_key.get_secret_value()


class PrefectOrchestrator:
    """Run the 13 workflow types through Prefect, or in-process when no server is reachable."""

    def __init__(
        self,
        codegen_org_id: str | None = None,
        codegen_token: str | None = None,
        github_token: str | None = None,
        slack_webhook_url: str | None = None,
        prefect_api_url: str | None = None,
        *,
        settings: Settings | None = None,
        store: Store | None = None,
        allow_in_process: bool = True,
    ) -> None:
        self.settings = _settings_with_overrides(
            settings or get_settings(),
            {
                "codegen_org_id": codegen_org_id,
                "codegen_token": codegen_token,
                "github_token": github_token,
                "slack_webhook_url": slack_webhook_url,
                "prefect_api_url": prefect_api_url,
            },
        )
        self._store = store
        self.allow_in_process = allow_in_process
        self._api_url: str | None = None
        self._api_checked = False
        limit = self.settings.max_concurrent_workflows
        if limit < 1:  # a semaphore of 0 would make every run wait forever
            raise ConfigError(f"MAX_CONCURRENT_WORKFLOWS={limit} must be at least 1")
        self._in_process_slots = asyncio.Semaphore(limit)
        self._background: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:  # never show credentials
        return f"PrefectOrchestrator(prefect_api_url={self._api_url!r})"

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings.effective_database_url)
        return self._store

    def prefect_api_url(self, *, refresh: bool = False) -> str | None:
        """The reachable Prefect API, or None (then runs happen in-process)."""
        if refresh or not self._api_checked:
            from contexten.orchestration.prefect_server import api_healthy, discover_api_url

            url = discover_api_url(self.settings)
            key = self.settings.prefect_api_key
            if url is not None and not api_healthy(
                url, api_key=key.get_secret_value() if key is not None else None
            ):
                url = None
            self._api_url = url
            self._api_checked = True
            if url is not None:
                use_prefect_api(url, self.settings)
        return self._api_url

    @property
    def mode(self) -> str:
        return "prefect" if self.prefect_api_url() else "in-process"

    async def warm_up(self) -> None:
        """Pay once, before the first delivery, what the first run would otherwise wait
        for: finding the Prefect server, importing the flows and the workflow bodies and,
        when flows run in this process, opening its Prefect clients."""
        import importlib

        api_url = await asyncio.to_thread(self.prefect_api_url)
        for wtype in AutonomousWorkflowType:
            await asyncio.to_thread(importlib.import_module, f"contexten.workflows.{wtype.value}")
        if api_url is not None and self.settings.dispatch_mode == "local":
            await asyncio.to_thread(importlib.import_module, "contexten.orchestration.flows")
            async with _shared_prefect_clients():
                pass

    async def initialize(self, *, work_pool: str | None = None) -> InitializeReport:
        """Validate config, migrate the store, and on a server: secrets, limit, deployments."""
        problems = tuple(self.settings.validate())
        self.store.migrate()
        api_url = self.prefect_api_url(refresh=True)
        if api_url is None:
            return InitializeReport(
                problems=problems,
                prefect_api_url=None,
                notes=(
                    "no Prefect server reachable: workflows will run in-process; "
                    "start one with `contexten server` or set PREFECT_API_URL",
                ),
            )
        notes: list[str] = []
        from contexten.orchestration.deploy import (
            deployment_full_name,
            ensure_concurrency_limit,
            ensure_zombie_automation,
            register_deployments,
            save_secret_blocks,
        )

        await ensure_concurrency_limit(self.settings.max_concurrent_workflows)
        if await ensure_zombie_automation():
            notes.append("created the automation that crashes flow runs whose heartbeats stop")
        blocks = await save_secret_blocks(self.settings)
        pool = work_pool or self.settings.prefect_work_pool
        deployments: tuple[str, ...] = ()
        if pool:
            infos = await register_deployments(self.settings, pool)
            deployments = tuple(info.name for info in infos)
        else:
            deployments = tuple(deployment_full_name(s) for s in REGISTRY.values())
            notes.append("deployments are served by `contexten server` (no --work-pool given)")
        return InitializeReport(
            problems=problems,
            prefect_api_url=api_url,
            deployments=deployments,
            secret_blocks=tuple(blocks),
            concurrency_limit=self.settings.max_concurrent_workflows,
            notes=tuple(notes),
        )

    async def trigger_workflow(
        self,
        workflow_type: AutonomousWorkflowType | str,
        parameters: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        wait: bool = False,
    ) -> str:
        """Start a workflow run and return its id. Bad parameters raise before anything runs.

        With a Prefect server the run is queued for the runner/workers (`wait` blocks until
        it ends); in-process the run executes before this returns.
        """
        wtype = parse_workflow_type(workflow_type)
        params = validate_parameters(wtype, parameters)
        payload = params.model_dump(mode="json", exclude_defaults=True)
        if self.prefect_api_url() is not None and self.settings.dispatch_mode == "local":
            return await self._run_local_flow(wtype, payload, idempotency_key)
        if self.prefect_api_url() is not None:
            run_id = await self._trigger_deployment(wtype, payload, idempotency_key)
            if wait:
                await self.wait_for_run(run_id)
            return run_id
        if not self.allow_in_process:
            raise OrchestratorError("no Prefect server reachable and in-process runs are disabled")
        return await self._run_in_process(wtype, payload, idempotency_key)

    async def execute(
        self,
        workflow_type: AutonomousWorkflowType | str,
        parameters: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> WorkflowStatus:
        """Trigger and wait; return the final status."""
        run_id = await self.trigger_workflow(
            workflow_type, parameters, idempotency_key=idempotency_key, wait=True
        )
        return await self.get_workflow_status(run_id)

    async def _trigger_deployment(
        self, wtype: AutonomousWorkflowType, payload: dict[str, Any], key: str | None
    ) -> str:
        from prefect.deployments import run_deployment
        from prefect.exceptions import ObjectNotFound

        from contexten.orchestration.deploy import deployment_full_name

        spec = REGISTRY[wtype]
        # The key's run may be dead: Crashed (its worker host died; see the zombie
        # automation), Cancelled or stuck Cancelling. The delivery must still be acted on:
        # a new run starts under the same key with a deterministic suffix, so concurrent
        # triggers of that key agree on the same new run.
        for restart in range(MAX_DEAD_RUN_RESTARTS + 1):
            prefect_key = key if key is None or restart == 0 else f"{key}{RESTART_SUFFIX}{restart}"
            try:
                flow_run = await run_deployment(  # type: ignore[misc]
                    name=deployment_full_name(spec),
                    parameters={"parameters": payload},
                    timeout=0,
                    idempotency_key=prefect_key,
                    tags=["contexten", *spec.tags],
                    as_subflow=False,
                )
            except ObjectNotFound:
                raise OrchestratorError(
                    f"deployment {deployment_full_name(spec)} is not registered on the Prefect "
                    "server: is `contexten server` (its runner) or a worker running?"
                ) from None
            state = flow_run.state
            if key is None or state is None or state.type.value not in DEAD_STATES:
                break
            logger.warning(
                "flow run %s for key %s is %s: starting a new one",
                flow_run.id,
                key,
                state.type.value,
            )
        run_id = str(flow_run.id)
        if load_execution(self.store, run_id) is None:
            record_execution(
                self.store,
                run_id,
                workflow_type=wtype.value,
                mode="prefect",
                status="scheduled",
                parameters=payload,
            )
        return run_id

    def _claim(
        self,
        wtype: AutonomousWorkflowType,
        payload: dict[str, Any],
        key: str | None,
        mode: str,
    ) -> Claim:
        """A new run held by this process; or, for a key already used, the run that has it
        (taken over when its process died: the caller then re-runs it from the start)."""
        run_id = str(uuid.uuid4())
        lease = float(self.settings.execution_lease_seconds)
        if key is None:
            record_execution(
                self.store,
                run_id,
                workflow_type=wtype.value,
                mode=mode,
                status="scheduled",
                parameters=payload,
                lease_owner=runs.process_owner(),
                lease_expires_at=datetime.now(UTC) + timedelta(seconds=lease),
            )
            return Claim(run_id, owned=True)
        claim = claim_run(
            self.store, key, run_id, wtype, mode, parameters=payload, lease_seconds=lease
        )
        if claim.taken_over:
            logger.warning(
                "run %s (%s) lost its process: taken over, re-running it from the start",
                claim.run_id,
                wtype.value,
            )
        return claim

    async def _run_local_flow(
        self, wtype: AutonomousWorkflowType, payload: dict[str, Any], key: str | None
    ) -> str:
        """Run the Prefect flow here (tracked by the server), under the same idempotency."""
        claim = self._claim(wtype, payload, key, "prefect-local")
        if not claim.owned:
            return claim.run_id
        return await self._run_claimed_local(wtype, payload, claim.run_id)

    async def _run_claimed_local(
        self, wtype: AutonomousWorkflowType, payload: dict[str, Any], run_id: str
    ) -> str:
        from contexten.orchestration.flows import FLOWS, WorkflowRunFailed

        owner = runs.process_owner()
        lease = float(self.settings.execution_lease_seconds)
        try:
            async with (
                hold_lease(self.store, run_id, owner=owner, lease_seconds=lease),
                _shared_prefect_clients(),
            ):
                await FLOWS[wtype](parameters=payload, run_id=run_id)  # type: ignore[misc]
        except WorkflowRunFailed:
            pass  # recorded as failed by the flow; the status says why
        except LeaseLost as exc:
            logger.warning("%s", exc)  # its new owner runs and records it
        except Exception as exc:
            # The run never got going or broke outside its body (e.g. the Prefect API
            # failed): release it, so a retry of the same key (or the next sweep) runs it
            # instead of reporting a run that never happened.
            logger.warning("run %s did not complete (%s); released", run_id, exc)
            runs.release(self.store, run_id, owner=owner)
            raise
        return run_id

    async def _run_in_process(
        self, wtype: AutonomousWorkflowType, payload: dict[str, Any], key: str | None
    ) -> str:
        claim = self._claim(wtype, payload, key, "in-process")
        if not claim.owned:
            return claim.run_id
        logger.info("no Prefect server reachable: running %s in-process", wtype.value)
        return await self._run_claimed_in_process(wtype, payload, claim.run_id)

    async def _run_claimed_in_process(
        self, wtype: AutonomousWorkflowType, payload: dict[str, Any], run_id: str
    ) -> str:
        owner = runs.process_owner()
        lease = float(self.settings.execution_lease_seconds)
        try:
            # The lease is renewed while the run waits for a slot too.
            async with (
                hold_lease(self.store, run_id, owner=owner, lease_seconds=lease),
                self._in_process_slots,
            ):
                result: ExecutionResult = await execute_workflow(
                    wtype,
                    payload,
                    settings=self.settings,
                    store=self.store,
                    run_id=run_id,
                    owner=owner,
                )
                return result.run_id
        except LeaseLost as exc:
            logger.warning("%s", exc)  # its new owner runs and records it
            return run_id
        except Exception as exc:  # outside the body (the store failed): let it run again
            logger.warning("run %s did not complete (%s); released", run_id, exc)
            runs.release(self.store, run_id, owner=owner)
            raise

    async def recover_stale_runs(self, *, limit: int = 20, wait: bool = True) -> list[Execution]:
        """Take over the runs whose process died (lease expired) and re-run them here.

        Each is re-run from the start under its run id and idempotency key; its external
        actions stay exactly-once through the action ledger. `wait=False` starts the
        re-runs in the background (a dispatcher's sweep) instead of awaiting them.
        """
        lease = float(self.settings.execution_lease_seconds)
        found = await asyncio.to_thread(runs.stale, self.store, lease_seconds=lease, limit=limit)
        owner = runs.process_owner()
        taken: list[Execution] = []
        for stale in found:
            if stale.takeovers >= runs.MAX_TAKEOVERS:
                await asyncio.to_thread(runs.give_up, self.store, stale)
                logger.error("run %s kept losing its process: failed", stale.run_id)
                continue
            won = await asyncio.to_thread(
                runs.take_over, self.store, stale, owner=owner, lease_seconds=lease
            )
            if not won:
                continue  # another process was first, or it finished meanwhile
            logger.warning(
                "run %s (%s) of %s lost its process: taken over, re-running it from the start",
                stale.run_id,
                stale.workflow_type,
                stale.lease_owner or "an unknown process",
            )
            taken.append(stale)
            rerun = self._rerun(stale)
            if wait:
                await rerun
            else:
                task = asyncio.create_task(rerun, name=f"rerun-{stale.run_id}")
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        taken.extend(await self.restart_crashed_runs(limit=limit))
        return taken

    async def restart_crashed_runs(self, *, limit: int = 20) -> list[Execution]:
        """Start again, under their idempotency key, the deployment runs Prefect marked
        Crashed: their worker host or container died (the zombie automation crashes a run
        whose heartbeats stop, or that stays Pending). Each crashed run's row becomes
        `crashed` with its process superseded, so the new run takes over the action claims
        it left; its external actions stay exactly-once through the action ledger.

        Safe to run from several processes at once: the new run is found or created by its
        key (`run_deployment`), and a restarted run is tagged so later sweeps skip it.
        Returns the rows of the runs restarted (as they were before).
        """
        if self.prefect_api_url() is None:
            return []
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterExpectedStartTime,
            FlowRunFilterState,
            FlowRunFilterStateType,
            FlowRunFilterTags,
        )
        from prefect.client.schemas.objects import StateType

        since = datetime.now(UTC) - CRASHED_LOOKBACK
        async with get_client() as client:
            crashed = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
                    tags=FlowRunFilterTags(all_=["contexten"]),
                    expected_start_time=FlowRunFilterExpectedStartTime(after_=since),  # type: ignore[arg-type]
                ),
                limit=limit * 5,
            )
            restarted: list[Execution] = []
            for flow_run in crashed:
                if len(restarted) >= limit:
                    break
                if RESTARTED_TAG in (flow_run.tags or []) or not flow_run.idempotency_key:
                    continue
                row = await asyncio.to_thread(load_execution, self.store, str(flow_run.id))
                if row is None:
                    continue  # no contexten run: not ours to restart
                if row.is_final and row.status != "crashed":
                    # Its body ran to the end (recorded): Prefect crashed it after the fact
                    # (a lost state event). Nothing is missing; never run it twice.
                    await client.update_flow_run(
                        flow_run.id, tags=[*(flow_run.tags or []), RESTARTED_TAG]
                    )
                    continue
                key = flow_run.idempotency_key.split(RESTART_SUFFIX)[0]
                payload = (flow_run.parameters or {}).get("parameters") or row.parameters
                message = flow_run.state.message if flow_run.state is not None else None
                try:
                    wtype = AutonomousWorkflowType(row.workflow_type)
                    new_id = await self._trigger_deployment(wtype, dict(payload), key)
                except Exception as exc:  # the next sweep tries again
                    logger.error("cannot restart crashed run %s: %s", flow_run.id, exc)
                    continue
                # The new run waits for a worker: its action claims see this at once.
                again = (
                    f"started again as {new_id}"
                    if new_id != str(flow_run.id)
                    else f"not started again: its key crashed {MAX_DEAD_RUN_RESTARTS + 1} times"
                )
                await asyncio.to_thread(
                    runs.mark_crashed,
                    self.store,
                    row.run_id,
                    error=f"crashed ({message or 'its process died'}); {again}",
                )
                await client.update_flow_run(
                    flow_run.id, tags=[*(flow_run.tags or []), RESTARTED_TAG]
                )
                log = logger.warning if new_id != str(flow_run.id) else logger.error
                log("run %s (%s): %s", flow_run.id, row.workflow_type, again)
                restarted.append(row)
        return restarted

    async def _rerun(self, stale: Execution) -> None:
        try:
            wtype = AutonomousWorkflowType(stale.workflow_type)
            payload = validate_parameters(wtype, stale.parameters).model_dump(
                mode="json", exclude_defaults=True
            )
        except Exception as exc:
            runs.record(
                self.store,
                stale.run_id,
                owner=runs.process_owner(),
                status="failed",
                error=f"cannot re-run after takeover: {type(exc).__name__}: {exc}",
            )
            return
        try:
            if self.prefect_api_url() is not None:
                await self._run_claimed_local(wtype, payload, stale.run_id)
            else:
                await self._run_claimed_in_process(wtype, payload, stale.run_id)
        except Exception as exc:  # recorded by the run itself; the sweep goes on
            logger.error("re-run of %s failed: %s", stale.run_id, exc)

    async def wait_for_run(
        self, run_id: str, *, timeout: float | None = None, poll: float = 0.5
    ) -> WorkflowStatus:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            status = await self.get_workflow_status(run_id)
            if status.is_final:
                return status
            if deadline is not None and loop.time() > deadline:
                raise OrchestratorError(f"run {run_id} not finished after {timeout:.0f}s")
            await asyncio.sleep(poll)

    async def get_workflow_status(self, run_id: str) -> WorkflowStatus:
        row = load_execution(self.store, run_id)
        if row is not None and (row.mode != "prefect" or row.status in FINAL_STATUSES):
            return _status_from_row(row)
        if self.prefect_api_url() is None:
            if row is None:
                raise OrchestratorError(f"unknown workflow run {run_id}")
            return _status_from_row(row)
        return await self._prefect_status(run_id, row)

    async def _prefect_status(self, run_id: str, row: Any) -> WorkflowStatus:
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        try:
            flow_run_id = uuid.UUID(run_id)
        except ValueError:
            raise OrchestratorError(f"unknown workflow run {run_id}") from None
        async with get_client() as client:
            try:
                flow_run = await client.read_flow_run(flow_run_id)
            except ObjectNotFound:
                raise OrchestratorError(f"unknown workflow run {run_id}") from None
        state = flow_run.state
        state_name = state.type.value.lower() if state is not None else "scheduled"
        status = {"pending": "scheduled", "paused": "scheduled", "cancelling": "running"}.get(
            state_name, state_name
        )
        row = load_execution(self.store, run_id) or row
        if row is not None and row.status in FINAL_STATUSES:
            return _status_from_row(row)
        error = None
        if status in ("failed", "crashed") and state is not None:
            error = state.message
        return WorkflowStatus(
            run_id=run_id,
            workflow_type=row.workflow_type if row is not None else flow_run.name,
            mode="prefect",
            status=status,
            created_at=flow_run.created,
            started_at=flow_run.start_time,
            finished_at=flow_run.end_time,
            duration_seconds=flow_run.total_run_time.total_seconds() if flow_run.end_time else None,
            result=row.result if row is not None else None,
            error=error,
        )

    async def list_recent(self, limit: int = 20) -> list[WorkflowStatus]:
        rows = await asyncio.to_thread(runs.recent, self.store, limit)
        return [_status_from_row(row) for row in rows]

    async def get_metrics(self) -> Any:
        """OrchestrationMetrics from the store (success rate, errors, durations, recoveries)."""
        from contexten.monitoring.metrics import compute_metrics

        return compute_metrics(self.store, self.settings)

    async def shutdown(self) -> None:
        """Release connections. Runs on a server keep going; in-process runs are awaited."""
        if self._store is not None:
            self._store.dispose()
            self._store = None


def _status_from_row(row: Any) -> WorkflowStatus:
    return WorkflowStatus(
        run_id=row.run_id,
        workflow_type=row.workflow_type,
        mode=row.mode,
        status=row.status,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_seconds=row.duration_seconds,
        result=row.result,
        error=row.error,
    )


__all__ = [
    "InitializeReport",
    "OrchestratorError",
    "PrefectOrchestrator",
    "WorkflowStatus",
    "find_by_idempotency_key",
]


# One pair of Prefect clients per event loop (and API URL) for the flows run in-process.
_prefect_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[Any, Any]]
] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def _shared_prefect_clients() -> AsyncIterator[None]:
    """Run a local flow with this loop's long-lived Prefect clients.

    Without a client in context, Prefect's engine opens an async and a sync client for each
    flow run (each a new TLS context loading the CA bundle, a connection pool and an API
    version check): tens of milliseconds of CPU per run, which a warm dispatcher running
    several runs a second pays again and again. Prefect's engine uses the clients it finds
    in AsyncClientContext / SyncClientContext (the async one when it belongs to the running
    loop), so a long-lived pair is put there for the duration of the flow call. The
    variables are set in this task's context only.
    """
    from prefect.context import AsyncClientContext, SyncClientContext
    from prefect.settings import PREFECT_API_URL

    by_url = _prefect_clients.setdefault(asyncio.get_running_loop(), {})
    url = str(PREFECT_API_URL.value() or "")
    pair = by_url.get(url)
    if pair is None:
        async_context, sync_context = AsyncClientContext(), SyncClientContext()
        await async_context.client.__aenter__()
        sync_context.client.__enter__()
        pair = by_url[url] = (async_context, sync_context)
    async_token = AsyncClientContext.__var__.set(pair[0])
    sync_token = SyncClientContext.__var__.set(pair[1])
    try:
        yield
    finally:
        SyncClientContext.__var__.reset(sync_token)
        AsyncClientContext.__var__.reset(async_token)
