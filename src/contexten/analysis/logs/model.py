"""The Diagnosis of a CI job log and its parts (frozen values, JSON-ready via to_dict)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contexten.analysis.taxonomy import FailureCategory, RecoveryStrategy


class DiagnosisStatus(StrEnum):
    DIAGNOSED = "diagnosed"  # a rule named the cause
    UNMATCHED = "unmatched"  # the job failed, but no rule named a cause
    NO_FAILURE = "no_failure"  # nothing in the log says the job failed
    EMPTY = "empty"  # no log, or only blank lines


class LineStatus(StrEnum):
    """How an evidence line relates to the passing run(s) it was compared with."""

    NEW = "new"  # in no passing run
    CHANGED = "changed"  # in a passing run with other numbers, ids or paths
    PRESENT = "present"  # also in a passing run


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    line: int  # 1-based, str.splitlines() numbering of the UTF-8 (errors replaced) log
    text: str  # without timestamp, ANSI codes and control characters
    rule: str | None = None  # the rule that selected it (None: context chosen by the baseline)
    status: LineStatus | None = None  # only when a baseline was given
    reason: str = ""  # why it was kept (shown by --explain)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "text": self.text, "rule": self.rule}
        if self.status is not None:
            out["status"] = self.status.value
        return out


class BlockKind(StrEnum):
    """What an evidence block shows."""

    TRACE = "trace"  # an exception with its frames and its Caused by: chain
    COMPILER = "compiler"  # a compiler or linter error with its excerpt and caret
    TEST = "test"  # a test failure: header, message, expected/actual, location
    ERROR = "error"  # an error message and the lines that belong to it
    COMMAND = "command"  # a failing command's last output lines before its exit status
    NEW = "new"  # lines the passing run does not have, near the failure


@dataclass(frozen=True, slots=True)
class EvidenceBlock:
    """A run of log lines that explains the failure together (blank lines are not shown)."""

    start: int  # first line, 1-based
    end: int  # last line, inclusive
    kind: BlockKind
    rule: str | None = None  # the rule whose line anchored it (None: no rule fired)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "kind": self.kind.value, "rule": self.rule}


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """One rule that fired: how often, where first, and whether it decided the category."""

    rule_id: str
    category: FailureCategory | None
    role: str
    description: str
    fix: str
    count: int
    first_line: int
    in_failing_step: bool
    decided: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.rule_id,
            "category": self.category.value if self.category else None,
            "role": self.role,
            "description": self.description,
            "fix": self.fix,
            "count": self.count,
            "first_line": self.first_line,
            "in_failing_step": self.in_failing_step,
            "decided": self.decided,
        }


@dataclass(frozen=True, slots=True)
class BaselineLog:
    """What one passing log contributed."""

    lines: int  # lines in the passing log
    matched: int  # lines of the failing log found in it (present or changed)
    used: bool  # False: it looks like another job and was ignored
    warning: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"lines": self.lines, "matched": self.matched, "used": self.used}
        if self.warning:
            out["warning"] = self.warning
        return out


@dataclass(frozen=True, slots=True)
class RemovedLine:
    """A candidate evidence line the baseline removed (for --explain)."""

    line: int
    text: str
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class BaselineReport:
    logs: tuple[BaselineLog, ...]
    removed: tuple[RemovedLine, ...]
    warnings: tuple[str, ...]

    @property
    def used(self) -> int:
        return sum(1 for log in self.logs if log.used)

    def to_dict(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "logs": [log.to_dict() for log in self.logs],
            "removed": [
                {"line": r.line, "text": r.text, "rule": r.rule, "reason": r.reason}
                for r in self.removed
            ],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class Diagnosis:
    category: FailureCategory
    confidence: float  # in [0, 1]
    status: DiagnosisStatus
    summary: str  # one line for a person
    rules: tuple[RuleMatch, ...]  # every rule that fired; the deciding one first
    # At most 30 lines: the lines of `blocks`, most telling block first, each in log order.
    evidence: tuple[EvidenceLine, ...]
    failing_tests: tuple[str, ...]
    step: str | None  # the Actions step (or CI stage) that failed
    signature: str  # equal for the same cause in another run, different for other causes
    transient: bool  # a re-run is likely to help
    recommended_strategies: tuple[RecoveryStrategy, ...]
    fix_hint: str
    total_lines: int
    baseline: BaselineReport | None = None
    blocks: tuple[EvidenceBlock, ...] = ()  # most telling first

    @property
    def rules_fired(self) -> tuple[str, ...]:
        return tuple(match.rule_id for match in self.rules)

    @property
    def failed(self) -> bool:
        return self.status in (DiagnosisStatus.DIAGNOSED, DiagnosisStatus.UNMATCHED)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "category": self.category.value,
            "confidence": round(self.confidence, 3),
            "status": self.status.value,
            "summary": self.summary,
            "rules_fired": list(self.rules_fired),
            "rules": [match.to_dict() for match in self.rules],
            "evidence": [line.to_dict() for line in self.evidence],
            "blocks": [block.to_dict() for block in self.blocks],
            "failing_tests": list(self.failing_tests),
            "step": self.step,
            "signature": self.signature,
            "transient": self.transient,
            "recommended_strategies": [s.value for s in self.recommended_strategies],
            "fix_hint": self.fix_hint,
            "total_lines": self.total_lines,
        }
        if self.baseline is not None:
            out["baseline"] = self.baseline.to_dict()
        return out
