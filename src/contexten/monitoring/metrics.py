"""Metrics history, trends and the Prometheus exposition.

Sources: WorkflowExecution (every run we started), RecoveryRecord (every recovery, with
the time the failure was seen and the time it ended) and MetricSample (health score and
component latencies over time). Reads look at the newest PERFORMANCE_HISTORY_SIZE rows;
MetricSample is pruned to that many rows per metric name when written.

Rates: `success_rate` and `auto_recovery_rate` are fractions in [0, 1];
`error_rate_percent` is a percentage. A workflow run that completed counts as a success
even if what it checked was failing (an unhealthy health check ran fine); runs that failed
or crashed are errors; cancelled and unfinished runs are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from contexten.config import Settings
from contexten.store.db import Store
from contexten.store.metrics import ERROR_STATUSES as ERROR_STATUSES
from contexten.store.metrics import SUCCESS_STATUSES as SUCCESS_STATUSES
from contexten.store.metrics import (
    FinishedRun,
    execution_counts,
    finished_runs,
    firing_alert_counts,
    recent_recoveries,
    recovery_counts,
)
from contexten.store.metrics import Sample as Sample
from contexten.store.metrics import as_utc as as_utc
from contexten.store.metrics import history as history
from contexten.store.metrics import record_sample as record_sample
from contexten.store.state import StateKind, list_state

HEALTH_SCORE = "health_score"
COMPONENT_LATENCY = "component_latency_ms"
# RecoveryRecord.outcome values
OUTCOME_STARTED = "started"
OUTCOME_SUCCEEDED = "succeeded"
OUTCOME_FAILED = "failed"
OUTCOME_ESCALATED = "escalated"
OUTCOME_SKIPPED = "skipped"
HUMAN_STRATEGY = "human_escalation"


# ----------------------------------------------------------------------------- samples


def latest_health_score(store: Store) -> float | None:
    found = history(store, HEALTH_SCORE, limit=1)
    return found[0].value if found else None


# ----------------------------------------------------------------------------- trend

TrendDirection = Literal["rising", "falling", "flat", "insufficient_data"]


@dataclass(frozen=True, slots=True)
class ErrorRateTrend:
    """Is the error rate of the newer half of the window different from the older half?"""

    direction: TrendDirection
    older_rate: float | None
    newer_rate: float | None
    samples: int
    p_value: float | None

    @property
    def rising(self) -> bool:
        return self.direction == "rising"


def error_rate_trend(
    outcomes: Sequence[bool],
    *,
    min_samples_per_half: int = 10,
    alpha: float = 0.05,
    min_change: float = 0.05,
) -> ErrorRateTrend:
    """Trend of failures (True = the run failed), oldest first. Pure.

    A one-sided two-proportion z-test between the older and the newer half; rising/falling
    needs p < alpha and a change of at least `min_change` (5 percentage points) so a
    large window does not call a 0.2 % wobble a trend.
    """
    n = len(outcomes)
    half = n // 2
    if half < min_samples_per_half:
        return ErrorRateTrend("insufficient_data", None, None, n, None)
    older, newer = outcomes[: n - half], outcomes[n - half :]
    p1, p2 = sum(older) / len(older), sum(newer) / len(newer)
    pooled = (sum(older) + sum(newer)) / n
    variance = pooled * (1 - pooled) * (1 / len(older) + 1 / len(newer))
    if variance == 0:
        return ErrorRateTrend("flat", p1, p2, n, 1.0)
    z = (p2 - p1) / math.sqrt(variance)
    p_value = 0.5 * math.erfc(abs(z) / math.sqrt(2))  # one-sided
    direction: TrendDirection = "flat"
    if p_value < alpha and abs(p2 - p1) >= min_change:
        direction = "rising" if p2 > p1 else "falling"
    return ErrorRateTrend(direction, p1, p2, n, p_value)


# ----------------------------------------------------------------------------- aggregates


@dataclass(frozen=True, slots=True)
class WorkflowTypeStats:
    workflow_type: str
    total: int
    successful: int
    failed: int
    average_duration_seconds: float | None

    @property
    def error_rate_percent(self) -> float:
        return 100.0 * self.failed / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class OrchestrationMetrics:
    """What `PrefectOrchestrator.get_metrics()` returns; see the module doc for the rates."""

    total_workflows: int
    successful_workflows: int
    failed_workflows: int
    success_rate: float
    error_rate_percent: float
    average_duration_seconds: float | None
    autonomous_fixes: int
    recoveries_attempted: int
    recoveries_succeeded: int
    recoveries_escalated: int
    auto_recovery_rate: float | None
    mttr_seconds: float | None
    health_score: float | None
    error_rate_trend: ErrorRateTrend
    by_workflow_type: tuple[WorkflowTypeStats, ...] = ()
    window: int = 0
    computed_at: datetime = field(default_factory=lambda: _now())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["computed_at"] = self.computed_at.isoformat()
        return data


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def compute_metrics(store: Store, settings: Settings) -> OrchestrationMetrics:
    """Aggregate the newest PERFORMANCE_HISTORY_SIZE runs and recoveries."""
    size = max(1, settings.performance_history_size)
    runs = finished_runs(store, size)
    failed = sum(r.failed for r in runs)
    total = len(runs)
    by_type: dict[str, list[FinishedRun]] = {}
    for run in runs:
        by_type.setdefault(run.workflow_type, []).append(run)
    type_stats = tuple(
        WorkflowTypeStats(
            workflow_type=name,
            total=len(items),
            successful=sum(not r.failed for r in items),
            failed=sum(r.failed for r in items),
            average_duration_seconds=_mean(
                r.duration_seconds for r in items if r.duration_seconds is not None
            ),
        )
        for name, items in sorted(by_type.items())
    )
    recoveries = [r for r in recent_recoveries(store, size) if r.outcome != OUTCOME_STARTED]
    attempted = [r for r in recoveries if r.outcome != OUTCOME_SKIPPED]
    succeeded = [r for r in attempted if r.outcome == OUTCOME_SUCCEEDED]
    escalated = sum(r.outcome == OUTCOME_ESCALATED for r in attempted)
    autonomous = [r for r in succeeded if r.strategy != HUMAN_STRATEGY]
    repair_times = [
        (r.finished_at - (r.failure_seen_at or r.started_at)).total_seconds()
        for r in succeeded
        if r.finished_at is not None
    ]
    return OrchestrationMetrics(
        total_workflows=total,
        successful_workflows=total - failed,
        failed_workflows=failed,
        success_rate=(total - failed) / total if total else 0.0,
        error_rate_percent=100.0 * failed / total if total else 0.0,
        average_duration_seconds=_mean(
            r.duration_seconds for r in runs if r.duration_seconds is not None
        ),
        autonomous_fixes=len(autonomous),
        recoveries_attempted=len(attempted),
        recoveries_succeeded=len(succeeded),
        recoveries_escalated=escalated,
        auto_recovery_rate=len(autonomous) / len(attempted) if attempted else None,
        mttr_seconds=_mean(max(0.0, t) for t in repair_times),
        health_score=latest_health_score(store),
        error_rate_trend=error_rate_trend([r.failed for r in runs]),
        by_workflow_type=type_stats,
        window=size,
    )


# ----------------------------------------------------------------------------- Prometheus


def _collector(store: Store, settings: Settings) -> Any:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector

    class ContextenCollector(Collector):
        """Reads the store on every scrape; nothing is cached in the process."""

        def collect(self) -> Iterator[Any]:
            metrics = compute_metrics(store, settings)
            yield from _workflow_families(store, metrics, CounterMetricFamily, GaugeMetricFamily)
            yield from _recovery_families(store, metrics, CounterMetricFamily, GaugeMetricFamily)
            yield from _state_families(store, metrics, GaugeMetricFamily)

    return ContextenCollector()


def _workflow_families(
    store: Store, m: OrchestrationMetrics, counter: Callable[..., Any], gauge: Callable[..., Any]
) -> Iterator[Any]:
    runs = counter(
        "contexten_workflow_runs",
        "Workflow runs recorded in the store, by type and status.",
        labels=["workflow_type", "status"],
    )
    for wtype, status, count in execution_counts(store):
        runs.add_metric([wtype, status], float(count))
    yield runs
    yield gauge(
        "contexten_workflow_success_rate",
        "Share of finished runs that completed, over the history window.",
        value=m.success_rate,
    )
    yield gauge(
        "contexten_workflow_error_rate_percent",
        "Percentage of finished runs that failed or crashed, over the history window.",
        value=m.error_rate_percent,
    )
    yield gauge(
        "contexten_workflow_error_rate_rising",
        "1 when the error rate of the newer half of the window is significantly higher.",
        value=1.0 if m.error_rate_trend.rising else 0.0,
    )
    duration = gauge(
        "contexten_workflow_duration_seconds_average",
        "Average run duration over the history window, by workflow type.",
        labels=["workflow_type"],
    )
    errors = gauge(
        "contexten_workflow_type_error_rate_percent",
        "Error rate over the history window, by workflow type.",
        labels=["workflow_type"],
    )
    for stats in m.by_workflow_type:
        if stats.average_duration_seconds is not None:
            duration.add_metric([stats.workflow_type], stats.average_duration_seconds)
        errors.add_metric([stats.workflow_type], stats.error_rate_percent)
    yield duration
    yield errors


def _recovery_families(
    store: Store, m: OrchestrationMetrics, counter: Callable[..., Any], gauge: Callable[..., Any]
) -> Iterator[Any]:
    recoveries = counter(
        "contexten_recoveries",
        "Recoveries recorded in the store, by failure type, final strategy and outcome.",
        labels=["failure_type", "strategy", "outcome"],
    )
    for ftype, strategy, outcome, count in recovery_counts(store):
        recoveries.add_metric([ftype, strategy, outcome], float(count))
    yield recoveries
    if m.auto_recovery_rate is not None:
        yield gauge(
            "contexten_auto_recovery_rate",
            "Share of recoveries fixed without a human, over the history window.",
            value=m.auto_recovery_rate,
        )
    if m.mttr_seconds is not None:
        yield gauge(
            "contexten_mttr_seconds",
            "Mean time from a failure seen to its recovery, over the history window.",
            value=m.mttr_seconds,
        )


def _state_families(
    store: Store, m: OrchestrationMetrics, gauge: Callable[..., Any]
) -> Iterator[Any]:
    if m.health_score is not None:
        yield gauge("contexten_health_score", "Latest health score (0-100).", value=m.health_score)
    alerts = gauge(
        "contexten_alerts_firing", "Alerts currently firing, by severity.", labels=["severity"]
    )
    breakers = gauge(
        "contexten_circuit_open",
        "1 when an integration's circuit breaker is open or half-open.",
        labels=["integration"],
    )
    counts = firing_alert_counts(store)
    states = [(name, value.get("state")) for name, value in list_state(store, StateKind.CIRCUIT)]
    for severity in ("info", "warning", "critical"):
        alerts.add_metric([severity], float(counts.get(severity, 0)))
    yield alerts
    for integration, state in states:
        breakers.add_metric([integration], 0.0 if state in (None, "closed") else 1.0)
    yield breakers


def _registry(store: Store, settings: Settings) -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_collector(store, settings))
    return registry


def render_prometheus(store: Store, settings: Settings) -> bytes:
    """The Prometheus text exposition of contexten's metrics (read from the store now)."""
    from prometheus_client import generate_latest

    return bytes(generate_latest(_registry(store, settings)))


PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_asgi_app(store: Store, settings: Settings) -> Any:
    """An ASGI app serving the exposition, to mount at /metrics on the receiver."""
    from prometheus_client import make_asgi_app

    return make_asgi_app(registry=_registry(store, settings))


def _now() -> datetime:
    return datetime.now(UTC)
