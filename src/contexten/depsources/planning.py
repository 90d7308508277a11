"""Fetch what an update plan needs and build it.

1. releases of every declared or locked package from the index;
2. the version in use of each (pin, lock, or what an install picks today);
3. advisories for those versions;
4. the plan; then advisories for the chosen targets too, and plan again if a target turns
   out to be vulnerable (at most a few rounds), so we never propose a vulnerable release.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from contexten.analysis.deps import (
    Advisory,
    PlanPolicy,
    Project,
    UpdatePlan,
    current_versions,
    plan_updates,
)
from contexten.integrations.packages import (
    PackageIndex,
    VulnerabilityDatabase,
    VulnerabilityDatabaseError,
)

MAX_ROUNDS = 3


def _merge(into: dict[str, dict[str, Advisory]], found: Mapping[str, Sequence[Advisory]]) -> bool:
    """Add `found` to `into`; True when anything was new."""
    grew = False
    for name, advisories in found.items():
        known = into.setdefault(name, {})
        for advisory in advisories:
            if advisory.id not in known:
                known[advisory.id] = advisory
                grew = True
    return grew


async def build_plan(
    project: Project,
    index: PackageIndex,
    vulnerabilities: VulnerabilityDatabase | None,
    policy: PlanPolicy,
    *,
    advisories_optional: bool = False,
) -> UpdatePlan:
    """The plan. With `advisories_optional`, an unreachable vulnerability database does not
    stop it: the plan says in `advisories_not_checked` why advisories were not checked."""
    if policy.now is None:
        policy = PlanPolicy(
            policy.strategy,
            policy.security_priority,
            policy.cooldown_days,
            datetime.now(UTC),
            policy.allow_prereleases,
        )
    infos = await index.packages(project.names())
    in_use = current_versions(project, infos, allow_prereleases=policy.allow_prereleases)
    known: dict[str, dict[str, Advisory]] = {}
    queried: set[tuple[str, str]] = set()
    try:
        if vulnerabilities is not None:
            pairs = sorted((name, resolved.version) for name, resolved in in_use.items())
            _merge(known, await vulnerabilities.advisories(pairs))
            queried.update(pairs)
        plan = plan_updates(project, infos, _flat(known), policy)
        for _ in range(MAX_ROUNDS):
            if vulnerabilities is None:
                break
            targets = sorted({(i.name, i.target) for i in plan.items if i.target} - queried)
            if not targets:
                break
            queried.update(targets)
            if not _merge(known, await vulnerabilities.advisories(targets)):
                break
            plan = plan_updates(project, infos, _flat(known), policy)
    except VulnerabilityDatabaseError as exc:
        if not advisories_optional:
            raise
        plan = plan_updates(project, infos, _flat(known), policy)
        return dataclasses.replace(plan, advisories_not_checked=str(exc))
    return plan


def _flat(known: Mapping[str, Mapping[str, Advisory]]) -> dict[str, tuple[Advisory, ...]]:
    return {name: tuple(by_id.values()) for name, by_id in known.items()}
