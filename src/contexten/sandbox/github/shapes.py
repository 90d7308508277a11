"""Response bodies shaped like api.github.com's."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import quote

from contexten.sandbox.github.records import (
    ArtifactRecord,
    AttemptRecord,
    CacheRecord,
    CheckRunRecord,
    CommentRecord,
    IssueRecord,
    JobRecord,
    PullRecord,
    ReleaseRecord,
    RepoRecord,
    RunRecord,
    fake_sha,
    git_blob_sha,
    iso,
)
from contexten.sandbox.github.state import GitHubState

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
