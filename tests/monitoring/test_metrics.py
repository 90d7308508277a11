"""Metrics history over the store, the error-rate trend and the Prometheus exposition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from contexten.config import Settings
from contexten.monitoring.metrics import (
    compute_metrics,
    error_rate_trend,
    history,
    latest_health_score,
    record_sample,
    render_prometheus,
)
from contexten.store.db import Store
from contexten.store.models import AlertRecord, RecoveryRecord, WorkflowExecution
from contexten.store.state import StateKind, write_state

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def add_runs(store: Store, statuses: list[str], workflow_type: str = "health_check") -> None:
    with store.session() as s:
        start = s.query(WorkflowExecution).count()
        for i, status in enumerate(statuses):
            s.add(
                WorkflowExecution(
                    run_id=f"run-{start + i}",
                    workflow_type=workflow_type,
                    mode="in-process",
                    status=status,
                    duration_seconds=float(i % 4 + 1),
                )
            )


def test_record_sample_is_bounded_per_name(store: Store) -> None:
    for i in range(30):
        record_sample(store, "health_score", float(i), history_size=10)
    record_sample(store, "other", 1.0, history_size=10)
    samples = history(store, "health_score", limit=100)
    assert [s.value for s in samples] == [float(i) for i in range(20, 30)]
    assert latest_health_score(store) == 29.0
    assert len(history(store, "other", limit=100)) == 1
    with pytest.raises(ValueError, match="finite"):
        record_sample(store, "x", float("nan"), history_size=10)


def test_compute_metrics_rates_and_window(store: Store, settings: Settings) -> None:
    # 60 old runs all failing fall out of the window of 50
    add_runs(store, ["failed"] * 60)
    add_runs(store, ["completed"] * 45 + ["failed"] * 5, workflow_type="failure_analysis")
    add_runs(store, ["running", "cancelled", "scheduled"])  # not finished: ignored
    m = compute_metrics(store, settings)
    assert m.total_workflows == 50
    assert m.failed_workflows == 5
    assert m.success_rate == pytest.approx(0.9)
    assert m.error_rate_percent == pytest.approx(10.0)
    assert [t.workflow_type for t in m.by_workflow_type] == ["failure_analysis"]
    assert m.average_duration_seconds is not None
    assert m.recoveries_attempted == 0 and m.auto_recovery_rate is None and m.mttr_seconds is None


def test_recovery_metrics_and_mttr(store: Store, settings: Settings) -> None:
    with store.session() as s:
        s.add_all(
            [
                RecoveryRecord(
                    key="github",
                    failure_type="network",
                    strategy="retry_with_backoff",
                    outcome="succeeded",
                    failure_seen_at=T0,
                    started_at=T0 + timedelta(seconds=10),
                    finished_at=T0 + timedelta(seconds=60),
                ),
                RecoveryRecord(
                    key="store",
                    failure_type="resource_exhaustion",
                    strategy="resource_cleanup",
                    outcome="succeeded",
                    failure_seen_at=T0,
                    started_at=T0,
                    finished_at=T0 + timedelta(seconds=120),
                ),
                RecoveryRecord(
                    key="linear",
                    failure_type="auth",
                    strategy="human_escalation",
                    outcome="escalated",
                    started_at=T0,
                    finished_at=T0 + timedelta(seconds=5),
                ),
                RecoveryRecord(
                    key="slack",
                    failure_type="network",
                    strategy="retry_with_backoff",
                    outcome="failed",
                    started_at=T0,
                    finished_at=T0,
                ),
                RecoveryRecord(
                    key="x",
                    failure_type="network",
                    strategy="retry_with_backoff",
                    outcome="started",
                    started_at=T0,
                ),
            ]
        )
    m = compute_metrics(store, settings)
    assert m.recoveries_attempted == 4
    assert m.recoveries_succeeded == 2
    assert m.recoveries_escalated == 1
    assert m.autonomous_fixes == 2
    assert m.auto_recovery_rate == pytest.approx(0.5)
    assert m.mttr_seconds == pytest.approx(90.0)


def test_error_rate_trend() -> None:
    assert error_rate_trend([True] * 5).direction == "insufficient_data"
    steady = [i % 10 == 0 for i in range(200)]
    assert error_rate_trend(steady).direction == "flat"
    rising = [False] * 100 + [i % 3 == 0 for i in range(100)]
    trend = error_rate_trend(rising)
    assert trend.direction == "rising" and trend.rising
    assert trend.older_rate == 0.0 and trend.newer_rate == pytest.approx(0.34)
    assert trend.p_value is not None and trend.p_value < 0.001
    assert error_rate_trend(list(reversed(rising))).direction == "falling"
    # a tiny but significant change over a huge window is not a trend
    big = [i % 100 == 0 for i in range(20000)] + [i % 90 == 0 for i in range(20000)]
    assert error_rate_trend(big).direction == "flat"


def test_metrics_trend_seen_by_compute_metrics(store: Store, settings: Settings) -> None:
    add_runs(store, ["completed"] * 25 + ["failed"] * 15 + ["completed"] * 10)
    assert compute_metrics(store, settings).error_rate_trend.rising


def test_prometheus_exposition(store: Store, settings: Settings) -> None:
    add_runs(store, ["completed", "completed", "failed"])
    record_sample(store, "health_score", 87.5, history_size=10)
    write_state(store, StateKind.CIRCUIT, "github", {"state": "open"})
    with store.session() as s:
        s.add(AlertRecord(key="cpu", severity="warning", message="cpu high"))
        s.add(
            RecoveryRecord(
                key="github",
                failure_type="network",
                strategy="retry_with_backoff",
                outcome="succeeded",
                failure_seen_at=T0,
                started_at=T0,
                finished_at=T0 + timedelta(seconds=30),
            )
        )
    text = render_prometheus(store, settings).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    runs = {
        (s.labels["workflow_type"], s.labels["status"]): s.value
        for s in families["contexten_workflow_runs"].samples
        if s.name.endswith("_total")
    }
    assert runs == {("health_check", "completed"): 2.0, ("health_check", "failed"): 1.0}
    assert families["contexten_health_score"].samples[0].value == 87.5
    assert families["contexten_workflow_error_rate_percent"].samples[0].value == pytest.approx(
        100 / 3
    )
    assert families["contexten_mttr_seconds"].samples[0].value == 30.0
    firing = {s.labels["severity"]: s.value for s in families["contexten_alerts_firing"].samples}
    assert firing == {"info": 0.0, "warning": 1.0, "critical": 0.0}
    circuit = families["contexten_circuit_open"].samples[0]
    assert circuit.labels == {"integration": "github"} and circuit.value == 1.0


async def test_metrics_asgi_app_serves_the_exposition(store: Store, settings: Settings) -> None:
    import httpx

    from contexten.monitoring.metrics import metrics_asgi_app

    add_runs(store, ["completed"])
    app = metrics_asgi_app(store, settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        response = await client.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert (
            'contexten_workflow_runs_total{status="completed",workflow_type="health_check"} 1.0'
            in response.text
        )
        # each scrape reads the store again
        add_runs(store, ["failed"])
        response = await client.get("/")
        assert 'status="failed"' in response.text
