"""GitHub's JSON shapes for the GitHub client: githubkit's parsed models to our frozen
dataclasses, request bodies, the ledger results of idempotent actions, and what a githubkit
error or a rate-limit reply says. No I/O: `GitHubClient` (integrations.github) does the calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from contexten.integrations.http import AttemptFailure, classify_exception, classify_response
from contexten.integrations.idempotency import Result
from contexten.integrations.interface import (
    Annotation,
    Artifact,
    ChangedFile,
    CheckResult,
    CheckRunRef,
    CIProviderError,
    ErrorReason,
    Job,
    JobTiming,
    PullRequestRef,
    RateLimit,
    ReleaseRef,
    RunTiming,
    Step,
    WorkflowRun,
)

SERVICE = "github"
MAX_ANNOTATIONS_PER_REQUEST = 50


def split_repo(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise CIProviderError(
            f"repository {repo!r} must be owner/name", reason=ErrorReason.INVALID, service=SERVICE
        )
    return owner, name


def unset(value: Any) -> Any:
    """None for githubkit's UNSET sentinel."""
    from githubkit.utils import Unset

    return None if isinstance(value, Unset) else value


def has_next(headers: httpx.Headers) -> bool:
    return 'rel="next"' in headers.get("link", "")


def classify(exc: BaseException, now: float) -> AttemptFailure | None:
    """A githubkit (or httpx, or parsing) exception as a AttemptFailure; `now` is epoch seconds."""
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
        return classify_response(raw.status_code, raw.headers, raw.content, now)
    if isinstance(exc, RequestError):
        inner = exc.exc
        if isinstance(inner, GitHubException):
            return classify(inner, now)
        return classify_exception(inner) or AttemptFailure(
            ErrorReason.ERROR, f"request failed ({type(inner).__name__})", retryable=False
        )
    if isinstance(exc, AuthCredentialError | AuthExpiredError):
        return AttemptFailure(ErrorReason.AUTH, f"credentials rejected: {exc}", retryable=False)
    if isinstance(exc, ValidationError):
        return AttemptFailure(
            ErrorReason.ERROR,
            f"unexpected response shape ({exc.error_count()} validation errors)",
            retryable=False,
        )
    return classify_exception(exc)


# ----------------------------------------------------------------------------- runs and jobs


def run_from_json(data: Any) -> WorkflowRun:
    actor = unset(data.actor)
    return WorkflowRun(
        id=data.id,
        name=unset(data.name),
        workflow_id=data.workflow_id,
        repository=data.repository.full_name,
        head_branch=data.head_branch,
        head_sha=data.head_sha,
        run_number=data.run_number,
        run_attempt=unset(data.run_attempt) or 1,
        event=data.event,
        status=data.status,
        conclusion=data.conclusion,
        html_url=data.html_url,
        display_title=data.display_title,
        created_at=data.created_at,
        updated_at=data.updated_at,
        run_started_at=unset(data.run_started_at),
        path=data.path,
        actor=None if actor is None else actor.login,
        pull_requests=tuple(pr.number for pr in data.pull_requests or ()),
    )


def job_from_json(data: Any) -> Job:
    steps = tuple(
        Step(
            number=s.number,
            name=s.name,
            status=s.status,
            conclusion=s.conclusion,
            started_at=unset(s.started_at),
            completed_at=unset(s.completed_at),
        )
        for s in (unset(data.steps) or ())
    )
    return Job(
        id=data.id,
        run_id=data.run_id,
        run_attempt=unset(data.run_attempt) or 1,
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


def artifact_from_json(data: Any) -> Artifact:
    run = unset(data.workflow_run)
    return Artifact(
        id=data.id,
        name=data.name,
        size_in_bytes=data.size_in_bytes,
        expired=data.expired,
        archive_download_url=data.archive_download_url,
        created_at=data.created_at,
        expires_at=data.expires_at,
        run_id=None if run is None else unset(run.id),
    )


def run_timing_from_json(data: Any) -> RunTiming:
    """A run's usage (`GET .../runs/{id}/timing`)."""
    billable: dict[str, int] = {}
    job_runs: list[JobTiming] = []
    for os_name in ("ubuntu", "macos", "windows"):
        entry = unset(getattr(data.billable, os_name, None))
        if entry is None:
            continue
        billable[os_name.upper()] = entry.total_ms
        for item in unset(entry.job_runs) or ():
            job_runs.append(JobTiming(job_id=item.job_id, duration_ms=item.duration_ms))
    return RunTiming(
        run_duration_ms=unset(data.run_duration_ms),
        billable_ms=billable,
        job_runs=tuple(job_runs),
    )


def rate_limit_from_json(data: Any) -> RateLimit:
    core = data.resources.core
    return RateLimit(
        limit=core.limit,
        remaining=core.remaining,
        reset_at=core.reset,
        used=core.used,
        resource="core",
    )


# ----------------------------------------------------------------------------- checks


def annotation_json(annotation: Annotation) -> dict[str, Any]:
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


def check_run_body(
    *,
    name: str,
    head_sha: str,
    title: str,
    summary: str,
    conclusion: str | None,
    text: str | None,
    annotations: Sequence[Annotation],
    details_url: str | None,
    key: str,
) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    """The body creating a check run (with the first batch of annotations), and all the
    batches of at most MAX_ANNOTATIONS_PER_REQUEST annotations."""
    items = [annotation_json(a) for a in annotations]
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
    return body, batches


def check_result(check: Any) -> Result:
    return {
        "id": check.id,
        "status": check.status,
        "conclusion": check.conclusion,
        "html_url": check.html_url,
        "annotations_count": check.output.annotations_count,
    }


def check_run_ref(result: Result, *, check_id: int, name: str, head_sha: str) -> CheckRunRef:
    return CheckRunRef(
        id=check_id,
        name=name,
        head_sha=head_sha,
        status=str(result["status"]),
        conclusion=result.get("conclusion"),
        html_url=result.get("html_url"),
        annotations_count=int(result.get("annotations_count", 0)),
    )


# ----------------------------------------------------------------------------- pull requests


def pull_from_json(data: Any) -> PullRequestRef:
    return PullRequestRef(
        number=data.number,
        html_url=data.html_url,
        head=data.head.ref,
        base=data.base.ref,
        state=data.state,
        id=data.id,
        draft=bool(unset(data.draft)),
        head_sha=str(unset(data.head.sha) or ""),
    )


def changed_file_from_json(item: Any) -> ChangedFile:
    return ChangedFile(
        path=item.filename,
        status=str(item.status),
        previous_path=unset(item.previous_filename) or None,
    )


# what the ledger keeps of a pull request it opened
PULL_RESULT_FIELDS = ("number", "html_url", "head", "base", "state", "id", "draft")


def pull_result(pull: PullRequestRef) -> Result:
    return {name: getattr(pull, name) for name in PULL_RESULT_FIELDS}


def pull_from_result(result: Result) -> PullRequestRef:
    return PullRequestRef(
        number=int(result["number"]),
        html_url=str(result["html_url"]),
        head=str(result["head"]),
        base=str(result["base"]),
        state=str(result["state"]),
        id=int(result["id"]),
        draft=bool(result.get("draft")),
    )


# ----------------------------------------------------------------------------- releases


def release_result(release: Any) -> Result:
    return {
        "id": release.id,
        "tag_name": release.tag_name,
        "html_url": release.html_url,
        "draft": release.draft,
    }


def release_from_result(result: Result) -> ReleaseRef:
    return ReleaseRef(
        id=int(result["id"]),
        tag_name=str(result["tag_name"]),
        html_url=str(result["html_url"]),
        draft=bool(result["draft"]),
    )


# ----------------------------------------------------------------------------- health


def health_from_rate_limit(limit: RateLimit, auth_kind: str, latency_ms: float) -> CheckResult:
    """The health check's result from a rate-limit reply: degraded under a tenth left."""
    low = limit.remaining < max(1, limit.limit // 10)
    detail = f"authenticated ({auth_kind}); {limit.remaining}/{limit.limit} requests left"
    if low:
        reset = datetime.fromtimestamp(limit.reset_at).isoformat(timespec="seconds")
        detail += f", resets at {reset}"
    return CheckResult(
        name=SERVICE,
        status="degraded" if low else "ok",
        latency_ms=round(latency_ms, 1),
        detail=detail,
        rate_limit_remaining=limit.remaining,
        rate_limit_reset_at=float(limit.reset_at),
    )


def health_from_error(exc: CIProviderError, latency_ms: float) -> CheckResult:
    return dataclasses.replace(CheckResult.failed(SERVICE, exc), latency_ms=round(latency_ms, 1))
