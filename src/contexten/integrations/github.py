"""The GitHub client (`CIProvider`) on githubkit, REST API version 2022-11-28.

- Auth: a token (`Authorization: token …`) or a GitHub App installation (githubkit's
  AppInstallationAuthStrategy fetches and caches installation tokens).
- Every call goes through the shared RetryPolicy (githubkit's own retry is off, so there is
  one back-off implementation and tests can inject a fake sleep). githubkit errors become
  `CIProviderError`s with a reason (rate limited with reset time, auth, not found, ...).
- Logs: the 302 from `/logs` is followed by hand so the token is never sent to the log host,
  and the plain-text log is streamed with a size cap; an expired log URL is asked for again.
- World-changing calls are idempotent: each has a key derived from what it is about, goes
  through the ActionLedger when one is given, and looks for an earlier success (a comment with
  the key's marker, a check run with the key as external_id, the open PR for the head
  branch, a run whose attempt already advanced) before doing it again.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import httpx

from contexten.integrations.http import (
    FailedAttempt,
    Failure,
    RetryPolicy,
    SharedTransport,
    call_with_retries,
    classify_exception,
    classify_response,
    make_error,
    request_with_retries,
)
from contexten.integrations.idempotency import (
    ActionLedger,
    Result,
    has_marker,
    idempotency_key,
    marker,
    run_checked,
)
from contexten.integrations.interface import (
    Annotation,
    Artifact,
    ChangedFile,
    CheckResult,
    CheckRunRef,
    CIProvider,
    CIProviderError,
    CommentRef,
    ErrorReason,
    FileContent,
    GitRef,
    Job,
    JobTiming,
    LogDownload,
    PullRequestRef,
    RateLimit,
    ReleaseRef,
    RunTiming,
    Step,
    WorkflowRun,
)
from contexten.integrations.redaction import install_log_redaction

if TYPE_CHECKING:
    from githubkit import GitHub

log = logging.getLogger(__name__)

T = TypeVar("T")
API_VERSION: Literal["2022-11-28"] = "2022-11-28"
SERVICE = "github"
DEFAULT_LOG_MAX_BYTES = 200 * 1024 * 1024
MAX_ANNOTATIONS_PER_REQUEST = 50
USER_AGENT = "contexten (+https://github.com/contexten)"


def split_repo(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise CIProviderError(
            f"repository {repo!r} must be owner/name", reason=ErrorReason.INVALID, service=SERVICE
        )
    return owner, name


def _unset(value: Any) -> Any:
    """None for githubkit's UNSET sentinel."""
    from githubkit.utils import Unset

    return None if isinstance(value, Unset) else value


def _has_next(headers: httpx.Headers) -> bool:
    return 'rel="next"' in headers.get("link", "")


class GitHubClient(CIProvider):
    """`CIProvider` for GitHub.com or GitHub Enterprise Server (`base_url`)."""

    def __init__(
        self,
        *,
        base_url: str = "https://api.github.com",
        token: str | None = None,
        app_id: str | int | None = None,
        app_private_key: str | None = None,
        installation_id: int | None = None,
        policy: RetryPolicy | None = None,
        ledger: ActionLedger | None = None,
        log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
        check_policy: RetryPolicy | None = None,
    ) -> None:
        from githubkit import AppInstallationAuthStrategy, GitHub, TokenAuthStrategy

        self.base_url = base_url.rstrip("/") + "/"
        self.policy = policy or RetryPolicy()
        self.check_policy = check_policy or RetryPolicy(
            max_attempts=2,
            max_total_seconds=10.0,
            timeout_seconds=min(10.0, self.policy.timeout_seconds),
            sleep=self.policy.sleep,
            monotonic=self.policy.monotonic,
            wall_clock=self.policy.wall_clock,
        )
        self.ledger = ledger
        self.log_max_bytes = log_max_bytes
        self.auth_kind: Literal["token", "app"]
        install_log_redaction([token, app_private_key])
        auth: Any
        if token:
            auth = TokenAuthStrategy(token)
            self.auth_kind = "token"
        elif app_id is not None and app_private_key and installation_id is not None:
            auth = AppInstallationAuthStrategy(app_id, app_private_key, installation_id)
            self.auth_kind = "app"
        else:
            raise CIProviderError(
                "GitHub needs GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY and "
                "GITHUB_APP_INSTALLATION_ID",
                reason=ErrorReason.AUTH,
                service=SERVICE,
            )
        self._transport = SharedTransport()
        self._github: GitHub[Any] = GitHub(
            auth,
            base_url=self.base_url,
            user_agent=USER_AGENT,
            timeout=self.policy.timeout(),
            async_transport=self._transport,
            auto_retry=False,  # our RetryPolicy does it
            http_cache=False,  # run and job status must be fresh
        )
        self._rest = self._github.rest(API_VERSION)

    def __repr__(self) -> str:
        return f"GitHubClient(base_url={self.base_url!r}, auth={self.auth_kind!r})"

    # ------------------------------------------------------------------ plumbing

    async def _call(
        self,
        what: str,
        call: Callable[[], Awaitable[T]],
        *,
        unsafe: bool = False,
        policy: RetryPolicy | None = None,
    ) -> T:
        return await call_with_retries(
            call,
            policy=policy or self.policy,
            classify=self._classify,
            error_type=CIProviderError,
            what=what,
            service=SERVICE,
            unsafe=unsafe,
        )

    def _classify(self, exc: BaseException) -> Failure | None:
        """A githubkit (or httpx, or parsing) exception as a Failure."""
        from githubkit.exception import (
            AuthCredentialError,
            AuthExpiredError,
            GitHubException,
            RequestError,
            RequestFailed,
        )
        from pydantic import ValidationError

        if isinstance(exc, RequestFailed):
            raw = exc.response.raw_response
            return classify_response(
                raw.status_code, raw.headers, raw.content, self.policy.wall_clock()
            )
        if isinstance(exc, RequestError):
            inner = exc.exc
            if isinstance(inner, GitHubException):
                return self._classify(inner)
            return classify_exception(inner) or Failure(
                ErrorReason.ERROR, f"request failed ({type(inner).__name__})", retryable=False
            )
        if isinstance(exc, AuthCredentialError | AuthExpiredError):
            return Failure(ErrorReason.AUTH, f"credentials rejected: {exc}", retryable=False)
        if isinstance(exc, ValidationError):
            return Failure(
                ErrorReason.ERROR,
                f"unexpected response shape ({exc.error_count()} validation errors)",
                retryable=False,
            )
        return classify_exception(exc)

    def _auth(self) -> httpx.Auth:
        return self._github.auth.get_auth_flow(self._github)

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }

    def _http(self, *, timeout: httpx.Timeout | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers=self._headers(),
            timeout=timeout or self.policy.timeout(),
            follow_redirects=False,
            transport=self._transport,
        )

    async def aclose(self) -> None:
        await self._transport.close()

    async def _once(
        self,
        key: str,
        kind: str,
        target: str,
        perform: Callable[[], Awaitable[Result]],
        find_existing: Callable[[], Awaitable[Result | None]] | None,
    ) -> Result:
        if self.ledger is not None:
            return await self.ledger.once(key, kind, target, perform, find_existing)
        return await run_checked(
            perform, find_existing, policy=self.policy, check_first=True, label=kind
        )

    # ------------------------------------------------------------------ conversions

    @staticmethod
    def _run(data: Any) -> WorkflowRun:
        actor = _unset(data.actor)
        return WorkflowRun(
            id=data.id,
            name=_unset(data.name),
            workflow_id=data.workflow_id,
            repository=data.repository.full_name,
            head_branch=data.head_branch,
            head_sha=data.head_sha,
            run_number=data.run_number,
            run_attempt=_unset(data.run_attempt) or 1,
            event=data.event,
            status=data.status,
            conclusion=data.conclusion,
            html_url=data.html_url,
            display_title=data.display_title,
            created_at=data.created_at,
            updated_at=data.updated_at,
            run_started_at=_unset(data.run_started_at),
            path=data.path,
            actor=None if actor is None else actor.login,
            pull_requests=tuple(pr.number for pr in data.pull_requests or ()),
        )

    @staticmethod
    def _job(data: Any) -> Job:
        steps = tuple(
            Step(
                number=s.number,
                name=s.name,
                status=s.status,
                conclusion=s.conclusion,
                started_at=_unset(s.started_at),
                completed_at=_unset(s.completed_at),
            )
            for s in (_unset(data.steps) or ())
        )
        return Job(
            id=data.id,
            run_id=data.run_id,
            run_attempt=_unset(data.run_attempt) or 1,
            name=data.name,
            status=data.status,
            conclusion=data.conclusion,
            head_sha=data.head_sha,
            head_branch=data.head_branch,
            workflow_name=data.workflow_name,
            html_url=data.html_url,
            started_at=data.started_at,
            completed_at=data.completed_at,
            runner_name=data.runner_name,
            labels=tuple(data.labels or ()),
            steps=steps,
        )

    @staticmethod
    def _artifact(data: Any) -> Artifact:
        run = _unset(data.workflow_run)
        return Artifact(
            id=data.id,
            name=data.name,
            size_in_bytes=data.size_in_bytes,
            expired=data.expired,
            archive_download_url=data.archive_download_url,
            created_at=data.created_at,
            expires_at=data.expires_at,
            run_id=None if run is None else _unset(run.id),
        )

    @staticmethod
    def _pull(data: Any) -> PullRequestRef:
        return PullRequestRef(
            number=data.number,
            html_url=data.html_url,
            head=data.head.ref,
            base=data.base.ref,
            state=data.state,
            id=data.id,
            draft=bool(_unset(data.draft)),
            head_sha=str(_unset(data.head.sha) or ""),
        )

    # ------------------------------------------------------------------ runs and jobs

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
        owner, name = split_repo(repo)
        filters: dict[str, Any] = {
            k: v
            for k, v in {
                "branch": branch,
                "status": status,
                "event": event,
                "created": created,
                "head_sha": head_sha,
            }.items()
            if v is not None
        }
        per_page = max(1, min(per_page, 100))
        runs: list[WorkflowRun] = []
        page = 1
        while True:

            async def fetch(page: int = page) -> Any:
                if workflow_id is not None:
                    return await self._rest.actions.async_list_workflow_runs(
                        owner, name, workflow_id, per_page=per_page, page=page, **filters
                    )
                return await self._rest.actions.async_list_workflow_runs_for_repo(
                    owner, name, per_page=per_page, page=page, **filters
                )

            response = await self._call(f"list workflow runs of {repo} (page {page})", fetch)
            batch = response.parsed_data.workflow_runs
            runs.extend(self._run(item) for item in batch)
            if max_items is not None and len(runs) >= max_items:
                return runs[:max_items]
            if not batch or not _has_next(response.headers):
                return runs
            page += 1

    async def get_run(self, repo: str, run_id: int) -> WorkflowRun:
        owner, name = split_repo(repo)
        response = await self._call(
            f"get run {run_id} of {repo}",
            lambda: self._rest.actions.async_get_workflow_run(owner, name, run_id),
        )
        return self._run(response.parsed_data)

    async def list_jobs(
        self, repo: str, run_id: int, *, filter: Literal["latest", "all"] = "latest"
    ) -> list[Job]:
        owner, name = split_repo(repo)
        jobs: list[Job] = []
        page = 1
        while True:

            async def fetch(page: int = page) -> Any:
                return await self._rest.actions.async_list_jobs_for_workflow_run(
                    owner, name, run_id, filter_=filter, per_page=100, page=page
                )

            response = await self._call(f"list jobs of run {run_id} in {repo}", fetch)
            batch = response.parsed_data.jobs
            jobs.extend(self._job(item) for item in batch)
            if not batch or not _has_next(response.headers):
                return jobs
            page += 1

    async def get_job(self, repo: str, job_id: int) -> Job:
        owner, name = split_repo(repo)
        response = await self._call(
            f"get job {job_id} of {repo}",
            lambda: self._rest.actions.async_get_job_for_workflow_run(owner, name, job_id),
        )
        return self._job(response.parsed_data)

    async def get_run_timing(self, repo: str, run_id: int) -> RunTiming:
        owner, name = split_repo(repo)
        response = await self._call(
            f"get timing of run {run_id} in {repo}",
            lambda: self._rest.actions.async_get_workflow_run_usage(owner, name, run_id),
        )
        data = response.parsed_data
        billable: dict[str, int] = {}
        job_runs: list[JobTiming] = []
        for os_name in ("ubuntu", "macos", "windows"):
            entry = _unset(getattr(data.billable, os_name, None))
            if entry is None:
                continue
            billable[os_name.upper()] = entry.total_ms
            for item in _unset(entry.job_runs) or ():
                job_runs.append(JobTiming(job_id=item.job_id, duration_ms=item.duration_ms))
        return RunTiming(
            run_duration_ms=_unset(data.run_duration_ms),
            billable_ms=billable,
            job_runs=tuple(job_runs),
        )

    async def list_artifacts(
        self, repo: str, run_id: int, *, name: str | None = None
    ) -> list[Artifact]:
        owner, repo_name = split_repo(repo)
        artifacts: list[Artifact] = []
        page = 1
        extra: dict[str, Any] = {} if name is None else {"name": name}
        while True:

            async def fetch(page: int = page) -> Any:
                return await self._rest.actions.async_list_workflow_run_artifacts(
                    owner, repo_name, run_id, per_page=100, page=page, **extra
                )

            response = await self._call(f"list artifacts of run {run_id} in {repo}", fetch)
            batch = response.parsed_data.artifacts
            artifacts.extend(self._artifact(item) for item in batch)
            if not batch or not _has_next(response.headers):
                return artifacts
            page += 1

    async def rate_limit(self) -> RateLimit:
        return await self._rate_limit(self.policy)

    async def _rate_limit(self, policy: RetryPolicy) -> RateLimit:
        response = await self._call(
            "get rate limit", lambda: self._rest.rate_limit.async_get(), policy=policy
        )
        core = response.parsed_data.resources.core
        return RateLimit(
            limit=core.limit,
            remaining=core.remaining,
            reset_at=core.reset,
            used=core.used,
            resource="core",
        )

    # ------------------------------------------------------------------ logs and archives

    async def _location(self, path: str, what: str) -> httpx.Response:
        """GET an API path that redirects to a download; the 302 (or a direct 200)."""
        async with self._http() as client:
            return await request_with_retries(
                client,
                "GET",
                self.base_url + path,
                policy=self.policy,
                error_type=CIProviderError,
                service=SERVICE,
                what=what,
                auth=self._auth(),
            )

    async def _download_stream(
        self, path: str, what: str, max_bytes: int, state: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        """Chunks of a redirected download; sets state["truncated"] when cut at max_bytes."""
        state.update(truncated=False, size=0)
        refreshes = 3  # a signed URL can expire between the redirect and the download
        for _refresh in range(refreshes):
            first = await self._location(path, what)
            if first.status_code == 200:  # served directly, no redirect
                body = first.content
                state["truncated"] = len(body) > max_bytes
                state["size"] = min(len(body), max_bytes)
                yield body[:max_bytes]
                return
            location = first.headers.get("location")
            if first.status_code not in (301, 302, 303, 307, 308) or not location:
                raise CIProviderError(
                    f"github: {what}: expected a redirect, got HTTP {first.status_code}",
                    reason=ErrorReason.ERROR,
                    service=SERVICE,
                    status_code=first.status_code,
                )
            # No Authorization header: the token must not go to the log storage host.
            async with (
                httpx.AsyncClient(
                    timeout=self.policy.timeout(), transport=self._transport
                ) as client,
                client.stream("GET", location, follow_redirects=True) as response,
            ):
                if response.status_code in (401, 403, 404, 410):
                    # Signed URLs expire (GitHub: after a minute); ask for a fresh one.
                    log.info(
                        "github: %s: download URL refused (HTTP %s); asking for a new one",
                        what,
                        response.status_code,
                    )
                    continue
                if response.status_code >= 400:
                    body = await response.aread()
                    failure = classify_response(
                        response.status_code, response.headers, body, self.policy.wall_clock()
                    ) or Failure(ErrorReason.ERROR, f"HTTP {response.status_code}", False)
                    raise make_error(CIProviderError, failure, what=what, service=SERVICE)
                try:
                    async for chunk in response.aiter_bytes(64 * 1024):
                        room = max_bytes - state["size"]
                        if len(chunk) >= room:
                            if room:
                                state["size"] += room
                                yield chunk[:room]
                            state["truncated"] = len(chunk) > room or await _has_more(response)
                            return
                        state["size"] += len(chunk)
                        yield chunk
                except httpx.TransportError as exc:
                    dropped = classify_exception(exc) or Failure(
                        ErrorReason.UNAVAILABLE, "connection failed", retryable=True
                    )
                    raise make_error(CIProviderError, dropped, what=what, service=SERVICE) from exc
                return
        raise CIProviderError(
            f"github: {what}: the download URL was refused {refreshes} times (expired?)",
            reason=ErrorReason.UNAVAILABLE,
            service=SERVICE,
        )

    async def stream_job_log(
        self, repo: str, job_id: int, *, max_bytes: int | None = None
    ) -> AsyncIterator[bytes]:
        split_repo(repo)
        cap = self.log_max_bytes if max_bytes is None else max_bytes
        state: dict[str, Any] = {}
        async for chunk in self._download_stream(
            f"repos/{repo}/actions/jobs/{job_id}/logs", f"download log of job {job_id}", cap, state
        ):
            yield chunk

    async def _download_to(
        self, path: str, what: str, dest: Path, max_bytes: int, *, allow_truncation: bool
    ) -> LogDownload:
        """Download to `dest`, starting again from zero if the connection drops."""
        dest.parent.mkdir(parents=True, exist_ok=True)

        async def attempt() -> LogDownload:
            state: dict[str, Any] = {}
            with dest.open("wb") as out:
                async for chunk in self._download_stream(path, what, max_bytes, state):
                    out.write(chunk)
            if state["truncated"] and not allow_truncation:
                dest.unlink(missing_ok=True)
                raise CIProviderError(
                    f"github: {what}: larger than the {max_bytes}-byte limit",
                    reason=ErrorReason.INVALID,
                    service=SERVICE,
                )
            return LogDownload(path=dest, size_bytes=state["size"], truncated=state["truncated"])

        async def retried() -> LogDownload:
            try:
                return await attempt()
            except CIProviderError as exc:
                if exc.reason is ErrorReason.UNAVAILABLE:
                    raise FailedAttempt(
                        Failure(ErrorReason.UNAVAILABLE, exc.message, retryable=True)
                    ) from exc
                raise

        return await self._call(what, retried)

    async def download_job_log(
        self, repo: str, job_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload:
        split_repo(repo)
        cap = self.log_max_bytes if max_bytes is None else max_bytes
        return await self._download_to(
            f"repos/{repo}/actions/jobs/{job_id}/logs",
            f"download log of job {job_id}",
            dest,
            cap,
            allow_truncation=True,
        )

    async def download_run_logs(
        self, repo: str, run_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload:
        split_repo(repo)
        cap = self.log_max_bytes if max_bytes is None else max_bytes
        return await self._download_to(
            f"repos/{repo}/actions/runs/{run_id}/logs",
            f"download logs of run {run_id}",
            dest,
            cap,
            allow_truncation=False,  # a cut zip is useless
        )

    async def download_artifact(
        self, repo: str, artifact_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload:
        split_repo(repo)
        cap = self.log_max_bytes if max_bytes is None else max_bytes
        return await self._download_to(
            f"repos/{repo}/actions/artifacts/{artifact_id}/zip",
            f"download artifact {artifact_id}",
            dest,
            cap,
            allow_truncation=False,
        )

    # ------------------------------------------------------------------ re-runs, cancel

    async def _rerun(
        self, repo: str, run_id: int, run_attempt: int | None, *, failed_only: bool
    ) -> WorkflowRun:
        owner, name = split_repo(repo)
        kind = "rerun_failed_jobs" if failed_only else "rerun"
        if run_attempt is None:
            run_attempt = (await self.get_run(repo, run_id)).run_attempt
        key = idempotency_key("github", kind, repo, run_id, run_attempt)

        async def find_existing() -> Result | None:
            current = await self.get_run(repo, run_id)
            if current.run_attempt > run_attempt:
                return {"run_id": run_id, "run_attempt": current.run_attempt}
            return None

        async def perform() -> Result:
            call = (
                self._rest.actions.async_re_run_workflow_failed_jobs
                if failed_only
                else self._rest.actions.async_re_run_workflow
            )
            try:
                await self._call(
                    f"{kind} run {run_id} of {repo}",
                    lambda: call(owner, name, run_id),
                    unsafe=True,
                )
            except CIProviderError as exc:
                # 403 "already running" after a lost response: the re-run did happen.
                if exc.status_code == 403 and not exc.rate_limited:
                    existing = await find_existing()
                    if existing is not None:
                        return existing
                raise
            return {"run_id": run_id, "run_attempt": run_attempt + 1}

        await self._once(key, kind, f"{repo}#run{run_id}@{run_attempt}", perform, find_existing)
        return await self.get_run(repo, run_id)

    async def rerun_failed_jobs(
        self, repo: str, run_id: int, *, run_attempt: int | None = None
    ) -> WorkflowRun:
        return await self._rerun(repo, run_id, run_attempt, failed_only=True)

    async def rerun_run(
        self, repo: str, run_id: int, *, run_attempt: int | None = None
    ) -> WorkflowRun:
        return await self._rerun(repo, run_id, run_attempt, failed_only=False)

    async def cancel_run(self, repo: str, run_id: int) -> bool:
        owner, name = split_repo(repo)
        try:
            # Cancelling twice is harmless (409), so a retry after a lost response is safe.
            await self._call(
                f"cancel run {run_id} of {repo}",
                lambda: self._rest.actions.async_cancel_workflow_run(owner, name, run_id),
                unsafe=False,
            )
        except CIProviderError as exc:
            if exc.status_code == 409:
                return False
            raise
        return True

    # ------------------------------------------------------------------ comments, checks

    async def _comments(self, repo: str, issue_number: int) -> list[Any]:
        owner, name = split_repo(repo)
        comments: list[Any] = []
        page = 1
        while True:

            async def fetch(page: int = page) -> Any:
                return await self._rest.issues.async_list_comments(
                    owner, name, issue_number, per_page=100, page=page
                )

            response = await self._call(f"list comments on {repo}#{issue_number}", fetch)
            comments.extend(response.parsed_data)
            if not response.parsed_data or not _has_next(response.headers):
                return comments
            page += 1

    async def create_issue_comment(
        self, repo: str, issue_number: int, body: str, *, key: str | None = None
    ) -> CommentRef:
        owner, name = split_repo(repo)
        key = key or idempotency_key("github", "comment", repo, issue_number, body)
        text = f"{body}\n\n{marker(key)}"

        async def find_existing() -> Result | None:
            for comment in reversed(await self._comments(repo, issue_number)):
                if has_marker(_unset(comment.body), key):
                    return {"id": comment.id, "html_url": comment.html_url}
            return None

        async def perform() -> Result:
            response = await self._call(
                f"comment on {repo}#{issue_number}",
                lambda: self._rest.issues.async_create_comment(
                    owner, name, issue_number, data={"body": text}
                ),
                unsafe=True,
            )
            return {"id": response.parsed_data.id, "html_url": response.parsed_data.html_url}

        result = await self._once(
            key, "github_comment", f"{repo}#{issue_number}", perform, find_existing
        )
        return CommentRef(id=int(result["id"]), html_url=str(result["html_url"]), body=text)

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
        owner, repo_name = split_repo(repo)
        key = key or idempotency_key("github", "check_run", repo, name, head_sha)
        items = [_annotation_json(a) for a in annotations]
        batches = [
            items[i : i + MAX_ANNOTATIONS_PER_REQUEST]
            for i in range(0, len(items), MAX_ANNOTATIONS_PER_REQUEST)
        ]
        output: dict[str, Any] = {"title": title[:255], "summary": summary[:65535]}
        if text:
            output["text"] = text[:65535]
        if batches:
            output["annotations"] = batches[0]
        body: dict[str, Any] = {
            "name": name,
            "head_sha": head_sha,
            "external_id": key,  # lets a later attempt find this check run
            "output": output,
        }
        if conclusion is not None:
            body["status"] = "completed"
            body["conclusion"] = conclusion
        else:
            body["status"] = "in_progress"
        if details_url:
            body["details_url"] = details_url

        async def find_existing() -> Result | None:
            response = await self._call(
                f"list check runs of {head_sha[:12]} in {repo}",
                lambda: self._rest.checks.async_list_for_ref(
                    owner, repo_name, head_sha, check_name=name, filter_="all", per_page=100
                ),
            )
            for check in response.parsed_data.check_runs:
                if _unset(check.external_id) == key:
                    return _check_result(check)
            return None

        async def perform() -> Result:
            response = await self._call(
                f"create check run {name!r} on {repo}",
                lambda: self._rest.checks.async_create(owner, repo_name, data=cast(Any, body)),
                unsafe=True,
            )
            return _check_result(response.parsed_data)

        result = await self._once(
            key, "github_check_run", f"{repo}@{head_sha}", perform, find_existing
        )
        check_id = int(result["id"])
        # The remaining annotations, 50 per update; each batch is its own idempotent action.
        for index, batch in enumerate(batches[1:], start=1):
            expected = min(len(items), MAX_ANNOTATIONS_PER_REQUEST * (index + 1))
            result = await self._add_annotations(
                repo, check_id, title, summary, batch, expected, f"{key}:annotations:{index}"
            )
        return CheckRunRef(
            id=check_id,
            name=name,
            head_sha=head_sha,
            status=str(result["status"]),
            conclusion=result.get("conclusion"),
            html_url=result.get("html_url"),
            annotations_count=int(result.get("annotations_count", 0)),
        )

    async def _add_annotations(
        self,
        repo: str,
        check_id: int,
        title: str,
        summary: str,
        batch: list[dict[str, Any]],
        expected_count: int,
        key: str,
    ) -> Result:
        owner, name = split_repo(repo)

        async def current() -> Any:
            response = await self._call(
                f"get check run {check_id} of {repo}",
                lambda: self._rest.checks.async_get(owner, name, check_id),
            )
            return response.parsed_data

        async def find_existing() -> Result | None:
            check = await current()
            if check.output.annotations_count >= expected_count:
                return _check_result(check)
            return None

        async def perform() -> Result:
            data = {
                "output": {"title": title[:255], "summary": summary[:65535], "annotations": batch}
            }
            response = await self._call(
                f"add annotations to check run {check_id} of {repo}",
                lambda: self._rest.checks.async_update(owner, name, check_id, data=cast(Any, data)),
                unsafe=True,
            )
            return _check_result(response.parsed_data)

        return await self._once(
            key, "github_check_annotations", f"{repo}#check{check_id}", perform, find_existing
        )

    # ------------------------------------------------------------------ refs, files, PRs

    async def get_ref(self, repo: str, ref: str) -> GitRef:
        owner, name = split_repo(repo)
        ref = ref.removeprefix("refs/")
        response = await self._call(
            f"get ref {ref} of {repo}", lambda: self._rest.git.async_get_ref(owner, name, ref)
        )
        return GitRef(ref=response.parsed_data.ref, sha=response.parsed_data.object_.sha)

    async def create_branch(self, repo: str, branch: str, sha: str) -> GitRef:
        owner, name = split_repo(repo)
        try:
            response = await self._call(
                f"create branch {branch} in {repo}",
                lambda: self._rest.git.async_create_ref(
                    owner, name, data={"ref": f"refs/heads/{branch}", "sha": sha}
                ),
                unsafe=False,  # a repeat gets 422 "already exists", handled below
            )
        except CIProviderError as exc:
            if exc.reason is ErrorReason.CONFLICT:  # 422 "Reference already exists"
                return await self.get_ref(repo, f"heads/{branch}")
            raise
        return GitRef(ref=response.parsed_data.ref, sha=response.parsed_data.object_.sha)

    async def get_file(self, repo: str, path: str, *, ref: str | None = None) -> FileContent:
        owner, name = split_repo(repo)
        extra: dict[str, Any] = {} if ref is None else {"ref": ref}
        response = await self._call(
            f"get {path} from {repo}",
            lambda: self._rest.repos.async_get_content(owner, name, path, **extra),
        )
        data: Any = response.parsed_data
        if isinstance(data, list) or getattr(data, "type", None) != "file":
            raise CIProviderError(
                f"github: {path} in {repo} is not a file",
                reason=ErrorReason.INVALID,
                service=SERVICE,
            )
        content = base64.b64decode(data.content) if data.encoding == "base64" else b""
        return FileContent(path=data.path, sha=data.sha, content=content)

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
        owner, name = split_repo(repo)
        body: dict[str, Any] = {
            "message": message,
            "content": base64.b64encode(content).decode("ascii"),
            "branch": branch,
        }
        if sha:
            body["sha"] = sha
        try:
            response = await self._call(
                f"write {path} on {branch} in {repo}",
                lambda: self._rest.repos.async_create_or_update_file_contents(
                    owner, name, path, data=cast(Any, body)
                ),
                unsafe=True,
            )
        except CIProviderError as exc:
            # After a lost response the write may have happened (then the sha conflicts).
            if exc.maybe_processed or exc.status_code in (409, 422):
                try:
                    now = await self.get_file(repo, path, ref=branch)
                except CIProviderError:
                    raise exc from None
                if now.content == content:
                    return (await self.get_ref(repo, f"heads/{branch}")).sha
            raise
        commit_sha = _unset(response.parsed_data.commit.sha)
        if not commit_sha:
            return (await self.get_ref(repo, f"heads/{branch}")).sha
        return str(commit_sha)

    async def find_pull_request(
        self, repo: str, *, head: str, base: str | None = None, state: str = "open"
    ) -> PullRequestRef | None:
        owner, name = split_repo(repo)
        extra: dict[str, Any] = {"head": f"{owner}:{head}", "state": state, "per_page": 100}
        if base:
            extra["base"] = base
        response = await self._call(
            f"find pull request for {head} in {repo}",
            lambda: self._rest.pulls.async_list(owner, name, **extra),
        )
        for item in cast(list[Any], response.parsed_data):
            if item.head.ref == head and (base is None or item.base.ref == base):
                return self._pull(item)
        return None

    async def get_pull_request(self, repo: str, number: int) -> PullRequestRef:
        owner, name = split_repo(repo)
        response = await self._call(
            f"get pull request #{number} of {repo}",
            lambda: self._rest.pulls.async_get(owner, name, number),
        )
        return self._pull(response.parsed_data)

    async def list_pull_request_files(
        self, repo: str, number: int, *, max_items: int = 3000
    ) -> list[ChangedFile]:
        owner, name = split_repo(repo)
        files: list[ChangedFile] = []
        page = 1
        while True:

            async def fetch(page: int = page) -> Any:
                return await self._rest.pulls.async_list_files(
                    owner, name, number, per_page=100, page=page
                )

            response = await self._call(
                f"list files of pull request #{number} of {repo} (page {page})", fetch
            )
            batch = cast(list[Any], response.parsed_data)
            files.extend(
                ChangedFile(
                    path=item.filename,
                    status=str(item.status),
                    previous_path=_unset(item.previous_filename) or None,
                )
                for item in batch
            )
            if len(files) >= max_items:
                return files[:max_items]
            if not batch or not _has_next(response.headers):
                return files
            page += 1

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
        owner, name = split_repo(repo)
        key = idempotency_key("github", "pull_request", repo, head, base)

        async def find_existing() -> Result | None:
            found = await self.find_pull_request(repo, head=head, base=base)
            return None if found is None else _pull_result(found)

        async def perform() -> Result:
            data = {"head": head, "base": base, "title": title, "body": body, "draft": draft}
            try:
                response = await self._call(
                    f"open pull request {head} -> {base} in {repo}",
                    lambda: self._rest.pulls.async_create(owner, name, data=cast(Any, data)),
                    unsafe=True,
                )
            except CIProviderError as exc:
                if exc.reason is ErrorReason.CONFLICT:  # 422: a PR already exists for head
                    existing = await find_existing()
                    if existing is not None:
                        return existing
                raise
            return _pull_result(self._pull(response.parsed_data))

        result = await self._once(
            key, "github_pull_request", f"{repo}:{head}", perform, find_existing
        )
        return PullRequestRef(
            number=int(result["number"]),
            html_url=str(result["html_url"]),
            head=str(result["head"]),
            base=str(result["base"]),
            state=str(result["state"]),
            id=int(result["id"]),
            draft=bool(result.get("draft")),
        )

    # ------------------------------------------------------------------ caches, releases

    async def delete_actions_caches(
        self, repo: str, *, key: str | None = None, cache_id: int | None = None
    ) -> int:
        owner, name = split_repo(repo)
        if (key is None) == (cache_id is None):
            raise CIProviderError(
                "github: delete caches needs exactly one of key or cache_id",
                reason=ErrorReason.INVALID,
                service=SERVICE,
            )
        try:
            if cache_id is not None:
                await self._call(
                    f"delete cache {cache_id} in {repo}",
                    lambda: self._rest.actions.async_delete_actions_cache_by_id(
                        owner, name, cache_id
                    ),
                )
                return 1
            assert key is not None
            response = await self._call(
                f"delete caches {key!r} in {repo}",
                lambda: self._rest.actions.async_delete_actions_cache_by_key(owner, name, key=key),
            )
            return int(response.parsed_data.total_count)
        except CIProviderError as exc:
            if exc.not_found:  # nothing (left) to delete: deleting is idempotent
                return 0
            raise

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
    ) -> ReleaseRef:
        owner, repo_name = split_repo(repo)
        key = idempotency_key("github", "release", repo, tag_name)

        async def find_existing() -> Result | None:
            response = await self._call(
                f"list releases of {repo}",
                lambda: self._rest.repos.async_list_releases(owner, repo_name, per_page=100),
            )
            for release in response.parsed_data:
                if release.tag_name == tag_name:
                    return _release_result(release)
            return None

        async def perform() -> Result:
            data: dict[str, Any] = {
                "tag_name": tag_name,
                "name": name,
                "body": body,
                "draft": draft,
                "prerelease": prerelease,
            }
            if target_commitish:
                data["target_commitish"] = target_commitish
            try:
                response = await self._call(
                    f"create release {tag_name} in {repo}",
                    lambda: self._rest.repos.async_create_release(
                        owner, repo_name, data=cast(Any, data)
                    ),
                    unsafe=True,
                )
            except CIProviderError as exc:
                if exc.status_code == 422:
                    existing = await find_existing()
                    if existing is not None:
                        return existing
                raise
            return _release_result(response.parsed_data)

        result = await self._once(
            key, "github_release", f"{repo}@{tag_name}", perform, find_existing
        )
        return ReleaseRef(
            id=int(result["id"]),
            tag_name=str(result["tag_name"]),
            html_url=str(result["html_url"]),
            draft=bool(result["draft"]),
        )

    # ------------------------------------------------------------------ health

    async def check(self) -> CheckResult:
        started = time.monotonic()
        try:
            limit = await self._rate_limit(self.check_policy)
        except CIProviderError as exc:
            latency = (time.monotonic() - started) * 1000
            return CheckResult(
                name=SERVICE,
                status="degraded" if exc.rate_limited else "down",
                latency_ms=round(latency, 1),
                detail=exc.message,
                rate_limit_remaining=0 if exc.rate_limited else None,
                rate_limit_reset_at=exc.reset_at,
            )
        latency = (time.monotonic() - started) * 1000
        low = limit.remaining < max(1, limit.limit // 10)
        detail = f"authenticated ({self.auth_kind}); {limit.remaining}/{limit.limit} requests left"
        if low:
            reset = datetime.fromtimestamp(limit.reset_at).isoformat(timespec="seconds")
            detail += f", resets at {reset}"
        return CheckResult(
            name=SERVICE,
            status="degraded" if low else "ok",
            latency_ms=round(latency, 1),
            detail=detail,
            rate_limit_remaining=limit.remaining,
            rate_limit_reset_at=float(limit.reset_at),
        )


async def _has_more(response: httpx.Response) -> bool:
    """True if the stream still has bytes after the cap was reached (reads one chunk)."""
    try:
        async for chunk in response.aiter_bytes(1):
            if chunk:
                return True
    except httpx.TransportError:
        return True
    return False


def _annotation_json(annotation: Annotation) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": annotation.path,
        "start_line": annotation.start_line,
        "end_line": annotation.end_line,
        "annotation_level": annotation.level,
        "message": annotation.message[: 64 * 1024],
    }
    if annotation.title:
        data["title"] = annotation.title[:255]
    if annotation.raw_details:
        data["raw_details"] = annotation.raw_details[: 64 * 1024]
    return data


def _check_result(check: Any) -> Result:
    return {
        "id": check.id,
        "status": check.status,
        "conclusion": check.conclusion,
        "html_url": check.html_url,
        "annotations_count": check.output.annotations_count,
    }


def _pull_result(pull: PullRequestRef) -> Result:
    return {
        "number": pull.number,
        "html_url": pull.html_url,
        "head": pull.head,
        "base": pull.base,
        "state": pull.state,
        "id": pull.id,
        "draft": pull.draft,
    }


def _release_result(release: Any) -> Result:
    return {
        "id": release.id,
        "tag_name": release.tag_name,
        "html_url": release.html_url,
        "draft": release.draft,
    }
