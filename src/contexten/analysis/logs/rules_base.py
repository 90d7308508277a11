"""The rule type of the rule base (rules.py): Rule, its Role, and `_r`, the shorthand the
rule tables (rules_*.py) are written with. What `prefilter` and `pattern` must satisfy is
in rules.py's docstring."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from contexten.analysis.taxonomy import FailureCategory as C


class Role(StrEnum):
    CAUSE = "cause"  # names the category of the failure
    DETAIL = "detail"  # explains a failure of its category (an assertion message); never decides
    FLAKY = "flaky"  # the failing test is probably non-deterministic
    FAILED = "failed"  # the job or a step failed (exit code, BUILD FAILURE): no category
    STEP = "step"  # a step starts here (its name is group 1)
    CATCHALL = "catchall"  # a generic error line: evidence when nothing else fired


@dataclass(frozen=True)
class Rule:
    id: str
    category: C | None
    prefilter: str
    description: str
    fix: str = ""
    pattern: str | None = None
    confidence: float = 0.8
    role: Role = Role.CAUSE
    case_sensitive: bool = False
    # Multi-line rules: the rule fires only if the rule `requires` fired within the
    # `within` lines before this one (or on this line).
    requires: str | None = None
    within: int = 0

    @cached_property
    def regex(self) -> re.Pattern[str]:
        flags = 0 if self.case_sensitive else re.IGNORECASE
        return re.compile(self.pattern if self.pattern is not None else self.prefilter, flags)


def _r(
    rule_id: str,
    category: C | None,
    prefilter: str,
    description: str,
    fix: str = "",
    *,
    pattern: str | None = None,
    confidence: float = 0.8,
    role: Role = Role.CAUSE,
    case_sensitive: bool = False,
    requires: str | None = None,
    within: int = 0,
) -> Rule:
    return Rule(
        rule_id,
        category,
        prefilter,
        description,
        fix,
        pattern,
        confidence,
        role,
        case_sensitive,
        requires,
        within,
    )
