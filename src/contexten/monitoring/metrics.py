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

from sqlalchemy import delete, func, select

from contexten.config import Settings
from contexten.store.db import Store
from contexten.store.models import (
    AlertRecord,
    MetricSample,
    RecoveryRecord,
    StateEntry,
    WorkflowExecution,
)

SUCCESS_STATUSES = frozenset({"completed"})
ERROR_STATUSES = frozenset({"failed", "crashed", "timed_out"})
HEALTH_SCORE = "health_score"
COMPONENT_LATENCY = "component_latency_ms"
# RecoveryRecord.outcome values
OUTCOME_STARTED = "started"
OUTCOME_SUCCEEDED = "succeeded"
OUTCOME_FAILED = "failed"
OUTCOME_ESCALATED = "escalated"
OUTCOME_SKIPPED = "skipped"
HUMAN_STRATEGY = "human_escalation"


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ----------------------------------------------------------------------------- samples


def record_sample(
    store: Store,
    name: str,
    value: float,
    labels: dict[str, Any] | None = None,
    *,
    history_size: int,
    at: datetime | None = None,
) -> None:
    """Append one sample and drop the oldest beyond `history_size` for that name."""
    if not math.isfinite(value):
        raise ValueError(f"metric {name} must be a finite number, got {value!r}")
    with store.session() as session:
        session.add(
            MetricSample(
                name=name, value=float(value), labels=labels or {}, recorded_at=at or _now()
            )
        )
        session.flush()
        cutoff = session.scalars(
            select(MetricSample.id)
            .where(MetricSample.name == name)
            .order_by(MetricSample.id.desc())
            .offset(max(1, history_size))
            .limit(1)
        ).first()
        if cutoff is not None:
            session.execute(
                delete(MetricSample).where(MetricSample.name == name, MetricSample.id <= cutoff)
            )


@dataclass(frozen=True, slots=True)
class Sample:
    value: float
    recorded_at: datetime
    labels: dict[str, Any] = field(default_factory=dict)


def history(store: Store, name: str, *, limit: int) -> list[Sample]:
    """The newest `limit` samples of a metric, oldest first."""
    with store.session() as session:
        rows = session.scalars(
            select(MetricSample)
            .where(MetricSample.name == name)
            .order_by(MetricSample.id.desc())
            .limit(limit)
        ).all()
        samples = [Sample(r.value, as_utc(r.recorded_at), dict(r.labels or {})) for r in rows]
    samples.reverse()
    return samples


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


@dataclass(frozen=True, slots=True)
class _Run:
    workflow_type: str
    failed: bool
    duration_seconds: float | None


def _finished_runs(store: Store, limit: int) -> list[_Run]:
    """The newest `limit` finished runs, oldest first."""
    statuses = SUCCESS_STATUSES | ERROR_STATUSES
    with store.session() as session:
        rows = session.execute(
            select(
                WorkflowExecution.workflow_type,
                WorkflowExecution.status,
                WorkflowExecution.duration_seconds,
            )
            .where(WorkflowExecution.status.in_(statuses))
            .order_by(WorkflowExecution.id.desc())
            .limit(limit)
        ).all()
    runs = [_Run(r[0], r[1] in ERROR_STATUSES, r[2]) for r in rows]
    runs.reverse()
    return runs


@dataclass(frozen=True, slots=True)
class _Recovery:
    outcome: str
    strategy: str
    failure_seen_at: datetime | None
    started_at: datetime
    finished_at: datetime | None


def _recoveries(store: Store, limit: int) -> list[_Recovery]:
    with store.session() as session:
        rows = session.scalars(
            select(RecoveryRecord).order_by(RecoveryRecord.id.desc()).limit(limit)
        ).all()
        return [
            _Recovery(
                r.outcome,
                r.strategy,
                as_utc(r.failure_seen_at) if r.failure_seen_at else None,
                as_utc(r.started_at),
                as_utc(r.finished_at) if r.finished_at else None,
            )
            for r in rows
        ]


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def compute_metrics(store: Store, settings: Settings) -> OrchestrationMetrics:
    """Aggregate the newest PERFORMANCE_HISTORY_SIZE runs and recoveries."""
    size = max(1, settings.performance_history_size)
    runs = _finished_runs(store, size)
    failed = sum(r.failed for r in runs)
    total = len(runs)
    by_type: dict[str, list[_Run]] = {}
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
    recoveries = [r for r in _recoveries(store, size) if r.outcome != OUTCOME_STARTED]
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
    with store.session() as session:
        for wtype, status, count in session.execute(
            select(WorkflowExecution.workflow_type, WorkflowExecution.status, func.count())
            .group_by(WorkflowExecution.workflow_type, WorkflowExecution.status)
            .order_by(WorkflowExecution.workflow_type, WorkflowExecution.status)
        ):
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
    with store.session() as session:
        for ftype, strategy, outcome, count in session.execute(
            select(
                RecoveryRecord.failure_type,
                RecoveryRecord.strategy,
                RecoveryRecord.outcome,
                func.count(),
            )
            .group_by(RecoveryRecord.failure_type, RecoveryRecord.strategy, RecoveryRecord.outcome)
            .order_by(RecoveryRecord.failure_type, RecoveryRecord.strategy, RecoveryRecord.outcome)
        ):
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
    with store.session() as session:
        counts = dict(
            session.execute(
                select(AlertRecord.severity, func.count())
                .where(AlertRecord.status == "firing")
                .group_by(AlertRecord.severity)
            ).all()
        )
        entries = session.scalars(
            select(StateEntry).where(StateEntry.key.like("circuit:%")).order_by(StateEntry.key)
        ).all()
        states = [(e.key.removeprefix("circuit:"), (e.value or {}).get("state")) for e in entries]
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
