"""The GitHub sandbox's records: repositories, runs, jobs, artifacts, issues, ..."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

API_VERSIONS = ("2022-11-28", "2026-03-10")
_background: set[asyncio.Task[Any]] = set()  # keeps redelivery tasks alive
DOCS = "https://docs.github.com/rest"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
RATE_LIMIT = 5000
CONCLUSIONS = frozenset(
    {
        "action_required",
        "cancelled",
        "failure",
        "neutral",
        "skipped",
        "stale",
        "success",
        "timed_out",
        "startup_failure",
    }
)
STATUSES = frozenset({"completed", "in_progress", "queued", "requested", "waiting", "pending"})


def utc(ts: float | datetime | None = None) -> datetime:
    if ts is None:
        return datetime.now(UTC).replace(microsecond=0)
    if isinstance(ts, datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return datetime.fromtimestamp(ts, UTC).replace(microsecond=0)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def fake_sha(*parts: Any) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()


# ============================================================================ state


@dataclass
class StepRecord:
    number: int
    name: str
    conclusion: str | None
    started_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass
class JobSpec:
    """A job to seed: its name, conclusion and log (the real log text, or one is made up)."""

    name: str
    conclusion: str = "success"
    log: bytes | str | None = None
    steps: Sequence[tuple[str, str]] = ()  # (name, conclusion); default: inferred from log
    duration_seconds: float = 60.0
    pass_log: bytes | str | None = None  # the log of this job when a re-run passes
    runner_name: str = "GitHub Actions 2"
    labels: tuple[str, ...] = ("ubuntu-latest",)

    @classmethod
    def from_log_file(cls, path: Path | str, *, name: str | None = None, **kwargs: Any) -> JobSpec:
        path = Path(path)
        data = path.read_bytes()
        if "conclusion" not in kwargs:
            kwargs["conclusion"] = infer_conclusion(data)
        return cls(name=name or path.stem, log=data, **kwargs)


@dataclass
class JobRecord:
    id: int
    run_id: int
    run_attempt: int
    name: str
    conclusion: str | None
    created_at: datetime
    started_at: datetime
    completed_at: datetime | None
    steps: list[StepRecord]
    log: bytes
    spec: JobSpec
    check_run_id: int
    cancelled: bool = False


@dataclass
class AttemptRecord:
    number: int
    created_at: datetime
    run_started_at: datetime
    jobs: list[JobRecord]
    completes_at: float | None = None  # wall time when an in-progress attempt finishes
    cancelled: bool = False


@dataclass
class ArtifactRecord:
    id: int
    run_id: int
    name: str
    data: bytes
    created_at: datetime
    expires_at: datetime
    head_branch: str | None
    head_sha: str

    @property
    def expired(self) -> bool:
        return self.expires_at <= utc()


@dataclass
class WorkflowRecord:
    id: int
    name: str
    path: str
    state: str = "active"
    created_at: datetime = field(default_factory=utc)


@dataclass
class RunRecord:
    id: int
    repo: str
    workflow: WorkflowRecord
    run_number: int
    head_branch: str | None
    head_sha: str
    event: str
    display_title: str
    actor: str
    created_at: datetime
    attempts: list[AttemptRecord]
    pull_requests: list[int] = field(default_factory=list)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    rerun_outcomes: list[str] = field(default_factory=list)
    rerun_delay_seconds: float = 0.0

    @property
    def attempt(self) -> AttemptRecord:
        return self.attempts[-1]

    def latest_jobs(self) -> list[JobRecord]:
        """The newest try of each job (GitHub's filter=latest)."""
        latest: dict[str, JobRecord] = {}
        for attempt in self.attempts:
            for job in attempt.jobs:
                latest[job.name] = job
        return sorted(latest.values(), key=lambda j: j.id)

    def all_jobs(self) -> list[JobRecord]:
        return [job for attempt in self.attempts for job in attempt.jobs]


@dataclass
class IssueRecord:
    number: int
    title: str
    body: str | None
    state: str = "open"
    is_pull: bool = False
    labels: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=utc)
    id: int = 0


@dataclass
class CommentRecord:
    id: int
    issue_number: int
    body: str
    created_at: datetime = field(default_factory=utc)


@dataclass
class CheckRunRecord:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    external_id: str | None
    details_url: str | None
    title: str | None
    summary: str | None
    text: str | None
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PullRecord:
    number: int
    id: int
    title: str
    body: str | None
    head: str
    base: str
    head_sha: str
    base_sha: str
    state: str = "open"
    draft: bool = False
    created_at: datetime = field(default_factory=utc)


@dataclass
class CacheRecord:
    id: int
    key: str
    ref: str
    version: str
    size_in_bytes: int
    created_at: datetime = field(default_factory=utc)


@dataclass
class ReleaseRecord:
    id: int
    tag_name: str
    target_commitish: str
    name: str | None
    body: str | None
    draft: bool
    prerelease: bool
    created_at: datetime = field(default_factory=utc)


@dataclass
class RepoRecord:
    id: int
    owner: str
    name: str
    default_branch: str
    private: bool = False
    created_at: datetime = field(default_factory=utc)
    branches: dict[str, str] = field(default_factory=dict)  # branch -> head sha
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> files
    commit_messages: dict[str, str] = field(default_factory=dict)
    workflows: dict[int, WorkflowRecord] = field(default_factory=dict)
    issues: dict[int, IssueRecord] = field(default_factory=dict)
    comments: list[CommentRecord] = field(default_factory=list)
    check_runs: dict[int, CheckRunRecord] = field(default_factory=dict)
    pulls: dict[int, PullRecord] = field(default_factory=dict)
    caches: list[CacheRecord] = field(default_factory=list)
    releases: list[ReleaseRecord] = field(default_factory=list)
    dependabot_alerts: list[dict[str, Any]] = field(default_factory=list)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def files_at(self, ref: str | None) -> dict[str, bytes] | None:
        sha = self.resolve(ref or self.default_branch)
        return None if sha is None else self.trees.get(sha)

    def resolve(self, ref: str) -> str | None:
        ref = ref.removeprefix("refs/heads/").removeprefix("heads/")
        if ref in self.branches:
            return self.branches[ref]
        return ref if ref in self.trees else None


@dataclass
class Installation:
    id: int
    app_id: int
    account: str
    private_key_pem: bytes
    public_key_pem: bytes


def infer_conclusion(log: bytes) -> str:
    tail = log[-4000:]
    if b"The operation was canceled" in tail or b"##[error]The operation was canceled" in tail:
        return "cancelled"
    if b"##[error]" in log:
        return "failure"
    return "success"
