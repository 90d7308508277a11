"""Abstract interfaces for the four external concerns, their value types and their errors.

- `CIProvider`: GitHub Actions and the repository (runs, jobs, logs, re-runs, comments, check
  runs, branches, files, pull requests, caches, releases).
- `IssueTracker`: Linear (find an open issue, create, comment, close).
- `Notifier`: Slack (one message with Block Kit blocks and a plain-text fallback).
- `CodingAgent`: Codegen (create an agent run, poll it to completion).

Every error a client raises is its interface's exception type (CIProviderError, ...), all
subclasses of `IntegrationError`. `reason` says what kind of failure it was, so callers
branch on `err.reason is ErrorReason.RATE_LIMITED` (or the `rate_limited` property) rather
than on a class per kind. Messages are scrubbed of configured secrets when the error is made.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from contexten.errors import ContextenError
from contexten.integrations.redaction import redact

# ----------------------------------------------------------------------------- errors


class ErrorReason(enum.StrEnum):
    RATE_LIMITED = "rate_limited"  # 429/403 with rate-limit headers, Linear RATELIMITED
    AUTH = "auth"  # credentials missing or rejected (401, 403 without rate limit)
    NOT_FOUND = "not_found"  # 404, 410 (gone, e.g. an expired artifact or log)
    CONFLICT = "conflict"  # 409, or 422 "already exists"
    INVALID = "invalid"  # 400/422: the request itself is wrong; retrying will not help
    UNAVAILABLE = "unavailable"  # connection errors, timeouts, 5xx: transient
    ERROR = "error"  # anything else


class IntegrationError(ContextenError):
    """A call to an external service failed. The message never contains a secret.

    An expected error: a command that lets it through exits 1 with its one-line message.

    Attributes:
        reason: what kind of failure (see ErrorReason).
        service: "github", "linear", "slack" or "codegen".
        status_code: the HTTP status, when there was a response.
        reset_at: for rate limits, the UTC epoch second after which a retry may succeed.
        maybe_processed: True when the request may have reached the service and taken
            effect although we saw a failure (a dropped connection or 5xx after sending a
            POST). Idempotent actions look the result up before trying again.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: ErrorReason = ErrorReason.ERROR,
        service: str = "",
        status_code: int | None = None,
        reset_at: float | None = None,
        maybe_processed: bool = False,
    ) -> None:
        self.message = redact(message)
        super().__init__(self.message)
        self.reason = reason
        self.service = service
        self.status_code = status_code
        self.reset_at = reset_at
        self.maybe_processed = maybe_processed

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, reason={self.reason.value!r}, "
            f"status_code={self.status_code!r})"
        )

    @property
    def rate_limited(self) -> bool:
        return self.reason is ErrorReason.RATE_LIMITED

    @property
    def auth_error(self) -> bool:
        return self.reason is ErrorReason.AUTH

    @property
    def not_found(self) -> bool:
        return self.reason is ErrorReason.NOT_FOUND

    @property
    def unavailable(self) -> bool:
        return self.reason is ErrorReason.UNAVAILABLE

    @property
    def transient(self) -> bool:
        """Worth retrying later: rate limited or unavailable."""
        return self.reason in (ErrorReason.RATE_LIMITED, ErrorReason.UNAVAILABLE)


class CIProviderError(IntegrationError):
    """GitHub (Actions, repository) call failed."""


class IssueTrackerError(IntegrationError):
    """Linear call failed."""


class NotifierError(IntegrationError):
    """Slack call failed."""


class CodingAgentError(IntegrationError):
    """Codegen call failed."""


# ----------------------------------------------------------------------------- health

CheckStatus = Literal["ok", "degraded", "down", "disabled"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One client's health: reachable, authenticated, rate limit left."""

    name: str
    status: CheckStatus
    latency_ms: float | None = None
    detail: str = ""
    rate_limit_remaining: int | None = None
    rate_limit_reset_at: float | None = None

    @classmethod
    def failed(cls, name: str, error: IntegrationError) -> CheckResult:
        """A check that failed with `error`: degraded when rate limited, else down."""
        return cls(
            name,
            "degraded" if error.rate_limited else "down",
            detail=str(error),
            rate_limit_remaining=0 if error.rate_limited else None,
            rate_limit_reset_at=error.reset_at,
        )


# ----------------------------------------------------------------------------- CI values


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    name: str
    status: str
    conclusion: str | None
    started_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    run_id: int
    run_attempt: int
    name: str
    status: str
    conclusion: str | None
    head_sha: str
    head_branch: str | None
    workflow_name: str | None
    html_url: str | None
    started_at: datetime | None
    completed_at: datetime | None
    runner_name: str | None = None
    labels: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()

    @property
    def failed(self) -> bool:
        return self.conclusion in ("failure", "timed_out")


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    id: int
    name: str | None
    workflow_id: int
    repository: str  # owner/name
    head_branch: str | None
    head_sha: str
    run_number: int
    run_attempt: int
    event: str
    status: str | None
    conclusion: str | None
    html_url: str
    display_title: str
    created_at: datetime
    updated_at: datetime
    run_started_at: datetime | None = None
    path: str | None = None
    actor: str | None = None
    pull_requests: tuple[int, ...] = ()

    @property
    def failed(self) -> bool:
        return self.conclusion in ("failure", "timed_out", "startup_failure")


@dataclass(frozen=True, slots=True)
class Artifact:
    id: int
    name: str
    size_in_bytes: int
    expired: bool
    archive_download_url: str
    created_at: datetime | None = None
    expires_at: datetime | None = None
    run_id: int | None = None


@dataclass(frozen=True, slots=True)
class JobTiming:
    job_id: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class RunTiming:
    run_duration_ms: int | None
    billable_ms: Mapping[str, int] = field(default_factory=dict)  # {"UBUNTU": total_ms}
    job_runs: tuple[JobTiming, ...] = ()


@dataclass(frozen=True, slots=True)
class CommentRef:
    id: int
    html_url: str
    body: str = ""


@dataclass(frozen=True, slots=True)
class Annotation:
    """A check-run annotation. `level` is notice, warning or failure."""

    path: str
    start_line: int
    end_line: int
    level: Literal["notice", "warning", "failure"]
    message: str
    title: str | None = None
    raw_details: str | None = None


@dataclass(frozen=True, slots=True)
class CheckRunRef:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    html_url: str | None
    annotations_count: int = 0


@dataclass(frozen=True, slots=True)
class GitRef:
    ref: str  # refs/heads/<name>
    sha: str


@dataclass(frozen=True, slots=True)
class FileContent:
    path: str
    sha: str
    content: bytes


@dataclass(frozen=True, slots=True)
class PullRequestRef:
    number: int
    html_url: str
    head: str
    base: str
    state: str
    id: int = 0
    draft: bool = False
    head_sha: str = ""


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """A file a pull request adds, modifies, renames or removes."""

    path: str
    status: str  # added | modified | removed | renamed | copied | changed | unchanged
    previous_path: str | None = None


@dataclass(frozen=True, slots=True)
class ReleaseRef:
    id: int
    tag_name: str
    html_url: str
    draft: bool


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    remaining: int
    reset_at: int  # UTC epoch seconds
    used: int = 0
    resource: str = "core"


@dataclass(frozen=True, slots=True)
class LogDownload:
    """A log downloaded to a file, possibly cut at the size cap."""

    path: Path
    size_bytes: int
    truncated: bool


# ----------------------------------------------------------------------------- other values


@dataclass(frozen=True, slots=True)
class IssueRef:
    id: str
    identifier: str  # e.g. ENG-123
    url: str
    title: str
    state: str | None = None  # workflow state type: backlog, started, completed, ...

    def to_dict(self) -> dict[str, Any]:
        """As stored in the action ledger and the escalation state."""
        return {
            "id": self.id,
            "identifier": self.identifier,
            "url": self.url,
            "title": self.title,
            "state": self.state,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IssueRef:
        """The inverse of `to_dict`; fields other than the id may be missing."""
        return cls(
            id=str(data["id"]),
            identifier=str(data.get("identifier") or data["id"]),
            url=str(data.get("url") or ""),
            title=str(data.get("title") or ""),
            state=data.get("state"),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """A notification: Block Kit blocks plus the plain-text fallback shown in notifications."""

    text: str
    blocks: tuple[Mapping[str, Any], ...] = ()
    thread_ts: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class PostedMessage:
    channel: str | None
    ts: str | None
    via: Literal["webhook", "chat.postMessage"]


@dataclass(frozen=True, slots=True)
class PullRequestLink:
    url: str
    title: str | None = None
    head_branch: str | None = None


@dataclass(frozen=True, slots=True)
class AgentRun:
    id: int
    status: str | None
    web_url: str | None = None
    result: str | None = None
    summary: str | None = None
    pull_requests: tuple[PullRequestLink, ...] = ()
    created_at: str | None = None

    @property
    def succeeded(self) -> bool:
        return (self.status or "").lower() in ("complete", "completed")

    @property
    def finished(self) -> bool:
        return (self.status or "").lower() in (
            "complete",
            "completed",
            "failed",
            "error",
            "cancelled",
            "canceled",
            "stopped",
        )


# ----------------------------------------------------------------------------- interfaces

# The CI provider's roles: `repo` is always "owner/name".


class RunsAndJobs(Protocol):
    """GitHub Actions runs and their jobs: read, re-run, cancel; caches; the rate limit."""

    @abc.abstractmethod
    async def list_workflow_runs(
        self,
        repo: str,
        *,
        branch: str | None = None,
        status: str | None = None,
        event: str | None = None,
        created: str | None = None,
        head_sha: str | None = None,
        workflow_id: int | str | None = None,
        per_page: int = 100,
        max_items: int | None = 1000,
    ) -> list[WorkflowRun]:
        """Newest first; follows pagination up to `max_items`."""

    @abc.abstractmethod
    async def get_run(self, repo: str, run_id: int) -> WorkflowRun: ...

    @abc.abstractmethod
    async def list_jobs(
        self, repo: str, run_id: int, *, filter: Literal["latest", "all"] = "latest"
    ) -> list[Job]: ...

    @abc.abstractmethod
    async def get_job(self, repo: str, job_id: int) -> Job: ...

    @abc.abstractmethod
    async def get_run_timing(self, repo: str, run_id: int) -> RunTiming: ...

    @abc.abstractmethod
    async def rerun_failed_jobs(
        self, repo: str, run_id: int, *, run_attempt: int | None = None
    ) -> WorkflowRun:
        """Re-run the failed jobs of attempt `run_attempt` (default: the current one) once."""

    @abc.abstractmethod
    async def rerun_run(
        self, repo: str, run_id: int, *, run_attempt: int | None = None
    ) -> WorkflowRun: ...

    @abc.abstractmethod
    async def cancel_run(self, repo: str, run_id: int) -> bool:
        """True when cancelled now, False when it had already finished (409)."""

    @abc.abstractmethod
    async def delete_actions_caches(
        self, repo: str, *, key: str | None = None, cache_id: int | None = None
    ) -> int:
        """Delete caches by key (all matching) or by id; returns how many were deleted."""

    @abc.abstractmethod
    async def rate_limit(self) -> RateLimit: ...


class RunLogs(Protocol):
    """What runs leave behind: job logs, run log archives, artifacts."""

    @abc.abstractmethod
    def stream_job_log(
        self, repo: str, job_id: int, *, max_bytes: int | None = None
    ) -> AsyncIterator[bytes]:
        """The job's plain-text log in chunks, stopping after `max_bytes`."""

    @abc.abstractmethod
    async def download_job_log(
        self, repo: str, job_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload: ...

    @abc.abstractmethod
    async def download_run_logs(
        self, repo: str, run_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload:
        """The run's logs as a zip archive."""

    @abc.abstractmethod
    async def list_artifacts(
        self, repo: str, run_id: int, *, name: str | None = None
    ) -> list[Artifact]: ...

    @abc.abstractmethod
    async def download_artifact(
        self, repo: str, artifact_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload:
        """The artifact's zip archive."""


class Checks(Protocol):
    """Check runs on a commit, with annotations."""

    @abc.abstractmethod
    async def create_check_run(
        self,
        repo: str,
        *,
        name: str,
        head_sha: str,
        title: str,
        summary: str,
        conclusion: str | None = None,
        text: str | None = None,
        annotations: Sequence[Annotation] = (),
        details_url: str | None = None,
        key: str | None = None,
    ) -> CheckRunRef:
        """Create a check run; annotations beyond 50 go in follow-up updates of ≤ 50."""


class CommentsAndIssues(Protocol):
    """Comments on issues and pull requests."""

    @abc.abstractmethod
    async def create_issue_comment(
        self, repo: str, issue_number: int, body: str, *, key: str | None = None
    ) -> CommentRef: ...


class RefsAndReleases(Protocol):
    """Branches, files, pull requests and releases of the repository."""

    @abc.abstractmethod
    async def get_ref(self, repo: str, ref: str) -> GitRef:
        """`ref` like "heads/main"."""

    @abc.abstractmethod
    async def create_branch(self, repo: str, branch: str, sha: str) -> GitRef:
        """Create refs/heads/<branch> at `sha`; an existing branch at any sha is returned."""

    @abc.abstractmethod
    async def get_file(self, repo: str, path: str, *, ref: str | None = None) -> FileContent: ...

    @abc.abstractmethod
    async def put_file(
        self,
        repo: str,
        path: str,
        content: bytes,
        *,
        message: str,
        branch: str,
        sha: str | None = None,
    ) -> str:
        """Create or update a file on `branch`; returns the new commit sha."""

    @abc.abstractmethod
    async def find_pull_request(
        self, repo: str, *, head: str, base: str | None = None, state: str = "open"
    ) -> PullRequestRef | None:
        """`head` is a branch name of the same repository."""

    @abc.abstractmethod
    async def create_pull_request(
        self,
        repo: str,
        *,
        head: str,
        base: str,
        title: str,
        body: str = "",
        draft: bool = False,
    ) -> PullRequestRef:
        """Open a PR, or return the open one for `head` (never a second)."""

    @abc.abstractmethod
    async def create_release(
        self,
        repo: str,
        *,
        tag_name: str,
        name: str,
        body: str,
        target_commitish: str | None = None,
        draft: bool = True,
        prerelease: bool = False,
    ) -> ReleaseRef: ...


class CIProvider(RunsAndJobs, RunLogs, Checks, CommentsAndIssues, RefsAndReleases):
    """GitHub Actions and the repository it runs for: every role. `repo` is always "owner/name".

    Code that needs one role takes that protocol, so a test double implements only it.
    """

    name: str = "github"

    # optional: a provider without them says so (CIProviderError, INVALID)
    async def get_pull_request(self, repo: str, number: int) -> PullRequestRef:
        """One pull request (with its head sha)."""
        raise CIProviderError(
            f"{self.name}: reading pull requests is not supported", reason=ErrorReason.INVALID
        )

    async def list_pull_request_files(
        self, repo: str, number: int, *, max_items: int = 3000
    ) -> list[ChangedFile]:
        """The files a pull request changes (GitHub lists at most 3000)."""
        raise CIProviderError(
            f"{self.name}: listing pull request files is not supported",
            reason=ErrorReason.INVALID,
        )

    @abc.abstractmethod
    async def check(self) -> CheckResult: ...

    async def aclose(self) -> None:
        """Release connections."""


class IssueTracker(abc.ABC):
    name: str = "linear"

    @abc.abstractmethod
    async def find_open_issue(
        self, *, title: str | None = None, label: str | None = None
    ) -> IssueRef | None:
        """An open (not completed/canceled/duplicate) issue with this title or label."""

    @abc.abstractmethod
    async def create_issue(
        self,
        *,
        title: str,
        description: str,
        priority: int = 0,
        labels: Sequence[str] = (),
        key: str | None = None,
    ) -> IssueRef: ...

    @abc.abstractmethod
    async def comment(self, issue_id: str, body: str, *, key: str | None = None) -> str:
        """Add a markdown comment; returns the comment id."""

    @abc.abstractmethod
    async def close_issue(self, issue_id: str) -> IssueRef:
        """Move the issue to a completed state."""

    @abc.abstractmethod
    async def check(self) -> CheckResult: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class Notifier(abc.ABC):
    name: str = "slack"

    @abc.abstractmethod
    async def post(self, message: Message) -> PostedMessage: ...

    @abc.abstractmethod
    async def check(self) -> CheckResult: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class CodingAgent(abc.ABC):
    name: str = "codegen"

    @abc.abstractmethod
    async def create_run(
        self, prompt: str, *, metadata: Mapping[str, Any] | None = None, key: str | None = None
    ) -> AgentRun: ...

    @abc.abstractmethod
    async def get_run(self, run_id: int) -> AgentRun: ...

    @abc.abstractmethod
    async def wait(self, run_id: int, *, timeout: float, poll_interval: float = 10.0) -> AgentRun:
        """Poll until the run finishes; CodingAgentError(reason UNAVAILABLE) on timeout."""

    @abc.abstractmethod
    async def check(self) -> CheckResult: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
