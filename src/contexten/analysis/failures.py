"""A diagnosed CI failure as the actions after the diagnosis see it (pure values).

- `RunInfo`: the part of a workflow run the actions need (storable as JSON);
- `JobDiagnosis`: one failed job's diagnosis and how it was made; `ActionResult`: one action
  and how it ended; `diagnosis_from_dict` rebuilds a stored Diagnosis;
- locations: the repository files and lines a log points at (`find_locations`,
  `locations_for`), for check-run annotations.

Stored by `store.diagnoses`, rendered by `workflows.escalation_report`, acted on by
`workflows.escalation.Escalator`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contexten.analysis.logs.model import (
    BaselineLog,
    BaselineReport,
    BlockKind,
    Diagnosis,
    DiagnosisStatus,
    EvidenceBlock,
    EvidenceLine,
    LineStatus,
    RemovedLine,
    RuleMatch,
)
from contexten.analysis.logs.prompt import sanitize
from contexten.analysis.logs.text import ANSI
from contexten.analysis.taxonomy import FailureCategory, RecoveryStrategy

MAX_ANNOTATIONS = 50  # GitHub's limit per check-run update


@dataclass(frozen=True, slots=True)
class Location:
    """A file and line a log points at (repository-relative path)."""

    path: str
    line: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "message": self.message}


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What the actions need to know about a workflow run (storable as JSON)."""

    repository: str
    run_id: int
    run_attempt: int
    workflow_id: int
    workflow_name: str
    head_branch: str | None
    head_sha: str
    html_url: str
    display_title: str
    event: str
    conclusion: str | None
    created_at: str
    pull_requests: tuple[int, ...] = ()

    @classmethod
    def from_run(cls, run: Any) -> RunInfo:
        created = run.created_at
        return cls(
            repository=run.repository,
            run_id=int(run.id),
            run_attempt=int(run.run_attempt or 1),
            workflow_id=int(run.workflow_id),
            workflow_name=run.name or "workflow",
            head_branch=run.head_branch,
            head_sha=run.head_sha,
            html_url=run.html_url,
            display_title=run.display_title or "",
            event=run.event,
            conclusion=run.conclusion,
            created_at=created.isoformat() if isinstance(created, datetime) else str(created),
            pull_requests=tuple(int(n) for n in run.pull_requests),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "run_id": self.run_id,
            "run_attempt": self.run_attempt,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "head_branch": self.head_branch,
            "head_sha": self.head_sha,
            "html_url": self.html_url,
            "display_title": self.display_title,
            "event": self.event,
            "conclusion": self.conclusion,
            "created_at": self.created_at,
            "pull_requests": list(self.pull_requests),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInfo:
        return cls(
            repository=str(data["repository"]),
            run_id=int(data["run_id"]),
            run_attempt=int(data.get("run_attempt") or 1),
            workflow_id=int(data.get("workflow_id") or 0),
            workflow_name=str(data.get("workflow_name") or "workflow"),
            head_branch=data.get("head_branch"),
            head_sha=str(data.get("head_sha") or ""),
            html_url=str(data.get("html_url") or ""),
            display_title=str(data.get("display_title") or ""),
            event=str(data.get("event") or ""),
            conclusion=data.get("conclusion"),
            created_at=str(data.get("created_at") or ""),
            pull_requests=tuple(int(n) for n in data.get("pull_requests") or ()),
        )

    @property
    def label(self) -> str:
        return f"{self.workflow_name} run {self.run_id} (attempt {self.run_attempt})"


@dataclass(frozen=True, slots=True)
class JobDiagnosis:
    """One failed job's diagnosis and how it was made."""

    job_id: int
    job_name: str
    job_url: str | None
    diagnosis: Diagnosis
    mode: str  # "baseline" | "single-log"
    mode_note: str  # one line: which passing run, or why there was none
    baseline_run_id: int | None = None
    baseline_job_id: int | None = None
    log_bytes: int = 0
    log_truncated: bool = False
    locations: tuple[Location, ...] = ()

    @property
    def signature(self) -> str:
        return self.diagnosis.signature

    @property
    def category(self) -> FailureCategory:
        return self.diagnosis.category

    def to_record_data(self, run: RunInfo) -> dict[str, Any]:
        return {
            "diagnosis": self.diagnosis.to_dict(),
            "job_url": self.job_url,
            "mode": self.mode,
            "mode_note": self.mode_note,
            "baseline_run_id": self.baseline_run_id,
            "baseline_job_id": self.baseline_job_id,
            "log_bytes": self.log_bytes,
            "log_truncated": self.log_truncated,
            "locations": [loc.to_dict() for loc in self.locations],
            "run": run.to_dict(),
        }

    @classmethod
    def from_record_data(cls, job_id: int, job_name: str, data: dict[str, Any]) -> JobDiagnosis:
        """The inverse of `to_record_data` (the job id and name are stored beside it)."""
        return cls(
            job_id=job_id,
            job_name=job_name,
            job_url=data.get("job_url"),
            diagnosis=diagnosis_from_dict(dict(data.get("diagnosis") or {})),
            mode=str(data.get("mode") or "single-log"),
            mode_note=str(data.get("mode_note") or ""),
            baseline_run_id=data.get("baseline_run_id"),
            baseline_job_id=data.get("baseline_job_id"),
            log_bytes=int(data.get("log_bytes") or 0),
            log_truncated=bool(data.get("log_truncated")),
            locations=tuple(
                Location(str(loc["path"]), int(loc["line"]), str(loc.get("message", "")))
                for loc in data.get("locations") or ()
            ),
        )


@dataclass(frozen=True, slots=True)
class ActionResult:
    """One action and how it ended. status: done | existing | skipped | failed."""

    kind: str
    status: str
    target: str
    detail: str
    url: str | None = None
    transient: bool = False  # a failure worth retrying the flow for

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "status": self.status,
            "target": self.target,
            "detail": self.detail,
        }
        if self.url:
            out["url"] = self.url
        return out


def diagnosis_from_dict(data: dict[str, Any]) -> Diagnosis:
    """Rebuild a Diagnosis from `Diagnosis.to_dict()` (as stored in a DiagnosisRecord)."""
    rules = tuple(
        RuleMatch(
            rule_id=str(r.get("id", "")),
            category=FailureCategory(r["category"]) if r.get("category") else None,
            role=str(r.get("role", "")),
            description=str(r.get("description", "")),
            fix=str(r.get("fix", "")),
            count=int(r.get("count", 0)),
            first_line=int(r.get("first_line", 0)),
            in_failing_step=bool(r.get("in_failing_step")),
            decided=bool(r.get("decided")),
        )
        for r in data.get("rules") or ()
    )
    evidence = tuple(
        EvidenceLine(
            line=int(e["line"]),
            text=str(e.get("text", "")),
            rule=e.get("rule"),
            status=LineStatus(e["status"]) if e.get("status") else None,
        )
        for e in data.get("evidence") or ()
    )
    baseline = None
    raw = data.get("baseline")
    if isinstance(raw, dict):
        baseline = BaselineReport(
            logs=tuple(
                BaselineLog(
                    int(b.get("lines", 0)),
                    int(b.get("matched", 0)),
                    bool(b.get("used")),
                    str(b.get("warning", "")),
                )
                for b in raw.get("logs") or ()
            ),
            removed=tuple(
                RemovedLine(int(r["line"]), str(r["text"]), str(r["rule"]), str(r["reason"]))
                for r in raw.get("removed") or ()
            ),
            warnings=tuple(str(w) for w in raw.get("warnings") or ()),
        )
    return Diagnosis(
        category=FailureCategory(data.get("category", "unknown")),
        confidence=float(data.get("confidence", 0.0)),
        status=DiagnosisStatus(data.get("status", "unmatched")),
        summary=str(data.get("summary", "")),
        rules=rules,
        evidence=evidence,
        failing_tests=tuple(str(t) for t in data.get("failing_tests") or ()),
        step=data.get("step"),
        signature=str(data.get("signature", "")),
        transient=bool(data.get("transient")),
        recommended_strategies=tuple(
            RecoveryStrategy(s) for s in data.get("recommended_strategies") or ()
        ),
        fix_hint=str(data.get("fix_hint", "")),
        total_lines=int(data.get("total_lines", 0)),
        baseline=baseline,
        blocks=tuple(
            EvidenceBlock(
                int(b["start"]), int(b["end"]), BlockKind(b["kind"]), b.get("rule") or None
            )
            for b in data.get("blocks") or ()
        ),
    )


# ----------------------------------------------------------------------------- locations

_PY_FRAME = re.compile(r'File "(?P<path>[^"]{1,500})", line (?P<line>\d{1,7})')
_JAVAC = re.compile(r"(?P<path>(?:[A-Za-z]:)?[\w./\\-]{1,500}\.\w{1,10}):\[(?P<line>\d{1,7})[,\]]")
_PATH_LINE = re.compile(
    r"(?<![\w/.(-])(?P<path>(?:[A-Za-z]:)?[\w.\\/-]{0,400}[\w-]\.(?:py|pyx|java|kt|kts|scala|groovy|"
    r"js|jsx|mjs|cjs|ts|tsx|go|rs|c|cc|cpp|cxx|h|hpp|cs|rb|php|swift|m|mm|dart|ex|exs|erl|"
    r"hs|ml|clj|lua|sh|yml|yaml|toml|json|xml|gradle|proto|sql)):(?P<line>\d{1,7})(?![\d])"
)
# tsc, MSBuild: src/a.ts(4,26): error ...
_PAREN = re.compile(
    r"(?P<path>(?:[A-Za-z]:)?[\w./\\-]{1,500}\.\w{1,10})\((?P<line>\d{1,7}),\d{1,7}\)"
)
_WORKSPACE = re.compile(
    r"^(?:/home/runner/work/[^/]+/[^/]+/|/__w/[^/]+/[^/]+/|[A-Za-z]:[\\/]a[\\/][^\\/]+[\\/][^\\/]+[\\/]"
    r"|/Users/runner/work/[^/]+/[^/]+/|/github/workspace/)"
)
_NOT_A_FAILURE = re.compile(r"\b(SKIPPED|SKIP|XFAIL|XPASS|PASSED|skipped)\b|[Ww]arning:")
_OUTSIDE = ("site-packages/", "dist-packages/", "node_modules/", "/hostedtoolcache/", "<frozen")


def repository_path(path: str) -> str | None:
    """A repository-relative path, or None when the path is outside the checkout."""
    path = path.strip().strip("'\"")
    if not path or any(marker in path for marker in _OUTSIDE):
        return None
    match = _WORKSPACE.match(path)
    if match:
        path = path[match.end() :]
    elif path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", path):
        return None  # absolute, outside the workspace
    path = path.replace("\\", "/").removeprefix("./")
    if not path or path.startswith("../") or "/../" in path:
        return None
    return path


def find_locations(lines: Iterable[tuple[int, str]], message: str) -> list[Location]:
    """File/line references in log lines (Python frames, javac, path:line), in log order."""
    found: list[Location] = []
    for _number, raw in lines:
        text = ANSI.sub("", raw)
        if _NOT_A_FAILURE.search(text):
            continue  # "SKIPPED tests/x.py:12: reason" and the like point at no failure
        hits: list[tuple[int, Location]] = []
        for pattern in (_PY_FRAME, _JAVAC, _PAREN, _PATH_LINE):
            for match in pattern.finditer(text):
                path = repository_path(match.group("path"))
                line = int(match.group("line"))
                if path is not None and line >= 1:
                    hits.append((match.start(), Location(path, line, message)))
        found.extend(location for _start, location in sorted(hits, key=lambda h: h[0]))
    return found


def locations_for(
    evidence: Sequence[EvidenceLine], nearby: dict[int, str], *, before: int = 30
) -> tuple[Location, ...]:
    """For each run of evidence lines (an evidence block: consecutive lines, blank lines
    between them allowed), the innermost file/line reference of the repository in it or in
    the lines before it (back to the previous run, at most `before` lines)."""
    out: dict[tuple[str, int], Location] = {}
    previous = 0
    runs: list[list[EvidenceLine]] = []
    for line in sorted(evidence, key=lambda e: e.line):
        if runs and line.line - runs[-1][-1].line <= 2:
            runs[-1].append(line)
        else:
            runs.append([line])
    for run in runs:
        first, line = run[0], run[-1]
        start = max(first.line - before, previous + 1)
        previous = line.line
        window = [(n, nearby[n]) for n in range(start, line.line + 1) if n in nearby]
        found = find_locations(window, sanitize(line.text, 300))
        if found:
            chosen = found[-1]  # the innermost frame sits closest to the error
            out.setdefault((chosen.path, chosen.line), chosen)
        if len(out) >= MAX_ANNOTATIONS:
            break
    return tuple(out.values())
