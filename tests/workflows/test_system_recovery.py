"""The system_recovery workflow body: targets, dry run, validation, outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from contexten.config import Settings
from contexten.integrations.circuits import disabled_entry
from contexten.monitoring import health
from contexten.monitoring.health import Resources
from contexten.orchestration.workflows import SystemRecoveryParameters
from contexten.store.db import Store
from contexten.store.models import RecoveryRecord
from contexten.workflows.base import WorkflowContext, WorkflowError
from contexten.workflows.system_recovery import run


class Machine:
    def __init__(self) -> None:
        self.disk = 30.0

    def __call__(self, data_dir: Path, *, cpu_interval: float = 0.2) -> Resources:
        return Resources(5.0, 5.0, self.disk, 10**11, str(data_dir), 1, 10**8)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Machine:
    fake = Machine()
    monkeypatch.setattr(health, "measure_resources", fake)
    return fake


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[WorkflowContext]:
    settings = Settings(contexten_home=tmp_path / "home", prefect_api_url=None, webhook_port=9)
    store = Store(settings.effective_database_url)
    store.migrate()
    yield WorkflowContext(settings=settings, store=store, run_id="run-1")
    store.dispose()


def recoveries(store: Store) -> list[RecoveryRecord]:
    with store.session() as s:
        return list(s.scalars(select(RecoveryRecord)).all())


async def test_nothing_to_recover(ctx: WorkflowContext, machine: Machine) -> None:
    outcome = await run(SystemRecoveryParameters(), ctx)
    assert outcome.ok and outcome.summary == "nothing to recover"
    assert recoveries(ctx.store) == []


async def test_dry_run_shows_plans_and_changes_nothing(
    ctx: WorkflowContext, machine: Machine
) -> None:
    machine.disk = 99.0
    outcome = await run(SystemRecoveryParameters(dry_run=True), ctx)
    assert outcome.ok
    [plan] = outcome.data["recoveries"]
    assert plan["key"] == "disk" and plan["dry_run"]
    assert plan["plan"] == ["resource_cleanup", "system_restart"]
    assert recoveries(ctx.store) == []
    assert outcome.summary == "dry run: 1 recovery plan(s)"


async def test_full_disk_that_cleanup_cannot_fix_is_not_ok(
    ctx: WorkflowContext, machine: Machine
) -> None:
    machine.disk = 99.0
    outcome = await run(SystemRecoveryParameters(), ctx)
    assert not outcome.ok
    [row] = recoveries(ctx.store)
    assert (row.key, row.outcome) == ("disk", "failed")
    assert any(a.kind == "table" and a.key == "system-recovery" for a in ctx.artifacts)


async def test_named_component_with_rejected_credentials(ctx: WorkflowContext) -> None:
    ctx.settings = ctx.settings.model_copy(update={"github_token": SecretStr("ghp_" + "z" * 36)})
    params = SystemRecoveryParameters(component="github", failure_type="auth")
    outcome = await run(params, ctx)
    assert not outcome.ok  # no Linear/Slack here: nobody could be told
    [report] = outcome.data["recoveries"]
    assert [a["strategy"] for a in report["attempts"]] == [
        "configuration_reset",
        "human_escalation",
    ]
    assert disabled_entry(ctx.store, "github") is not None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"component": "toaster"}, "unknown component 'toaster'"),
        ({"component": "github", "failure_type": "gremlins"}, "unknown failure_type 'gremlins'"),
        ({"failure_type": "auth"}, "failure_type needs a component"),
    ],
)
async def test_bad_input(ctx: WorkflowContext, params: dict[str, str], message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        await run(SystemRecoveryParameters(**params), ctx)
