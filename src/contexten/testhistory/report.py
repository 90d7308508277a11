"""Test history → the report: flaky, broken, slow and slower tests, quarantine plan, shards.

Reads the store (streaming, bounded memory), runs the pure analyses, and renders the
result as JSON, Markdown and tables. Used by `contexten tests ...` and the
test_optimization workflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any, Literal

from contexten.analysis.executions import (
    MAX_DURATION_SAMPLES,
    TestIdentity,
    TestStats,
    infrastructure_uploads,
)
from contexten.analysis.flaky import (
    Finding,
    FlakinessVerdict,
    FlakyPolicy,
    QuarantinePlan,
    classify,
    find_flaky,
    plan_quarantine,
)
from contexten.analysis.history_columns import HistoryAccumulator
from contexten.analysis.markdown import Table
from contexten.analysis.sharding import (
    ShardPlan,
    Statistic,
    build_items,
    estimate,
    file_of_node_id,
    plan_shards,
    pytest_node_id,
)
from contexten.analysis.slow import RankBy, SlowerTest, SlowTest, getting_slower, slowest
from contexten.store.db import Store
from contexten.store.test_history import (
    HistoryFilter,
    identities,
    iter_executions,
    scan_history,
    upload_counts,
)
from contexten.testhistory import quarantine as q


@dataclass(frozen=True, slots=True)
class ReportOptions:
    repository: str | None = None
    branch: str | None = None
    window_days: int = 14
    now: datetime | None = None
    top: int = 20
    rank_by: RankBy = "p50"
    policy: FlakyPolicy = field(default_factory=FlakyPolicy)
    exclude_infrastructure: bool = True
    infra_failed_ratio: float = 0.8
    slower_threshold_percent: float = 20.0
    max_duration_samples: int = MAX_DURATION_SAMPLES

    def moment(self) -> datetime:
        return (self.now or datetime.now(UTC)).astimezone(UTC)

    def history_filter(self) -> HistoryFilter:
        now = self.moment()
        return HistoryFilter(
            repository=self.repository,
            branch=self.branch,
            since=now - timedelta(days=self.window_days),
            until=now + timedelta(seconds=1),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every test's stats over the window."""

    filter: HistoryFilter
    stats: dict[str, TestStats]
    executions: int
    excluded_uploads: int
    buffer_bytes: int = 0  # what the columnar pass held at the end (bounded)


def collect_stats(store: Store, options: ReportOptions) -> Snapshot:
    """Every test's stats over the window: one columnar pass over the history, then the
    full rows of the few tests that failed or flaked (see analysis.history_columns)."""
    f = options.history_filter()
    excluded: frozenset[Any] = frozenset()
    if options.exclude_infrastructure:
        excluded = infrastructure_uploads(
            upload_counts(store, f), max_failed_ratio=options.infra_failed_ratio
        )
    accumulator = HistoryAccumulator(
        max_duration_samples=options.max_duration_samples,
        slower_min_percent=options.slower_threshold_percent,
    )
    for chunk in scan_history(store, f, excluded_uploads=excluded):
        accumulator.add(*chunk)
    candidates = accumulator.candidates()
    details: dict[str, list[Any]] = {}
    for start in range(0, len(candidates), 500):
        for test_id, rows in groupby(
            iter_executions(store, f, test_ids=candidates[start : start + 500]),
            key=lambda e: e.test_id,
        ):
            kept = [e for e in rows if (e.run_id, e.run_attempt, e.job) not in excluded]
            details[test_id] = kept
    stats = {s.test_id: s for s in accumulator.stats(details)}
    executions = sum(s.executions + s.skipped for s in stats.values())
    return Snapshot(f, stats, executions, len(excluded), accumulator.buffer_bytes)


@dataclass(frozen=True, slots=True)
class TestReport:
    __test__ = False

    options: ReportOptions
    snapshot: Snapshot
    flaky: list[Finding]
    broken: list[Finding]
    slowest: list[SlowTest]
    slower: list[SlowerTest]
    quarantine: list[q.Entry]
    plan: QuarantinePlan
    identities: dict[str, TestIdentity]

    def name(self, test_id: str) -> str:
        identity = self.identities.get(test_id)
        return identity.display if identity else test_id


def build_report(store: Store, options: ReportOptions) -> TestReport:
    snapshot = collect_stats(store, options)
    policy = options.policy
    flaky = find_flaky(snapshot.stats.values(), policy)
    broken = [
        f
        for f in (classify(s, policy) for s in snapshot.stats.values() if s.always_fails)
        if f.verdict is FlakinessVerdict.BROKEN
    ]
    broken.sort(key=lambda f: (-f.stats.failed, f.stats.test_id))
    slow = slowest(snapshot.stats.values(), top=options.top, by=options.rank_by)
    slower = getting_slower(
        snapshot.stats.values(), threshold_percent=options.slower_threshold_percent
    )[: options.top]
    entries = [
        e
        for e in q.list_entries(store)
        if options.repository is None or e.repository in (None, options.repository)
    ]
    wanted = {f.stats.test_id for f in flaky[: options.top * 5]}
    wanted |= {f.stats.test_id for f in broken[: options.top]}
    wanted |= {s.stats.test_id for s in slow} | {s.stats.test_id for s in slower}
    wanted |= {e.test_id for e in entries}
    known = identities(store, test_ids=wanted)
    for entry in entries:
        if entry.test_id not in known:
            known[entry.test_id] = TestIdentity(
                entry.test_id,
                entry.evidence.get("file"),
                entry.evidence.get("classname"),
                entry.evidence.get("test_name") or entry.name,
            )
    # Identity drift: compare missing quarantined tests with the window's same-named tests.
    missing = [e.test_id for e in entries if e.test_id not in snapshot.stats]
    drift_ids: dict[str, TestIdentity] = dict(known)
    if missing:
        drift_ids.update(identities(store, test_ids=snapshot.stats))
    plan = plan_quarantine(
        snapshot.stats,
        q.planner_view(entries),
        now=options.moment().timestamp(),
        policy=policy,
        identities=drift_ids if missing else None,
    )
    for d in plan.drift:
        for c in d.candidates:
            known.setdefault(c.test_id, c)
    return TestReport(options, snapshot, flaky, broken, slow, slower, entries, plan, known)


# ----- rendering ----------------------------------------------------------------------------


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 60:
        return f"{value / 60:.1f} min"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.0f} ms"


def _finding_json(report: TestReport, f: Finding) -> dict[str, Any]:
    s = f.stats
    return {
        "test_id": s.test_id,
        "name": report.name(s.test_id),
        "verdict": f.verdict.value,
        "reason": f.reason,
        "flaky_events": s.flaky_event_count,
        "commits": s.groups,
        "flake_rate": round(s.flake_rate, 4),
        "failure_rate": round(s.failure_rate, 4),
        "executions": s.executions,
        "failed": s.failed,
        "passed_on_retry": s.retried_passes,
        "last_failure_at": _iso(s.last_failure_at),
        "timeline": s.timeline,
        "evidence": [
            {
                "commit": e.commit,
                "at": _iso(e.at),
                "passed_runs": list(e.passed_runs),
                "failed_runs": list(e.failed_runs),
                "retried": e.retried,
            }
            for e in s.flaky_events
        ],
    }


def report_json(report: TestReport) -> dict[str, Any]:
    o = report.options
    snap = report.snapshot
    now = o.moment()
    quarantined = {e.test_id for e in report.quarantine if e.active(now)}
    return {
        "window": {
            "repository": o.repository,
            "branch": o.branch,
            "days": o.window_days,
            "since": snap.filter.since.isoformat() if snap.filter.since else None,
            "until": now.isoformat(),
        },
        "tests": len(snap.stats),
        "executions": snap.executions,
        "excluded_infrastructure_uploads": snap.excluded_uploads,
        "flaky": [
            {**_finding_json(report, f), "quarantined": f.stats.test_id in quarantined}
            for f in report.flaky
        ],
        "broken": [_finding_json(report, f) for f in report.broken[: o.top]],
        "slowest": [
            {
                "test_id": s.stats.test_id,
                "name": report.name(s.stats.test_id),
                "p50_seconds": s.p50,
                "p95_seconds": s.p95,
                "samples": s.stats.duration_samples,
                "share_of_time": round(s.share, 4),
            }
            for s in report.slowest
        ],
        "getting_slower": [
            {
                "test_id": t.stats.test_id,
                "name": report.name(t.stats.test_id),
                "before_p50_seconds": t.comparison.baseline_median,
                "recent_p50_seconds": t.comparison.head_median,
                "change_percent": t.comparison.change_percent,
                "p_value": t.comparison.p_value,
            }
            for t in report.slower
        ],
        "quarantine": {
            "active": [e.to_json() for e in report.quarantine if e.active(now)],
            "plan": [
                {
                    "test_id": d.test_id,
                    "name": report.name(d.test_id),
                    "action": d.action,
                    "reason": d.reason,
                }
                for d in report.plan.decisions
            ],
            "identity_drift": [
                {
                    "quarantined": d.quarantined.display,
                    "test_id": d.quarantined.test_id,
                    "now_seen_as": [c.display for c in d.candidates],
                }
                for d in report.plan.drift
            ],
        },
    }


def report_tables(report: TestReport) -> tuple[Table, ...]:
    now = report.options.moment()
    quarantined = {e.test_id for e in report.quarantine if e.active(now)}
    top = report.options.top
    flaky = Table(
        ("test", "flaky commits", "flake rate", "fail rate", "runs", "recent", "quarantined"),
        tuple(
            (
                report.name(f.stats.test_id),
                f"{f.stats.flaky_event_count}/{f.stats.groups}",
                f"{f.stats.flake_rate:.1%}",
                f"{f.stats.failure_rate:.1%}",
                f.stats.executions,
                f.stats.timeline,
                "yes" if f.stats.test_id in quarantined else "",
            )
            for f in report.flaky[:top]
        ),
        title=f"Flaky tests ({len(report.flaky)})",
    )
    slow = Table(
        ("test", "p50", "p95", "samples", "share of time"),
        tuple(
            (
                report.name(s.stats.test_id),
                _secs(s.p50),
                _secs(s.p95),
                s.stats.duration_samples,
                f"{s.share:.1%}",
            )
            for s in report.slowest
        ),
        title=f"Slowest tests by {report.options.rank_by}",
    )
    slower = Table(
        ("test", "before p50", "recent p50", "change", "p-value"),
        tuple(
            (
                report.name(t.stats.test_id),
                _secs(t.comparison.baseline_median),
                _secs(t.comparison.head_median),
                f"{t.comparison.change_percent:+.0f}%" if t.comparison.change_percent else "-",
                f"{t.comparison.p_value:.2g}" if t.comparison.p_value is not None else "-",
            )
            for t in report.slower
        ),
        title="Tests getting slower",
    )
    plan = Table(
        ("test", "action", "reason"),
        tuple((report.name(d.test_id), d.action, d.reason) for d in report.plan.decisions),
        title="Quarantine changes",
    )
    return flaky, slow, slower, plan


def report_markdown(report: TestReport) -> str:
    o = report.options
    snap = report.snapshot
    scope = " · ".join(
        x
        for x in (
            o.repository or "all repositories",
            f"branch {o.branch}" if o.branch else "all branches",
            f"last {o.window_days} days",
        )
    )
    lines = [
        "# Test report",
        "",
        f"{scope}: {len(snap.stats)} tests, {snap.executions} executions.",
    ]
    if snap.excluded_uploads:
        lines.append(
            f"{snap.excluded_uploads} uploads where over {o.infra_failed_ratio:.0%} of tests"
            " failed were left out as infrastructure failures."
        )
    lines.append("")
    flaky, slow, slower, plan = report_tables(report)
    if report.flaky:
        lines += [flaky.to_markdown(), ""]
        lines.append(
            "Flaky = passed and failed on the same commit, or passed on retry. Recent: ✓ pass,"
            " ✗ fail, E error, ~ pass on retry, · skipped (oldest first)."
        )
        lines.append("")
    else:
        lines += ["No flaky tests in the window.", ""]
    if report.broken:
        lines.append(f"**Broken, not flaky** ({len(report.broken)}): failed every execution.")
        lines += [f"- {report.name(f.stats.test_id)} — {f.reason}" for f in report.broken[: o.top]]
        lines.append("")
    if report.slowest:
        lines += [slow.to_markdown(), ""]
    if report.slower:
        lines += [slower.to_markdown(), ""]
    if report.plan.decisions:
        lines += [plan.to_markdown(), ""]
    for d in report.plan.drift:
        seen = ", ".join(c.display for c in d.candidates)
        lines.append(
            f"- Quarantined test {d.quarantined.display} is no longer seen, but {seen} is:"
            " a renamed parameter or moved file? Re-quarantine under the new name if so."
        )
    return "\n".join(lines).rstrip() + "\n"


# ----- shards ---------------------------------------------------------------------------------

ShardBy = Literal["test", "file"]


@dataclass(frozen=True, slots=True)
class ShardRequest:
    shards: int
    statistic: Statistic = "p90"
    by: ShardBy = "test"
    collected: Sequence[str] | None = None  # node ids (or files) that exist now


def shard_key(identity: TestIdentity) -> str:
    """A pytest node id when the test looks like pytest's, else the test's display name."""
    return pytest_node_id(identity.file, identity.classname, identity.name) or identity.display


def plan_from_history(
    snapshot: Snapshot, known: dict[str, TestIdentity], request: ShardRequest
) -> ShardPlan:
    """Shards balanced by each test's recorded p90 (or median) duration."""
    estimates: dict[str, float] = {}
    untimed: set[str] = set()
    for test_id, s in snapshot.stats.items():
        identity = known.get(test_id)
        if identity is None:
            continue
        seconds = estimate(s, request.statistic)
        if seconds is None and not s.executions:
            seconds = 0.0  # only ever skipped: it costs next to nothing, but keep it listed
        key = shard_key(identity)
        if request.by == "file":
            key = file_of_node_id(key) if "::" in key else (identity.file or key)
        if seconds is None:
            untimed.add(key)  # ran, but the reports give no time: the median estimate
        else:
            estimates[key] = estimates.get(key, 0.0) + seconds
    collected = request.collected
    if collected is not None and request.by == "file":
        collected = list(dict.fromkeys(file_of_node_id(k) for k in collected))
    if collected is None:
        collected = sorted(set(estimates) | untimed)
    items, unknown = build_items(estimates, collected)
    return plan_shards(items, request.shards, unknown_items=unknown)


def shard_json(plan: ShardPlan) -> dict[str, Any]:
    return {
        "requested": plan.requested,
        "shards": [
            {
                "index": s.index,
                "expected_seconds": round(s.expected_seconds, 3),
                "items": list(s.keys),
            }
            for s in plan.shards
        ],
        "total_seconds": round(plan.total_seconds, 3),
        "makespan_seconds": round(plan.makespan_seconds, 3),
        "lower_bound_seconds": round(plan.lower_bound_seconds, 3),
        "imbalance_percent": round(plan.imbalance_percent, 2),
        "unknown_items": plan.unknown_items,
        "notes": list(plan.notes),
    }


def shard_table(plan: ShardPlan) -> Table:
    return Table(
        ("shard", "items", "expected time"),
        tuple((s.index, len(s.items), _secs(s.expected_seconds)) for s in plan.shards),
        title=(
            f"{len(plan.shards)} shards: longest {_secs(plan.makespan_seconds)},"
            f" imbalance {plan.imbalance_percent:.1f}%, bound {_secs(plan.lower_bound_seconds)}"
        ),
    )
