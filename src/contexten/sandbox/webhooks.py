"""Deliver GitHub webhooks from the sandbox's state, signed like GitHub signs them.

    sender = WebhookSender(state.github, "http://127.0.0.1:8787/webhooks/github")
    delivery = await sender.workflow_run(run.id, "completed")
    await sender.redeliver(delivery.guid)      # same GUID, as GitHub's redelivery

Each delivery is a JSON POST with `X-GitHub-Event`, `X-GitHub-Delivery` (a GUID),
`X-GitHub-Hook-ID`, `X-GitHub-Hook-Installation-Target-ID/-Type`, `User-Agent:
GitHub-Hookshot/…`, and `X-Hub-Signature-256: sha256=<HMAC-SHA256(secret, raw body)>`.
Bodies follow GitHub's webhook payload schemas (octokit/webhooks), built from the same state
the REST API serves, so the run in a webhook is the run the API returns.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from contexten.sandbox.github import (
    GitHubState,
    JobRecord,
    RepoRecord,
    RunRecord,
    Shapes,
    WorkflowRecord,
    iso,
)

HOOKSHOT_VERSION = "a1b2c3d"
ZEN = "Keep it logically awesome."

_USER_KEYS = frozenset(
    [
        "login",
        "id",
        "node_id",
        "avatar_url",
        "gravatar_id",
        "url",
        "html_url",
        "followers_url",
        "following_url",
        "gists_url",
        "starred_url",
        "subscriptions_url",
        "organizations_url",
        "repos_url",
        "events_url",
        "received_events_url",
        "type",
        "site_admin",
    ]
)
_REPO_LITE_KEYS = frozenset(
    [
        "archive_url",
        "assignees_url",
        "blobs_url",
        "branches_url",
        "collaborators_url",
        "comments_url",
        "commits_url",
        "compare_url",
        "contents_url",
        "contributors_url",
        "deployments_url",
        "description",
        "downloads_url",
        "events_url",
        "fork",
        "forks_url",
        "full_name",
        "git_commits_url",
        "git_refs_url",
        "git_tags_url",
        "hooks_url",
        "html_url",
        "id",
        "issue_comment_url",
        "issue_events_url",
        "issues_url",
        "keys_url",
        "labels_url",
        "languages_url",
        "merges_url",
        "milestones_url",
        "name",
        "node_id",
        "notifications_url",
        "owner",
        "private",
        "pulls_url",
        "releases_url",
        "stargazers_url",
        "statuses_url",
        "subscribers_url",
        "subscription_url",
        "tags_url",
        "teams_url",
        "trees_url",
        "url",
    ]
)
_REPO_KEYS = _REPO_LITE_KEYS | frozenset(
    [
        "created_at",
        "updated_at",
        "pushed_at",
        "git_url",
        "ssh_url",
        "clone_url",
        "svn_url",
        "homepage",
        "size",
        "stargazers_count",
        "watchers_count",
        "language",
        "has_issues",
        "has_projects",
        "has_downloads",
        "has_wiki",
        "has_pages",
        "has_discussions",
        "forks_count",
        "mirror_url",
        "archived",
        "disabled",
        "open_issues_count",
        "license",
        "forks",
        "open_issues",
        "watchers",
        "default_branch",
        "is_template",
        "web_commit_signoff_required",
        "topics",
        "visibility",
        "custom_properties",
    ]
)
_RUN_KEYS = frozenset(
    [
        "actor",
        "artifacts_url",
        "cancel_url",
        "check_suite_id",
        "check_suite_node_id",
        "check_suite_url",
        "conclusion",
        "created_at",
        "display_title",
        "event",
        "head_branch",
        "head_commit",
        "head_repository",
        "head_sha",
        "html_url",
        "id",
        "jobs_url",
        "logs_url",
        "name",
        "node_id",
        "path",
        "previous_attempt_url",
        "pull_requests",
        "referenced_workflows",
        "repository",
        "rerun_url",
        "run_attempt",
        "run_number",
        "run_started_at",
        "status",
        "triggering_actor",
        "updated_at",
        "url",
        "workflow_id",
        "workflow_url",
    ]
)
_JOB_KEYS = frozenset(
    [
        "check_run_url",
        "completed_at",
        "conclusion",
        "created_at",
        "head_branch",
        "head_sha",
        "html_url",
        "id",
        "labels",
        "name",
        "node_id",
        "run_attempt",
        "run_id",
        "run_url",
        "runner_group_id",
        "runner_group_name",
        "runner_id",
        "runner_name",
        "started_at",
        "status",
        "steps",
        "url",
        "workflow_name",
    ]
)


def signature(secret: str | bytes, body: bytes) -> str:
    """`X-Hub-Signature-256`: sha256= + hex HMAC-SHA256 of the raw body."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _only(data: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in keys}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook delivery and what the receiver answered."""

    guid: str
    event: str
    action: str | None
    body: bytes
    headers: dict[str, str]
    status_code: int | None
    response_text: str
    duration_ms: float
    error: str | None = None
    redelivery: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookPayloads:
    """Webhook bodies built from the GitHub sandbox's state."""

    def __init__(self, state: GitHubState, base_url: str) -> None:
        self.state = state
        self.shapes = Shapes(state, base_url or "http://127.0.0.1")

    def user(self, login: str, kind: str = "User") -> dict[str, Any]:
        return _only(self.shapes.user(login, kind=kind), _USER_KEYS)

    def repository(self, repo: RepoRecord) -> dict[str, Any]:
        data = self.shapes.repo_full(repo)
        data.update(
            is_template=False,
            web_commit_signoff_required=False,
            topics=[],
            custom_properties={},
            owner=self.user(repo.owner, "Organization"),
        )
        return _only(data, _REPO_KEYS)

    def repository_lite(self, repo: RepoRecord) -> dict[str, Any]:
        data = self.shapes.repo_min(repo)
        data["owner"] = self.user(repo.owner, "Organization")
        return _only(data, _REPO_LITE_KEYS)

    def workflow(self, repo: RepoRecord, workflow: WorkflowRecord) -> dict[str, Any]:
        base = self.shapes.base
        return {
            "badge_url": f"{base}/{repo.full_name}/workflows/{workflow.id}/badge.svg",
            "created_at": iso(workflow.created_at),
            "html_url": f"{base}/{repo.full_name}/blob/{repo.default_branch}/{workflow.path}",
            "id": workflow.id,
            "name": workflow.name,
            "node_id": f"W_kwDO{workflow.id}",
            "path": workflow.path,
            "state": workflow.state,
            "updated_at": iso(workflow.created_at),
            "url": f"{base}/repos/{repo.full_name}/actions/workflows/{workflow.id}",
        }

    def installation(self) -> dict[str, Any] | None:
        installation = next(iter(self.state.installations.values()), None)
        if installation is None:
            return None
        return {"id": installation.id, "node_id": f"MDIzOkludGVncmF0aW9u{installation.id}"}

    def _envelope(self, action: str, repo: RepoRecord, sender: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "action": action,
            "repository": self.repository(repo),
            "sender": self.user(sender),
        }
        installation = self.installation()
        if installation is not None:
            body["installation"] = installation
        return body

    def workflow_run(self, run: RunRecord, action: str) -> dict[str, Any]:
        repo = self.state.repos[run.repo]
        data = self.shapes.run(run)
        data["head_branch"] = run.head_branch or repo.default_branch
        data["repository"] = self.repository_lite(repo)
        data["head_repository"] = self.repository_lite(repo)
        data["actor"] = self.user(run.actor)
        data["triggering_actor"] = self.user(run.actor)
        for side in ("author", "committer"):
            person = data["head_commit"][side]
            data["head_commit"][side] = {"name": person["name"], "email": person["email"]}
        if action == "requested":
            data.update(status="requested", conclusion=None)
        elif action == "in_progress":
            data.update(status="in_progress", conclusion=None)
        body = self._envelope(action, repo, run.actor)
        body["workflow"] = self.workflow(repo, run.workflow)
        body["workflow_run"] = _only(data, _RUN_KEYS)
        return body

    def workflow_job(self, job: JobRecord, action: str) -> dict[str, Any]:
        run = self.state.runs[job.run_id]
        repo = self.state.repos[run.repo]
        data = self.shapes.job(job)
        if action in ("queued", "waiting"):
            data.update(status=action, conclusion=None, completed_at=None, steps=[])
        elif action == "in_progress":
            data.update(status="in_progress", conclusion=None, completed_at=None)
            data["steps"] = [
                {**s, "status": "in_progress", "conclusion": None, "completed_at": None}
                for s in data["steps"][:1]
            ]
        body = self._envelope(action, repo, run.actor)
        body["workflow_job"] = _only(data, _JOB_KEYS)
        return body

    def ping(self, repo: RepoRecord, hook_id: int, url: str) -> dict[str, Any]:
        base = self.shapes.base
        hooks = f"{base}/repos/{repo.full_name}/hooks/{hook_id}"
        return {
            "zen": ZEN,
            "hook_id": hook_id,
            "hook": {
                "type": "Repository",
                "id": hook_id,
                "name": "web",
                "active": True,
                "events": ["workflow_run", "workflow_job", "check_run"],
                "config": {"content_type": "json", "url": url, "insecure_ssl": "0"},
                "updated_at": iso(repo.created_at),
                "created_at": iso(repo.created_at),
                "url": hooks,
                "test_url": f"{hooks}/test",
                "ping_url": f"{hooks}/pings",
                "deliveries_url": f"{hooks}/deliveries",
                "last_response": {"code": None, "status": "unused", "message": None},
            },
            "repository": self.repository(repo),
            "sender": self.user(repo.owner, "Organization"),
        }


class WebhookSender:
    """Sends signed webhooks about the sandbox's state to one URL; remembers deliveries."""

    def __init__(
        self,
        state: GitHubState,
        url: str,
        *,
        secret: str | None = None,
        hook_id: int = 1,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.state = state
        self.url = url
        self.secret = state.webhook_secret if secret is None else secret
        self.hook_id = hook_id
        self.payloads = WebhookPayloads(state, base_url or state.base_url)
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        with state.lock:
            state.webhook_senders[hook_id] = self

    def __repr__(self) -> str:
        return f"WebhookSender(url={self.url!r}, deliveries={len(self.deliveries)})"

    def request(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        guid: str | None = None,
        target_id: int | None = None,
    ) -> tuple[str, bytes, dict[str, str]]:
        """(guid, body, headers) of a delivery, signed."""
        guid = guid or str(uuid.uuid4())
        body = json.dumps(payload, separators=(",", ":")).encode()
        repo = payload.get("repository") or {}
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"GitHub-Hookshot/{HOOKSHOT_VERSION}",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": str(self.hook_id),
            "X-GitHub-Hook-Installation-Target-ID": str(target_id or repo.get("id", 0)),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
        }
        if self.secret:
            headers["X-Hub-Signature-256"] = signature(self.secret, body)
            legacy = hmac.new(self.secret.encode(), body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature"] = f"sha1={legacy}"
        return guid, body, headers

    async def send(
        self, event: str, payload: dict[str, Any], *, guid: str | None = None
    ) -> Delivery:
        guid, body, headers = self.request(event, payload, guid=guid)
        return await self._post(event, payload.get("action"), guid, body, headers, False)

    async def _post(
        self,
        event: str,
        action: str | None,
        guid: str,
        body: bytes,
        headers: dict[str, str],
        redelivery: bool,
    ) -> Delivery:
        started = time.monotonic()
        status: int | None = None
        text = ""
        problem: str | None = None
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, content=body, headers=headers)
            status, text = response.status_code, response.text[:2000]
        except httpx.HTTPError as exc:  # GitHub records failed deliveries too
            problem = f"{type(exc).__name__}: {exc}"
        delivery = Delivery(
            guid=guid,
            event=event,
            action=action,
            body=body,
            headers=headers,
            status_code=status,
            response_text=text,
            duration_ms=(time.monotonic() - started) * 1000,
            error=problem,
            redelivery=redelivery,
        )
        self.deliveries.append(delivery)
        self._record(delivery)
        return delivery

    def _record(self, delivery: Delivery) -> None:
        """What GitHub lists under GET /repos/{o}/{r}/hooks/{id}/deliveries."""
        try:
            payload = json.loads(delivery.body)
        except ValueError:
            payload = {}
        repo = payload.get("repository") or {}
        installation = payload.get("installation") or {}
        status = "OK" if delivery.ok else (delivery.error or f"HTTP {delivery.status_code}")
        with self.state.lock:
            self.state.hook_deliveries.append(
                {
                    "id": len(self.state.hook_deliveries) + 1,
                    "guid": delivery.guid,
                    "delivered_at": iso(datetime.now(UTC)),
                    "redelivery": delivery.redelivery,
                    "duration": round(delivery.duration_ms / 1000, 3),
                    "status": status[:200],
                    "status_code": delivery.status_code or 0,
                    "event": delivery.event,
                    "action": delivery.action,
                    "installation_id": installation.get("id"),
                    "repository_id": repo.get("id"),
                    "throttled_at": None,
                    "_hook_id": self.hook_id,
                    "_repository": repo.get("full_name"),
                }
            )

    async def redeliver(self, guid: str) -> Delivery:
        """Send an earlier delivery again, byte for byte, with the same GUID."""
        for earlier in reversed(self.deliveries):
            if earlier.guid == guid:
                return await self._post(
                    earlier.event, earlier.action, guid, earlier.body, earlier.headers, True
                )
        raise KeyError(f"no delivery {guid!r} to redeliver")

    async def workflow_run(self, run_id: int, action: str = "completed") -> Delivery:
        with self.state.lock:
            payload = self.payloads.workflow_run(self.state.runs[run_id], action)
        return await self.send("workflow_run", payload)

    async def workflow_job(self, job_id: int, action: str = "completed") -> Delivery:
        with self.state.lock:
            payload = self.payloads.workflow_job(self.state.jobs[job_id], action)
        return await self.send("workflow_job", payload)

    async def ping(self, repo: str) -> Delivery:
        with self.state.lock:
            payload = self.payloads.ping(self.state.repo(repo), self.hook_id, self.url)
        return await self.send("ping", payload)
