"""The GitHub client (`CIProvider`) on githubkit, REST API version 2022-11-28.

- Auth: a token (`Authorization: token …`) or a GitHub App installation (githubkit's
  AppInstallationAuthStrategy fetches and caches installation tokens).
- Every call goes through the shared RetryPolicy (githubkit's own retry is off, so there is
  one back-off implementation and tests can inject a fake sleep). githubkit errors become
  `CIProviderError`s with a reason (rate limited with reset time, auth, not found, ...).
- Logs: the 302 from `/logs` is followed by hand so the token is never sent to the log host,
  and the plain-text log is streamed with a size cap; an expired log URL is asked for again
  (integrations.github_download).
- World-changing calls are idempotent: each has a key derived from what it is about, goes
  through the ActionLedger when one is given, and looks for an earlier success (a comment with
  the key's marker, a check run with the key as external_id, the open PR for the head
  branch, a run whose attempt already advanced) before doing it again.

The plumbing (retries, ledger, pagination) is in integrations.github_base, GitHub's JSON
shapes in integrations.github_shapes.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from contexten.integrations.github_base import API_VERSION, USER_AGENT
from contexten.integrations.github_download import GitHubLogs
from contexten.integrations.github_shapes import (
    SERVICE,
    artifact_from_json,
    changed_file_from_json,
    check_result,
    check_run_body,
    check_run_ref,
    health_from_error,
    health_from_rate_limit,
    job_from_json,
    pull_from_json,
    pull_from_result,
    pull_result,
    rate_limit_from_json,
    release_from_result,
    release_result,
    run_from_json,
    run_timing_from_json,
    split_repo,
    unset,
)
from contexten.integrations.http import RetryPolicy, SharedTransport
from contexten.integrations.idempotency import (
    ActionLedger,
    Result,
    has_marker,
    idempotency_key,
    marker,
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
    PullRequestRef,
    RateLimit,
    ReleaseRef,
    RunTiming,
    WorkflowRun,
)
from contexten.integrations.redaction import install_log_redaction

if TYPE_CHECKING:
    from githubkit import GitHub

DEFAULT_LOG_MAX_BYTES = 200 * 1024 * 1024


class GitHubClient(GitHubLogs, CIProvider):
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

        async def fetch(page: int) -> Any:
            if workflow_id is not None:
                return await self._rest.actions.async_list_workflow_runs(
                    owner, name, workflow_id, per_page=per_page, page=page, **filters
                )
            return await self._rest.actions.async_list_workflow_runs_for_repo(
                owner, name, per_page=per_page, page=page, **filters
            )

        return await self._pages(
            lambda page: f"list workflow runs of {repo} (page {page})",
            fetch,
            lambda data: data.workflow_runs,
            run_from_json,
            max_items=max_items,
        )

    async def get_run(self, repo: str, run_id: int) -> WorkflowRun:
        owner, name = split_repo(repo)
        response = await self._call(
            f"get run {run_id} of {repo}",
            lambda: self._rest.actions.async_get_workflow_run(owner, name, run_id),
        )
        return run_from_json(response.parsed_data)

    async def list_jobs(
        self, repo: str, run_id: int, *, filter: Literal["latest", "all"] = "latest"
    ) -> list[Job]:
        owner, name = split_repo(repo)

        async def fetch(page: int) -> Any:
            return await self._rest.actions.async_list_jobs_for_workflow_run(
                owner, name, run_id, filter_=filter, per_page=100, page=page
            )

        return await self._pages(
            lambda page: f"list jobs of run {run_id} in {repo}",
            fetch,
            lambda data: data.jobs,
            job_from_json,
        )

    async def get_job(self, repo: str, job_id: int) -> Job:
        owner, name = split_repo(repo)
        response = await self._call(
            f"get job {job_id} of {repo}",
            lambda: self._rest.actions.async_get_job_for_workflow_run(owner, name, job_id),
        )
        return job_from_json(response.parsed_data)

    async def get_run_timing(self, repo: str, run_id: int) -> RunTiming:
        owner, name = split_repo(repo)
        response = await self._call(
            f"get timing of run {run_id} in {repo}",
            lambda: self._rest.actions.async_get_workflow_run_usage(owner, name, run_id),
        )
        return run_timing_from_json(response.parsed_data)

    async def list_artifacts(
        self, repo: str, run_id: int, *, name: str | None = None
    ) -> list[Artifact]:
        owner, repo_name = split_repo(repo)
        extra: dict[str, Any] = {} if name is None else {"name": name}

        async def fetch(page: int) -> Any:
            return await self._rest.actions.async_list_workflow_run_artifacts(
                owner, repo_name, run_id, per_page=100, page=page, **extra
            )

        return await self._pages(
            lambda page: f"list artifacts of run {run_id} in {repo}",
            fetch,
            lambda data: data.artifacts,
            artifact_from_json,
        )

    async def rate_limit(self) -> RateLimit:
        return await self._rate_limit(self.policy)

    async def _rate_limit(self, policy: RetryPolicy) -> RateLimit:
        response = await self._call(
            "get rate limit", lambda: self._rest.rate_limit.async_get(), policy=policy
        )
        return rate_limit_from_json(response.parsed_data)

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

        async def fetch(page: int) -> Any:
            return await self._rest.issues.async_list_comments(
                owner, name, issue_number, per_page=100, page=page
            )

        return await self._pages(
            lambda page: f"list comments on {repo}#{issue_number}",
            fetch,
            lambda data: data,
            lambda comment: comment,
        )

    async def create_issue_comment(
        self, repo: str, issue_number: int, body: str, *, key: str | None = None
    ) -> CommentRef:
        owner, name = split_repo(repo)
        key = key or idempotency_key("github", "comment", repo, issue_number, body)
        text = f"{body}\n\n{marker(key)}"

        async def find_existing() -> Result | None:
            for comment in reversed(await self._comments(repo, issue_number)):
                if has_marker(unset(comment.body), key):
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
        body, batches = check_run_body(
            name=name,
            head_sha=head_sha,
            title=title,
            summary=summary,
            conclusion=conclusion,
            text=text,
            annotations=annotations,
            details_url=details_url,
            key=key,
        )

        async def find_existing() -> Result | None:
            response = await self._call(
                f"list check runs of {head_sha[:12]} in {repo}",
                lambda: self._rest.checks.async_list_for_ref(
                    owner, repo_name, head_sha, check_name=name, filter_="all", per_page=100
                ),
            )
            for check in response.parsed_data.check_runs:
                if unset(check.external_id) == key:
                    return check_result(check)
            return None

        async def perform() -> Result:
            response = await self._call(
                f"create check run {name!r} on {repo}",
                lambda: self._rest.checks.async_create(owner, repo_name, data=cast(Any, body)),
                unsafe=True,
            )
            return check_result(response.parsed_data)

        result = await self._once(
            key, "github_check_run", f"{repo}@{head_sha}", perform, find_existing
        )
        check_id = int(result["id"])
        # The remaining annotations, 50 per update; each batch is its own idempotent action.
        for index, batch in enumerate(batches[1:], start=1):
            expected = sum(len(b) for b in batches[: index + 1])
            result = await self._add_annotations(
                repo, check_id, title, summary, batch, expected, f"{key}:annotations:{index}"
            )
        return check_run_ref(result, check_id=check_id, name=name, head_sha=head_sha)

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
                return check_result(check)
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
            return check_result(response.parsed_data)

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
        commit_sha = unset(response.parsed_data.commit.sha)
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
                return pull_from_json(item)
        return None

    async def get_pull_request(self, repo: str, number: int) -> PullRequestRef:
        owner, name = split_repo(repo)
        response = await self._call(
            f"get pull request #{number} of {repo}",
            lambda: self._rest.pulls.async_get(owner, name, number),
        )
        return pull_from_json(response.parsed_data)

    async def list_pull_request_files(
        self, repo: str, number: int, *, max_items: int = 3000
    ) -> list[ChangedFile]:
        owner, name = split_repo(repo)

        async def fetch(page: int) -> Any:
            return await self._rest.pulls.async_list_files(
                owner, name, number, per_page=100, page=page
            )

        return await self._pages(
            lambda page: f"list files of pull request #{number} of {repo} (page {page})",
            fetch,
            lambda data: cast(list[Any], data),
            changed_file_from_json,
            max_items=max_items,
        )

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
            return None if found is None else pull_result(found)

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
            return pull_result(pull_from_json(response.parsed_data))

        result = await self._once(
            key, "github_pull_request", f"{repo}:{head}", perform, find_existing
        )
        return pull_from_result(result)

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
                    return release_result(release)
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
            return release_result(response.parsed_data)

        result = await self._once(
            key, "github_release", f"{repo}@{tag_name}", perform, find_existing
        )
        return release_from_result(result)

    # ------------------------------------------------------------------ health

    async def check(self) -> CheckResult:
        started = time.monotonic()
        try:
            limit = await self._rate_limit(self.check_policy)
        except CIProviderError as exc:
            return health_from_error(exc, (time.monotonic() - started) * 1000)
        return health_from_rate_limit(limit, self.auth_kind, (time.monotonic() - started) * 1000)
