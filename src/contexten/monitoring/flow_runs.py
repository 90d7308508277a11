"""Flow runs on the Prefect server: late scheduled runs, runs stuck in Running, cancel, restart.

`FlowRunControl` is the small interface the health check and the recovery manager use;
`PrefectFlowRunControl` implements it with Prefect's client, imported only when called
(never on the CLI's import path). The decisions (`find_stuck`, `find_late`) are pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from contexten.catalog import REGISTRY

# A run past its timeout by this much is stuck: Prefect enforces timeouts itself, so a run
# still Running after timeout + grace has lost its engine (crashed runner, killed process).
STUCK_GRACE_SECONDS = 60.0
LATE_GRACE_SECONDS = 300.0


class FlowRunControlError(Exception):
    """The Prefect API could not list, cancel or restart a flow run."""


@dataclass(frozen=True, slots=True)
class FlowRunInfo:
    id: str
    name: str
    flow_name: str | None
    state_type: str  # SCHEDULED, PENDING, RUNNING, ...
    state_name: str  # e.g. Late, Scheduled, Running
    deployment_id: str | None = None
    start_time: datetime | None = None
    expected_start_time: datetime | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


class FlowRunControl(Protocol):
    async def list_runs(self, state_types: Sequence[str], *, limit: int = 200) -> list[FlowRunInfo]:
        """Runs whose state type is one of `state_types` (e.g. "RUNNING")."""
        ...

    async def cancel(self, run_id: str) -> None: ...

    async def restart(self, run: FlowRunInfo) -> str | None:
        """Start the same deployment with the same parameters; the new run id, or None
        when the run has no deployment (an ad-hoc run cannot be restarted from the API)."""
        ...


def timeout_for_flow(flow_name: str | None, default_seconds: float) -> float:
    """The workflow type's timeout for a flow name like "health-check"."""
    for spec in REGISTRY.values():
        if flow_name in (spec.flow_name, spec.type.value):
            return float(spec.effective_timeout(int(default_seconds)))
    return float(default_seconds)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def find_stuck(
    runs: Iterable[FlowRunInfo],
    now: datetime,
    *,
    default_timeout_seconds: float,
    grace_seconds: float = STUCK_GRACE_SECONDS,
) -> list[FlowRunInfo]:
    """Running runs older than their workflow type's timeout plus a grace period."""
    stuck = []
    for run in runs:
        started = _utc(run.start_time)
        if run.state_type != "RUNNING" or started is None:
            continue
        limit = timeout_for_flow(run.flow_name, default_timeout_seconds) + grace_seconds
        if now - started > timedelta(seconds=limit):
            stuck.append(run)
    return stuck


def find_late(
    runs: Iterable[FlowRunInfo], now: datetime, *, grace_seconds: float = LATE_GRACE_SECONDS
) -> list[FlowRunInfo]:
    """Scheduled or pending runs that should have started more than `grace_seconds` ago."""
    late = []
    for run in runs:
        if run.state_type not in ("SCHEDULED", "PENDING"):
            continue
        expected = _utc(run.expected_start_time)
        if run.state_name == "Late" or (
            expected is not None and now - expected > timedelta(seconds=grace_seconds)
        ):
            late.append(run)
    return late


class PrefectFlowRunControl:
    """FlowRunControl over a Prefect server's REST API (Prefect's own client)."""

    def __init__(self, api_url: str, api_key: str | None = None) -> None:
        self.api_url = api_url
        self._api_key = api_key
        self._flow_names: dict[str, str] = {}

    def _client(self) -> Any:
        from prefect.client.orchestration import PrefectClient

        return PrefectClient(api=self.api_url, api_key=self._api_key)

    async def list_runs(self, state_types: Sequence[str], *, limit: int = 200) -> list[FlowRunInfo]:
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        state_filter = FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType(s) for s in state_types])
        )
        try:
            async with self._client() as client:
                runs = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(state=state_filter), limit=limit
                )
                for run in runs:
                    key = str(run.flow_id)
                    if key not in self._flow_names:
                        self._flow_names[key] = (await client.read_flow(run.flow_id)).name
        except Exception as exc:
            raise FlowRunControlError(f"cannot list flow runs at {self.api_url}: {exc}") from exc
        return [self._info(run) for run in runs]

    def _info(self, run: Any) -> FlowRunInfo:
        state = run.state
        return FlowRunInfo(
            id=str(run.id),
            name=run.name,
            flow_name=self._flow_names.get(str(run.flow_id)),
            state_type=state.type.value if state is not None else "",
            state_name=state.name if state is not None else "",
            deployment_id=str(run.deployment_id) if run.deployment_id else None,
            start_time=run.start_time,
            expected_start_time=run.expected_start_time,
            parameters=dict(run.parameters or {}),
            tags=tuple(run.tags or ()),
        )

    async def cancel(self, run_id: str) -> None:
        from prefect.states import Cancelling

        try:
            async with self._client() as client:
                await client.set_flow_run_state(
                    run_id,
                    Cancelling(message="stuck past its timeout; cancelled by contexten"),
                    force=True,
                )
        except Exception as exc:
            raise FlowRunControlError(f"cannot cancel flow run {run_id}: {exc}") from exc

    async def restart(self, run: FlowRunInfo) -> str | None:
        from uuid import UUID

        if run.deployment_id is None:
            return None
        try:
            async with self._client() as client:
                new = await client.create_flow_run_from_deployment(
                    UUID(run.deployment_id),
                    parameters=dict(run.parameters),
                    tags=[*run.tags, "restarted-by-contexten"],
                    idempotency_key=f"contexten-restart:{run.id}",
                )
        except Exception as exc:
            raise FlowRunControlError(f"cannot restart flow run {run.id}: {exc}") from exc
        return str(new.id)
