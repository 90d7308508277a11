"""Dependency update plans: read declarations, classify updates, plan by strategy, rewrite files.

Pure: functions take file texts, package-index data and advisories and return frozen
dataclasses. Reading files and talking to the index live in `contexten.depsources`.

- Parsing: pyproject.toml (PEP 621 `dependencies`, `optional-dependencies`, PEP 735
  `dependency-groups`), requirements files (pip format: `-r`/`-c` includes returned for the
  caller to follow, markers, `--hash` options, continuation lines), lock files (uv.lock,
  poetry.lock, pylock.toml, Pipfile.lock) for the versions actually installed.
- Planning: every update is classified patch/minor/major (a 0.x minor counts as breaking);
  `conservative` applies patches, `smart` minors and patches, `aggressive` anything except a
  0.x breaking update (never applied automatically). Releases younger than the cooldown wait;
  security fixes skip the wait and go to the lowest release that fixes the advisories. With
  `security_priority` (the default) vulnerable packages come first and a fix may go beyond
  the strategy, even to a breaking release (flagged as breaking in the PR); without it a fix
  outside the strategy is reported for a person instead. Targets with known advisories of
  their own are avoided.
- Applying: each change is a `Rewrite` of one requirement's text at a known line, so the
  rest of the file (comments, order, quoting, whitespace) stays as it was.

Modules: `model` (the values), `requirement` (one requirement's text), `pyproject`,
`requirements`, `locks` (one per file format), `plan`, `apply`, `report`.
"""

from __future__ import annotations

from contexten.analysis.deps.apply import (
    apply_plan,
)
from contexten.analysis.deps.locks import (
    LOCK_FILE_NAMES,
    is_lock_file,
    parse_lock,
)
from contexten.analysis.deps.model import (
    MAX_REQUIREMENT_LENGTH,
    STRATEGIES,
    Action,
    Advisory,
    CurrentSource,
    DeclaredDependency,
    DependencyFileError,
    Include,
    LockedPackage,
    PackageInfo,
    ParsedFile,
    PlanError,
    Project,
    Release,
    Strategy,
    UnmanagedRequirement,
    UpdateKind,
    combine,
    max_severity,
)
from contexten.analysis.deps.plan import (
    PlanItem,
    PlanPolicy,
    ResolvedVersion,
    Rewrite,
    UpdatePlan,
    check_strategy,
    classify_update,
    current_versions,
    is_breaking,
    plan_updates,
    python_floor,
    resolve_current,
    within_strategy,
)
from contexten.analysis.deps.pyproject import (
    parse_pyproject,
)
from contexten.analysis.deps.report import (
    plan_markdown,
    plan_to_dict,
    pull_request_title,
)
from contexten.analysis.deps.requirement import (
    rewrite_clauses,
    rewrite_requirement_text,
)
from contexten.analysis.deps.requirements import (
    parse_requirements,
)
from contexten.analysis.severity import SEVERITY_RANK, AdvisorySeverity

Severity = AdvisorySeverity  # an advisory's severity ("unknown" when it publishes none)

__all__ = [
    "LOCK_FILE_NAMES",
    "MAX_REQUIREMENT_LENGTH",
    "SEVERITY_RANK",
    "STRATEGIES",
    "Action",
    "Advisory",
    "AdvisorySeverity",
    "CurrentSource",
    "DeclaredDependency",
    "DependencyFileError",
    "Include",
    "LockedPackage",
    "PackageInfo",
    "ParsedFile",
    "PlanError",
    "PlanItem",
    "PlanPolicy",
    "Project",
    "Release",
    "ResolvedVersion",
    "Rewrite",
    "Severity",
    "Strategy",
    "UnmanagedRequirement",
    "UpdateKind",
    "UpdatePlan",
    "apply_plan",
    "check_strategy",
    "classify_update",
    "combine",
    "current_versions",
    "is_breaking",
    "is_lock_file",
    "max_severity",
    "parse_lock",
    "parse_pyproject",
    "parse_requirements",
    "plan_markdown",
    "plan_to_dict",
    "plan_updates",
    "pull_request_title",
    "python_floor",
    "resolve_current",
    "rewrite_clauses",
    "rewrite_requirement_text",
    "within_strategy",
]
