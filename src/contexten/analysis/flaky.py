"""Flaky tests and the quarantine list. Pure decisions over TestStats; no I/O.

A test is flaky when its outcome is not a function of the code: it passed and failed on
the same commit (across runs, re-run attempts, jobs, matrix legs or repeated elements), or
passed on a retry (surefire flakyFailure). A failure rate alone is not evidence: the median
flaky test fails well under 1 % of its runs, and a test that fails every time is broken,
not flaky — it is never quarantined automatically.

Quarantine is explicit, expiring and audited. Quarantined tests still run; a gate decides
the exit code from the JUnit reports (see `gate`). Entries are released after a number of
clean days with enough clean executions seen (absence is not evidence), or on expiry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from contexten.analysis.executions import TestIdentity, TestStats
from contexten.analysis.junit import FAILING, AggregatedResult, Outcome, aggregate_retries

DAY = 86400.0


class FlakinessVerdict(StrEnum):
    FLAKY = "flaky"  # passed and failed on the same code
    BROKEN = "broken"  # failed on every execution in the window
    FAILING = "failing"  # fails, but never on the same commit as a pass: look at the change
    STABLE = "stable"
    INSUFFICIENT = "insufficient"  # too few executions to say


@dataclass(frozen=True, slots=True)
class FlakyPolicy:
    """Noise control. Activation and release thresholds are separate on purpose."""

    min_executions: int = 3  # below this, no verdict other than flaky-by-evidence
    activate_events: int = 2  # flaky commits in the window before automatic quarantine
    broken_min_failures: int = 3  # consecutive-only failures before "broken"
    release_clean_days: float = 7.0  # no failure or flip for this long ...
    release_min_clean_runs: int = 5  # ... and at least this many clean executions seen
    expire_days: float = 30.0  # every entry expires; renewed while still flaky

    def __post_init__(self) -> None:
        if self.activate_events < 1:
            raise ValueError("activate_events must be at least 1")
        if self.release_min_clean_runs < 1:
            raise ValueError("release_min_clean_runs must be at least 1")
        if self.release_clean_days < 0 or self.expire_days <= 0:
            raise ValueError("release_clean_days must be >= 0 and expire_days > 0")


@dataclass(frozen=True, slots=True)
class Finding:
    stats: TestStats
    verdict: FlakinessVerdict
    reason: str


def classify(stats: TestStats, policy: FlakyPolicy = FlakyPolicy()) -> Finding:
    """The verdict for one test, with the reason in words."""
    if stats.flaky_event_count:
        retried = sum(1 for e in stats.flaky_events if e.retried)
        parts = [
            f"passed and failed on {stats.flaky_event_count} of {stats.groups} commits"
            f" ({stats.flake_rate:.1%})"
        ]
        if retried:
            parts.append(f"{retried} with a pass on retry")
        return Finding(stats, FlakinessVerdict.FLAKY, "; ".join(parts))
    if stats.executions < policy.min_executions:
        return Finding(stats, FlakinessVerdict.INSUFFICIENT, f"only {stats.executions} executions")
    if stats.always_fails and stats.failed >= policy.broken_min_failures:
        return Finding(
            stats,
            FlakinessVerdict.BROKEN,
            f"failed all {stats.failed} executions: broken, not flaky",
        )
    if stats.failed:
        return Finding(
            stats,
            FlakinessVerdict.FAILING,
            f"failed {stats.failed} of {stats.executions} executions, never on a commit"
            " where it also passed",
        )
    return Finding(stats, FlakinessVerdict.STABLE, f"passed all {stats.executions} executions")


def find_flaky(stats: Iterable[TestStats], policy: FlakyPolicy = FlakyPolicy()) -> list[Finding]:
    """Flaky tests, most flaky events first, then highest flake rate."""
    findings = [classify(s, policy) for s in stats if s.flaky_event_count]
    findings.sort(key=lambda f: (-f.stats.flaky_event_count, -f.stats.flake_rate, f.stats.test_id))
    return findings


# ----- quarantine ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveEntry:
    """A quarantine entry as the planner sees it."""

    test_id: str
    name: str
    added_at: float
    expires_at: float | None
    manual: bool  # added by a person: released by a person or on expiry only


Action = Literal["add", "release", "renew"]


@dataclass(frozen=True, slots=True)
class QuarantineDecision:
    test_id: str
    action: Action
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class DriftSuspect:
    """A quarantined test no longer seen, while a test with a near-identical name is."""

    quarantined: TestIdentity
    candidates: tuple[TestIdentity, ...]


@dataclass(frozen=True, slots=True)
class QuarantinePlan:
    decisions: tuple[QuarantineDecision, ...]
    kept: tuple[str, ...]  # active entries left as they are
    drift: tuple[DriftSuspect, ...] = ()

    def of(self, action: Action) -> tuple[QuarantineDecision, ...]:
        return tuple(d for d in self.decisions if d.action == action)


def evidence_of(stats: TestStats) -> dict[str, Any]:
    """The runs that prove a test flaky, for the quarantine record (JSON-able)."""
    return {
        "flaky_events": stats.flaky_event_count,
        "commits": stats.groups,
        "flake_rate": round(stats.flake_rate, 4),
        "failure_rate": round(stats.failure_rate, 4),
        "executions": stats.executions,
        "events": [
            {
                "commit": e.commit,
                "at": datetime.fromtimestamp(e.at, UTC).isoformat(),
                "passed_runs": list(e.passed_runs),
                "failed_runs": list(e.failed_runs),
                "retried": e.retried,
            }
            for e in stats.flaky_events
        ],
    }


def plan_quarantine(
    stats: Mapping[str, TestStats],
    active: Sequence[ActiveEntry],
    *,
    now: float,
    policy: FlakyPolicy = FlakyPolicy(),
    identities: Mapping[str, TestIdentity] | None = None,
) -> QuarantinePlan:
    """What to add, renew and release, given the window's stats and the active list."""
    decisions: list[QuarantineDecision] = []
    kept: list[str] = []
    active_ids = {entry.test_id for entry in active}
    expires = now + policy.expire_days * DAY

    for test_id in sorted(stats):
        s = stats[test_id]
        if test_id in active_ids or not _should_activate(s, policy):
            continue
        decisions.append(
            QuarantineDecision(
                test_id,
                "add",
                classify(s, policy).reason,
                evidence_of(s),
                expires,
            )
        )

    for entry in active:
        seen = stats.get(entry.test_id)
        expired = entry.expires_at is not None and entry.expires_at <= now
        if expired:
            if seen is not None and _should_activate(seen, policy) and not entry.manual:
                decisions.append(
                    QuarantineDecision(
                        entry.test_id,
                        "renew",
                        "expired but still flaky: " + classify(seen, policy).reason,
                        evidence_of(seen),
                        expires,
                    )
                )
            else:
                decisions.append(QuarantineDecision(entry.test_id, "release", "expired"))
            continue
        if entry.manual or seen is None:
            kept.append(entry.test_id)
            continue
        clean_since = (
            seen.last_failure_at is None
            or seen.last_failure_at <= now - policy.release_clean_days * DAY
        )
        if clean_since and seen.passes_since_last_failure >= policy.release_min_clean_runs:
            decisions.append(
                QuarantineDecision(
                    entry.test_id,
                    "release",
                    f"stable: {seen.passes_since_last_failure} clean executions and no failure"
                    f" for {policy.release_clean_days:g} days",
                )
            )
        else:
            kept.append(entry.test_id)

    drift: tuple[DriftSuspect, ...] = ()
    if identities is not None:
        drift = find_drift(
            [entry.test_id for entry in active if entry.test_id not in stats], identities, stats
        )
    return QuarantinePlan(tuple(decisions), tuple(kept), drift)


def _should_activate(s: TestStats, policy: FlakyPolicy) -> bool:
    return (
        s.flaky_event_count >= policy.activate_events
        and s.executions >= policy.min_executions
        and not s.always_fails
    )


_PARAMS = re.compile(r"[\[(].*[\])]$")


def base_name(name: str) -> str:
    """A test name without its parameters: `test_x[a-1]` → `test_x`."""
    return _PARAMS.sub("", name).strip()


def find_drift(
    missing_ids: Iterable[str],
    identities: Mapping[str, TestIdentity],
    seen: Mapping[str, object],
) -> tuple[DriftSuspect, ...]:
    """Quarantined tests that vanished while a same-named test (other parameters) appeared.

    A renamed parameter or moved file changes the test id and would silently release the
    quarantine; say so instead.
    """
    by_base: dict[tuple[str | None, str], list[TestIdentity]] = {}
    for test_id in seen:
        identity = identities.get(test_id)
        if identity is not None:
            by_base.setdefault((identity.classname, base_name(identity.name)), []).append(identity)
    suspects: list[DriftSuspect] = []
    for test_id in missing_ids:
        gone = identities.get(test_id)
        if gone is None:
            continue
        candidates = by_base.get((gone.classname, base_name(gone.name)), [])
        if candidates:
            ordered = sorted(candidates, key=lambda i: i.test_id)[:5]
            suspects.append(DriftSuspect(gone, tuple(ordered)))
    return tuple(suspects)


# ----- gate -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GateResult:
    """Which failures block, and which are forgiven because the test is quarantined."""

    total: int
    blocking: tuple[AggregatedResult, ...]
    quarantined: tuple[AggregatedResult, ...]  # failed, but quarantined
    passed_on_retry: tuple[AggregatedResult, ...]

    @property
    def ok(self) -> bool:
        return not self.blocking


def gate(
    results: Sequence[AggregatedResult],
    quarantined_ids: frozenset[str],
    repository: str | None,
) -> GateResult:
    blocking: list[AggregatedResult] = []
    forgiven: list[AggregatedResult] = []
    retried: list[AggregatedResult] = []
    for result in results:
        if result.outcome is Outcome.FLAKY:
            retried.append(result)
        elif result.outcome in FAILING:
            if result.case.test_id(repository) in quarantined_ids:
                forgiven.append(result)
            else:
                blocking.append(result)
    return GateResult(len(results), tuple(blocking), tuple(forgiven), tuple(retried))


__all__ = [
    "ActiveEntry",
    "DriftSuspect",
    "Finding",
    "FlakinessVerdict",
    "FlakyPolicy",
    "GateResult",
    "QuarantineDecision",
    "QuarantinePlan",
    "aggregate_retries",
    "base_name",
    "classify",
    "evidence_of",
    "find_drift",
    "find_flaky",
    "gate",
    "plan_quarantine",
]
