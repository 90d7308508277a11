"""The health_check workflow body: table, score history, alerts, recovery, ok flag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from contexten.config import Settings
from contexten.monitoring import health
from contexten.monitoring.alerts import AlertManager
from contexten.monitoring.health import Resources
from contexten.monitoring.metrics import history
from contexten.orchestration.workflows import HealthCheckParameters
from contexten.store.db import Store
from contexten.store.state import StateKind, read_state
from contexten.workflows.base import WorkflowContext
from contexten.workflows.health_check import run


class Machine:
    """Resource readings the test controls."""

    def __init__(self) -> None:
        self.cpu = 10.0
        self.memory = 20.0
        self.disk = 30.0

    def __call__(self, data_dir: Path, *, cpu_interval: float = 0.2) -> Resources:
        return Resources(self.cpu, self.memory, self.disk, 10**11, str(data_dir), 2, 10**8)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Machine:
    fake = Machine()
    monkeypatch.setattr(health, "measure_resources", fake)
    return fake


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(contexten_home=tmp_path / "home", prefect_api_url=None, webhook_port=9)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[WorkflowContext]:
    store = Store(settings.effective_database_url)
    store.migrate()
    yield WorkflowContext(settings=settings, store=store, run_id="run-1")
    store.dispose()


async def test_healthy_run_publishes_table_and_records_score(
    ctx: WorkflowContext, machine: Machine
) -> None:
    outcome = await run(HealthCheckParameters(), ctx)
    assert outcome.ok
    assert outcome.data["status"] == "healthy" and outcome.data["score"] == 100.0
    assert outcome.summary == "health healthy: score 100/100"
    [artifact] = [a for a in ctx.artifacts if a.kind == "table"]
    assert artifact.key == "health-check"
    table = json.loads(artifact.content)
    assert table["columns"] == ["component", "status", "latency", "weight", "detail"]
    assert table["rows"][0][:2] == ["store", "healthy"]
    assert (ctx.reports_dir / "health-check.md").exists()
    scores = history(ctx.store, "health_score", limit=10)
    assert [s.value for s in scores] == [100.0]
    assert read_state(ctx.store, StateKind.SETTINGS, "last-known-good") is not None


async def test_unhealthy_machine_is_not_ok_and_alerts(
    ctx: WorkflowContext, machine: Machine
) -> None:
    machine.cpu, machine.memory, machine.disk = 99.0, 99.0, 99.0
    outcome = await run(HealthCheckParameters(alert_on_degradation=True), ctx)
    assert not outcome.ok
    assert outcome.data["status"] == "unhealthy"
    assert outcome.data["score"] == pytest.approx(100 * 20 / 45, abs=0.05)
    keys = {a["key"] for a in outcome.data["alerts"]}
    assert keys == {"health:cpu", "health:memory", "health:disk"}
    firing = AlertManager(ctx.store, ctx.settings).list_alerts(status="firing")
    assert {a.key: a.severity.value for a in firing}["health:disk"] == "critical"
    # the machine recovers: the alerts resolve
    machine.cpu, machine.memory, machine.disk = 10.0, 10.0, 10.0
    outcome = await run(HealthCheckParameters(alert_on_degradation=True), ctx)
    assert outcome.ok
    assert {a["action"] for a in outcome.data["alerts"]} == {"resolved"}
    assert AlertManager(ctx.store, ctx.settings).list_alerts(status="firing") == []


async def test_no_integrations_lists_them_as_not_checked(
    ctx: WorkflowContext, machine: Machine
) -> None:
    settings = ctx.settings.model_copy(update={"github_token": SecretStr("x" * 10)})
    ctx.settings = settings
    outcome = await run(HealthCheckParameters(check_all_integrations=False), ctx)
    github = next(c for c in outcome.data["components"] if c["name"] == "github")
    assert github["status"] == "disabled" and "not checked" in github["detail"]


async def test_configured_integration_without_a_client_is_unhealthy(
    ctx: WorkflowContext, machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configured service whose client cannot be built is a failure, never "disabled"."""
    from contexten.monitoring import clients

    def broken(name: str, settings: Any, store: Any) -> Any:
        if name == "linear":
            raise clients.ClientUnavailable("no linear_client() yet")
        return None

    monkeypatch.setattr(clients, "build_client", broken)
    ctx.settings = ctx.settings.model_copy(
        update={"linear_api_key": SecretStr("k" * 10), "linear_team_id": "t"}
    )
    outcome = await run(HealthCheckParameters(), ctx)
    linear = next(c for c in outcome.data["components"] if c["name"] == "linear")
    assert linear["status"] == "unhealthy" and "no linear_client() yet" in linear["detail"]


async def test_auto_recovery_cleans_up_a_full_disk(ctx: WorkflowContext, machine: Machine) -> None:
    machine.disk = 99.0
    outcome = await run(HealthCheckParameters(auto_recovery=True, alert_on_degradation=False), ctx)
    [recovery] = outcome.data["recoveries"]
    assert recovery["key"] == "disk"
    assert recovery["plan"] == ["resource_cleanup", "system_restart"]
    # the fake disk stays full, so cleanup could not fix it; restart is off by default
    assert recovery["outcome"] == "failed"
    assert recovery["attempts"][1]["detail"] == "AUTO_RESTART_ENABLED is false"


async def test_overall_alert_when_only_degraded_parts_add_up(
    ctx: WorkflowContext, machine: Machine
) -> None:
    machine.cpu, machine.memory, machine.disk = 90.0, 90.0, 92.0  # all degraded, none down
    ctx.settings = ctx.settings.model_copy(
        update={
            "alert_thresholds": ctx.settings.alert_thresholds.model_copy(
                update={"health_score": 80}
            )
        }
    )
    outcome = await run(HealthCheckParameters(alert_on_degradation=True), ctx)
    assert outcome.data["status"] == "unhealthy"
    severities = {
        a.key: a.severity.value
        for a in AlertManager(ctx.store, ctx.settings).list_alerts(status="firing")
    }
    assert severities == {
        "health:cpu": "warning",
        "health:memory": "warning",
        "health:disk": "warning",
        "health:overall": "critical",
    }
