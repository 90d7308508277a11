"""A local GitHub REST API (version 2022-11-28) for the subset contexten uses.

State (`GitHubState`) holds repositories with branches, files, workflows, workflow runs with
attempts, jobs, steps and logs, artifacts, issues and comments, check runs, pull requests,
Actions caches, releases, and GitHub App installations. Tests seed it (`add_repo`,
`add_run`, `add_artifact`, ...) and inspect it (`received` counts every world-changing
request that took effect).

The app (`create_app(state, faults)`) answers like api.github.com: bearer/token auth (401
"Bad credentials"), `x-ratelimit-*` headers on every response and 403 when the primary limit
is used up, pagination with `Link` headers, 302 redirects for logs and artifacts to
loopback URLs that expire after `faults.log_url_ttl` seconds, error bodies
`{message, documentation_url, status}` and 422 `validation-error`s. Re-runs create a new
attempt whose outcome a test scripts with `rerun_outcomes` (e.g. "pass on re-run").
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import itertools
import json
import re
import secrets
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from contexten.sandbox.faults import FaultInjector
from contexten.sandbox.state import SANDBOX_GITHUB_TOKEN, SANDBOX_GITHUB_WEBHOOK_SECRET

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


class GitHubState:
    """Everything the GitHub sandbox knows. Thread-safe: hold `lock` to read several fields."""

    def __init__(self, *, token: str = SANDBOX_GITHUB_TOKEN) -> None:
        self.lock = threading.RLock()
        self.token = token
        self.webhook_secret = SANDBOX_GITHUB_WEBHOOK_SECRET
        self.tokens: dict[str, float | None] = {token: None}  # token -> expiry (epoch)
        self.base_url = ""
        self.repos: dict[str, RepoRecord] = {}
        self.runs: dict[int, RunRecord] = {}
        self.jobs: dict[int, JobRecord] = {}
        self.artifacts: dict[int, ArtifactRecord] = {}
        self.installations: dict[int, Installation] = {}
        self.received: Counter[str] = Counter()
        self.rate_limit = RATE_LIMIT
        self.rate_used: dict[str, int] = {}
        self.rate_window_start = time.time()
        self.blob_key = secrets.token_bytes(16)
        self._ids = itertools.count(1)
        self._run_ids = itertools.count(9_000_000_001)
        self._job_ids = itertools.count(25_000_000_001)
        self.default_repository: str | None = None
        # Webhook deliveries made by WebhookSender (GET .../hooks/{id}/deliveries), and the
        # senders that can redeliver them (POST .../deliveries/{id}/attempts).
        self.hook_deliveries: list[dict[str, Any]] = []
        self.webhook_senders: dict[int, Any] = {}

    def __repr__(self) -> str:
        return f"GitHubState(repos={list(self.repos)!r}, runs={len(self.runs)})"

    def new_id(self) -> int:
        return next(self._ids)

    # ------------------------------------------------------------------ seeding

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        files: dict[str, bytes | str] | None = None,
        private: bool = False,
    ) -> RepoRecord:
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"repository {full_name!r} must be owner/name")
        with self.lock:
            if full_name in self.repos:
                return self.repos[full_name]
            repo = RepoRecord(
                id=100_000 + self.new_id(),
                owner=owner,
                name=name,
                default_branch=default_branch,
                private=private,
            )
            tree = {path: _bytes(content) for path, content in (files or {}).items()}
            sha = fake_sha(full_name, "initial", sorted(tree.items()))
            repo.trees[sha] = tree
            repo.commit_messages[sha] = "Initial commit"
            repo.branches[default_branch] = sha
            self.repos[full_name] = repo
            if self.default_repository is None:
                self.default_repository = full_name
            return repo

    def repo(self, full_name: str) -> RepoRecord:
        with self.lock:
            if full_name not in self.repos:
                raise KeyError(f"no sandbox repository {full_name!r}")
            return self.repos[full_name]

    def add_branch(self, repo_name: str, branch: str, *, from_branch: str | None = None) -> str:
        with self.lock:
            repo = self.repo(repo_name)
            sha = repo.branches[from_branch or repo.default_branch]
            repo.branches[branch] = sha
            return sha

    def add_commit(
        self, repo_name: str, branch: str, files: dict[str, bytes | str], message: str
    ) -> str:
        """Commit `files` (added/replaced) on `branch`; returns the new sha."""
        with self.lock:
            repo = self.repo(repo_name)
            parent = repo.branches.get(branch) or repo.branches[repo.default_branch]
            tree = dict(repo.trees[parent])
            tree.update({p: _bytes(c) for p, c in files.items()})
            sha = fake_sha(parent, message, sorted(tree.items()), self.new_id())
            repo.trees[sha] = tree
            repo.commit_messages[sha] = message
            repo.branches[branch] = sha
            return sha

    def add_workflow(
        self, repo_name: str, name: str = "CI", path: str | None = None
    ) -> WorkflowRecord:
        with self.lock:
            repo = self.repo(repo_name)
            for workflow in repo.workflows.values():
                if workflow.name == name:
                    return workflow
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "ci"
            workflow = WorkflowRecord(
                id=160_000_000 + self.new_id(),
                name=name,
                path=path or f".github/workflows/{slug}.yml",
            )
            repo.workflows[workflow.id] = workflow
            return workflow

    def add_issue(self, repo_name: str, title: str, body: str | None = None) -> IssueRecord:
        with self.lock:
            repo = self.repo(repo_name)
            issue = IssueRecord(number=repo.next_number, title=title, body=body, id=self.new_id())
            repo.issues[issue.number] = issue
            repo.next_number += 1
            return issue

    def add_pull_request(
        self, repo_name: str, head: str, *, base: str | None = None, title: str = "Change"
    ) -> PullRecord:
        with self.lock:
            repo = self.repo(repo_name)
            if head not in repo.branches:
                self.add_branch(repo_name, head)
            base = base or repo.default_branch
            return self._open_pull(repo, head, base, title, None, False)

    def _open_pull(
        self, repo: RepoRecord, head: str, base: str, title: str, body: str | None, draft: bool
    ) -> PullRecord:
        number = repo.next_number
        repo.next_number += 1
        repo.issues[number] = IssueRecord(number, title, body, is_pull=True, id=self.new_id())
        pull = PullRecord(
            number=number,
            id=self.new_id(),
            title=title,
            body=body,
            head=head,
            base=base,
            head_sha=repo.branches[head],
            base_sha=repo.branches[base],
            draft=draft,
        )
        repo.pulls[number] = pull
        return pull

    def add_run(
        self,
        repo_name: str,
        *,
        workflow: str = "CI",
        jobs: Sequence[JobSpec] = (JobSpec("build"),),
        head_branch: str | None = None,
        head_sha: str | None = None,
        event: str = "push",
        display_title: str | None = None,
        actor: str = "octocat",
        created_at: datetime | None = None,
        rerun_outcomes: Iterable[str] = (),
        rerun_delay_seconds: float = 0.0,
        pull_requests: Iterable[int] = (),
        in_progress_seconds: float = 0.0,
    ) -> RunRecord:
        """A completed run (or one finishing `in_progress_seconds` from now).

        `rerun_outcomes`: conclusions of the re-run jobs in successive re-runs, e.g.
        ["success"] for a flaky failure that passes on re-run; when exhausted, a re-run job
        repeats its previous conclusion.
        """
        with self.lock:
            repo = self.repo(repo_name)
            wf = self.add_workflow(repo_name, workflow)
            branch = head_branch or repo.default_branch
            if branch not in repo.branches:
                self.add_branch(repo_name, branch)
            sha = head_sha or repo.branches[branch]
            if sha not in repo.trees:
                repo.trees[sha] = dict(repo.trees[repo.branches[branch]])
                repo.commit_messages[sha] = display_title or "Commit"
            created = utc(created_at)
            run_id = next(self._run_ids)
            number = 1 + sum(1 for r in self.runs.values() if r.workflow.id == wf.id)
            run = RunRecord(
                id=run_id,
                repo=repo.full_name,
                workflow=wf,
                run_number=number,
                head_branch=branch,
                head_sha=sha,
                event=event,
                display_title=display_title or repo.commit_messages.get(sha, "Commit"),
                actor=actor,
                created_at=created,
                attempts=[],
                pull_requests=list(pull_requests),
                rerun_outcomes=list(rerun_outcomes),
                rerun_delay_seconds=rerun_delay_seconds,
            )
            attempt = AttemptRecord(1, created, created + timedelta(seconds=2), [])
            start = attempt.run_started_at
            for spec in jobs:
                job = self._make_job(run, 1, spec, spec.conclusion, start, _bytes(spec.log))
                attempt.jobs.append(job)
            if in_progress_seconds > 0:
                attempt.completes_at = time.time() + in_progress_seconds
            run.attempts.append(attempt)
            self.runs[run_id] = run
            return run

    def _make_job(
        self,
        run: RunRecord,
        attempt: int,
        spec: JobSpec,
        conclusion: str,
        start: datetime,
        log: bytes | None,
    ) -> JobRecord:
        job_id = next(self._job_ids)
        end = start + timedelta(seconds=spec.duration_seconds)
        text = log if log else synthetic_log(spec.name, conclusion, start, spec.duration_seconds)
        steps = _steps(spec, conclusion, text, start, end)
        job = JobRecord(
            id=job_id,
            run_id=run.id,
            run_attempt=attempt,
            name=spec.name,
            conclusion=conclusion,
            created_at=start - timedelta(seconds=1),
            started_at=start,
            completed_at=end,
            steps=steps,
            log=text,
            spec=spec,
            check_run_id=30_000_000_000 + job_id,
        )
        self.jobs[job_id] = job
        return job

    def add_artifact(
        self,
        run_id: int,
        name: str,
        files: dict[str, bytes | str],
        *,
        expires_in_days: float = 90,
    ) -> ArtifactRecord:
        """An artifact holding `files` (e.g. {"junit.xml": ...}) zipped."""
        with self.lock:
            run = self.runs[run_id]
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path, content in files.items():
                    archive.writestr(path, _bytes(content))
            created = run.attempt.run_started_at + timedelta(seconds=30)
            artifact = ArtifactRecord(
                id=1_000_000_000 + self.new_id(),
                run_id=run_id,
                name=name,
                data=buffer.getvalue(),
                created_at=created,
                expires_at=utc() + timedelta(days=expires_in_days),
                head_branch=run.head_branch,
                head_sha=run.head_sha,
            )
            run.artifacts.append(artifact)
            self.artifacts[artifact.id] = artifact
            return artifact

    def add_cache(
        self, repo_name: str, key: str, *, ref: str | None = None, size: int = 1024
    ) -> CacheRecord:
        with self.lock:
            repo = self.repo(repo_name)
            cache = CacheRecord(
                id=self.new_id(),
                key=key,
                ref=ref or f"refs/heads/{repo.default_branch}",
                version=fake_sha(key)[:40],
                size_in_bytes=size,
            )
            repo.caches.append(cache)
            return cache

    def add_dependabot_alert(
        self,
        repo_name: str,
        *,
        package: str,
        ecosystem: str = "pip",
        vulnerable_range: str,
        patched: str | None,
        severity: str = "medium",
        ghsa_id: str = "GHSA-0000-0000-0000",
        cve_id: str | None = None,
        summary: str = "A vulnerability",
        manifest_path: str = "requirements.txt",
    ) -> dict[str, Any]:
        """An open Dependabot alert, shaped like GitHub's `dependabot-alert`."""
        with self.lock:
            repo = self.repo(repo_name)
            number = len(repo.dependabot_alerts) + 1
            pkg = {"ecosystem": ecosystem, "name": package}
            vulnerability = {
                "package": pkg,
                "severity": severity,
                "vulnerable_version_range": vulnerable_range,
                "first_patched_version": {"identifier": patched} if patched else None,
            }
            now = iso(utc())
            identifiers = [{"value": ghsa_id, "type": "GHSA"}]
            if cve_id:
                identifiers.append({"value": cve_id, "type": "CVE"})
            alert: dict[str, Any] = {
                "number": number,
                "state": "open",
                "dependency": {
                    "package": pkg,
                    "manifest_path": manifest_path,
                    "scope": "runtime",
                    "relationship": "direct",
                },
                "security_advisory": {
                    "ghsa_id": ghsa_id,
                    "cve_id": cve_id,
                    "summary": summary,
                    "description": summary,
                    "vulnerabilities": [vulnerability],
                    "severity": severity,
                    "cvss": {"vector_string": None, "score": 0.0},
                    "cvss_severities": None,
                    "epss": None,
                    "cwes": [],
                    "identifiers": identifiers,
                    "references": [{"url": f"https://github.com/advisories/{ghsa_id}"}],
                    "published_at": now,
                    "updated_at": now,
                    "withdrawn_at": None,
                },
                "security_vulnerability": vulnerability,
                "url": f"{self.base_url}/repos/{repo_name}/dependabot/alerts/{number}",
                "html_url": f"{self.base_url}/{repo_name}/security/dependabot/{number}",
                "created_at": now,
                "updated_at": now,
                "dismissed_at": None,
                "dismissed_by": None,
                "dismissed_reason": None,
                "dismissed_comment": None,
                "fixed_at": None,
                "auto_dismissed_at": None,
            }
            repo.dependabot_alerts.append(alert)
            return alert

    def enable_app(self, *, app_id: int = 424242, installation_id: int = 4242) -> Installation:
        """Register a GitHub App installation with a new RSA key (PEM in .private_key_pem)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with self.lock:
            account = (self.default_repository or "octo/x").split("/")[0]
            installation = Installation(installation_id, app_id, account, private, public)
            self.installations[installation_id] = installation
            return installation

    # ------------------------------------------------------------------ inspection

    def comments(self, repo_name: str, issue_number: int | None = None) -> list[CommentRecord]:
        with self.lock:
            comments = self.repo(repo_name).comments
            return [c for c in comments if issue_number is None or c.issue_number == issue_number]

    def check_runs(self, repo_name: str) -> list[CheckRunRecord]:
        with self.lock:
            return list(self.repo(repo_name).check_runs.values())

    def pulls(self, repo_name: str) -> list[PullRecord]:
        with self.lock:
            return list(self.repo(repo_name).pulls.values())

    # ------------------------------------------------------------------ behaviour

    def refresh(self, run: RunRecord) -> None:
        """Finish an in-progress attempt whose time has come."""
        attempt = run.attempt
        if attempt.completes_at is not None and time.time() >= attempt.completes_at:
            attempt.completes_at = None

    def run_status(self, run: RunRecord) -> tuple[str, str | None]:
        self.refresh(run)
        attempt = run.attempt
        if attempt.completes_at is not None and not attempt.cancelled:
            return "in_progress", None
        conclusions = [job.conclusion for job in run.latest_jobs()]
        if attempt.cancelled or "cancelled" in conclusions:
            return "completed", "cancelled"
        for bad in ("failure", "timed_out", "startup_failure", "action_required"):
            if bad in conclusions:
                return "completed", bad
        return "completed", "success"

    def job_status(self, job: JobRecord) -> tuple[str, str | None]:
        run = self.runs[job.run_id]
        self.refresh(run)
        in_flight = run.attempt.completes_at is not None and job.run_attempt == run.attempt.number
        if in_flight and not job.cancelled:
            return "in_progress", None
        return "completed", job.conclusion

    def rerun(
        self, run: RunRecord, *, failed_only: bool, job_id: int | None = None
    ) -> AttemptRecord:
        """Start a new attempt re-running failed jobs (or all, or one job)."""
        previous = run.latest_jobs()
        if job_id is not None:
            chosen = [j for j in previous if j.id == job_id]
        elif failed_only:
            chosen = [j for j in previous if j.conclusion in ("failure", "timed_out", "cancelled")]
        else:
            chosen = previous
        number = run.attempt.number + 1
        now = utc()
        attempt = AttemptRecord(number, now, now + timedelta(seconds=1), [])
        scripted = run.rerun_outcomes.pop(0) if run.rerun_outcomes else None
        for old in chosen:
            conclusion = scripted or old.conclusion or "success"
            spec = old.spec
            # A passing re-run gets the job's passing log, or a made-up one.
            log: bytes | None = old.log
            if conclusion == "success":
                log = _bytes(spec.pass_log) or None
            job = self._make_job(run, number, spec, conclusion, attempt.run_started_at, log)
            attempt.jobs.append(job)
        if run.rerun_delay_seconds > 0:
            attempt.completes_at = time.time() + run.rerun_delay_seconds
        run.attempts.append(attempt)
        return attempt

    # ------------------------------------------------------------------ auth and limits

    def token_valid(self, token: str) -> bool:
        with self.lock:
            if token not in self.tokens:
                return False
            expiry = self.tokens[token]
            return expiry is None or expiry > time.time()

    def take_rate_limit(self, token: str) -> tuple[bool, int, int, int]:
        """Count one request: (allowed, remaining, used, reset epoch)."""
        with self.lock:
            now = time.time()
            if now - self.rate_window_start >= 3600:
                self.rate_window_start = now
                self.rate_used.clear()
            reset = int(self.rate_window_start + 3600)
            used = self.rate_used.get(token, 0)
            if used >= self.rate_limit:
                return False, 0, used, reset
            used += 1
            self.rate_used[token] = used
            return True, self.rate_limit - used, used, reset

    def peek_rate_limit(self, token: str) -> tuple[int, int, int]:
        with self.lock:
            used = self.rate_used.get(token, 0)
            return (
                max(0, self.rate_limit - used),
                used,
                int(self.rate_window_start + 3600),
            )

    def sign_blob(self, kind: str, ident: int, expires: int) -> str:
        message = f"{kind}:{ident}:{expires}".encode()
        return hmac.new(self.blob_key, message, hashlib.sha256).hexdigest()[:32]

    # ------------------------------------------------------------------ demo

    def seed_demo(self) -> None:
        seed_demo(self)


def _bytes(value: bytes | str | None) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else value.encode("utf-8")


def infer_conclusion(log: bytes) -> str:
    tail = log[-4000:]
    if b"The operation was canceled" in tail or b"##[error]The operation was canceled" in tail:
        return "cancelled"
    if b"##[error]" in log:
        return "failure"
    return "success"


_GROUP_RUN = re.compile(rb"##\[group\]Run (.{1,200})")


def _steps(
    spec: JobSpec, conclusion: str, log: bytes, start: datetime, end: datetime
) -> list[StepRecord]:
    if spec.steps:
        named = [(name, c) for name, c in spec.steps]
    else:
        runs = [m.group(1).decode("utf-8", "replace").strip() for m in _GROUP_RUN.finditer(log)]
        middle = [f"Run {cmd}"[:100] for cmd in runs[:30]] or ["Run tests"]
        named = [(name, "success") for name in middle]
        if conclusion != "success":
            named[-1] = (named[-1][0], conclusion)
        named = [("Set up job", "success"), *named, ("Complete job", "success")]
    span = (end - start) / max(1, len(named))
    steps = []
    failed = False
    for number, (name, step_conclusion) in enumerate(named, start=1):
        if failed and name != "Complete job":
            step_conclusion = "skipped"
        steps.append(
            StepRecord(
                number=number,
                name=name,
                conclusion=step_conclusion,
                started_at=start + span * (number - 1),
                completed_at=start + span * number,
            )
        )
        failed = failed or step_conclusion in ("failure", "timed_out", "cancelled")
    return steps


def synthetic_log(name: str, conclusion: str, start: datetime, duration: float) -> bytes:
    """A log shaped like a real GitHub Actions log, for jobs seeded without one."""
    stamp = start

    def line(text: str) -> str:
        nonlocal stamp
        stamp = stamp + timedelta(milliseconds=137)
        return f"{stamp.strftime('%Y-%m-%dT%H:%M:%S.%f')}0Z {text}"

    lines = [
        line("Requested labels: ubuntu-latest"),
        line(f"Job defined at: sandbox/.github/workflows/ci.yml@refs/heads/main ({name})"),
        line("##[group]Operating System"),
        line("Ubuntu"),
        line("22.04.4"),
        line("##[endgroup]"),
        line("##[group]Run python -m pytest -q"),
        line("python -m pytest -q"),
        line("##[endgroup]"),
    ]
    if conclusion == "success":
        lines += [
            line("........................................  [100%]"),
            line("40 passed in 3.21s"),
        ]
    elif conclusion == "cancelled":
        lines += [line("##[error]The operation was canceled.")]
    else:
        lines += [
            line("..........F.............................  [100%]"),
            line(
                "=================================== FAILURES ==================================="
            ),
            line(
                "_________________________________ test_example _________________________________"
            ),
            line("    def test_example():"),
            line(">       assert compute() == 3"),
            line("E       assert 2 == 3"),
            line("tests/test_example.py:12: AssertionError"),
            line(
                "=========================== short test summary info ============================"
            ),
            line("FAILED tests/test_example.py::test_example - assert 2 == 3"),
            line("1 failed, 39 passed in 3.35s"),
            line("##[error]Process completed with exit code 1."),
        ]
    lines.append(line("Cleaning up orphan processes"))
    return ("\n".join(lines) + "\n").encode()


# ============================================================================ JSON shapes


class Shapes:
    """Builds response bodies shaped like api.github.com's for one request's base URL."""

    def __init__(self, state: GitHubState, base: str) -> None:
        self.state = state
        self.base = base.rstrip("/")
        self.web = self.base  # html_url links point at the sandbox too

    def user(self, login: str, *, kind: str = "User", uid: int | None = None) -> dict[str, Any]:
        uid = uid if uid is not None else 1000 + (int(fake_sha(login)[:6], 16) % 100_000)
        u = f"{self.base}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": f"MDQ6VXNlcj{uid}",
            "avatar_url": f"{self.base}/avatars/{login}",
            "gravatar_id": "",
            "url": u,
            "html_url": f"{self.web}/{login}",
            "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}",
            "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs",
            "repos_url": f"{u}/repos",
            "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events",
            "type": kind,
            "user_view_type": "public",
            "site_admin": False,
        }

    def bot(self) -> dict[str, Any]:
        return self.user("contexten-sandbox[bot]", kind="Bot", uid=41898282)

    def repo_min(self, repo: RepoRecord) -> dict[str, Any]:
        r = f"{self.base}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": f"R_kgDO{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.user(repo.owner, kind="Organization"),
            "private": repo.private,
            "html_url": f"{self.web}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": r,
            "archive_url": f"{r}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{r}/assignees{{/user}}",
            "blobs_url": f"{r}/git/blobs{{/sha}}",
            "branches_url": f"{r}/branches{{/branch}}",
            "collaborators_url": f"{r}/collaborators{{/collaborator}}",
            "comments_url": f"{r}/comments{{/number}}",
            "commits_url": f"{r}/commits{{/sha}}",
            "compare_url": f"{r}/compare/{{base}}...{{head}}",
            "contents_url": f"{r}/contents/{{+path}}",
            "contributors_url": f"{r}/contributors",
            "deployments_url": f"{r}/deployments",
            "downloads_url": f"{r}/downloads",
            "events_url": f"{r}/events",
            "forks_url": f"{r}/forks",
            "git_commits_url": f"{r}/git/commits{{/sha}}",
            "git_refs_url": f"{r}/git/refs{{/sha}}",
            "git_tags_url": f"{r}/git/tags{{/sha}}",
            "hooks_url": f"{r}/hooks",
            "issue_comment_url": f"{r}/issues/comments{{/number}}",
            "issue_events_url": f"{r}/issues/events{{/number}}",
            "issues_url": f"{r}/issues{{/number}}",
            "keys_url": f"{r}/keys{{/key_id}}",
            "labels_url": f"{r}/labels{{/name}}",
            "languages_url": f"{r}/languages",
            "merges_url": f"{r}/merges",
            "milestones_url": f"{r}/milestones{{/number}}",
            "notifications_url": f"{r}/notifications{{?since,all,participating}}",
            "pulls_url": f"{r}/pulls{{/number}}",
            "releases_url": f"{r}/releases{{/id}}",
            "stargazers_url": f"{r}/stargazers",
            "statuses_url": f"{r}/statuses/{{sha}}",
            "subscribers_url": f"{r}/subscribers",
            "subscription_url": f"{r}/subscription",
            "tags_url": f"{r}/tags",
            "teams_url": f"{r}/teams",
            "trees_url": f"{r}/git/trees{{/sha}}",
        }

    def repo_full(self, repo: RepoRecord) -> dict[str, Any]:
        data = self.repo_min(repo)
        created = iso(repo.created_at)
        data.update(
            {
                "git_url": f"git://sandbox/{repo.full_name}.git",
                "ssh_url": f"git@sandbox:{repo.full_name}.git",
                "clone_url": f"{self.web}/{repo.full_name}.git",
                "svn_url": f"{self.web}/{repo.full_name}",
                "mirror_url": None,
                "homepage": None,
                "language": "Python",
                "forks_count": 0,
                "forks": 0,
                "stargazers_count": 0,
                "watchers_count": 0,
                "watchers": 0,
                "subscribers_count": 0,
                "network_count": 0,
                "size": 100,
                "default_branch": repo.default_branch,
                "open_issues_count": sum(1 for i in repo.issues.values() if i.state == "open"),
                "open_issues": sum(1 for i in repo.issues.values() if i.state == "open"),
                "is_template": False,
                "topics": [],
                "has_issues": True,
                "has_projects": False,
                "has_wiki": False,
                "has_pages": False,
                "has_downloads": True,
                "has_discussions": False,
                "archived": False,
                "disabled": False,
                "visibility": "private" if repo.private else "public",
                "pushed_at": created,
                "created_at": created,
                "updated_at": created,
                "license": None,
                "permissions": {
                    "admin": False,
                    "maintain": False,
                    "push": True,
                    "triage": True,
                    "pull": True,
                },
            }
        )
        return data

    def head_commit(self, repo: RepoRecord, sha: str, when: datetime) -> dict[str, Any]:
        person = {"name": "Octo Cat", "email": "octocat@users.noreply.github.com"}
        return {
            "id": sha,
            "tree_id": fake_sha("tree", sha),
            "message": repo.commit_messages.get(sha, "Commit"),
            "timestamp": iso(when),
            "author": person,
            "committer": person,
        }

    def pr_min(self, repo: RepoRecord, number: int) -> dict[str, Any] | None:
        pull = repo.pulls.get(number)
        if pull is None:
            return None
        small = {"id": repo.id, "url": f"{self.base}/repos/{repo.full_name}", "name": repo.name}
        return {
            "id": pull.id,
            "number": pull.number,
            "url": f"{self.base}/repos/{repo.full_name}/pulls/{pull.number}",
            "head": {"ref": pull.head, "sha": pull.head_sha, "repo": small},
            "base": {"ref": pull.base, "sha": pull.base_sha, "repo": small},
        }

    def run(self, run: RunRecord, attempt: AttemptRecord | None = None) -> dict[str, Any]:
        repo = self.state.repos[run.repo]
        attempt = attempt or run.attempt
        status, conclusion = self.state.run_status(run)
        if attempt is not run.attempt:
            status, conclusion = "completed", _attempt_conclusion(attempt)
        repo_url = f"{self.base}/repos/{repo.full_name}"
        r = f"{repo_url}/actions/runs/{run.id}"
        updated = max(
            [attempt.run_started_at, *[j.completed_at or j.started_at for j in attempt.jobs]]
        )
        data: dict[str, Any] = {
            "id": run.id,
            "name": run.workflow.name,
            "node_id": f"WFR_kwLO{run.id}",
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": run.workflow.path,
            "display_title": run.display_title,
            "run_number": run.run_number,
            "event": run.event,
            "status": status,
            "conclusion": conclusion,
            "workflow_id": run.workflow.id,
            "check_suite_id": 20_000_000_000 + run.id,
            "check_suite_node_id": f"CS_kwDO{run.id}",
            "url": r,
            "html_url": f"{self.web}/{repo.full_name}/actions/runs/{run.id}",
            "pull_requests": [p for n in run.pull_requests if (p := self.pr_min(repo, n))],
            "created_at": iso(run.created_at),
            "updated_at": iso(updated),
            "actor": self.user(run.actor),
            "triggering_actor": self.user(run.actor),
            "run_attempt": attempt.number,
            "referenced_workflows": [],
            "run_started_at": iso(attempt.run_started_at),
            "jobs_url": f"{r}/jobs",
            "logs_url": f"{r}/logs",
            "check_suite_url": f"{repo_url}/check-suites/{20_000_000_000 + run.id}",
            "artifacts_url": f"{r}/artifacts",
            "cancel_url": f"{r}/cancel",
            "rerun_url": f"{r}/rerun",
            "previous_attempt_url": (
                f"{r}/attempts/{attempt.number - 1}" if attempt.number > 1 else None
            ),
            "workflow_url": f"{repo_url}/actions/workflows/{run.workflow.id}",
            "head_commit": self.head_commit(repo, run.head_sha, run.created_at),
            "repository": self.repo_min(repo),
            "head_repository": self.repo_min(repo),
        }
        return data

    def job(self, job: JobRecord) -> dict[str, Any]:
        run = self.state.runs[job.run_id]
        repo = self.state.repos[run.repo]
        status, conclusion = self.state.job_status(job)
        done = status == "completed"
        r = f"{self.base}/repos/{repo.full_name}"
        steps = []
        for step in job.steps:
            steps.append(
                {
                    "name": step.name,
                    "status": "completed" if done else "in_progress",
                    "conclusion": step.conclusion if done else None,
                    "number": step.number,
                    "started_at": iso(step.started_at),
                    "completed_at": iso(step.completed_at) if done else None,
                }
            )
        return {
            "id": job.id,
            "run_id": job.run_id,
            "run_url": f"{r}/actions/runs/{job.run_id}",
            "run_attempt": job.run_attempt,
            "node_id": f"CR_kwDO{job.id}",
            "head_sha": run.head_sha,
            "url": f"{r}/actions/jobs/{job.id}",
            "html_url": f"{self.web}/{repo.full_name}/actions/runs/{job.run_id}/job/{job.id}",
            "status": status,
            "conclusion": conclusion,
            "created_at": iso(job.created_at),
            "started_at": iso(job.started_at),
            "completed_at": iso(job.completed_at) if done else None,
            "name": job.name,
            "steps": steps,
            "check_run_url": f"{r}/check-runs/{job.check_run_id}",
            "labels": list(job.spec.labels),
            "runner_id": 1,
            "runner_name": job.spec.runner_name,
            "runner_group_id": 2,
            "runner_group_name": "GitHub Actions",
            "workflow_name": run.workflow.name,
            "head_branch": run.head_branch,
        }

    def artifact(self, artifact: ArtifactRecord) -> dict[str, Any]:
        run = self.state.runs[artifact.run_id]
        repo = self.state.repos[run.repo]
        r = f"{self.base}/repos/{repo.full_name}/actions/artifacts/{artifact.id}"
        return {
            "id": artifact.id,
            "node_id": f"MDg6QXJ0aWZhY3Q{artifact.id}",
            "name": artifact.name,
            "size_in_bytes": len(artifact.data),
            "url": r,
            "archive_download_url": f"{r}/zip",
            "expired": artifact.expired,
            "created_at": iso(artifact.created_at),
            "expires_at": iso(artifact.expires_at),
            "updated_at": iso(artifact.created_at),
            "digest": "sha256:" + hashlib.sha256(artifact.data).hexdigest(),
            "workflow_run": {
                "id": run.id,
                "repository_id": repo.id,
                "head_repository_id": repo.id,
                "head_branch": artifact.head_branch,
                "head_sha": artifact.head_sha,
            },
        }

    def comment(self, repo: RepoRecord, comment: CommentRecord) -> dict[str, Any]:
        r = f"{self.base}/repos/{repo.full_name}"
        kind = (
            "pull"
            if repo.issues.get(comment.issue_number, IssueRecord(0, "", None)).is_pull
            else "issues"
        )
        return {
            "id": comment.id,
            "node_id": f"IC_kwDO{comment.id}",
            "url": f"{r}/issues/comments/{comment.id}",
            "html_url": f"{self.web}/{repo.full_name}/{kind}/{comment.issue_number}"
            f"#issuecomment-{comment.id}",
            "body": comment.body,
            "user": self.bot(),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.created_at),
            "issue_url": f"{r}/issues/{comment.issue_number}",
            "author_association": "NONE",
        }

    def issue(self, repo: RepoRecord, issue: IssueRecord) -> dict[str, Any]:
        r = f"{self.base}/repos/{repo.full_name}"
        comments = sum(1 for c in repo.comments if c.issue_number == issue.number)
        return {
            "id": issue.id,
            "node_id": f"I_kwDO{issue.id}",
            "url": f"{r}/issues/{issue.number}",
            "repository_url": r,
            "labels_url": f"{r}/issues/{issue.number}/labels{{/name}}",
            "comments_url": f"{r}/issues/{issue.number}/comments",
            "events_url": f"{r}/issues/{issue.number}/events",
            "html_url": f"{self.web}/{repo.full_name}/issues/{issue.number}",
            "number": issue.number,
            "state": issue.state,
            "title": issue.title,
            "body": issue.body,
            "user": self.bot(),
            "labels": [
                {
                    "id": int(fake_sha(name)[:8], 16),
                    "node_id": f"LA_{fake_sha(name)[:10]}",
                    "url": f"{r}/labels/{quote(name)}",
                    "name": name,
                    "description": None,
                    "color": "ededed",
                    "default": False,
                }
                for name in issue.labels
            ],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "comments": comments,
            "closed_at": None,
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.created_at),
            "author_association": "NONE",
        }

    def check_run(self, repo: RepoRecord, check: CheckRunRecord) -> dict[str, Any]:
        r = f"{self.base}/repos/{repo.full_name}"
        return {
            "id": check.id,
            "head_sha": check.head_sha,
            "node_id": f"CR_kwDO{check.id}",
            "external_id": check.external_id,
            "url": f"{r}/check-runs/{check.id}",
            "html_url": f"{self.web}/{repo.full_name}/runs/{check.id}",
            "details_url": check.details_url,
            "status": check.status,
            "conclusion": check.conclusion,
            "started_at": iso(check.started_at),
            "completed_at": iso(check.completed_at),
            "output": {
                "title": check.title,
                "summary": check.summary,
                "text": check.text,
                "annotations_count": len(check.annotations),
                "annotations_url": f"{r}/check-runs/{check.id}/annotations",
            },
            "name": check.name,
            "check_suite": {"id": 20_000_000_000 + check.id},
            "app": self.app(),
            "pull_requests": [
                p
                for n, pull in repo.pulls.items()
                if pull.head_sha == check.head_sha and (p := self.pr_min(repo, n))
            ],
        }

    def app(self) -> dict[str, Any]:
        return {
            "id": 424242,
            "slug": "contexten-sandbox",
            "node_id": "A_kwDOsandbox",
            "client_id": "Iv1.sandbox",
            "owner": self.user("contexten", kind="Organization"),
            "name": "contexten sandbox",
            "description": "The sandbox's GitHub App",
            "external_url": self.base,
            "html_url": f"{self.web}/apps/contexten-sandbox",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": {"checks": "write", "actions": "write", "contents": "write"},
            "events": ["check_run", "workflow_run", "workflow_job"],
        }

    def ref(self, repo: RepoRecord, branch: str) -> dict[str, Any]:
        sha = repo.branches[branch]
        r = f"{self.base}/repos/{repo.full_name}"
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_kwDO{fake_sha(repo.full_name, branch)[:12]}",
            "url": f"{r}/git/refs/heads/{quote(branch)}",
            "object": {"type": "commit", "sha": sha, "url": f"{r}/git/commits/{sha}"},
        }

    def content(self, repo: RepoRecord, path: str, data: bytes, ref: str) -> dict[str, Any]:
        sha = git_blob_sha(data)
        r = f"{self.base}/repos/{repo.full_name}"
        url = f"{r}/contents/{quote(path)}?ref={quote(ref)}"
        git_url = f"{r}/git/blobs/{sha}"
        html = f"{self.web}/{repo.full_name}/blob/{quote(ref)}/{quote(path)}"
        encoded = base64.encodebytes(data).decode("ascii")
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": encoded,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html,
            "download_url": f"{self.base}/raw/{repo.full_name}/{quote(ref)}/{quote(path)}",
            "_links": {"self": url, "git": git_url, "html": html},
        }

    def pull(self, repo: RepoRecord, pull: PullRecord) -> dict[str, Any]:
        r = f"{self.base}/repos/{repo.full_name}"
        p = f"{r}/pulls/{pull.number}"
        html = f"{self.web}/{repo.full_name}/pull/{pull.number}"

        def side(branch: str, sha: str) -> dict[str, Any]:
            return {
                "label": f"{repo.owner}:{branch}",
                "ref": branch,
                "sha": sha,
                "user": self.user(repo.owner, kind="Organization"),
                "repo": self.repo_full(repo),
            }

        return {
            "url": p,
            "id": pull.id,
            "node_id": f"PR_kwDO{pull.id}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{r}/issues/{pull.number}",
            "commits_url": f"{p}/commits",
            "review_comments_url": f"{p}/comments",
            "review_comment_url": f"{r}/pulls/comments{{/number}}",
            "comments_url": f"{r}/issues/{pull.number}/comments",
            "statuses_url": f"{r}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self.bot(),
            "body": pull.body,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(pull.created_at),
            "updated_at": iso(pull.created_at),
            "closed_at": None,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            # the head moves with its branch, as on GitHub
            "head": side(pull.head, repo.branches.get(pull.head, pull.head_sha)),
            "base": side(pull.base, pull.base_sha),
            "_links": {
                "self": {"href": p},
                "html": {"href": html},
                "issue": {"href": f"{r}/issues/{pull.number}"},
                "comments": {"href": f"{r}/issues/{pull.number}/comments"},
                "review_comments": {"href": f"{p}/comments"},
                "review_comment": {"href": f"{r}/pulls/comments{{/number}}"},
                "commits": {"href": f"{p}/commits"},
                "statuses": {"href": f"{r}/statuses/{pull.head_sha}"},
            },
            "author_association": "NONE",
            "auto_merge": None,
            "draft": pull.draft,
            "merged": False,
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "clean",
            "merged_by": None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        }

    def pull_simple(self, repo: RepoRecord, pull: PullRecord) -> dict[str, Any]:
        """The list shape (pull-request-simple): the full shape minus the counters."""
        data = self.pull(repo, pull)
        for key in (
            "merged",
            "mergeable",
            "rebaseable",
            "mergeable_state",
            "merged_by",
            "comments",
            "review_comments",
            "maintainer_can_modify",
            "commits",
            "additions",
            "deletions",
            "changed_files",
        ):
            data.pop(key, None)
        return data

    def release(self, repo: RepoRecord, release: ReleaseRecord) -> dict[str, Any]:
        r = f"{self.base}/repos/{repo.full_name}/releases/{release.id}"
        tag = quote(release.tag_name)
        html_kind = "untagged-" + fake_sha(release.id)[:20] if release.draft else tag
        return {
            "url": r,
            "html_url": f"{self.web}/{repo.full_name}/releases/tag/{html_kind}",
            "assets_url": f"{r}/assets",
            "upload_url": f"{self.base}/uploads/repos/{repo.full_name}/releases/{release.id}"
            "/assets{?name,label}",
            "tarball_url": f"{self.base}/repos/{repo.full_name}/tarball/{tag}",
            "zipball_url": f"{self.base}/repos/{repo.full_name}/zipball/{tag}",
            "id": release.id,
            "node_id": f"RE_kwDO{release.id}",
            "tag_name": release.tag_name,
            "target_commitish": release.target_commitish,
            "name": release.name,
            "body": release.body,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "immutable": False,
            "created_at": iso(release.created_at),
            "published_at": None if release.draft else iso(release.created_at),
            "author": self.bot(),
            "assets": [],
        }

    def cache(self, cache: CacheRecord) -> dict[str, Any]:
        return {
            "id": cache.id,
            "ref": cache.ref,
            "key": cache.key,
            "version": cache.version,
            "last_accessed_at": iso(cache.created_at),
            "created_at": iso(cache.created_at),
            "size_in_bytes": cache.size_in_bytes,
        }


def _attempt_conclusion(attempt: AttemptRecord) -> str:
    conclusions = [j.conclusion for j in attempt.jobs]
    if attempt.cancelled or "cancelled" in conclusions:
        return "cancelled"
    for bad in ("failure", "timed_out"):
        if bad in conclusions:
            return bad
    return "success"


# ============================================================================ HTTP helpers


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    body = {"message": message, "documentation_url": DOCS, "status": str(status), **extra}
    return JSONResponse(body, status_code=status)


def not_found() -> JSONResponse:
    return error(404, "Not Found")


def validation_failed(
    resource: str, field_name: str, code: str, message: str | None = None
) -> JSONResponse:
    item: dict[str, Any] = {"resource": resource, "field": field_name, "code": code}
    if message:
        item["message"] = message
    return error(422, "Validation Failed", errors=[item])


def created(body: Any, location: str | None = None) -> JSONResponse:
    headers = {"Location": location} if location else None
    return JSONResponse(body, status_code=201, headers=headers)


async def read_json(request: Request) -> dict[str, Any] | JSONResponse:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return error(400, "Problems parsing JSON")
    if not isinstance(data, dict):
        return error(400, "Body should be a JSON object")
    return data


def page_params(request: Request) -> tuple[int, int] | JSONResponse:
    try:
        per_page = int(request.query_params.get("per_page", DEFAULT_PER_PAGE))
        page = int(request.query_params.get("page", 1))
    except ValueError:
        return error(422, "Invalid per_page or page parameter")
    return max(1, min(per_page, MAX_PER_PAGE)), max(1, page)


def paginate(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]] | JSONResponse:
    """One page of `items` and the Link header for the others."""
    params = page_params(request)
    if isinstance(params, JSONResponse):
        return params
    per_page, page = params
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []

    def url(number: int) -> str:
        return str(request.url.include_query_params(page=number, per_page=per_page))

    if page > 1:
        links.append(f'<{url(page - 1)}>; rel="prev"')
    if page < last:
        links.append(f'<{url(page + 1)}>; rel="next"')
        links.append(f'<{url(last)}>; rel="last"')
    if page > 1:
        links.append(f'<{url(1)}>; rel="first"')
    return chunk, ({"Link": ", ".join(links)} if links else {})


def _compare(op: str, bound: datetime) -> Any:
    if op == ">=":
        return lambda t: t >= bound
    if op == "<=":
        return lambda t: t <= bound
    if op == ">":
        return lambda t: t > bound
    return lambda t: t < bound


def _created_filter(spec: str) -> Any:
    """A predicate for GitHub's `created` search syntax on datetimes."""

    def parse(text: str, end: bool = False) -> datetime:
        text = text.strip()
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1) if end else day
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))

    spec = spec.strip()
    if ".." in spec:
        low, high = spec.split("..", 1)
        lo = None if low in ("", "*") else parse(low)
        hi = None if high in ("", "*") else parse(high, end=True)
        return lambda t: (lo is None or t >= lo) and (hi is None or t <= hi)
    for op in (">=", "<=", ">", "<"):
        if spec.startswith(op):
            return _compare(op, parse(spec[len(op) :], end=op in ("<=", ">")))
    lo, hi = parse(spec), parse(spec, end=True)
    return lambda t: lo <= t <= hi


# ============================================================================ the app


class _GitHubHeaders(BaseHTTPMiddleware):
    """Authentication, API version, rate limit accounting and headers on every response."""

    def __init__(self, app: Any, state: GitHubState) -> None:
        super().__init__(app)
        self.state = state

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if path.startswith("/_blobs/"):
            return await call_next(request)
        version = request.headers.get("x-github-api-version")
        if version is not None and version not in API_VERSIONS:
            return error(400, f"Unsupported 'X-GitHub-Api-Version' header: {version}")
        token = _bearer(request)
        app_route = path.startswith("/app/")
        if not app_route and (token is None or not self.state.token_valid(token)):
            message = "Requires authentication" if token is None else "Bad credentials"
            return error(401, message)
        key = token or "anonymous"
        if path == "/rate_limit" or app_route:  # these do not count against the limit
            allowed = True
            remaining, used, reset = self.state.peek_rate_limit(key)
        else:
            allowed, remaining, used, reset = self.state.take_rate_limit(key)
        response: Response
        if allowed:
            response = await call_next(request)
        else:
            response = error(403, "API rate limit exceeded for user ID 1.")
        response.headers["x-ratelimit-limit"] = str(self.state.rate_limit)
        response.headers["x-ratelimit-remaining"] = str(remaining)
        response.headers["x-ratelimit-used"] = str(used)
        response.headers["x-ratelimit-reset"] = str(reset)
        response.headers["x-ratelimit-resource"] = "core"
        response.headers["x-github-api-version-selected"] = version or "2022-11-28"
        response.headers["x-github-request-id"] = secrets.token_hex(8).upper()
        return response


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return None


def create_app(state: GitHubState, faults: FaultInjector | None = None) -> FastAPI:
    """The GitHub REST API over `state`."""
    faults = faults or FaultInjector(service="github")
    app = FastAPI(
        title="contexten sandbox: GitHub", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.add_middleware(_GitHubHeaders, state=state)
    app.state.github = state
    _routes_actions(app, state, faults)
    _routes_repo(app, state)
    _routes_misc(app, state)
    return app


def _shapes(state: GitHubState, request: Request) -> Shapes:
    return Shapes(state, str(request.base_url))


def _repo_or_none(state: GitHubState, owner: str, repo: str) -> RepoRecord | None:
    return state.repos.get(f"{owner}/{repo}")


def _run_or_none(state: GitHubState, owner: str, repo: str, run_id: int) -> RunRecord | None:
    run = state.runs.get(run_id)
    if run is None or run.repo != f"{owner}/{repo}":
        return None
    return run


def _blob_url(
    state: GitHubState, faults: FaultInjector, request: Request, kind: str, ident: int
) -> str:
    expires = int(time.time() + faults.log_url_lifetime())
    sig = state.sign_blob(kind, ident, expires)
    return f"{str(request.base_url).rstrip('/')}/_blobs/{kind}/{ident}?expires={expires}&sig={sig}"


def _routes_actions(app: FastAPI, state: GitHubState, faults: FaultInjector) -> None:
    @app.get("/repos/{owner}/{repo}/actions/runs")
    async def list_runs(owner: str, repo: str, request: Request) -> Response:
        return _list_runs(state, request, owner, repo, None)

    @app.get("/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs")
    async def list_workflow_runs(
        owner: str, repo: str, workflow_id: str, request: Request
    ) -> Response:
        return _list_runs(state, request, owner, repo, workflow_id)

    @app.get("/repos/{owner}/{repo}/actions/workflows")
    async def list_workflows(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            base = str(request.base_url).rstrip("/")
            items = [
                {
                    "id": w.id,
                    "node_id": f"W_kwDO{w.id}",
                    "name": w.name,
                    "path": w.path,
                    "state": w.state,
                    "created_at": iso(w.created_at),
                    "updated_at": iso(w.created_at),
                    "url": f"{base}/repos/{record.full_name}/actions/workflows/{w.id}",
                    "html_url": f"{base}/{record.full_name}/blob/{record.default_branch}/{w.path}",
                    "badge_url": f"{base}/{record.full_name}/workflows/{quote(w.name)}/badge.svg",
                }
                for w in record.workflows.values()
            ]
        page = paginate(request, items)
        if isinstance(page, JSONResponse):
            return page
        return JSONResponse({"total_count": len(items), "workflows": page[0]}, headers=page[1])

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}")
    async def get_run(owner: str, repo: str, run_id: int, request: Request) -> Response:
        with state.lock:
            run = _run_or_none(state, owner, repo, run_id)
            if run is None:
                return not_found()
            return JSONResponse(_shapes(state, request).run(run))

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}")
    async def get_run_attempt(
        owner: str, repo: str, run_id: int, attempt_number: int, request: Request
    ) -> Response:
        with state.lock:
            run = _run_or_none(state, owner, repo, run_id)
            if run is None or not 1 <= attempt_number <= len(run.attempts):
                return not_found()
            return JSONResponse(_shapes(state, request).run(run, run.attempts[attempt_number - 1]))

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/jobs")
    async def list_jobs(owner: str, repo: str, run_id: int, request: Request) -> Response:
        return _list_jobs(state, request, owner, repo, run_id, None)

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs")
    async def list_attempt_jobs(
        owner: str, repo: str, run_id: int, attempt_number: int, request: Request
    ) -> Response:
        return _list_jobs(state, request, owner, repo, run_id, attempt_number)

    @app.get("/repos/{owner}/{repo}/actions/jobs/{job_id}")
    async def get_job(owner: str, repo: str, job_id: int, request: Request) -> Response:
        with state.lock:
            job = state.jobs.get(job_id)
            if job is None or state.runs[job.run_id].repo != f"{owner}/{repo}":
                return not_found()
            return JSONResponse(_shapes(state, request).job(job))

    @app.get("/repos/{owner}/{repo}/actions/jobs/{job_id}/logs")
    async def job_logs(owner: str, repo: str, job_id: int, request: Request) -> Response:
        with state.lock:
            job = state.jobs.get(job_id)
            if job is None or state.runs[job.run_id].repo != f"{owner}/{repo}":
                return not_found()
        return RedirectResponse(
            _blob_url(state, faults, request, "job-log", job_id), status_code=302
        )

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/logs")
    async def run_logs(owner: str, repo: str, run_id: int, request: Request) -> Response:
        with state.lock:
            if _run_or_none(state, owner, repo, run_id) is None:
                return not_found()
        return RedirectResponse(
            _blob_url(state, faults, request, "run-logs", run_id), status_code=302
        )

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/logs")
    async def attempt_logs(
        owner: str, repo: str, run_id: int, attempt_number: int, request: Request
    ) -> Response:
        with state.lock:
            run = _run_or_none(state, owner, repo, run_id)
            if run is None or not 1 <= attempt_number <= len(run.attempts):
                return not_found()
        ident = run_id * 1000 + attempt_number
        return RedirectResponse(
            _blob_url(state, faults, request, "attempt-logs", ident), status_code=302
        )

    @app.get("/_blobs/{kind}/{ident}")
    async def blob(kind: str, ident: int, request: Request) -> Response:
        return _blob(state, kind, ident, request)

    @app.post("/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs")
    async def rerun_failed(owner: str, repo: str, run_id: int, request: Request) -> Response:
        return await _rerun(state, request, owner, repo, run_id, failed_only=True)

    @app.post("/repos/{owner}/{repo}/actions/runs/{run_id}/rerun")
    async def rerun_all(owner: str, repo: str, run_id: int, request: Request) -> Response:
        return await _rerun(state, request, owner, repo, run_id, failed_only=False)

    @app.post("/repos/{owner}/{repo}/actions/jobs/{job_id}/rerun")
    async def rerun_job(owner: str, repo: str, job_id: int, request: Request) -> Response:
        with state.lock:
            job = state.jobs.get(job_id)
            if job is None:
                return not_found()
            run_id = job.run_id
        return await _rerun(state, request, owner, repo, run_id, failed_only=False, job_id=job_id)

    @app.post("/repos/{owner}/{repo}/actions/runs/{run_id}/cancel")
    async def cancel(owner: str, repo: str, run_id: int) -> Response:
        return _cancel(state, owner, repo, run_id, force=False)

    @app.post("/repos/{owner}/{repo}/actions/runs/{run_id}/force-cancel")
    async def force_cancel(owner: str, repo: str, run_id: int) -> Response:
        return _cancel(state, owner, repo, run_id, force=True)

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/timing")
    async def timing(owner: str, repo: str, run_id: int) -> Response:
        with state.lock:
            run = _run_or_none(state, owner, repo, run_id)
            if run is None:
                return not_found()
            jobs = run.attempt.jobs
            job_runs = []
            for job in jobs:
                end = job.completed_at or utc()
                job_runs.append(
                    {
                        "job_id": job.id,
                        "duration_ms": int((end - job.started_at).total_seconds() * 1000),
                    }
                )
            total = sum(j["duration_ms"] for j in job_runs)
            ends = [j.completed_at or utc() for j in jobs] or [run.attempt.run_started_at]
            duration = int((max(ends) - run.attempt.run_started_at).total_seconds() * 1000)
            return JSONResponse(
                {
                    "billable": {
                        "UBUNTU": {"total_ms": total, "jobs": len(jobs), "job_runs": job_runs}
                    },
                    "run_duration_ms": max(0, duration),
                }
            )

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts")
    async def artifacts(owner: str, repo: str, run_id: int, request: Request) -> Response:
        with state.lock:
            run = _run_or_none(state, owner, repo, run_id)
            if run is None:
                return not_found()
            name = request.query_params.get("name")
            items = [a for a in run.artifacts if name is None or a.name == name]
            items.sort(key=lambda a: a.created_at, reverse=True)
            shapes = _shapes(state, request)
            page = paginate(request, items)
            if isinstance(page, JSONResponse):
                return page
            body = {"total_count": len(items), "artifacts": [shapes.artifact(a) for a in page[0]]}
            return JSONResponse(body, headers=page[1])

    @app.get("/repos/{owner}/{repo}/actions/artifacts/{artifact_id}")
    async def get_artifact(owner: str, repo: str, artifact_id: int, request: Request) -> Response:
        with state.lock:
            artifact = state.artifacts.get(artifact_id)
            if artifact is None or state.runs[artifact.run_id].repo != f"{owner}/{repo}":
                return not_found()
            return JSONResponse(_shapes(state, request).artifact(artifact))

    @app.get("/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}")
    async def download_artifact(
        owner: str, repo: str, artifact_id: int, archive_format: str, request: Request
    ) -> Response:
        with state.lock:
            artifact = state.artifacts.get(artifact_id)
            if artifact is None or state.runs[artifact.run_id].repo != f"{owner}/{repo}":
                return not_found()
            if archive_format != "zip":
                return validation_failed("Artifact", "archive_format", "invalid")
            if artifact.expired:
                return error(410, "Artifact has expired")
        return RedirectResponse(
            _blob_url(state, faults, request, "artifact", artifact_id), status_code=302
        )

    @app.get("/repos/{owner}/{repo}/actions/caches")
    async def list_caches(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            key = request.query_params.get("key")
            ref = request.query_params.get("ref")
            items = [
                c
                for c in record.caches
                if (key is None or c.key.startswith(key)) and (ref is None or c.ref == ref)
            ]
            shapes = _shapes(state, request)
            page = paginate(request, items)
            if isinstance(page, JSONResponse):
                return page
            body = {"total_count": len(items), "actions_caches": [shapes.cache(c) for c in page[0]]}
            return JSONResponse(body, headers=page[1])

    @app.delete("/repos/{owner}/{repo}/actions/caches")
    async def delete_caches_by_key(owner: str, repo: str, request: Request) -> Response:
        key = request.query_params.get("key")
        if not key:
            return validation_failed("ActionsCache", "key", "missing_field")
        ref = request.query_params.get("ref")
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            gone = [c for c in record.caches if c.key == key and (ref is None or c.ref == ref)]
            if not gone:
                return not_found()
            record.caches = [c for c in record.caches if c not in gone]
            state.received["cache_delete"] += len(gone)
            shapes = _shapes(state, request)
            return JSONResponse(
                {"total_count": len(gone), "actions_caches": [shapes.cache(c) for c in gone]}
            )

    @app.delete("/repos/{owner}/{repo}/actions/caches/{cache_id}")
    async def delete_cache(owner: str, repo: str, cache_id: int) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            before = len(record.caches)
            record.caches = [c for c in record.caches if c.id != cache_id]
            if len(record.caches) == before:
                return not_found()
            state.received["cache_delete"] += 1
        return Response(status_code=204)


def _list_runs(
    state: GitHubState, request: Request, owner: str, repo: str, workflow: str | None
) -> Response:
    q = request.query_params
    with state.lock:
        record = _repo_or_none(state, owner, repo)
        if record is None:
            return not_found()
        runs = [r for r in state.runs.values() if r.repo == record.full_name]
        if workflow is not None:
            wanted = [
                w.id
                for w in record.workflows.values()
                if str(w.id) == workflow or w.path.endswith("/" + workflow)
            ]
            if not wanted:
                return not_found()
            runs = [r for r in runs if r.workflow.id in wanted]
        if q.get("branch"):
            runs = [r for r in runs if r.head_branch == q["branch"]]
        if q.get("event"):
            runs = [r for r in runs if r.event == q["event"]]
        if q.get("actor"):
            runs = [r for r in runs if r.actor == q["actor"]]
        if q.get("head_sha"):
            runs = [r for r in runs if r.head_sha == q["head_sha"]]
        if q.get("status"):
            wanted_status = q["status"]
            if wanted_status not in CONCLUSIONS | STATUSES:
                return validation_failed("WorkflowRun", "status", "invalid")
            if wanted_status in CONCLUSIONS:
                runs = [r for r in runs if state.run_status(r)[1] == wanted_status]
            else:
                runs = [r for r in runs if state.run_status(r)[0] == wanted_status]
        if q.get("created"):
            try:
                predicate = _created_filter(q["created"])
            except ValueError:
                return validation_failed("WorkflowRun", "created", "invalid")
            runs = [r for r in runs if predicate(r.created_at)]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        if any(q.get(k) for k in ("branch", "event", "actor", "status", "created", "head_sha")):
            runs = runs[:1000]  # GitHub returns at most 1,000 filtered results
        page = paginate(request, runs)
        if isinstance(page, JSONResponse):
            return page
        shapes = _shapes(state, request)
        body = {"total_count": len(runs), "workflow_runs": [shapes.run(r) for r in page[0]]}
        return JSONResponse(body, headers=page[1])


def _list_jobs(
    state: GitHubState, request: Request, owner: str, repo: str, run_id: int, attempt: int | None
) -> Response:
    with state.lock:
        run = _run_or_none(state, owner, repo, run_id)
        if run is None:
            return not_found()
        if attempt is not None:
            if not 1 <= attempt <= len(run.attempts):
                return not_found()
            jobs = list(run.attempts[attempt - 1].jobs)
        else:
            which = request.query_params.get("filter", "latest")
            if which not in ("latest", "all"):
                return validation_failed("Job", "filter", "invalid")
            jobs = run.latest_jobs() if which == "latest" else run.all_jobs()
        page = paginate(request, jobs)
        if isinstance(page, JSONResponse):
            return page
        shapes = _shapes(state, request)
        body = {"total_count": len(jobs), "jobs": [shapes.job(j) for j in page[0]]}
        return JSONResponse(body, headers=page[1])


def _blob(state: GitHubState, kind: str, ident: int, request: Request) -> Response:
    try:
        expires = int(request.query_params.get("expires", "0"))
    except ValueError:
        expires = 0
    sig = request.query_params.get("sig", "")
    expected = state.sign_blob(kind, ident, expires)
    if not hmac.compare_digest(sig, expected) or expires < time.time():
        # What blob storage says about an expired or forged signed URL.
        body = (
            '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
            "<Message>Server failed to authenticate the request. Signed expiry time has "
            "passed or the signature does not match.</Message></Error>"
        )
        return Response(body, status_code=403, media_type="application/xml")
    with state.lock:
        if kind == "job-log" and ident in state.jobs:
            return Response(state.jobs[ident].log, media_type="text/plain")
        if kind == "run-logs" and ident in state.runs:
            latest = state.runs[ident].attempt
            return Response(_logs_zip(latest.jobs), media_type="application/zip")
        if kind == "attempt-logs":
            run_id, attempt = divmod(ident, 1000)
            run = state.runs.get(run_id)
            if run is not None and 1 <= attempt <= len(run.attempts):
                return Response(
                    _logs_zip(run.attempts[attempt - 1].jobs), media_type="application/zip"
                )
        if kind == "artifact" and ident in state.artifacts:
            return Response(state.artifacts[ident].data, media_type="application/zip")
    return Response("The specified blob does not exist.", status_code=404, media_type="text/plain")


def _logs_zip(jobs: list[JobRecord]) -> bytes:
    """A run's logs as GitHub packs them: one text file per job at the root of the zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, job in enumerate(jobs):
            safe = re.sub(r"[/\\:*?\"<>|]", "_", job.name)
            archive.writestr(f"{index}_{safe}.txt", job.log)
    return buffer.getvalue()


async def _rerun(
    state: GitHubState,
    request: Request,
    owner: str,
    repo: str,
    run_id: int,
    *,
    failed_only: bool,
    job_id: int | None = None,
) -> Response:
    body = await read_json(request)
    if isinstance(body, JSONResponse):
        return body
    with state.lock:
        run = _run_or_none(state, owner, repo, run_id)
        if run is None:
            return not_found()
        status, _ = state.run_status(run)
        if status != "completed":
            return error(403, "This workflow is already running")
        if failed_only and not any(
            j.conclusion in ("failure", "timed_out", "cancelled") for j in run.latest_jobs()
        ):
            return error(403, "This workflow run has no failed jobs to re-run")
        state.rerun(run, failed_only=failed_only, job_id=job_id)
        kind = "rerun_job" if job_id else ("rerun_failed_jobs" if failed_only else "rerun")
        state.received[kind] += 1
    return created({})


def _cancel(state: GitHubState, owner: str, repo: str, run_id: int, *, force: bool) -> Response:
    with state.lock:
        run = _run_or_none(state, owner, repo, run_id)
        if run is None:
            return not_found()
        status, _ = state.run_status(run)
        if status == "completed":
            return error(409, "Cannot cancel a workflow run that is completed.")
        attempt = run.attempt
        attempt.cancelled = True
        now = utc()
        for job in attempt.jobs:
            job.cancelled = True
            job.conclusion = "cancelled"
            job.completed_at = now
        attempt.completes_at = None
        state.received["force_cancel" if force else "cancel"] += 1
    return JSONResponse({}, status_code=202)


def _routes_repo(app: FastAPI, state: GitHubState) -> None:
    @app.get("/repos/{owner}/{repo}")
    async def get_repo(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            return JSONResponse(_shapes(state, request).repo_full(record))

    @app.get("/repos/{owner}/{repo}/issues/{issue_number}/comments")
    async def list_comments(owner: str, repo: str, issue_number: int, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None or issue_number not in record.issues:
                return not_found()
            items = [c for c in record.comments if c.issue_number == issue_number]
            page = paginate(request, items)
            if isinstance(page, JSONResponse):
                return page
            shapes = _shapes(state, request)
            return JSONResponse([shapes.comment(record, c) for c in page[0]], headers=page[1])

    @app.post("/repos/{owner}/{repo}/issues/{issue_number}/comments")
    async def create_comment(
        owner: str, repo: str, issue_number: int, request: Request
    ) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        text = body.get("body")
        if not isinstance(text, str) or not text:
            return validation_failed("IssueComment", "body", "missing_field")
        if len(text) > 65536:
            return validation_failed(
                "IssueComment", "body", "custom", "Body is too long (maximum is 65536 characters)"
            )
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None or issue_number not in record.issues:
                return not_found()
            comment = CommentRecord(
                id=2_000_000_000 + state.new_id(), issue_number=issue_number, body=text
            )
            record.comments.append(comment)
            state.received["issue_comment"] += 1
            data = _shapes(state, request).comment(record, comment)
        return created(data, data["url"])

    @app.get("/repos/{owner}/{repo}/issues")
    async def list_issues(owner: str, repo: str, request: Request) -> Response:
        wanted = request.query_params.get("state", "open")
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            items = [i for i in record.issues.values() if wanted == "all" or i.state == wanted]
            items.sort(key=lambda i: i.number, reverse=True)
            page = paginate(request, items)
            if isinstance(page, JSONResponse):
                return page
            shapes = _shapes(state, request)
            return JSONResponse([shapes.issue(record, i) for i in page[0]], headers=page[1])

    @app.post("/repos/{owner}/{repo}/issues")
    async def create_issue(owner: str, repo: str, request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        title = body.get("title")
        if not isinstance(title, str | int) or not str(title):
            return validation_failed("Issue", "title", "missing_field")
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            issue = state.add_issue(record.full_name, str(title), body.get("body"))
            issue.labels = [str(x) for x in body.get("labels") or [] if isinstance(x, str)]
            state.received["issue"] += 1
            data = _shapes(state, request).issue(record, issue)
        return created(data, data["url"])

    @app.post("/repos/{owner}/{repo}/check-runs")
    async def create_check_run(owner: str, repo: str, request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            problem = _check_run_problem(body, creating=True)
            if problem is not None:
                return problem
            check = CheckRunRecord(
                id=40_000_000_000 + state.new_id(),
                name=body["name"],
                head_sha=body["head_sha"],
                status="queued",
                conclusion=None,
                started_at=utc(),
                completed_at=None,
                external_id=body.get("external_id"),
                details_url=body.get("details_url"),
                title=None,
                summary=None,
                text=None,
            )
            _apply_check_run(check, body)
            record.check_runs[check.id] = check
            state.received["check_run"] += 1
            data = _shapes(state, request).check_run(record, check)
        return created(data, data["url"])

    @app.patch("/repos/{owner}/{repo}/check-runs/{check_run_id}")
    async def update_check_run(
        owner: str, repo: str, check_run_id: int, request: Request
    ) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None or check_run_id not in record.check_runs:
                return not_found()
            problem = _check_run_problem(body, creating=False)
            if problem is not None:
                return problem
            check = record.check_runs[check_run_id]
            _apply_check_run(check, body)
            state.received["check_run_update"] += 1
            return JSONResponse(_shapes(state, request).check_run(record, check))

    @app.get("/repos/{owner}/{repo}/check-runs/{check_run_id}")
    async def get_check_run(owner: str, repo: str, check_run_id: int, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None or check_run_id not in record.check_runs:
                return not_found()
            return JSONResponse(
                _shapes(state, request).check_run(record, record.check_runs[check_run_id])
            )

    @app.get("/repos/{owner}/{repo}/commits/{ref}/check-runs")
    async def list_check_runs(owner: str, repo: str, ref: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            sha = record.resolve(ref) or ref
            name = request.query_params.get("check_name")
            items = [
                c
                for c in record.check_runs.values()
                if c.head_sha == sha and (name is None or c.name == name)
            ]
            items.sort(key=lambda c: c.id, reverse=True)
            page = paginate(request, items)
            if isinstance(page, JSONResponse):
                return page
            shapes = _shapes(state, request)
            body = {
                "total_count": len(items),
                "check_runs": [shapes.check_run(record, c) for c in page[0]],
            }
            return JSONResponse(body, headers=page[1])

    @app.get("/repos/{owner}/{repo}/git/ref/{ref:path}")
    async def get_ref(owner: str, repo: str, ref: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            if not ref.startswith("heads/"):
                return not_found()
            branch = ref.removeprefix("heads/")
            if branch not in record.branches:
                return not_found()
            return JSONResponse(_shapes(state, request).ref(record, branch))

    @app.post("/repos/{owner}/{repo}/git/refs")
    async def create_ref(owner: str, repo: str, request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        ref, sha = body.get("ref"), body.get("sha")
        if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
            return error(
                422, "Reference name must start with 'refs/' and have at least two slashes."
            )
        if not isinstance(sha, str):
            return validation_failed("Reference", "sha", "missing_field")
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            if not ref.startswith("refs/heads/"):
                return error(422, "Only branch references are supported by the sandbox")
            branch = ref.removeprefix("refs/heads/")
            if branch in record.branches:
                return error(422, "Reference already exists")
            if sha not in record.trees:
                return error(422, "Object does not exist")
            record.branches[branch] = sha
            state.received["git_ref"] += 1
            data = _shapes(state, request).ref(record, branch)
        return created(data, data["url"])

    @app.patch("/repos/{owner}/{repo}/git/refs/{ref:path}")
    async def update_ref(owner: str, repo: str, ref: str, request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        sha = body.get("sha")
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            branch = ref.removeprefix("heads/")
            if branch not in record.branches:
                return error(422, "Reference does not exist")
            if not isinstance(sha, str) or sha not in record.trees:
                return error(422, "Object does not exist")
            record.branches[branch] = sha
            state.received["git_ref_update"] += 1
            return JSONResponse(_shapes(state, request).ref(record, branch))

    @app.get("/repos/{owner}/{repo}/contents/{path:path}")
    async def get_contents(owner: str, repo: str, path: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            ref = request.query_params.get("ref") or record.default_branch
            files = record.files_at(ref)
            if files is None:
                return error(404, f"No commit found for the ref {ref}")
            path = path.strip("/")
            if path in files:
                return JSONResponse(_shapes(state, request).content(record, path, files[path], ref))
            children = sorted(
                {p[len(path) + 1 :].split("/")[0] for p in files if p.startswith(path + "/")}
            )
            if not children:
                return not_found()
            shapes = _shapes(state, request)
            listing = []
            for child in children:
                full = f"{path}/{child}"
                if full in files:
                    entry = shapes.content(record, full, files[full], ref)
                    entry.pop("content")
                    entry.pop("encoding")
                else:
                    entry = shapes.content(record, full, b"", ref)
                    for key in ("content", "encoding"):
                        entry.pop(key)
                    entry.update(type="dir", size=0, download_url=None)
                listing.append(entry)
            return JSONResponse(listing)

    @app.put("/repos/{owner}/{repo}/contents/{path:path}")
    async def put_contents(owner: str, repo: str, path: str, request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        message, content = body.get("message"), body.get("content")
        if not isinstance(message, str) or not message:
            return validation_failed("Content", "message", "missing_field")
        if not isinstance(content, str):
            return validation_failed("Content", "content", "missing_field")
        try:
            data = base64.b64decode(content, validate=False)
        except ValueError:
            return error(422, "content is not valid Base64")
        path = path.strip("/")
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            branch = body.get("branch") or record.default_branch
            if branch not in record.branches:
                return error(404, f"Branch {branch} not found")
            files = record.trees[record.branches[branch]]
            existing = files.get(path)
            sha = body.get("sha")
            if existing is not None and not sha:
                return error(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
            if existing is not None and sha != git_blob_sha(existing):
                return error(409, f"{path} does not match {sha}")
            commit = state.add_commit(record.full_name, branch, {path: data}, message)
            state.received["contents_put"] += 1
            shapes = _shapes(state, request)
            content_body = shapes.content(record, path, data, branch)
            content_body.pop("encoding")
            content_body.pop("content")
            r = f"{shapes.base}/repos/{record.full_name}"
            person = {
                "name": "contexten",
                "email": "contexten@users.noreply.github.com",
                "date": iso(utc()),
            }
            result = {
                "content": content_body,
                "commit": {
                    "sha": commit,
                    "node_id": f"C_kwDO{commit[:12]}",
                    "url": f"{r}/git/commits/{commit}",
                    "html_url": f"{shapes.web}/{record.full_name}/commit/{commit}",
                    "author": person,
                    "committer": person,
                    "message": message,
                    "tree": {
                        "url": f"{r}/git/trees/{fake_sha('tree', commit)}",
                        "sha": fake_sha("tree", commit),
                    },
                    "parents": [],
                    "verification": {
                        "verified": False,
                        "reason": "unsigned",
                        "signature": None,
                        "payload": None,
                        "verified_at": None,
                    },
                },
            }
        return JSONResponse(result, status_code=200 if existing is not None else 201)

    @app.get("/repos/{owner}/{repo}/pulls")
    async def list_pulls(owner: str, repo: str, request: Request) -> Response:
        q = request.query_params
        wanted = q.get("state", "open")
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            items = [p for p in record.pulls.values() if wanted == "all" or p.state == wanted]
            if q.get("head"):
                head_owner, _, head_branch = q["head"].rpartition(":")
                items = [
                    p for p in items if p.head == head_branch and head_owner in ("", record.owner)
                ]
            if q.get("base"):
                items = [p for p in items if p.base == q["base"]]
            items.sort(key=lambda p: p.number, reverse=True)
            page = paginate(request, items)
            if isinstance(page, JSONResponse):
                return page
            shapes = _shapes(state, request)
            return JSONResponse([shapes.pull_simple(record, p) for p in page[0]], headers=page[1])

    @app.get("/repos/{owner}/{repo}/pulls/{number}")
    async def get_pull(owner: str, repo: str, number: int, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None or number not in record.pulls:
                return not_found()
            return JSONResponse(_shapes(state, request).pull(record, record.pulls[number]))

    @app.get("/repos/{owner}/{repo}/pulls/{number}/files")
    async def list_pull_files(owner: str, repo: str, number: int, request: Request) -> Response:
        """The files the head branch changes against the base branch (a two-tree diff)."""
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None or number not in record.pulls:
                return not_found()
            pull = record.pulls[number]
            head = record.files_at(pull.head) or {}
            base = record.files_at(pull.base) or {}
            items = []
            for path in sorted(set(head) | set(base)):
                if path not in base:
                    status, content = "added", head[path]
                elif path not in head:
                    status, content = "removed", base[path]
                elif head[path] != base[path]:
                    status, content = "modified", head[path]
                else:
                    continue
                lines = content.count(b"\n")
                raw = f"{record.full_name}/raw/{pull.head}/{path}"
                items.append(
                    {
                        "sha": git_blob_sha(content),
                        "filename": path,
                        "status": status,
                        "additions": 0 if status == "removed" else lines,
                        "deletions": lines if status == "removed" else 0,
                        "changes": lines,
                        "blob_url": f"https://github.com/{raw}",
                        "raw_url": f"https://github.com/{raw}",
                        "contents_url": f"{str(request.base_url).rstrip('/')}/repos/"
                        f"{record.full_name}/contents/{path}?ref={pull.head}",
                    }
                )
            page = paginate(request, items)
            if isinstance(page, JSONResponse):
                return page
            return JSONResponse(page[0], headers=page[1])

    @app.post("/repos/{owner}/{repo}/pulls")
    async def create_pull(owner: str, repo: str, request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        head, base = body.get("head"), body.get("base")
        if not isinstance(head, str) or not head:
            return validation_failed("PullRequest", "head", "missing_field")
        if not isinstance(base, str) or not base:
            return validation_failed("PullRequest", "base", "missing_field")
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            head_owner, _, head_branch = head.rpartition(":")
            if head_owner not in ("", record.owner) or head_branch not in record.branches:
                return validation_failed("PullRequest", "head", "invalid")
            if base not in record.branches:
                return validation_failed("PullRequest", "base", "invalid")
            for pull in record.pulls.values():
                if pull.state == "open" and pull.head == head_branch and pull.base == base:
                    return error(
                        422,
                        "Validation Failed",
                        errors=[
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": "A pull request already exists for "
                                f"{record.owner}:{head_branch}.",
                            }
                        ],
                    )
            if record.branches[head_branch] == record.branches[base]:
                return error(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"No commits between {base} and {head_branch}",
                        }
                    ],
                )
            title = body.get("title") or head_branch
            pull = state._open_pull(
                record, head_branch, base, str(title), body.get("body"), bool(body.get("draft"))
            )
            state.received["pull_request"] += 1
            data = _shapes(state, request).pull(record, pull)
        return created(data, data["url"])

    @app.get("/repos/{owner}/{repo}/releases")
    async def list_releases(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            items = sorted(record.releases, key=lambda r: r.id, reverse=True)
            page = paginate(request, items)
            if isinstance(page, JSONResponse):
                return page
            shapes = _shapes(state, request)
            return JSONResponse([shapes.release(record, r) for r in page[0]], headers=page[1])

    @app.get("/repos/{owner}/{repo}/releases/tags/{tag:path}")
    async def release_by_tag(owner: str, repo: str, tag: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            for release in record.releases:
                if release.tag_name == tag and not release.draft:  # drafts are not found by tag
                    return JSONResponse(_shapes(state, request).release(record, release))
            return not_found()

    @app.post("/repos/{owner}/{repo}/releases")
    async def create_release(owner: str, repo: str, request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        tag = body.get("tag_name")
        if not isinstance(tag, str) or not tag:
            return validation_failed("Release", "tag_name", "missing_field")
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            if any(r.tag_name == tag for r in record.releases):
                return validation_failed("Release", "tag_name", "already_exists")
            release = ReleaseRecord(
                id=50_000_000 + state.new_id(),
                tag_name=tag,
                target_commitish=body.get("target_commitish") or record.default_branch,
                name=body.get("name"),
                body=body.get("body"),
                draft=bool(body.get("draft", False)),
                prerelease=bool(body.get("prerelease", False)),
            )
            record.releases.append(release)
            state.received["release"] += 1
            data = _shapes(state, request).release(record, release)
        return created(data, data["url"])

    @app.get("/repos/{owner}/{repo}/dependabot/alerts")
    async def dependabot_alerts(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            if record is None:
                return not_found()
            wanted = request.query_params.get("state")
            items = [
                a
                for a in record.dependabot_alerts
                if wanted is None or a.get("state") in wanted.split(",")
            ]
        page = paginate(request, items)
        if isinstance(page, JSONResponse):
            return page
        return JSONResponse(page[0], headers=page[1])


def _check_run_problem(body: dict[str, Any], *, creating: bool) -> JSONResponse | None:
    if creating:
        for name in ("name", "head_sha"):
            if not isinstance(body.get(name), str) or not body.get(name):
                return validation_failed("CheckRun", name, "missing_field")
    status = body.get("status")
    if status is not None and status not in (
        "queued",
        "in_progress",
        "completed",
        "waiting",
        "requested",
        "pending",
    ):
        return validation_failed("CheckRun", "status", "invalid")
    conclusion = body.get("conclusion")
    if conclusion is not None and conclusion not in CONCLUSIONS - {"startup_failure"}:
        return validation_failed("CheckRun", "conclusion", "invalid")
    if status == "completed" and conclusion is None and not body.get("completed_at"):
        return validation_failed(
            "CheckRun",
            "conclusion",
            "missing_field",
            "conclusion is required when status is completed",
        )
    output = body.get("output")
    if output is not None:
        if not isinstance(output, dict):
            return validation_failed("CheckRun", "output", "invalid")
        if not output.get("title") or output.get("summary") is None:
            return validation_failed("CheckRun", "output", "missing_field")
        if (
            len(str(output.get("summary", ""))) > 65535
            or len(str(output.get("text") or "")) > 65535
        ):
            return validation_failed(
                "CheckRun",
                "output",
                "custom",
                "Output text is too long (maximum is 65535 characters)",
            )
        annotations = output.get("annotations") or []
        if len(annotations) > 50:
            return validation_failed(
                "CheckRun", "annotations", "custom", "Only 50 annotations are allowed per request"
            )
        for annotation in annotations:
            for name in ("path", "start_line", "end_line", "annotation_level", "message"):
                if not isinstance(annotation, dict) or annotation.get(name) in (None, ""):
                    return validation_failed("CheckRun", f"annotations.{name}", "missing_field")
            if annotation["annotation_level"] not in ("notice", "warning", "failure"):
                return validation_failed("CheckRun", "annotations.annotation_level", "invalid")
    return None


def _apply_check_run(check: CheckRunRecord, body: dict[str, Any]) -> None:
    for name in ("name", "details_url", "external_id"):
        if body.get(name) is not None:
            setattr(check, name, body[name])
    if body.get("status"):
        check.status = body["status"]
    if body.get("conclusion") is not None:
        check.conclusion = body["conclusion"]
        check.status = "completed"  # setting a conclusion completes the run
    if check.status == "completed" and check.completed_at is None:
        check.completed_at = utc()
    output = body.get("output")
    if isinstance(output, dict):
        check.title = output.get("title", check.title)
        check.summary = output.get("summary", check.summary)
        check.text = output.get("text", check.text)
        check.annotations.extend(output.get("annotations") or [])  # updates append


def _routes_misc(app: FastAPI, state: GitHubState) -> None:
    @app.get("/rate_limit")
    async def rate_limit(request: Request) -> Response:
        remaining, used, reset = state.peek_rate_limit(_bearer(request) or "anonymous")
        core = {
            "limit": state.rate_limit,
            "remaining": remaining,
            "reset": reset,
            "used": used,
            "resource": "core",
        }

        def other(name: str, limit: int) -> dict[str, Any]:
            return {"limit": limit, "remaining": limit, "reset": reset, "used": 0, "resource": name}

        return JSONResponse(
            {
                "resources": {
                    "core": core,
                    "search": other("search", 30),
                    "graphql": other("graphql", 5000),
                    "integration_manifest": other("integration_manifest", 5000),
                    "code_search": other("code_search", 10),
                },
                "rate": core,
            }
        )

    @app.get("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries")
    async def list_deliveries(owner: str, repo: str, hook_id: int, request: Request) -> Response:
        wanted = request.query_params.get("status")
        with state.lock:
            if _repo_or_none(state, owner, repo) is None:
                return not_found()
            items = [
                {k: v for k, v in d.items() if not k.startswith("_")}
                for d in reversed(state.hook_deliveries)
                if d["_hook_id"] == hook_id
                and d["_repository"] == f"{owner}/{repo}"
                and (wanted is None or (wanted == "success") == (d["status"] == "OK"))
            ]
        page = paginate(request, items)
        if isinstance(page, JSONResponse):
            return page
        return JSONResponse(page[0], headers=page[1])

    @app.post("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts")
    async def redeliver(owner: str, repo: str, hook_id: int, delivery_id: int) -> Response:
        with state.lock:
            found = next(
                (
                    d
                    for d in state.hook_deliveries
                    if d["id"] == delivery_id and d["_hook_id"] == hook_id
                ),
                None,
            )
            sender = state.webhook_senders.get(hook_id)
        if found is None or found["_repository"] != f"{owner}/{repo}":
            return not_found()
        if sender is None:
            return error(422, "The hook that made this delivery is gone")
        state.received["hook_redelivery"] += 1
        task = asyncio.get_running_loop().create_task(sender.redeliver(found["guid"]))
        _background.add(task)
        task.add_done_callback(_background.discard)
        return JSONResponse({}, status_code=202)

    @app.get("/repos/{owner}/{repo}/installation")
    async def repo_installation(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            installation = next(iter(state.installations.values()), None)
            if record is None or installation is None:
                return not_found()
            return JSONResponse(_installation_json(state, request, installation))

    @app.post("/app/installations/{installation_id}/access_tokens")
    async def access_token(installation_id: int, request: Request) -> Response:
        installation = state.installations.get(installation_id)
        token = _bearer(request)
        if installation is None:
            return not_found()
        if token is None or not _valid_app_jwt(token, installation):
            return error(401, "A JSON web token could not be decoded")
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        issued = "ghs_" + secrets.token_urlsafe(27)[:36]
        expires = time.time() + 3600
        with state.lock:
            state.tokens[issued] = expires
            state.received["installation_token"] += 1
        permissions = body.get("permissions") or {
            "actions": "write",
            "checks": "write",
            "contents": "write",
            "issues": "write",
            "pull_requests": "write",
        }
        return created(
            {
                "token": issued,
                "expires_at": iso(utc(expires)),
                "permissions": permissions,
                "repository_selection": "all",
            }
        )


def _installation_json(
    state: GitHubState, request: Request, installation: Installation
) -> dict[str, Any]:
    shapes = _shapes(state, request)
    base = shapes.base
    return {
        "id": installation.id,
        "account": shapes.user(installation.account, kind="Organization"),
        "repository_selection": "all",
        "access_tokens_url": f"{base}/app/installations/{installation.id}/access_tokens",
        "repositories_url": f"{base}/installation/repositories",
        "html_url": f"{shapes.web}/organizations/{installation.account}/settings/installations/"
        f"{installation.id}",
        "app_id": installation.app_id,
        "target_id": 1,
        "target_type": "Organization",
        "permissions": {"checks": "write", "actions": "write", "contents": "write"},
        "events": ["workflow_run", "workflow_job", "check_run"],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "single_file_name": None,
        "app_slug": "contexten-sandbox",
        "suspended_by": None,
        "suspended_at": None,
    }


def _valid_app_jwt(token: str, installation: Installation) -> bool:
    import jwt

    try:
        claims = jwt.decode(
            token,
            installation.public_key_pem,
            algorithms=["RS256"],
            options={"require": ["iat", "exp", "iss"]},
            leeway=60,
        )
    except jwt.PyJWTError:
        return False
    return str(claims.get("iss")) == str(installation.app_id)


# ============================================================================ demo data


DEMO_LOG = Path(__file__).parent / "data" / "github" / "pycorrector-tests-failure.log"


def seed_demo(state: GitHubState) -> None:
    """A small repository: a real failing test job, its passing baseline, a flaky job."""
    repo = "contexten-demo/app"
    state.add_repo(repo, default_branch="main", files={"README.md": "# demo\n"})
    state.add_branch(repo, "develop")
    state.add_run(repo, head_branch="develop", jobs=[JobSpec("test"), JobSpec("lint")])
    failing_test = (
        JobSpec.from_log_file(DEMO_LOG, name="test", conclusion="failure")
        if DEMO_LOG.is_file()
        else JobSpec("test", conclusion="failure")
    )
    failing = state.add_run(
        repo,
        head_branch="main",
        jobs=[failing_test, JobSpec("lint")],
        display_title="Make compute() faster",
    )
    state.add_artifact(failing.id, "junit", {"junit.xml": _DEMO_JUNIT})
    state.add_run(
        repo,
        head_branch="main",
        jobs=[JobSpec("integration", conclusion="failure", log=_DEMO_NETWORK_LOG)],
        rerun_outcomes=["success"],
        display_title="Flaky network test",
    )


# The flaky run's log must look like a network failure, or analysing it escalates a
# deterministic-looking test failure instead of re-running it.
_DEMO_NETWORK_LOG = "".join(
    f"2024-05-02T10:00:{second:02d}.0000000Z {text}\n"
    for second, text in enumerate(
        (
            "##[group]Run curl -fsSL -o fixtures.tar.gz https://files.example.com/fixtures.tar.gz",
            "curl -fsSL -o fixtures.tar.gz https://files.example.com/fixtures.tar.gz",
            "##[endgroup]",
            "curl: (6) Could not resolve host: files.example.com",
            "##[error]Process completed with exit code 6.",
            "Cleaning up orphan processes",
        )
    )
)


_DEMO_COLLECTION_ERRORS = {
    "bert_corrector_test": "ImportError: pycorrector dependencies are not fully installed",
    "detector_test": "ModuleNotFoundError: No module named 'kenlm'",
    "en_spell_bug_fix_test": "TypeError: __init__() got an unexpected keyword argument",
    "en_spell_correct_test": "ModuleNotFoundError: No module named 'kenlm'",
    "ernie_csc_corrector_test": "ModuleNotFoundError: No module named 'kenlm'",
    "file_correct_test": "IndexError: list index out of range",
    "kenlm_test": "ModuleNotFoundError: No module named 'kenlm'",
    "macbert_corrector_test": "ModuleNotFoundError: No module named 'kenlm'",
    "simplified_traditional_sentence_test": "ModuleNotFoundError: No module named 'kenlm'",
    "speed_test": "ImportError: pycorrector dependencies are not fully installed",
    "trigram_test": "AttributeError: module 'pycorrector.corrector' has no attribute "
    "'check_corrector_initialized'",
}
# What pytest --junitxml writes for the demo log's 11 collection errors.
_DEMO_JUNIT = (
    '<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="pytest" '
    'errors="11" failures="0" skipped="0" tests="11" time="2.80">\n'
    + "".join(
        f'<testcase classname="" name="tests.{name}" time="0.000">'
        f'<error message="collection failure">{escape(message)}</error>'
        "</testcase>\n"
        for name, message in _DEMO_COLLECTION_ERRORS.items()
    )
    + "</testsuite></testsuites>\n"
)
