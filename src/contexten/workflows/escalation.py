"""What happens to a diagnosed CI failure after the diagnosis: records, renderings, actions.

Shared by failure_analysis (which diagnoses and decides), github_automation (PR comment and
check run), linear_sync (one issue per signature; close when fixed) and
codegen_task_execution (the agent hand-off), so every path uses the same keys and a run
handled by two of them gets each action once.

- Records: `JobDiagnosis` (one failed job's diagnosis plus how it was made) is stored as a
  DiagnosisRecord row; `RunInfo` is the part of the workflow run the actions need; the
  Linear issue tracking a signature lives in a StateEntry `escalation:<repo>:<signature>`.
- Renderings: the issue, its comment, the PR comment, the check run, the Slack message and
  the agent prompt (log text only inside prompt-safe fenced blocks).
- Actions: `Escalator` (one per workflow run) performs each action once through the
  ActionLedger; unconfigured integrations give a `skipped` result that says what to set.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

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
from contexten.analysis.logs.prompt import render_for_agent, sanitize
from contexten.analysis.logs.report import preview, to_markdown
from contexten.analysis.logs.text import ANSI
from contexten.analysis.taxonomy import FailureCategory, RecoveryStrategy
from contexten.config import Settings
from contexten.integrations.idempotency import ActionLedger, Result, idempotency_key
from contexten.integrations.interface import (
    Annotation,
    CIProvider,
    CodingAgent,
    IntegrationError,
    IssueRef,
    IssueTracker,
    Notifier,
    PullRequestLink,
)
from contexten.store.db import Store
from contexten.store.models import DiagnosisRecord, RecoveryRecord, StateEntry, utcnow

STATE_PREFIX = "escalation:"
CHECK_RUN_NAME = "contexten / failure analysis"
MAX_ANNOTATIONS = 50
AGENT_POLL_SECONDS = 2.0  # first poll interval; the client backs off from there
AGENT_WAIT_SECONDS = 300.0  # failure_analysis waits this long for the agent's PR
CLOSED_ISSUE_STATES = frozenset({"completed", "canceled", "cancelled", "duplicate"})
MAX_GENERATIONS = 20  # issues per signature that may have been closed before
LINEAR_PRIORITY = 3  # medium
# Categories whose fix is a code change the agent could propose (the policy's AGENT_FIXABLE).
AGENT_CATEGORIES = frozenset(
    {
        FailureCategory.TEST,
        FailureCategory.COMPILE,
        FailureCategory.LINT,
        FailureCategory.DEPENDENCY,
    }
)
SETUP_HINTS = {
    "github": "set GITHUB_TOKEN (or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, "
    "GITHUB_APP_INSTALLATION_ID)",
    "linear": "set LINEAR_API_KEY and LINEAR_TEAM_ID",
    "slack": "set SLACK_WEBHOOK_URL, or SLACK_BOT_TOKEN and SLACK_CHANNEL",
    "codegen": "set CODEGEN_TOKEN and CODEGEN_ORG_ID",
}


# ----------------------------------------------------------------------------- values


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
    def from_record(cls, row: DiagnosisRecord) -> JobDiagnosis:
        data = dict(row.data or {})
        return cls(
            job_id=int(row.job_id or 0),
            job_name=row.job_name or "job",
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


# ----------------------------------------------------------------------------- the store


def save_diagnosis(store: Store, run: RunInfo, job: JobDiagnosis) -> bool:
    """Record one job's diagnosis once per (run attempt, job); False if it was there."""
    with store.session() as session:
        existing = session.scalar(
            select(DiagnosisRecord.id).where(
                DiagnosisRecord.repository == run.repository,
                DiagnosisRecord.run_id == run.run_id,
                DiagnosisRecord.run_attempt == run.run_attempt,
                DiagnosisRecord.job_id == job.job_id,
            )
        )
        if existing is not None:
            return False
        d = job.diagnosis
        session.add(
            DiagnosisRecord(
                repository=run.repository,
                run_id=run.run_id,
                run_attempt=run.run_attempt,
                job_id=job.job_id,
                job_name=job.job_name[:300],
                category=d.category.value,
                confidence=float(d.confidence),
                signature=d.signature,
                transient=bool(d.transient),
                data=job.to_record_data(run),
            )
        )
    return True


def load_run_diagnoses(
    store: Store, repository: str, run_id: int, run_attempt: int | None = None
) -> tuple[RunInfo | None, list[JobDiagnosis]]:
    """The recorded diagnoses of a run's attempt (default: the newest attempt recorded)."""
    with store.session() as session:
        query = select(DiagnosisRecord).where(
            DiagnosisRecord.repository == repository, DiagnosisRecord.run_id == run_id
        )
        rows = list(session.scalars(query.order_by(DiagnosisRecord.id)).all())
    if not rows:
        return None, []
    attempt = run_attempt or max(row.run_attempt for row in rows)
    chosen = [row for row in rows if row.run_attempt == attempt]
    if not chosen:
        return None, []
    run = RunInfo.from_dict(dict((chosen[0].data or {}).get("run") or {}))
    return run, [JobDiagnosis.from_record(row) for row in chosen]


def signatures_of_run(store: Store, repository: str, run_id: int) -> list[str]:
    """Distinct signatures recorded for any attempt of a run, oldest first."""
    with store.session() as session:
        rows = session.scalars(
            select(DiagnosisRecord.signature)
            .where(DiagnosisRecord.repository == repository, DiagnosisRecord.run_id == run_id)
            .order_by(DiagnosisRecord.id)
        ).all()
    return list(dict.fromkeys(rows))


def state_key(repository: str, signature: str) -> str:
    return f"{STATE_PREFIX}{repository}:{signature}"[:200]


def load_signature_state(store: Store, repository: str, signature: str) -> dict[str, Any]:
    with store.session() as session:
        entry = session.get(StateEntry, state_key(repository, signature))
        return dict(entry.value or {}) if entry is not None else {}


def save_signature_state(
    store: Store, repository: str, signature: str, **values: Any
) -> dict[str, Any]:
    """Merge `values` into the signature's tracking state; returns the new state."""
    key = state_key(repository, signature)
    with store.session() as session:
        entry = session.get(StateEntry, key)
        current = dict(entry.value or {}) if entry is not None else {}
        current.update(values)
        current.setdefault("repository", repository)
        current.setdefault("signature", signature)
        if entry is None:
            session.add(StateEntry(key=key, value=current))
        else:
            entry.value = current
    return current


def tracked_signatures(store: Store) -> list[dict[str, Any]]:
    """Every signature state (repository, signature, issue, generation, ...)."""
    with store.session() as session:
        entries = session.scalars(
            select(StateEntry).where(StateEntry.key.like(f"{STATE_PREFIX}%"))
        ).all()
        return [dict(e.value or {}) for e in entries]


def record_escalation(
    store: Store, run: RunInfo, job: JobDiagnosis, detail: dict[str, Any]
) -> None:
    """One RecoveryRecord per escalated (run attempt, signature): human escalation."""
    marker = f"{run.repository}#{run.run_id}@{run.run_attempt}"
    now = utcnow()
    with store.session() as session:
        rows = session.scalars(
            select(RecoveryRecord).where(
                RecoveryRecord.key == job.signature[:200],
                RecoveryRecord.strategy == RecoveryStrategy.HUMAN_ESCALATION.value,
            )
        ).all()
        if any((row.detail or {}).get("run") == marker for row in rows):
            return
        session.add(
            RecoveryRecord(
                key=job.signature[:200],
                failure_type=job.category.value,
                strategy=RecoveryStrategy.HUMAN_ESCALATION.value,
                outcome="escalated",
                detail={"run": marker, "job": job.job_name, **detail},
                failure_seen_at=now,
                started_at=now,
                finished_at=now,
            )
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


# ----------------------------------------------------------------------------- renderings


def _code(text: str, limit: int = 200) -> str:
    return "`" + sanitize(text, limit).replace("`", "ˋ") + "`"


def issue_title(repository: str, job: JobDiagnosis) -> str:
    d = job.diagnosis
    if d.category in (FailureCategory.TEST, FailureCategory.FLAKY_TEST) and d.failing_tests:
        tests = sorted(d.failing_tests)
        headline = sanitize(tests[0], 120)
        if len(tests) > 1:
            headline += f" (+{len(tests) - 1} more)"
    else:
        headline = sanitize(d.summary, 120).rstrip(".")
    return f"[{repository}] {d.category.value} failure: {headline} ({d.signature})"


def job_section(job: JobDiagnosis, *, heading: str = "###") -> str:
    """One job's diagnosis in Markdown: mode, then the diagnosis with fenced evidence."""
    lines = [
        f"{heading} Job {_code(job.job_name)}"
        + (f" ([log]({job.job_url}))" if job.job_url else ""),
        "",
        f"Analysis: **{job.mode}** — {job.mode_note}",
    ]
    if job.log_truncated:
        lines.append(f"The log was cut at {job.log_bytes} bytes; later lines were not read.")
    lines += ["", to_markdown(job.diagnosis).replace("### CI failure:", "**Diagnosis:**", 1)]
    if job.locations:
        lines.append(
            "**Locations:** " + ", ".join(_code(f"{x.path}:{x.line}") for x in job.locations[:10])
        )
    return "\n".join(lines).rstrip() + "\n"


def issue_description(run: RunInfo, job: JobDiagnosis) -> str:
    return "\n".join(
        [
            f"contexten diagnosed a failed CI job in `{run.repository}` and opened this issue "
            f"for signature `{job.signature}`. Later failures with the same signature are added "
            "as comments; the issue is closed when a later run passes.",
            "",
            f"- **Run:** [{sanitize(run.workflow_name, 100)} #{run.run_id}]({run.html_url}) "
            f"(attempt {run.run_attempt}) on `{sanitize(run.head_branch or '-', 100)}` "
            f"at `{run.head_sha[:12]}`",
            f"- **Commit:** {sanitize(run.display_title, 200)}",
            "",
            job_section(job),
        ]
    )


def issue_comment(run: RunInfo, job: JobDiagnosis) -> str:
    d = job.diagnosis
    lines = [
        f"Failed again: [{sanitize(run.workflow_name, 100)} #{run.run_id}]({run.html_url}) "
        f"(attempt {run.run_attempt}) on `{sanitize(run.head_branch or '-', 100)}` at "
        f"`{run.head_sha[:12]}`, job {_code(job.job_name)}: {d.category.value} "
        f"(confidence {d.confidence:.2f}).",
    ]
    if d.evidence:
        shown = [f"{e.line:>7}: {sanitize(e.text)}" for e in preview(d, 5)]
        lines += ["", "```text", *shown, "```"]
    return "\n".join(lines)


def pr_comment(run: RunInfo, jobs: Sequence[JobDiagnosis], links: Sequence[str]) -> str:
    out = [
        f"## contexten: {sanitize(run.workflow_name, 100)} run "
        f"[#{run.run_id}]({run.html_url}) failed (attempt {run.run_attempt})",
        "",
    ]
    for job in jobs:
        out.append(job_section(job))
    if links:
        out += ["**Follow-up:**", "", *[f"- {link}" for link in links], ""]
    return "\n".join(out)


def check_run_text(run: RunInfo, jobs: Sequence[JobDiagnosis]) -> tuple[str, str, str]:
    """(title, summary, text) for the check run."""
    categories = sorted({j.category.value for j in jobs})
    title = f"{len(jobs)} failed job(s) diagnosed: {', '.join(categories)}"
    summary = "\n".join(
        f"- {_code(j.job_name)}: **{j.category.value}** — {sanitize(j.diagnosis.summary, 200)}"
        for j in jobs
    )
    text = "\n".join(job_section(j) for j in jobs)
    return title, summary, text


def annotations_for(jobs: Sequence[JobDiagnosis]) -> list[Annotation]:
    out: list[Annotation] = []
    seen: set[tuple[str, int]] = set()
    for job in jobs:
        for loc in job.locations:
            if (loc.path, loc.line) in seen:
                continue
            seen.add((loc.path, loc.line))
            out.append(
                Annotation(
                    path=loc.path,
                    start_line=loc.line,
                    end_line=loc.line,
                    level="failure",
                    message=loc.message or job.diagnosis.summary,
                    title=f"{job.category.value} in {sanitize(job.job_name, 100)}",
                )
            )
    return out[:MAX_ANNOTATIONS]


def agent_prompt(run: RunInfo, job: JobDiagnosis, *, create_pr: bool) -> str:
    """The instructions (ours) plus the diagnosis (from the log: fenced by render_for_agent)."""
    target = sanitize(run.head_branch or "the default branch", 200)
    action = (
        f"Open a pull request against `{target}` that fixes the cause, with a short explanation."
        if create_pr
        else "Propose a patch in your reply; do not open a pull request."
    )
    return "\n".join(
        [
            f"A CI job failed in the GitHub repository {run.repository}.",
            f"Workflow: {sanitize(run.workflow_name, 200)}, run {run.run_id} (attempt "
            f"{run.run_attempt}), commit {run.head_sha}, branch `{target}`.",
            f"Job: `{sanitize(job.job_name, 200).replace('`', 'ˋ')}`. Run: {run.html_url}",
            "",
            f"Task: find the cause of this failure in the repository and fix it. {action} "
            "Do not disable or skip tests to make the job pass.",
            "",
            render_for_agent(job.diagnosis),
        ]
    )


# ----------------------------------------------------------------------------- actions


def skipped(kind: str, service: str, target: str = "") -> ActionResult:
    return ActionResult(
        kind, "skipped", target, f"{service} is not configured ({SETUP_HINTS[service]})"
    )


def failed(kind: str, target: str, exc: BaseException) -> ActionResult:
    transient = isinstance(exc, IntegrationError) and exc.transient
    return ActionResult(
        kind, "failed", target, f"{type(exc).__name__}: {exc}"[:300], None, transient
    )


@dataclass
class Escalator:
    """Performs the escalation actions for one workflow run, each once (ActionLedger).

    Clients are None when their service is not configured: the action is then skipped.
    """

    settings: Settings
    store: Store
    ledger: ActionLedger
    ci: CIProvider | None = None
    tracker: IssueTracker | None = None
    notifier: Notifier | None = None
    agent: CodingAgent | None = None
    agent_poll_seconds: float | None = None  # default: AGENT_POLL_SECONDS
    _owned: list[Any] = field(default_factory=list)

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, *, ci: CIProvider | None = None
    ) -> Escalator:
        """Clients from the factory; `ci` (already built by the caller) is reused."""
        from contexten.integrations import factory

        ledger = factory.action_ledger(settings, store) or ActionLedger(store)
        escalator = cls(settings, store, ledger, ci=ci)
        escalator.tracker = factory.linear_client(settings, store)
        escalator.notifier = factory.slack_notifier(settings, store)
        escalator.agent = factory.codegen_agent(settings, store)
        escalator._owned = [
            c for c in (escalator.tracker, escalator.notifier, escalator.agent) if c
        ]
        return escalator

    async def aclose(self) -> None:
        for client in self._owned:
            with contextlib.suppress(Exception):  # closing must not fail the workflow
                await client.aclose()

    def done_before(self, key: str) -> bool:
        """An earlier attempt (a retry, a second delivery) already did this action."""
        state = self.ledger.get(key)
        return state is not None and state.status == "done"

    async def _guard(
        self, kind: str, target: str, action: Callable[[], Awaitable[ActionResult]]
    ) -> ActionResult:
        try:
            return await action()
        except IntegrationError as exc:
            return failed(kind, target, exc)

    # --- Linear ---
    async def ensure_issue(
        self, run: RunInfo, job: JobDiagnosis, *, comment_if_open: bool = True
    ) -> ActionResult:
        """The open issue for the signature: created once, or commented on for this run."""
        target = f"{run.repository} {job.signature}"
        if self.tracker is None:
            return skipped("linear_issue", "linear", target)
        tracker = self.tracker

        async def act() -> ActionResult:
            return await self._ensure_issue(tracker, run, job, comment_if_open=comment_if_open)

        return await self._guard("linear_issue", target, act)

    async def _ensure_issue(
        self, tracker: IssueTracker, run: RunInfo, job: JobDiagnosis, *, comment_if_open: bool
    ) -> ActionResult:
        repo, sig = run.repository, job.signature
        state = load_signature_state(self.store, repo, sig)
        title = str(state.get("title") or issue_title(repo, job))
        generation = int(state.get("generation") or 0)
        me = f"{repo}#{run.run_id}@{run.run_attempt}"
        created_for = None
        # A retry of the run that created the current issue must not comment on it.
        prior = self.ledger.get(_issue_key(repo, sig, generation))
        if prior is not None and prior.status == "done" and prior.result:
            if prior.result.get("created_for") == me:
                open_issue: IssueRef | None = _issue_ref(prior.result)
                created_for = me
            else:
                open_issue = await tracker.find_open_issue(title=title)
        else:
            open_issue = await tracker.find_open_issue(title=title)
        if open_issue is None and state.get("issue_id"):
            generation += 1  # the tracked issue was closed: this failure is a regression
        if open_issue is None:
            for _ in range(MAX_GENERATIONS):
                result = await self._create_issue(tracker, run, job, title, generation, me)
                ref = _issue_ref(result)
                if (ref.state or "") not in CLOSED_ISSUE_STATES:
                    open_issue, created_for = ref, str(result.get("created_for"))
                    break
                generation += 1  # a fresh store met an issue closed long ago
            else:
                raise RuntimeError(f"more than {MAX_GENERATIONS} closed issues for {sig}")
        assert open_issue is not None
        save_signature_state(
            self.store,
            repo,
            sig,
            title=title,
            generation=generation,
            issue_id=open_issue.id,
            identifier=open_issue.identifier,
            url=open_issue.url,
            category=job.category.value,
            job_name=job.job_name,
            workflow_id=run.workflow_id,
            workflow_name=run.workflow_name,
            branch=run.head_branch,
            last_failed_run_id=run.run_id,
            last_failed_at=max(str(state.get("last_failed_at") or ""), run.created_at),
            status="open",
        )
        target = f"{open_issue.identifier} ({sig})"
        if created_for == me:
            if prior is not None and prior.status == "done":
                detail = "created earlier for this run"
                return ActionResult("linear_issue", "existing", target, detail, open_issue.url)
            return ActionResult("linear_issue", "done", target, "created", open_issue.url)
        if not comment_if_open:
            return ActionResult("linear_issue", "existing", target, "already open", open_issue.url)
        key = idempotency_key(
            "escalation", "linear_comment", repo, sig, run.run_id, run.run_attempt
        )
        status = "existing" if self.done_before(key) else "done"
        await tracker.comment(open_issue.id, issue_comment(run, job), key=key)
        return ActionResult(
            "linear_comment", status, target, "commented on the open issue", open_issue.url
        )

    async def _create_issue(
        self,
        tracker: IssueTracker,
        run: RunInfo,
        job: JobDiagnosis,
        title: str,
        generation: int,
        me: str,
    ) -> Result:
        key = _issue_key(run.repository, job.signature, generation)

        async def perform() -> Result:
            ref = await tracker.create_issue(
                title=title,
                description=issue_description(run, job),
                priority=LINEAR_PRIORITY,
                labels=("ci-failure", "contexten", job.category.value),
                key=idempotency_key("linear_issue", key),
            )
            return {**_ref_dict(ref), "created_for": me}

        return await self.ledger.once(
            key, "escalation_issue", f"{run.repository}:{job.signature}", perform
        )

    # --- Slack ---
    async def notify(
        self, run: RunInfo, job: JobDiagnosis, issue: ActionResult | None, actions: Sequence[str]
    ) -> ActionResult:
        """One Slack message per tracked issue (a recurrence only comments on the issue)."""
        target = f"slack {job.signature}"
        if self.notifier is None:
            return skipped("slack_message", "slack", target)
        notifier = self.notifier
        from contexten.integrations.slack import render_diagnosis_message

        state = load_signature_state(self.store, run.repository, job.signature)
        occurrence = state.get("issue_id") or f"generation-{state.get('generation', 0)}"
        key = idempotency_key("escalation", "slack", run.repository, job.signature, occurrence)
        links = {"Linear issue": issue.url} if issue is not None and issue.url else {}
        d = job.diagnosis
        message = render_diagnosis_message(
            title=f"{d.category.value} failure in job {job.job_name}",
            summary=d.summary,
            repository=run.repository,
            run_url=run.html_url,
            job_name=job.job_name,
            category=d.category.value,
            confidence=d.confidence,
            evidence=[f"{e.line}: {sanitize(e.text)}" for e in preview(d, 10)],
            failing_tests=d.failing_tests,
            actions=actions,
            links=links,
            signature=job.signature,
            key=key,
        )

        async def act() -> ActionResult:
            status = "existing" if self.done_before(key) else "done"
            posted = await notifier.post(message)
            where = posted.channel or posted.via
            return ActionResult("slack_message", status, target, f"posted to {where}")

        return await self._guard("slack_message", target, act)

    # --- GitHub ---
    async def comment_on_prs(
        self, run: RunInfo, jobs: Sequence[JobDiagnosis], links: Sequence[str]
    ) -> list[ActionResult]:
        if not run.pull_requests:
            return []
        if self.ci is None:
            return [skipped("pr_comment", "github", f"#{n}") for n in run.pull_requests]
        ci = self.ci
        body = pr_comment(run, jobs, links)
        results = []
        for number in run.pull_requests:
            target = f"{run.repository}#{number}"
            key = idempotency_key(
                "escalation", "pr_comment", run.repository, number, run.run_id, run.run_attempt
            )

            async def act(
                number: int = number, target: str = target, key: str = key
            ) -> ActionResult:
                status = "existing" if self.done_before(key) else "done"
                ref = await ci.create_issue_comment(run.repository, number, body, key=key)
                return ActionResult("pr_comment", status, target, "commented", ref.html_url)

            results.append(await self._guard("pr_comment", target, act))
        return results

    async def check_run(
        self, run: RunInfo, jobs: Sequence[JobDiagnosis], *, only_with_annotations: bool = True
    ) -> ActionResult | None:
        """A neutral check run with the diagnosis and one annotation per known file/line."""
        annotations = annotations_for(jobs)
        if only_with_annotations and not annotations:
            return None
        target = f"{run.repository}@{run.head_sha[:12]}"
        if self.ci is None:
            return skipped("check_run", "github", target)
        ci = self.ci
        title, summary, text = check_run_text(run, jobs)
        key = idempotency_key(
            "escalation", "check_run", run.repository, run.head_sha, run.run_id, run.run_attempt
        )

        async def act() -> ActionResult:
            status = "existing" if self.done_before(key) else "done"
            ref = await ci.create_check_run(
                run.repository,
                name=CHECK_RUN_NAME,
                head_sha=run.head_sha,
                title=title,
                summary=summary,
                text=text,
                conclusion="neutral",  # the failing job already marks the commit red
                annotations=annotations,
                details_url=run.html_url or None,
                key=key,
            )
            detail = f"check run with {len(annotations)} annotation(s)"
            return ActionResult("check_run", status, target, detail, ref.html_url)

        return await self._guard("check_run", target, act)

    # --- Codegen ---
    async def run_agent(
        self,
        prompt: str,
        *,
        key: str,
        metadata: dict[str, Any],
        wait_seconds: float,
        target: str,
    ) -> tuple[list[ActionResult], PullRequestLink | None]:
        """Start an agent run once per `key`, wait for it, and return its pull request."""
        if self.agent is None:
            return [skipped("agent_run", "codegen", target)], None
        agent = self.agent
        again = self.done_before(key)
        try:
            started = await agent.create_run(prompt, metadata=metadata, key=key)
        except IntegrationError as exc:
            return [failed("agent_run", target, exc)], None
        name = f"agent run {started.id}"
        results = [
            ActionResult(
                "agent_run",
                "existing" if again else "done",
                name,
                "started earlier" if again else "started",
                started.web_url,
            )
        ]
        try:
            finished = (
                started
                if started.finished
                else await agent.wait(
                    started.id,
                    timeout=wait_seconds,
                    poll_interval=self.agent_poll_seconds or AGENT_POLL_SECONDS,
                )
            )
        except IntegrationError as exc:
            if not exc.unavailable:
                results.append(failed("agent_pr", name, exc))
                return results, None
            detail = f"not finished after {wait_seconds:g}s ({exc}); follow it at its web URL"
            results.append(ActionResult("agent_pr", "skipped", name, detail, started.web_url))
            return results, None
        if not finished.succeeded:
            detail = f"the agent run ended {finished.status}"
            results.append(ActionResult("agent_pr", "failed", name, detail, finished.web_url))
            return results, None
        if not finished.pull_requests:
            detail = "finished without a pull request"
            results.append(ActionResult("agent_pr", "skipped", name, detail, finished.web_url))
            return results, None
        pr = finished.pull_requests[0]
        status = "existing" if again else "done"
        results.append(ActionResult("agent_pr", status, name, pr.title or "pull request", pr.url))
        return results, pr

    async def hand_to_agent(
        self,
        run: RunInfo,
        job: JobDiagnosis,
        *,
        create_pr: bool,
        wait_seconds: float,
    ) -> list[ActionResult]:
        """One agent run per signature and issue; wait for its PR and link it on the issue."""
        state = load_signature_state(self.store, run.repository, job.signature)
        occurrence = state.get("issue_id") or f"generation-{state.get('generation', 0)}"
        key = idempotency_key("escalation", "agent_run", run.repository, job.signature, occurrence)
        metadata = {
            "repository": run.repository,
            "workflow_run_id": run.run_id,
            "signature": job.signature,
        }
        results, pr = await self.run_agent(
            agent_prompt(run, job, create_pr=create_pr),
            key=key,
            metadata=metadata,
            wait_seconds=wait_seconds,
            target=f"agent {job.signature}",
        )
        if pr is None:
            return results
        save_signature_state(self.store, run.repository, job.signature, agent_pr=pr.url)
        if self.tracker is not None and state.get("issue_id"):
            tracker = self.tracker
            issue_id = str(state["issue_id"])
            link_key = idempotency_key("escalation", "agent_pr_link", issue_id, pr.url)

            async def link() -> ActionResult:
                body = f"The Codegen agent opened a pull request for this failure: {pr.url}"
                status = "existing" if self.done_before(link_key) else "done"
                await tracker.comment(issue_id, body, key=link_key)
                identifier = str(state.get("identifier"))
                return ActionResult(
                    "linear_comment", status, identifier, "linked the agent's PR", pr.url
                )

            results.append(await self._guard("linear_comment", issue_id, link))
        return results

    # --- Linear: closing ---
    async def close_issue(self, state: dict[str, Any], reason: str) -> ActionResult:
        target = f"{state.get('identifier')} ({state.get('signature')})"
        if self.tracker is None:
            return skipped("linear_close", "linear", target)
        tracker = self.tracker
        issue_id = str(state["issue_id"])

        async def act() -> ActionResult:
            key = idempotency_key("escalation", "linear_close_comment", issue_id)
            await tracker.comment(issue_id, reason, key=key)
            ref = await tracker.close_issue(issue_id)
            save_signature_state(
                self.store,
                str(state["repository"]),
                str(state["signature"]),
                status="closed",
                closed_at=datetime.now(UTC).isoformat(),
            )
            return ActionResult("linear_close", "done", target, reason, ref.url)

        return await self._guard("linear_close", target, act)


def _issue_key(repository: str, signature: str, generation: int) -> str:
    return idempotency_key("escalation", "linear_issue", repository, signature, generation)


def _ref_dict(ref: IssueRef) -> dict[str, Any]:
    return {
        "id": ref.id,
        "identifier": ref.identifier,
        "url": ref.url,
        "title": ref.title,
        "state": ref.state,
    }


def _issue_ref(data: dict[str, Any]) -> IssueRef:
    return IssueRef(
        id=str(data["id"]),
        identifier=str(data.get("identifier") or data["id"]),
        url=str(data.get("url") or ""),
        title=str(data.get("title") or ""),
        state=data.get("state"),
    )


def agent_wanted(job: JobDiagnosis) -> bool:
    return job.category in AGENT_CATEGORIES


def actions_table(results: Sequence[ActionResult]) -> str:
    if not results:
        return "_No action taken._\n"
    rows = ["| action | status | target | detail |", "|---|---|---|---|"]
    for r in results:
        target = f"[{r.target}]({r.url})" if r.url else r.target
        detail = r.detail.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {r.kind} | {r.status} | {target.replace('|', '/')} | {detail} |")
    return "\n".join(rows) + "\n"
