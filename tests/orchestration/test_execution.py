from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.config import Settings
from contexten.integrations.interface import (
    CIProviderError,
    CodingAgentError,
    ErrorReason,
    IntegrationError,
    IssueTrackerError,
    NotifierError,
)
from contexten.orchestration.execution import (
    claim_run,
    execute_workflow,
    load_execution,
)
from contexten.orchestration.workflows import AutonomousWorkflowType, WorkflowParameterError
from contexten.store.db import Store
from contexten.workflows.base import Table, WorkflowError, WorkflowOutcome


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(contexten_home=tmp_path, workflow_retry_delay=7)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.effective_database_url)
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture
def fake_body(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Replace the linear_sync body with a scripted one."""
    state = types.SimpleNamespace(calls=0, script=[])
    module = types.ModuleType("contexten.workflows.linear_sync")

    async def run(params: object, ctx: object) -> WorkflowOutcome:
        state.calls += 1
        step = state.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "contexten.workflows.linear_sync", module)
    return state


async def test_success_is_recorded_with_reports(
    settings: Settings, store: Store, fake_body: types.SimpleNamespace
) -> None:
    table = Table(columns=("a", "b"), rows=((1, "x|y"),), title="t")
    fake_body.script = [WorkflowOutcome(ok=True, summary="done", markdown="# hi", tables=(table,))]
    result = await execute_workflow("linear_sync", {}, settings=settings, store=store)
    assert result.status == "completed" and result.ok and result.summary == "done"
    kinds = sorted(a.kind for a in result.artifacts)
    assert kinds == ["markdown", "table"]
    assert all(a.key == a.key.lower() and "_" not in a.key for a in result.artifacts)
    row = load_execution(store, result.run_id)
    assert row is not None and row.status == "completed" and row.result["summary"] == "done"
    report = settings.data_dir / "reports" / result.run_id / "linear-sync-report.md"
    assert report.read_text() == "# hi"
    assert "x\\|y" in (report.parent / "linear-sync-table-1.md").read_text()


async def test_transient_errors_retry_with_doubling_delay(
    settings: Settings, store: Store, fake_body: types.SimpleNamespace
) -> None:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    fake_body.script = [
        ConnectionError("reset"),
        TimeoutError(),
        WorkflowOutcome(ok=True, summary="ok"),
    ]
    result = await execute_workflow(
        "linear_sync", {}, settings=settings, store=store, sleep=fake_sleep
    )
    assert result.status == "completed"
    assert fake_body.calls == 3
    assert sleeps == [7, 14]


async def test_retries_are_bounded(
    settings: Settings, store: Store, fake_body: types.SimpleNamespace
) -> None:
    async def no_sleep(_: float) -> None:
        return None

    fake_body.script = [OSError("disk")] * 10
    result = await execute_workflow(
        "linear_sync", {}, settings=settings, store=store, sleep=no_sleep
    )
    assert result.status == "failed" and not result.ok
    assert fake_body.calls == 3  # 1 + spec.retries (2)
    assert result.error == "OSError: disk"


async def test_workflow_errors_are_not_retried(
    settings: Settings, store: Store, fake_body: types.SimpleNamespace
) -> None:
    fake_body.script = [WorkflowError("LINEAR_API_KEY is not set")]
    result = await execute_workflow("linear_sync", {}, settings=settings, store=store)
    assert fake_body.calls == 1
    assert result.status == "failed"
    row = load_execution(store, result.run_id)
    assert row is not None and row.error == "WorkflowError: LINEAR_API_KEY is not set"


# Every ErrorReason and whether a workflow run is retried after it. A new reason fails
# test_every_error_reason_has_a_retry_verdict until it is added here.
RETRY_VERDICTS: dict[ErrorReason, bool] = {
    ErrorReason.RATE_LIMITED: True,
    ErrorReason.UNAVAILABLE: True,
    ErrorReason.AUTH: False,
    ErrorReason.NOT_FOUND: False,
    ErrorReason.CONFLICT: False,
    ErrorReason.INVALID: False,
    ErrorReason.ERROR: False,
}


def test_every_error_reason_has_a_retry_verdict() -> None:
    assert set(RETRY_VERDICTS) == set(ErrorReason)


@pytest.mark.parametrize(
    "error_type", [CIProviderError, IssueTrackerError, NotifierError, CodingAgentError]
)
@pytest.mark.parametrize("reason", list(ErrorReason))
async def test_integration_errors_retry_only_when_transient(
    settings: Settings,
    store: Store,
    fake_body: types.SimpleNamespace,
    reason: ErrorReason,
    error_type: type[IntegrationError],
) -> None:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    fake_body.script = [
        error_type(f"{reason.value} from the service", reason=reason, service="github"),
        WorkflowOutcome(ok=True, summary="second try"),
    ]
    result = await execute_workflow(
        "linear_sync", {}, settings=settings, store=store, sleep=fake_sleep
    )
    if RETRY_VERDICTS[reason]:
        assert fake_body.calls == 2 and sleeps == [7]
        assert result.status == "completed" and result.summary == "second try"
    else:
        assert fake_body.calls == 1 and sleeps == []
        assert result.status == "failed"
        assert result.error == f"{error_type.__name__}: {reason.value} from the service"


async def test_not_implemented_fails_clearly(settings: Settings, store: Store) -> None:
    from contexten.workflows import base

    async def raises(params: object, ctx: object) -> WorkflowOutcome:
        raise base.not_implemented("x")

    result_error = None
    try:
        await raises(None, None)
    except base.WorkflowNotImplemented as exc:
        result_error = str(exc)
    assert result_error == "workflow x is not implemented yet"


async def test_bad_parameters_raise_before_anything_runs(
    settings: Settings, store: Store, fake_body: types.SimpleNamespace
) -> None:
    with pytest.raises(WorkflowParameterError):
        await execute_workflow("linear_sync", {"bogus": 1}, settings=settings, store=store)
    assert fake_body.calls == 0


def test_idempotency_key_claimed_once(store: Store) -> None:
    first = claim_run(
        store,
        "k1",
        "run-a",
        AutonomousWorkflowType.LINEAR_SYNC,
        "in-process",
        parameters={},
        lease_seconds=60,
    )
    second = claim_run(
        store,
        "k1",
        "run-b",
        AutonomousWorkflowType.LINEAR_SYNC,
        "in-process",
        parameters={},
        lease_seconds=60,
    )
    assert first.owned and first.run_id == "run-a"
    assert not second.owned and second.run_id == "run-a"  # alive: not run again
