"""The alert_management workflow body: repeats, escalation, stale alerts, ok flag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contexten.config import Settings
from contexten.orchestration.workflows import AlertManagementParameters
from contexten.store.db import Store
from contexten.store.models import AlertRecord
from contexten.workflows.alert_management import run
from contexten.workflows.base import WorkflowContext, WorkflowError


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[WorkflowContext]:
    settings = Settings(contexten_home=tmp_path / "home")
    store = Store(settings.effective_database_url)
    store.migrate()
    yield WorkflowContext(settings=settings, store=store, run_id="run-1")
    store.dispose()


def seed(store: Store, key: str, severity: str, *, age: timedelta, notified: timedelta) -> None:
    now = datetime.now(UTC)
    with store.session() as s:
        s.add(
            AlertRecord(
                key=key,
                severity=severity,
                message=f"{key} is broken",
                first_seen=now - age,
                last_seen=now - timedelta(minutes=1),
                last_notified_at=now - notified,
            )
        )


async def test_repeats_due_alerts_and_reports_critical(ctx: WorkflowContext) -> None:
    seed(
        ctx.store, "health:prefect", "critical", age=timedelta(hours=3), notified=timedelta(hours=2)
    )
    seed(
        ctx.store, "health:cpu", "warning", age=timedelta(minutes=5), notified=timedelta(minutes=5)
    )
    outcome = await run(AlertManagementParameters(), ctx)
    assert not outcome.ok  # a critical alert is firing
    assert outcome.data["decisions"] == [
        {"key": "health:prefect", "action": "notified", "channels": ["log"]}
    ]
    assert outcome.summary == "2 firing (1 critical); 1 notified"
    table = json.loads(next(a for a in ctx.artifacts if a.kind == "table").content)
    assert {row[0] for row in table["rows"]} == {"health:prefect", "health:cpu"}


async def test_stale_alerts_resolve_and_ok_when_nothing_critical(ctx: WorkflowContext) -> None:
    now = datetime.now(UTC)
    with ctx.store.session() as s:
        s.add(
            AlertRecord(
                key="health:disk",
                severity="critical",
                message="full",
                first_seen=now - timedelta(hours=5),
                last_seen=now - timedelta(hours=2),
            )
        )
    outcome = await run(AlertManagementParameters(resolve_stale_minutes=60), ctx)
    assert outcome.ok
    assert outcome.data["decisions"][0]["action"] == "resolved"
    assert outcome.data["firing"] == []


async def test_bad_routing_file_is_a_clear_error(ctx: WorkflowContext) -> None:
    path = ctx.settings.data_dir / "alert_routes.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"rules": "nope"}')
    with pytest.raises(WorkflowError, match="'rules' must be a list"):
        await run(AlertManagementParameters(), ctx)
