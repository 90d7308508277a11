"""Classifying updates and planning them by strategy, cooldown and advisories."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from contexten.analysis.deps.model import (
    STRATEGIES,
    Action,
    Advisory,
    CurrentSource,
    DeclaredDependency,
    LockedPackage,
    PackageInfo,
    PlanError,
    Project,
    Release,
    Strategy,
    UnmanagedRequirement,
    UpdateKind,
    max_severity,
)
from contexten.analysis.deps.requirement import _release, _replace_hashes, rewrite_requirement_text
from contexten.analysis.severity import SEVERITY_RANK as SEVERITY_RANK
from contexten.analysis.severity import AdvisorySeverity as Severity

# ----------------------------------------------------------------------------- classification


def classify_update(current: Version, target: Version) -> UpdateKind:
    """patch, minor or major by the first release number that changes."""
    c, t = _release(current), _release(target)
    if c[0] != t[0]:
        return "major"
    if c[1] != t[1]:
        return "minor"
    return "patch"


def is_breaking(current: Version, target: Version) -> bool:
    """A major update, or a minor one below 1.0 (0.3 -> 0.4 may break by semver)."""
    c, t = _release(current), _release(target)
    return c[0] != t[0] or (c[0] == 0 and c[1] != t[1])


def within_strategy(strategy: str, current: Version, candidate: Version) -> bool:
    """Would `strategy` apply current -> candidate (security aside)?"""
    if is_breaking(current, candidate) and _release(current)[0] == 0:
        return False  # never a 0.x breaking update automatically
    if strategy == "conservative":
        return _release(current, 2) == _release(candidate, 2)
    if strategy == "smart":
        return not is_breaking(current, candidate)
    if strategy == "aggressive":
        return True
    raise PlanError(f"unknown strategy {strategy!r}; expected one of: {', '.join(STRATEGIES)}")


def check_strategy(strategy: str) -> Strategy:
    if strategy not in STRATEGIES:
        raise PlanError(f"unknown strategy {strategy!r}; expected one of: {', '.join(STRATEGIES)}")
    return strategy  # type: ignore[return-value]


def python_floor(requires_python: str | None) -> Version | None:
    """The lowest Python 3 minor version a project supports, from `requires-python`."""
    if not requires_python:
        return None
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return None
    return next((Version(f"3.{m}") for m in range(0, 40) if spec.contains(f"3.{m}")), None)


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    strategy: Strategy = "smart"
    security_priority: bool = True  # vulnerable first; security fixes may exceed the strategy
    cooldown_days: int = 3
    now: datetime | None = None  # None: no cooldown
    allow_prereleases: bool = False


@dataclass(frozen=True, slots=True)
class Rewrite:
    file: str
    line: int
    column: int
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ResolvedVersion:
    version: str
    source: CurrentSource


@dataclass(frozen=True, slots=True)
class PlanItem:
    name: str
    current: str | None
    current_source: CurrentSource
    target: str | None
    latest: str | None
    kind: UpdateKind | None
    breaking: bool
    action: Action
    reason: str
    advisories: tuple[Advisory, ...] = ()  # affecting the current version
    fixes: tuple[str, ...] = ()  # ids of advisories the target fixes
    rewrites: tuple[Rewrite, ...] = ()
    files: tuple[str, ...] = ()  # where the package is declared or locked

    @property
    def security(self) -> bool:
        return bool(self.advisories)

    @property
    def severity(self) -> Severity:
        return max_severity(self.advisories)


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    strategy: Strategy
    items: tuple[PlanItem, ...]
    cooldown_days: int = 3
    lock_files: tuple[str, ...] = ()
    unmanaged: tuple[UnmanagedRequirement, ...] = field(default=())
    # Why known vulnerabilities were not (fully) checked, e.g. the advisory service was
    # unreachable; None when they were checked (or not asked for).
    advisories_not_checked: str | None = None

    @property
    def applicable(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.action == "apply")

    @property
    def key(self) -> str:
        """Identifies the changes: the same updates give the same key (branch, PR)."""
        payload = [
            [i.name, i.target, sorted([r.file, r.old, r.new] for r in i.rewrites)]
            for i in sorted(self.applicable, key=lambda i: i.name)
        ]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def _versions(info: PackageInfo) -> list[tuple[Version, Release]]:
    out: list[tuple[Version, Release]] = []
    for release in info.releases:
        try:
            out.append((Version(release.version), release))
        except InvalidVersion:
            continue
    return sorted(out, key=lambda pair: pair[0])


def _compatible(release: Release, floor: Version | None) -> bool:
    if floor is None or not release.requires_python:
        return True
    try:
        return SpecifierSet(release.requires_python).contains(floor, prereleases=True)
    except InvalidSpecifier:
        return True


def resolve_current(
    declared: Sequence[DeclaredDependency],
    locked: Sequence[LockedPackage],
    info: PackageInfo | None,
    *,
    allow_prereleases: bool = False,
) -> ResolvedVersion | None:
    """The version in use: the lowest exact pin, else the lowest locked version, else the
    newest index release every declaration allows (what an install picks today)."""
    pins = [Version(p) for d in declared if (p := d.pinned) and _valid(p)]
    if pins:
        return ResolvedVersion(str(min(pins)), "pin")
    locks = [Version(p.version) for p in locked]
    if locks:
        return ResolvedVersion(str(min(locks)), "lock")
    if info is None:
        return None
    specs = [SpecifierSet(d.specifier) for d in declared]
    allowed = [
        v
        for v, r in _versions(info)
        if not r.yanked
        and (allow_prereleases or not v.is_prerelease)
        and all(s.contains(v, prereleases=True) for s in specs)
    ]
    return ResolvedVersion(str(allowed[-1]), "index") if allowed else None


def _valid(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def current_versions(
    project: Project, index: Mapping[str, PackageInfo], *, allow_prereleases: bool = False
) -> dict[str, ResolvedVersion]:
    """The version in use of every declared or locked package we can tell."""
    out: dict[str, ResolvedVersion] = {}
    for name in project.names():
        declared = [d for d in project.dependencies if d.name == name]
        locked = [p for p in project.locked if p.name == name]
        resolved = resolve_current(
            declared, locked, index.get(name), allow_prereleases=allow_prereleases
        )
        if resolved is not None:
            out[name] = resolved
    return out


def plan_updates(
    project: Project,
    index: Mapping[str, PackageInfo],
    advisories: Mapping[str, Sequence[Advisory]],
    policy: PlanPolicy,
) -> UpdatePlan:
    """The update plan for `project` under `policy`.

    `index` maps canonical names to their releases (a missing name: not on the index);
    `advisories` maps canonical names to every advisory known for the package.
    """
    check_strategy(policy.strategy)
    if policy.cooldown_days < 0:
        raise PlanError(f"cooldown days must not be negative, got {policy.cooldown_days}")
    floor = python_floor(project.requires_python)
    items: list[PlanItem] = []
    for name in project.names():
        item = _plan_package(
            name,
            [d for d in project.dependencies if d.name == name],
            [p for p in project.locked if p.name == name],
            index.get(name),
            tuple(advisories.get(name, ())),
            policy,
            floor,
        )
        if item is not None:
            items.append(item)
    if policy.security_priority:
        items.sort(key=lambda i: (not i.security, -SEVERITY_RANK[i.severity], i.name))
    else:
        items.sort(key=lambda i: i.name)
    return UpdatePlan(
        policy.strategy,
        tuple(items),
        cooldown_days=policy.cooldown_days,
        lock_files=project.lock_files,
        unmanaged=project.unmanaged,
    )


def _plan_package(
    name: str,
    declared: Sequence[DeclaredDependency],
    locked: Sequence[LockedPackage],
    info: PackageInfo | None,
    known: tuple[Advisory, ...],
    policy: PlanPolicy,
    floor: Version | None,
) -> PlanItem | None:
    files = tuple(sorted({d.file for d in declared} | {p.file for p in locked}))
    resolved = resolve_current(declared, locked, info, allow_prereleases=policy.allow_prereleases)
    current = Version(resolved.version) if resolved else None
    source: CurrentSource = resolved.source if resolved else "unknown"
    vulns = tuple(a for a in known if current is not None and a.affects(current))

    def item(action: Action, reason: str, **extra: Any) -> PlanItem:
        values: dict[str, Any] = {
            "name": name,
            "current": str(current) if current else None,
            "current_source": source,
            "target": None,
            "latest": None,
            "kind": None,
            "breaking": False,
            "action": action,
            "reason": reason,
            "advisories": vulns,
            "files": files,
        }
        values.update(extra)
        return PlanItem(**values)

    if not declared and not vulns:
        return None  # an up-to-date question about a transitive package is not ours
    if info is None:
        return item("hold", "not found on the package index")
    if current is None:
        return item("hold", "no release on the index satisfies the declared versions")

    excluded = [s for d in declared for s in SpecifierSet(d.specifier) if s.operator == "!="]
    allow_pre = policy.allow_prereleases or current.is_prerelease
    candidates = [
        (v, r)
        for v, r in _versions(info)
        if not r.yanked
        and (allow_pre or not v.is_prerelease)
        and _compatible(r, floor)
        and all(e.contains(v, prereleases=True) for e in excluded)
    ]
    newer = [(v, r) for v, r in candidates if v > current]
    latest = candidates[-1][0] if candidates else None
    by_version = dict(candidates)

    def cooled(release: Release) -> bool:
        if policy.now is None or release.uploaded_at is None:
            return True
        return release.uploaded_at <= policy.now - timedelta(days=policy.cooldown_days)

    def safe(version: Version) -> bool:
        return not any(a.affects(version) for a in known)

    in_strategy = [
        (v, r) for v, r in newer if within_strategy(policy.strategy, current, v) and cooled(r)
    ]
    regular = max((v for v, _ in in_strategy if safe(v)), default=None)
    target = regular
    security_floor: Version | None = None
    if vulns:
        fixes = [v for v, _ in newer if not any(a.affects(v) for a in vulns)]
        allowed = (
            fixes
            if policy.security_priority
            else [v for v in fixes if within_strategy(policy.strategy, current, v)]
        )
        lowest_fix = min((v for v in allowed if safe(v)), default=min(allowed, default=None))
        if lowest_fix is None:
            why = (
                "no release fixes it yet"
                if not fixes
                else (f"the fix ({min(fixes)}) is outside the {policy.strategy} strategy")
            )
            return item("manual", f"vulnerable: {why}", latest=str(latest) if latest else None)
        security_floor = lowest_fix
        if regular is None or regular < lowest_fix:
            target = lowest_fix

    if target is None:
        return _held(item, current, newer, latest, policy, cooled, safe)

    attempts = [target] + ([security_floor] if security_floor and security_floor != target else [])
    failure = ""
    for choice in attempts:
        result = _rewrites_for(declared, choice, security_floor, by_version[choice], current)
        if isinstance(result, str):
            failure = failure or result
            continue
        return _chosen(item, name, current, choice, latest, vulns, locked, declared, result)
    common = _describe(current, target, latest, vulns)
    return item("manual", failure, **common)


def _describe(
    current: Version, target: Version, latest: Version | None, vulns: Sequence[Advisory]
) -> dict[str, Any]:
    return {
        "target": str(target),
        "latest": str(latest) if latest else None,
        "kind": classify_update(current, target),
        "breaking": is_breaking(current, target),
        "fixes": tuple(a.id for a in vulns if not a.affects(target)),
    }


def _chosen(
    item: Callable[..., PlanItem],
    name: str,
    current: Version,
    target: Version,
    latest: Version | None,
    vulns: Sequence[Advisory],
    locked: Sequence[LockedPackage],
    declared: Sequence[DeclaredDependency],
    rewrites: Sequence[Rewrite],
) -> PlanItem:
    common = _describe(current, target, latest, vulns)
    fixed = common["fixes"]
    reason = (f"security fix ({', '.join(fixed)})" if fixed else f"{common['kind']} update") + (
        ", breaking" if common["breaking"] else ""
    )
    if rewrites:
        return item("apply", reason, rewrites=tuple(rewrites), **common)
    where = ", ".join(p.file for p in locked) or "the environment"
    if not declared:
        why = f"transitive dependency locked at {current} in {where}; upgrade it there"
    else:
        why = (
            f"declared versions already allow {target}; update {where} "
            f"(e.g. `uv lock --upgrade-package {name}`)"
        )
    return item("manual", f"{reason}: {why}", **common)


def _rewrites_for(
    declared: Sequence[DeclaredDependency],
    target: Version,
    floor: Version | None,
    release: Release,
    current: Version,
) -> list[Rewrite] | str:
    """The rewrites that move every declaration to `target`, or why that is impossible."""
    rewrites: list[Rewrite] = []
    for dep in declared:
        spec = SpecifierSet(dep.specifier)
        lowest = _lower_bound(spec)
        if lowest is not None and lowest > target:
            continue  # already newer (e.g. another marker's pin): never move it down
        admits = spec.contains(target, prereleases=True)
        allows_vulnerable = floor is not None and spec.contains(current, prereleases=True)
        if admits and not allows_vulnerable:
            continue
        new = _rewrite(dep, target, floor, release)
        if new is None:
            why = " (hash-pinned; the index gave no sha256)" if dep.hashes else ""
            return f"cannot rewrite {dep.requirement!r} in {dep.file}:{dep.line} for {target}{why}"
        if new != dep.raw:
            rewrites.append(Rewrite(dep.file, dep.line, dep.column, dep.raw, new))
    return rewrites


def _held(
    item: Callable[..., PlanItem],
    current: Version,
    newer: Sequence[tuple[Version, Release]],
    latest: Version | None,
    policy: PlanPolicy,
    cooled: Callable[[Release], bool],
    safe: Callable[[Version], bool],
) -> PlanItem | None:
    """Why a newer release is not applied, or None when the package is up to date."""
    if not newer or latest is None:
        return None
    release = dict(newer)[latest]
    extra = {
        "target": None,
        "latest": str(latest),
        "kind": classify_update(current, latest),
        "breaking": is_breaking(current, latest),
    }
    if is_breaking(current, latest) and _release(current)[0] == 0:
        why = f"{latest} is a 0.x breaking update; never applied automatically"
    elif not within_strategy(policy.strategy, current, latest):
        allowed = {"conservative": "patch updates", "smart": "minor and patch updates"}
        scope = allowed.get(policy.strategy, "updates")
        why = f"{extra['kind']} update {latest}; {policy.strategy} applies {scope} only"
    elif not cooled(release):
        age = policy.now - release.uploaded_at if policy.now and release.uploaded_at else None
        days = f"{age.days} day(s) ago" if age is not None else "recently"
        why = f"{latest} was released {days}; waiting {policy.cooldown_days} days"
    elif not safe(latest):
        why = f"{latest} has known vulnerabilities"
    else:
        why = f"{latest} is available"
    return item("hold", why, **extra)


def _lower_bound(spec: SpecifierSet) -> Version | None:
    """The highest lower bound among the clauses (==, ===, >=, >, ~=), if any."""
    bounds: list[Version] = []
    for clause in spec:
        if clause.operator in ("==", "===", ">=", ">", "~=") and "*" not in clause.version:
            try:
                bounds.append(Version(clause.version))
            except InvalidVersion:
                continue
    return max(bounds, default=None)


def _rewrite(
    dep: DeclaredDependency, target: Version, floor: Version | None, release: Release
) -> str | None:
    if not dep.raw:
        return None
    if dep.file.endswith(".toml"):
        quote = dep.raw[0]
        inner = rewrite_requirement_text(dep.raw[1:-1], target, floor)
        return None if inner is None else f"{quote}{inner}{quote}"
    head, rest = dep.raw[: len(dep.requirement)], dep.raw[len(dep.requirement) :]
    if head != dep.requirement:
        return None
    new_head = rewrite_requirement_text(head, target, floor)
    if new_head is None:
        return None
    if dep.hashes:
        if not release.sha256:
            return None  # hash-pinned: without the new files' hashes pip would refuse
        rest = _replace_hashes(rest, [f"sha256:{h}" for h in release.sha256])
    return new_head + rest
