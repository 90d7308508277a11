"""GitHubState: everything the GitHub sandbox knows, how tests seed it, synthetic logs."""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import re
import secrets
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from contexten.sandbox.github.records import (
    RATE_LIMIT,
    ArtifactRecord,
    AttemptRecord,
    CacheRecord,
    CheckRunRecord,
    CommentRecord,
    Installation,
    IssueRecord,
    JobRecord,
    JobSpec,
    PullRecord,
    RepoRecord,
    RunRecord,
    StepRecord,
    WorkflowRecord,
    fake_sha,
    iso,
    utc,
)
from contexten.sandbox.state import SANDBOX_GITHUB_TOKEN, SANDBOX_GITHUB_WEBHOOK_SECRET


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
        from contexten.sandbox.github.seed import seed_demo

        seed_demo(self)


def _bytes(value: bytes | str | None) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else value.encode("utf-8")


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
