"""The GitHub sandbox is faithful: githubkit parses every response into its typed models, and
responses to the operations in GitHub's OpenAPI subset validate against their schemas."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from githubkit import GitHub
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from contexten.sandbox.github import GitHubState, JobSpec
from contexten.sandbox.server import SandboxServer

Call = Callable[[], Awaitable[Any]]


def openapi(data_dir: Path) -> dict[str, Any]:
    return dict(
        json.loads((data_dir / "contracts" / "github-rest-subset.openapi.json").read_text())
    )


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` as JSON Schema (anyOf with null)."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        k: _nullable(v) for k, v in node.items() if k not in ("nullable", "example", "examples")
    }
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def response_validator(
    spec: dict[str, Any], path: str, method: str, status: str
) -> Draft202012Validator:
    schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"][
        "schema"
    ]
    root = {"components": _nullable(spec["components"]), **_nullable(schema)}
    return Draft202012Validator(root)


@pytest.fixture
def seeded(github_state: GitHubState, repo_name: str) -> dict[str, Any]:
    run = github_state.add_run(
        repo_name,
        jobs=[JobSpec("test", conclusion="failure"), JobSpec("lint")],
        rerun_outcomes=["success"],
    )
    github_state.add_run(repo_name, jobs=[JobSpec("test")])
    artifact = github_state.add_artifact(run.id, "junit", {"junit.xml": "<testsuite/>"})
    github_state.add_cache(repo_name, "pip-abc")
    github_state.add_cache(repo_name, "pip-def")
    issue = github_state.add_issue(repo_name, "Tracking", "body")
    github_state.add_commit(repo_name, "feature", {"a.txt": "a"}, "Add a")
    github_state.add_dependabot_alert(
        repo_name,
        package="requests",
        vulnerable_range="< 2.32.0",
        patched="2.32.0",
        ghsa_id="GHSA-9wx4-h78v-vm56",
        cve_id="CVE-2024-35195",
        summary="Requests session may not verify certificates",
    )
    installation = github_state.enable_app()
    return {"run": run, "artifact": artifact, "issue": issue, "installation": installation}


async def test_githubkit_parses_every_response_and_openapi_agrees(
    github_only: SandboxServer,
    github_state: GitHubState,
    repo_name: str,
    seeded: dict[str, Any],
    data_dir: Path,
) -> None:
    owner, name = repo_name.split("/")
    run, artifact, issue = seeded["run"], seeded["artifact"], seeded["issue"]
    job_id = run.attempt.jobs[0].id
    main_sha = github_state.repo(repo_name).branches["main"]
    github = GitHub(
        github_state.token, base_url=github_only.github_url, auto_retry=False, http_cache=False
    )
    rest = github.rest("2022-11-28")
    actions, checks, git, repos, pulls, issues = (
        rest.actions,
        rest.checks,
        rest.git,
        rest.repos,
        rest.pulls,
        rest.issues,
    )
    content = base64.b64encode(b"new file\n").decode()
    # (label, call, (OpenAPI path, method) or None); order matters where calls build on each other.
    R = "/repos/{owner}/{repo}"
    calls: list[tuple[str, Call, tuple[str, str] | None]] = [
        ("rate limit", lambda: rest.rate_limit.async_get(), ("/rate_limit", "get")),
        ("repository", lambda: repos.async_get(owner, name), None),
        (
            "list runs",
            lambda: actions.async_list_workflow_runs_for_repo(owner, name),
            (f"{R}/actions/runs", "get"),
        ),
        (
            "list workflow runs",
            lambda: actions.async_list_workflow_runs(owner, name, "ci.yml"),
            (f"{R}/actions/workflows/{{workflow_id}}/runs", "get"),
        ),
        ("list workflows", lambda: actions.async_list_repo_workflows(owner, name), None),
        (
            "get run",
            lambda: actions.async_get_workflow_run(owner, name, run.id),
            (f"{R}/actions/runs/{{run_id}}", "get"),
        ),
        (
            "jobs",
            lambda: actions.async_list_jobs_for_workflow_run(owner, name, run.id),
            (f"{R}/actions/runs/{{run_id}}/jobs", "get"),
        ),
        (
            "job",
            lambda: actions.async_get_job_for_workflow_run(owner, name, job_id),
            (f"{R}/actions/jobs/{{job_id}}", "get"),
        ),
        (
            "timing",
            lambda: actions.async_get_workflow_run_usage(owner, name, run.id),
            (f"{R}/actions/runs/{{run_id}}/timing", "get"),
        ),
        (
            "artifacts",
            lambda: actions.async_list_workflow_run_artifacts(owner, name, run.id),
            (f"{R}/actions/runs/{{run_id}}/artifacts", "get"),
        ),
        ("artifact", lambda: actions.async_get_artifact(owner, name, artifact.id), None),
        (
            "rerun failed",
            lambda: actions.async_re_run_workflow_failed_jobs(owner, name, run.id),
            (f"{R}/actions/runs/{{run_id}}/rerun-failed-jobs", "post"),
        ),
        (
            "run attempt",
            lambda: actions.async_get_workflow_run_attempt(owner, name, run.id, 1),
            None,
        ),
        (
            "jobs all",
            lambda: actions.async_list_jobs_for_workflow_run(owner, name, run.id, filter_="all"),
            (f"{R}/actions/runs/{{run_id}}/jobs", "get"),
        ),
        (
            "attempt jobs",
            lambda: actions.async_list_jobs_for_workflow_run_attempt(owner, name, run.id, 1),
            None,
        ),
        (
            "rerun run",
            lambda: actions.async_re_run_workflow(owner, name, run.id),
            (f"{R}/actions/runs/{{run_id}}/rerun", "post"),
        ),
        (
            "rerun job",
            lambda: actions.async_re_run_job_for_workflow_run(owner, name, job_id),
            (f"{R}/actions/jobs/{{job_id}}/rerun", "post"),
        ),
        ("caches", lambda: actions.async_get_actions_cache_list(owner, name), None),
        (
            "delete cache by key",
            lambda: actions.async_delete_actions_cache_by_key(owner, name, key="pip-abc"),
            None,
        ),
        (
            "create comment",
            lambda: issues.async_create_comment(owner, name, issue.number, data={"body": "hello"}),
            (f"{R}/issues/{{issue_number}}/comments", "post"),
        ),
        ("list comments", lambda: issues.async_list_comments(owner, name, issue.number), None),
        (
            "create issue",
            lambda: issues.async_create(
                owner, name, data={"title": "Flaky test", "labels": ["ci"]}
            ),
            (f"{R}/issues", "post"),
        ),
        ("list issues", lambda: issues.async_list_for_repo(owner, name), (f"{R}/issues", "get")),
        (
            "create check run",
            lambda: checks.async_create(
                owner,
                name,
                data={
                    "name": "contexten",
                    "head_sha": main_sha,
                    "status": "in_progress",
                    "output": {
                        "title": "t",
                        "summary": "s",
                        "annotations": [
                            {
                                "path": "a.py",
                                "start_line": 1,
                                "end_line": 2,
                                "annotation_level": "warning",
                                "message": "m",
                            }
                        ],
                    },
                },
            ),
            (f"{R}/check-runs", "post"),
        ),
        ("check runs for ref", lambda: checks.async_list_for_ref(owner, name, main_sha), None),
        (
            "get ref",
            lambda: git.async_get_ref(owner, name, "heads/main"),
            (f"{R}/git/ref/{{ref}}", "get"),
        ),
        (
            "create ref",
            lambda: git.async_create_ref(
                owner, name, data={"ref": "refs/heads/fix", "sha": main_sha}
            ),
            (f"{R}/git/refs", "post"),
        ),
        (
            "get file",
            lambda: repos.async_get_content(owner, name, "README.md"),
            (f"{R}/contents/{{path}}", "get"),
        ),
        (
            "get directory",
            lambda: repos.async_get_content(owner, name, "docs"),
            (f"{R}/contents/{{path}}", "get"),
        ),
        (
            "put file",
            lambda: repos.async_create_or_update_file_contents(
                owner, name, "new.txt", data={"message": "add", "content": content, "branch": "fix"}
            ),
            (f"{R}/contents/{{path}}", "put"),
        ),
        (
            "update ref",
            lambda: git.async_update_ref(
                owner, name, "heads/fix", data={"sha": main_sha, "force": True}
            ),
            (f"{R}/git/refs/{{ref}}", "patch"),
        ),
        (
            "create pull",
            lambda: pulls.async_create(
                owner, name, data={"head": "feature", "base": "main", "title": "Add a"}
            ),
            (f"{R}/pulls", "post"),
        ),
        (
            "list pulls",
            lambda: pulls.async_list(owner, name, head=f"{owner}:feature"),
            (f"{R}/pulls", "get"),
        ),
        (
            "get pull",
            lambda: pulls.async_get(owner, name, github_state.pulls(repo_name)[0].number),
            None,
        ),
        (
            "create release",
            lambda: repos.async_create_release(
                owner,
                name,
                data={"tag_name": "v1.0.0", "name": "1.0.0", "body": "notes", "draft": True},
            ),
            None,
        ),
        ("list releases", lambda: repos.async_list_releases(owner, name), None),
        (
            "dependabot alerts",
            lambda: rest.dependabot.async_list_alerts_for_repo(owner, name),
            (f"{R}/dependabot/alerts", "get"),
        ),
        (
            "repo installation",
            lambda: rest.apps.async_get_repo_installation(owner, name),
            (f"{R}/installation", "get"),
        ),
    ]
    spec = openapi(data_dir)
    checked_against_openapi = 0
    for label, call, operation in calls:
        response = await call()
        parsed = response.parsed_data  # pydantic validation of the typed model happens here
        items = parsed if isinstance(parsed, list) else [parsed]
        assert all(isinstance(item, BaseModel) for item in items), label
        assert response.headers["x-ratelimit-resource"] == "core", label
        if operation is not None:
            path, method = operation
            validator = response_validator(spec, path, method, str(response.status_code))
            errors = [e.message for e in validator.iter_errors(response.json())]
            assert errors == [], (label, errors[:3])
            checked_against_openapi += 1
    assert checked_against_openapi >= 25

    # Check-run update, the artifact/log redirects and cancel's 409.
    created = (await checks.async_list_for_ref(owner, name, main_sha)).parsed_data.check_runs[0]
    updated = await checks.async_update(
        owner,
        name,
        created.id,
        data={"conclusion": "failure", "output": {"title": "t", "summary": "s"}},
    )
    assert (
        updated.parsed_data.status == "completed"
        and updated.parsed_data.output.annotations_count == 1
    )
    spec_update = response_validator(spec, f"{R}/check-runs/{{check_run_id}}", "patch", "200")
    assert spec_update.is_valid(updated.json())
    log = await actions.async_download_job_logs_for_workflow_run(owner, name, job_id)
    assert log.status_code == 200 and b"exit code 1" in log.content
    archive = await actions.async_download_artifact(owner, name, artifact.id, "zip")
    assert archive.content.startswith(b"PK")


async def test_error_bodies_follow_the_contract(
    github_only: SandboxServer, github_state: GitHubState, repo_name: str, data_dir: Path
) -> None:
    spec = openapi(data_dir)
    basic = Draft202012Validator(
        {"components": _nullable(spec["components"]), "$ref": "#/components/schemas/basic-error"}
    )
    validation = Draft202012Validator(
        {
            "components": _nullable(spec["components"]),
            "$ref": "#/components/schemas/validation-error",
        }
    )
    headers = {
        "Authorization": f"Bearer {github_state.token}",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    base = f"{github_only.github_url}/repos/{repo_name}"
    async with httpx.AsyncClient(headers=headers) as client:
        missing = await client.get(f"{base}/actions/runs/1")
        assert missing.status_code == 404 and basic.is_valid(missing.json())
        bad_auth = await client.get(
            f"{base}/actions/runs", headers={"Authorization": "Bearer nope"}
        )
        assert bad_auth.status_code == 401 and bad_auth.json()["message"] == "Bad credentials"
        bad_version = await client.get(
            f"{base}/actions/runs", headers={"X-GitHub-Api-Version": "1999-01-01"}
        )
        assert bad_version.status_code == 400
        github_state.add_branch(repo_name, "feature")
        github_state.add_commit(repo_name, "feature", {"x": "y"}, "x")
        first = await client.post(f"{base}/pulls", json={"head": "feature", "base": "main"})
        again = await client.post(f"{base}/pulls", json={"head": "feature", "base": "main"})
        assert first.status_code == 201 and again.status_code == 422
        assert validation.is_valid(again.json())
        assert "already exists" in again.json()["errors"][0]["message"]
        too_many = [
            {
                "path": "a",
                "start_line": 1,
                "end_line": 1,
                "annotation_level": "notice",
                "message": "m",
            }
        ] * 51
        sha = github_state.repo(repo_name).branches["main"]
        check = await client.post(
            f"{base}/check-runs",
            json={
                "name": "x",
                "head_sha": sha,
                "output": {"title": "t", "summary": "s", "annotations": too_many},
            },
        )
        assert check.status_code == 422 and validation.is_valid(check.json())
        run = github_state.add_run(repo_name, jobs=[JobSpec("t")])
        cancel = await client.post(f"{base}/actions/runs/{run.id}/cancel")
        assert cancel.status_code == 409 and basic.is_valid(cancel.json())
        redirect = await client.get(f"{base}/actions/jobs/{run.attempt.jobs[0].id}/logs")
        assert redirect.status_code == 302
        location = httpx.URL(redirect.headers["location"])
        assert location.host == "127.0.0.1" and "expires=" in str(location)
        forged = await client.get(str(location).replace("sig=", "sig=0"))
        assert forged.status_code == 403
        for response in (missing, first, redirect):
            for header in (
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-used",
                "x-ratelimit-reset",
            ):
                assert header in response.headers


async def test_pagination_link_headers(
    github_only: SandboxServer, github_state: GitHubState, repo_name: str
) -> None:
    for _ in range(5):
        github_state.add_run(repo_name, jobs=[JobSpec("t")])
    headers = {"Authorization": f"token {github_state.token}"}
    url = f"{github_only.github_url}/repos/{repo_name}/actions/runs?per_page=2"
    seen: list[int] = []
    async with httpx.AsyncClient(headers=headers) as client:
        while url:
            page = await client.get(url)
            seen += [r["id"] for r in page.json()["workflow_runs"]]
            assert page.json()["total_count"] == 5
            url = page.links.get("next", {}).get("url", "")
    assert len(seen) == len(set(seen)) == 5
