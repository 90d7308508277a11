"""What dependency files declare and what the index and advisories say: the values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from contexten.analysis.severity import SEVERITY_RANK as SEVERITY_RANK
from contexten.analysis.severity import AdvisorySeverity as Severity

Strategy = Literal["conservative", "smart", "aggressive"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
UpdateKind = Literal["patch", "minor", "major"]
Action = Literal["apply", "hold", "manual"]
CurrentSource = Literal["pin", "lock", "index", "unknown"]

MAX_REQUIREMENT_LENGTH = 4096  # longer "requirements" are not hand-written; refuse them


class DependencyFileError(ValueError):
    """A dependency file cannot be parsed; the message names the file (and line), one line."""


class PlanError(ValueError):
    """A plan cannot be made or applied (unknown strategy, file changed since planning)."""


# ----------------------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class DeclaredDependency:
    """One requirement as written in a project file.

    `raw` is the exact text at (`line`, `column`): for pyproject.toml the string literal with
    its quotes; for requirements files the requirement through the end of its logical line
    (continuations, `--hash` options and comment included). Rewrites replace `raw`.
    """

    name: str  # canonical (PEP 503)
    requirement: str  # the requirement string, decoded
    specifier: str  # "" when any version is allowed
    file: str
    line: int  # 1-based
    column: int  # 0-based offset of `raw` in the line
    raw: str
    group: str  # project | extra:<name> | group:<name> | requirements | constraints
    extras: tuple[str, ...] = ()
    marker: str | None = None
    hashes: tuple[str, ...] = ()  # "sha256:<hex>" from --hash options

    @property
    def pinned(self) -> str | None:
        """The exact version when the specifier is one `==X` (no wildcard) or `===X`."""
        try:
            specs = list(SpecifierSet(self.specifier))
        except InvalidSpecifier:
            return None
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            return specs[0].version
        return None


@dataclass(frozen=True, slots=True)
class LockedPackage:
    name: str  # canonical
    version: str
    file: str


@dataclass(frozen=True, slots=True)
class UnmanagedRequirement:
    """A requirement we do not update (a URL, a local path, an editable install)."""

    file: str
    line: int
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class Include:
    """A `-r`/`-c` line: the caller reads `target` relative to `file` and parses it too."""

    kind: Literal["requirement", "constraint"]
    target: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class ParsedFile:
    path: str
    kind: Literal["pyproject", "requirements", "lock"]
    dependencies: tuple[DeclaredDependency, ...] = ()
    locked: tuple[LockedPackage, ...] = ()
    unmanaged: tuple[UnmanagedRequirement, ...] = ()
    includes: tuple[Include, ...] = ()
    requires_python: str | None = None


@dataclass(frozen=True, slots=True)
class Project:
    """Everything read from one project's dependency files."""

    files: tuple[str, ...] = ()
    dependencies: tuple[DeclaredDependency, ...] = ()
    locked: tuple[LockedPackage, ...] = ()
    unmanaged: tuple[UnmanagedRequirement, ...] = ()
    requires_python: str | None = None

    @property
    def lock_files(self) -> tuple[str, ...]:
        return tuple(sorted({p.file for p in self.locked}))

    def names(self) -> tuple[str, ...]:
        return tuple(sorted({d.name for d in self.dependencies} | {p.name for p in self.locked}))


def combine(parsed: Iterable[ParsedFile]) -> Project:
    files: list[str] = []
    deps: list[DeclaredDependency] = []
    locked: list[LockedPackage] = []
    unmanaged: list[UnmanagedRequirement] = []
    requires_python: str | None = None
    for item in parsed:
        files.append(item.path)
        deps.extend(item.dependencies)
        locked.extend(item.locked)
        unmanaged.extend(item.unmanaged)
        requires_python = requires_python or item.requires_python
    return Project(tuple(files), tuple(deps), tuple(locked), tuple(unmanaged), requires_python)


# ----------------------------------------------------------------------------- index and advisories


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    uploaded_at: datetime | None = None  # earliest file upload; None when unknown
    yanked: bool = False
    requires_python: str | None = None
    sha256: tuple[str, ...] = ()  # of every file of the release, for hash-pinned lines


@dataclass(frozen=True, slots=True)
class PackageInfo:
    name: str  # canonical
    releases: tuple[Release, ...]


@dataclass(frozen=True, slots=True)
class Advisory:
    """A known vulnerability of one package, with the versions it affects (OSV semantics)."""

    id: str
    package: str  # canonical
    summary: str = ""
    aliases: tuple[str, ...] = ()
    severity: Severity = "unknown"
    # each range: its events in order, ("introduced"|"fixed"|"last_affected"|"limit", version)
    ranges: tuple[tuple[tuple[str, str], ...], ...] = ()
    versions: tuple[str, ...] = ()  # explicitly listed affected versions
    url: str = ""

    def affects(self, version: Version | str) -> bool:
        try:
            v = version if isinstance(version, Version) else Version(version)
        except InvalidVersion:
            return False
        for listed in self.versions:
            try:
                if Version(listed) == v:
                    return True
            except InvalidVersion:
                continue
        for events in self.ranges:
            parsed: list[tuple[Version, int, str]] = []
            for kind, text in events:
                try:
                    parsed.append((Version(text), _EVENT_ORDER.get(kind, 9), kind))
                except InvalidVersion:
                    continue
            affected = False
            for at, _, kind in sorted(parsed):
                if kind == "introduced" and v >= at:
                    affected = True
                elif (kind in ("fixed", "limit") and v >= at) or (
                    kind == "last_affected" and v > at
                ):
                    affected = False
            if affected:
                return True
        return False

    @property
    def fixed_versions(self) -> tuple[str, ...]:
        return tuple(
            sorted(
                {text for events in self.ranges for kind, text in events if kind == "fixed"},
                key=_version_key,
            )
        )


_EVENT_ORDER = {"introduced": 0, "fixed": 1, "last_affected": 2, "limit": 3}


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


def max_severity(advisories: Iterable[Advisory]) -> Severity:
    best: Severity = "unknown"
    for advisory in advisories:
        if SEVERITY_RANK[advisory.severity] > SEVERITY_RANK[best]:
            best = advisory.severity
    return best
