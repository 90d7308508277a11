"""Routes: repositories (issues, comments, check runs, pull requests, refs, contents, releases)."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from contexten.sandbox.github.records import (
    CONCLUSIONS,
    CheckRunRecord,
    CommentRecord,
    ReleaseRecord,
    fake_sha,
    git_blob_sha,
    iso,
    utc,
)
from contexten.sandbox.github.responses import (
    _repo_or_none,
    _shapes,
    error,
    found,
    json_body,
    not_found,
    paged,
    record_created,
    validation_failed,
)
from contexten.sandbox.github.state import GitHubState


def _routes_repo(app: FastAPI, state: GitHubState) -> None:
    @app.get("/repos/{owner}/{repo}")
    async def get_repo(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            return JSONResponse(_shapes(state, request).repo_full(record))

    @app.get("/repos/{owner}/{repo}/issues/{issue_number}/comments")
    async def list_comments(owner: str, repo: str, issue_number: int, request: Request) -> Response:
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            if issue_number not in record.issues:
                return not_found()
            items = [c for c in record.comments if c.issue_number == issue_number]
            shapes = _shapes(state, request)
            return paged(request, items, lambda c: shapes.comment(record, c))

    @app.post("/repos/{owner}/{repo}/issues/{issue_number}/comments")
    async def create_comment(
        owner: str, repo: str, issue_number: int, request: Request
    ) -> Response:
        body = await json_body(request)
        text = body.get("body")
        if not isinstance(text, str) or not text:
            return validation_failed("IssueComment", "body", "missing_field")
        if len(text) > 65536:
            return validation_failed(
                "IssueComment", "body", "custom", "Body is too long (maximum is 65536 characters)"
            )
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            if issue_number not in record.issues:
                return not_found()
            comment = CommentRecord(
                id=2_000_000_000 + state.new_id(), issue_number=issue_number, body=text
            )
            record.comments.append(comment)
            return record_created(
                state, "issue_comment", _shapes(state, request).comment(record, comment)
            )

    @app.get("/repos/{owner}/{repo}/issues")
    async def list_issues(owner: str, repo: str, request: Request) -> Response:
        wanted = request.query_params.get("state", "open")
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            items = [i for i in record.issues.values() if wanted == "all" or i.state == wanted]
            items.sort(key=lambda i: i.number, reverse=True)
            shapes = _shapes(state, request)
            return paged(request, items, lambda i: shapes.issue(record, i))

    @app.post("/repos/{owner}/{repo}/issues")
    async def create_issue(owner: str, repo: str, request: Request) -> Response:
        body = await json_body(request)
        title = body.get("title")
        if not isinstance(title, str | int) or not str(title):
            return validation_failed("Issue", "title", "missing_field")
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            issue = state.add_issue(record.full_name, str(title), body.get("body"))
            issue.labels = [str(x) for x in body.get("labels") or [] if isinstance(x, str)]
            return record_created(state, "issue", _shapes(state, request).issue(record, issue))

    @app.post("/repos/{owner}/{repo}/check-runs")
    async def create_check_run(owner: str, repo: str, request: Request) -> Response:
        body = await json_body(request)
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
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
            return record_created(
                state, "check_run", _shapes(state, request).check_run(record, check)
            )

    @app.patch("/repos/{owner}/{repo}/check-runs/{check_run_id}")
    async def update_check_run(
        owner: str, repo: str, check_run_id: int, request: Request
    ) -> Response:
        body = await json_body(request)
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            if check_run_id not in record.check_runs:
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
            record = found(_repo_or_none(state, owner, repo))
            if check_run_id not in record.check_runs:
                return not_found()
            return JSONResponse(
                _shapes(state, request).check_run(record, record.check_runs[check_run_id])
            )

    @app.get("/repos/{owner}/{repo}/commits/{ref}/check-runs")
    async def list_check_runs(owner: str, repo: str, ref: str, request: Request) -> Response:
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            sha = record.resolve(ref) or ref
            name = request.query_params.get("check_name")
            items = [
                c
                for c in record.check_runs.values()
                if c.head_sha == sha and (name is None or c.name == name)
            ]
            items.sort(key=lambda c: c.id, reverse=True)
            shapes = _shapes(state, request)
            return paged(request, items, lambda c: shapes.check_run(record, c), key="check_runs")

    @app.get("/repos/{owner}/{repo}/git/ref/{ref:path}")
    async def get_ref(owner: str, repo: str, ref: str, request: Request) -> Response:
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            if not ref.startswith("heads/"):
                return not_found()
            branch = ref.removeprefix("heads/")
            if branch not in record.branches:
                return not_found()
            return JSONResponse(_shapes(state, request).ref(record, branch))

    @app.post("/repos/{owner}/{repo}/git/refs")
    async def create_ref(owner: str, repo: str, request: Request) -> Response:
        body = await json_body(request)
        ref, sha = body.get("ref"), body.get("sha")
        if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
            return error(
                422, "Reference name must start with 'refs/' and have at least two slashes."
            )
        if not isinstance(sha, str):
            return validation_failed("Reference", "sha", "missing_field")
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            if not ref.startswith("refs/heads/"):
                return error(422, "Only branch references are supported by the sandbox")
            branch = ref.removeprefix("refs/heads/")
            if branch in record.branches:
                return error(422, "Reference already exists")
            if sha not in record.trees:
                return error(422, "Object does not exist")
            record.branches[branch] = sha
            return record_created(state, "git_ref", _shapes(state, request).ref(record, branch))

    @app.patch("/repos/{owner}/{repo}/git/refs/{ref:path}")
    async def update_ref(owner: str, repo: str, ref: str, request: Request) -> Response:
        body = await json_body(request)
        sha = body.get("sha")
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
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
            record = found(_repo_or_none(state, owner, repo))
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
        body = await json_body(request)
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
            record = found(_repo_or_none(state, owner, repo))
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
            record = found(_repo_or_none(state, owner, repo))
            items = [p for p in record.pulls.values() if wanted == "all" or p.state == wanted]
            if q.get("head"):
                head_owner, _, head_branch = q["head"].rpartition(":")
                items = [
                    p for p in items if p.head == head_branch and head_owner in ("", record.owner)
                ]
            if q.get("base"):
                items = [p for p in items if p.base == q["base"]]
            items.sort(key=lambda p: p.number, reverse=True)
            shapes = _shapes(state, request)
            return paged(request, items, lambda p: shapes.pull_simple(record, p))

    @app.get("/repos/{owner}/{repo}/pulls/{number}")
    async def get_pull(owner: str, repo: str, number: int, request: Request) -> Response:
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            if number not in record.pulls:
                return not_found()
            return JSONResponse(_shapes(state, request).pull(record, record.pulls[number]))

    @app.get("/repos/{owner}/{repo}/pulls/{number}/files")
    async def list_pull_files(owner: str, repo: str, number: int, request: Request) -> Response:
        """The files the head branch changes against the base branch (a two-tree diff)."""
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            if number not in record.pulls:
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
            return paged(request, items)

    @app.post("/repos/{owner}/{repo}/pulls")
    async def create_pull(owner: str, repo: str, request: Request) -> Response:
        body = await json_body(request)
        head, base = body.get("head"), body.get("base")
        if not isinstance(head, str) or not head:
            return validation_failed("PullRequest", "head", "missing_field")
        if not isinstance(base, str) or not base:
            return validation_failed("PullRequest", "base", "missing_field")
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
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
            return record_created(state, "pull_request", _shapes(state, request).pull(record, pull))

    @app.get("/repos/{owner}/{repo}/releases")
    async def list_releases(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            items = sorted(record.releases, key=lambda r: r.id, reverse=True)
            shapes = _shapes(state, request)
            return paged(request, items, lambda r: shapes.release(record, r))

    @app.get("/repos/{owner}/{repo}/releases/tags/{tag:path}")
    async def release_by_tag(owner: str, repo: str, tag: str, request: Request) -> Response:
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            for release in record.releases:
                if release.tag_name == tag and not release.draft:  # drafts are not found by tag
                    return JSONResponse(_shapes(state, request).release(record, release))
            return not_found()

    @app.post("/repos/{owner}/{repo}/releases")
    async def create_release(owner: str, repo: str, request: Request) -> Response:
        body = await json_body(request)
        tag = body.get("tag_name")
        if not isinstance(tag, str) or not tag:
            return validation_failed("Release", "tag_name", "missing_field")
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
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
            return record_created(
                state, "release", _shapes(state, request).release(record, release)
            )

    @app.get("/repos/{owner}/{repo}/dependabot/alerts")
    async def dependabot_alerts(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            wanted = request.query_params.get("state")
            items = [
                a
                for a in record.dependabot_alerts
                if wanted is None or a.get("state") in wanted.split(",")
            ]
        return paged(request, items)


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
