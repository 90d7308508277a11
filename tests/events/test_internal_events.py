"""Internal events: a run's outcome as inbox deliveries, routed by the same rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contexten.cli import main
from contexten.config import Settings, reload_settings
from contexten.events.dispatcher import Dispatcher
from contexten.events.inbox import Inbox
from contexten.events.routing import DEFAULT_RULES, load_rules, route
from contexten.monitoring.internal_events import (
    DIAGNOSIS_AUTO_FIX,
    DIAGNOSIS_CREATED,
    HEALTH_UNHEALTHY,
    InternalEvent,
    alert_event,
    diagnosis_events,
    emit,
    health_events,
    regression_events,
)
from contexten.orchestration.execution import record_execution
from contexten.orchestration.outcome_events import emit_for_outcome
from contexten.store.db import Store

RUN = {
    "repository": "o/app",
    "run_id": 77,
    "run_attempt": 1,
    "workflow_name": "Tests",
    "head_sha": "a" * 40,
    "head_branch": "feature",
    "pull_requests": [3],
}
JOBS = [
    {"job": "test", "job_id": 9, "signature": "sig-1", "category": "test", "transient": False},
    {"job": "net", "job_id": 10, "signature": "sig-2", "category": "network", "transient": True},
]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    async def __call__(self, workflow_type: str, parameters: dict[str, Any], key: str) -> str:
        self.calls.append((workflow_type, parameters, key))
        return f"run-{len(self.calls)}"


def test_an_escalated_diagnosis_emits_created_and_with_auto_fix_the_fix() -> None:
    data = {"run": RUN, "decision": "escalated", "jobs": JOBS}
    [created] = diagnosis_events("r1", {}, data, auto_fix=False)
    assert created.name == DIAGNOSIS_CREATED and created.key == "o/app:77:1"
    assert created.payload["repository"] == {"full_name": "o/app"}
    assert [d["signature"] for d in created.payload["diagnoses"]] == ["sig-1", "sig-2"]
    names = [
        e.name for e in diagnosis_events("r1", {"auto_fix_enabled": True}, data, auto_fix=False)
    ]
    assert names == [DIAGNOSIS_CREATED, DIAGNOSIS_AUTO_FIX]
    # a re-run that recovered, or a run that passed, asks no person for anything
    assert (
        diagnosis_events("r1", {}, {**data, "decision": "re-ran the failed jobs"}, auto_fix=True)
        == []
    )
    assert (
        diagnosis_events("r1", {}, {"run": RUN, "decision": "recovered", "jobs": []}, auto_fix=True)
        == []
    )


def test_delivery_ids_are_stable_short_and_distinct() -> None:
    a = InternalEvent(DIAGNOSIS_CREATED, "o/app:77:1" * 30)
    b = InternalEvent(DIAGNOSIS_AUTO_FIX, "o/app:77:1" * 30)
    assert a.delivery_id == InternalEvent(DIAGNOSIS_CREATED, "o/app:77:1" * 30).delivery_id
    assert a.delivery_id != b.delivery_id
    assert len(a.delivery_id) <= 100 and a.delivery_id.startswith("internal:diagnosis.created:")


def test_health_events_are_bounded_and_skip_open_circuits() -> None:
    data = {
        "status": "unhealthy",
        "score": 40,
        "components": [
            {"name": "github", "status": "unhealthy", "detail": "down"},
            {"name": "slack", "status": "unhealthy", "detail": "down"},
            {"name": "disk", "status": "degraded", "detail": "91% used"},
            {"name": "workers", "status": "unhealthy", "detail": "stuck"},
            {"name": "linear", "status": "unhealthy", "detail": "disabled since 10:00"},
            {"name": "store", "status": "healthy", "detail": ""},
        ],
    }
    names = [e.payload["component"]["name"] for e in health_events("h1", data, budget=5)]
    assert names == ["github", "slack", "disk"]
    assert len(health_events("h1", data, budget=2)) == 2
    assert health_events("h1", data, budget=0) == []
    skipped = health_events("h1", data, budget=5, open_circuits=frozenset({"github"}))
    assert [e.payload["component"]["name"] for e in skipped] == ["slack", "disk"]


def test_regression_event_names_the_regressed_workflows() -> None:
    data = {
        "repository": "o/app",
        "head_branch": "feature",
        "baseline_branch": "main",
        "workflows": [
            {"workflow": "CI", "regressed": True},
            {"workflow": "Docs", "regressed": False},
        ],
    }
    [event] = regression_events("p1", {"head_sha": "b" * 40}, data)
    assert event.payload["workflows"] == ["CI"] and event.key == f"o/app:feature:{'b' * 40}"
    assert regression_events("p1", {}, {**data, "workflows": data["workflows"][1:]}) == []


def test_internal_events_route_by_the_default_rules() -> None:
    settings = Settings()
    data = {"run": RUN, "decision": "escalated", "jobs": JOBS}
    created, fix = diagnosis_events("r1", {"auto_fix_enabled": True}, data, auto_fix=False)
    routes = route(created.name, dict(created.payload), DEFAULT_RULES, settings)
    assert [(r.workflow_type, r.parameters) for r in routes] == [
        ("linear_sync", {"repository": "o/app"}),
        ("github_automation", {"repository": "o/app", "workflow_run_id": 77}),
    ]
    [codegen] = route(fix.name, dict(fix.payload), DEFAULT_RULES, settings)
    assert codegen.workflow_type == "codegen_task_execution"
    assert codegen.parameters == {"repository": "o/app", "workflow_run_id": 77}
    health = {"components": [{"name": "github", "status": "unhealthy", "detail": "x"}]}
    [unhealthy] = health_events("h1", health, budget=1)
    [recovery] = route(HEALTH_UNHEALTHY, dict(unhealthy.payload), DEFAULT_RULES, settings)
    assert recovery.workflow_type == "system_recovery"
    assert (
        recovery.parameters == {"component": "github"}
        and recovery.key == "system_recovery:github:h1"
    )
    alert = alert_event("alert.firing", {"id": 4, "key": "health:github", "first_seen": "t"})
    [manage] = route(alert.name, dict(alert.payload), DEFAULT_RULES, settings)
    assert manage.workflow_type == "alert_management" and manage.key == "alert_management:4:t"


async def test_emitted_once_dispatched_once(store: Store, settings: Settings) -> None:
    data = {"run": RUN, "decision": "escalated", "jobs": JOBS}
    events = diagnosis_events("r1", {}, data, auto_fix=False)
    assert emit(store, events) == [True]
    assert emit(store, events) == [False]  # the same outcome recorded again: one delivery
    recorder = Recorder()
    [outcome] = await Dispatcher(Inbox(store), recorder, settings, rules=DEFAULT_RULES).run_once()
    assert outcome.status == "dispatched"
    assert outcome.workflow_types == ("linear_sync", "github_automation")
    assert [k for _t, _p, k in recorder.calls] == [
        "linear_sync:o/app:77:1",
        "github_automation:o/app:77:1",
    ]
    assert await Dispatcher(Inbox(store), recorder, settings, rules=DEFAULT_RULES).run_once() == []


def test_health_budget_counts_running_recoveries(store: Store, tmp_path: Path) -> None:
    settings = Settings(contexten_home=tmp_path / "home", max_concurrent_recoveries=2)
    data = {
        "status": "unhealthy",
        "components": [
            {"name": n, "status": "unhealthy", "detail": "down"}
            for n in ("github", "slack", "codegen")
        ],
    }
    record_execution(
        store,
        "rec-1",
        workflow_type="system_recovery",
        mode="in-process",
        status="running",
        parameters={},
    )
    emitted = emit_for_outcome(settings, store, "health_check", "h1", {}, data)
    assert emitted == [HEALTH_UNHEALTHY]  # 2 allowed, 1 running: one more
    assert (
        emit_for_outcome(settings, store, "health_check", "h2", {"auto_recovery": True}, data) == []
    )
    off = settings.model_copy(update={"recovery_enabled": False})
    assert emit_for_outcome(off, store, "health_check", "h3", {}, data) == []


def test_rules_file_can_switch_an_internal_route_off(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "name": "diagnosis-linear-sync",
                        "event": "diagnosis.created",
                        "workflow": "linear_sync",
                        "enabled": False,
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    loaded = load_rules({"ROUTING_RULES_FILE": str(rules)})
    [created] = diagnosis_events(
        "r1", {}, {"run": RUN, "decision": "escalated", "jobs": JOBS}, auto_fix=False
    )
    assert [
        r.workflow_type for r in route(created.name, dict(created.payload), loaded, Settings())
    ] == ["github_automation"]


def test_webhook_routes_lists_the_internal_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTEXTEN_HOME", str(tmp_path / "home"))
    reload_settings()
    try:
        assert main(["webhook", "routes", "--json"]) == 0
    finally:
        monkeypatch.undo()
        reload_settings()
    shown = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert shown["diagnosis-github-automation"]["event"] == ["diagnosis.created"]
    assert shown["unhealthy-component-recovery"]["workflow"] == "system_recovery"
    assert shown["push-security-audit"]["workflow"] == "security_audit"
