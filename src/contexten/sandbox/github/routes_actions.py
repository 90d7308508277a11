"""Routes: GitHub Actions (runs, attempts, jobs, logs, re-runs, cancels, artifacts, caches)."""

from __future__ import annotations

import hmac
import io
import re
import time
import zipfile
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from contexten.sandbox.faults import FaultInjector
from contexten.sandbox.github.records import CONCLUSIONS, STATUSES, JobRecord, iso, utc
from contexten.sandbox.github.responses import (
    _artifact_or_none,
    _blob_redirect,
    _created_filter,
    _job_or_none,
    _repo_or_none,
    _run_or_none,
    _shapes,
    created,
    error,
    found,
    json_body,
    not_found,
    paged,
    validation_failed,
)
from contexten.sandbox.github.state import GitHubState


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
            record = found(_repo_or_none(state, owner, repo))
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
        return paged(request, items, key="workflows")

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}")
    async def get_run(owner: str, repo: str, run_id: int, request: Request) -> Response:
        with state.lock:
            run = found(_run_or_none(state, owner, repo, run_id))
            return JSONResponse(_shapes(state, request).run(run))

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}")
    async def get_run_attempt(
        owner: str, repo: str, run_id: int, attempt_number: int, request: Request
    ) -> Response:
        with state.lock:
            run = found(_run_or_none(state, owner, repo, run_id))
            if not 1 <= attempt_number <= len(run.attempts):
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
            job = found(_job_or_none(state, owner, repo, job_id))
            return JSONResponse(_shapes(state, request).job(job))

    @app.get("/repos/{owner}/{repo}/actions/jobs/{job_id}/logs")
    async def job_logs(owner: str, repo: str, job_id: int, request: Request) -> Response:
        with state.lock:
            found(_job_or_none(state, owner, repo, job_id))
        return _blob_redirect(state, faults, request, "job-log", job_id)

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/logs")
    async def run_logs(owner: str, repo: str, run_id: int, request: Request) -> Response:
        with state.lock:
            found(_run_or_none(state, owner, repo, run_id))
        return _blob_redirect(state, faults, request, "run-logs", run_id)

    @app.get("/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/logs")
    async def attempt_logs(
        owner: str, repo: str, run_id: int, attempt_number: int, request: Request
    ) -> Response:
        with state.lock:
            run = found(_run_or_none(state, owner, repo, run_id))
            if not 1 <= attempt_number <= len(run.attempts):
                return not_found()
        ident = run_id * 1000 + attempt_number
        return _blob_redirect(state, faults, request, "attempt-logs", ident)

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
            run = found(_run_or_none(state, owner, repo, run_id))
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
            run = found(_run_or_none(state, owner, repo, run_id))
            name = request.query_params.get("name")
            items = [a for a in run.artifacts if name is None or a.name == name]
            items.sort(key=lambda a: a.created_at, reverse=True)
            return paged(request, items, _shapes(state, request).artifact, key="artifacts")

    @app.get("/repos/{owner}/{repo}/actions/artifacts/{artifact_id}")
    async def get_artifact(owner: str, repo: str, artifact_id: int, request: Request) -> Response:
        with state.lock:
            artifact = found(_artifact_or_none(state, owner, repo, artifact_id))
            return JSONResponse(_shapes(state, request).artifact(artifact))

    @app.get("/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}")
    async def download_artifact(
        owner: str, repo: str, artifact_id: int, archive_format: str, request: Request
    ) -> Response:
        with state.lock:
            artifact = found(_artifact_or_none(state, owner, repo, artifact_id))
            if archive_format != "zip":
                return validation_failed("Artifact", "archive_format", "invalid")
            if artifact.expired:
                return error(410, "Artifact has expired")
        return _blob_redirect(state, faults, request, "artifact", artifact_id)

    @app.get("/repos/{owner}/{repo}/actions/caches")
    async def list_caches(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
            key = request.query_params.get("key")
            ref = request.query_params.get("ref")
            items = [
                c
                for c in record.caches
                if (key is None or c.key.startswith(key)) and (ref is None or c.ref == ref)
            ]
            return paged(request, items, _shapes(state, request).cache, key="actions_caches")

    @app.delete("/repos/{owner}/{repo}/actions/caches")
    async def delete_caches_by_key(owner: str, repo: str, request: Request) -> Response:
        key = request.query_params.get("key")
        if not key:
            return validation_failed("ActionsCache", "key", "missing_field")
        ref = request.query_params.get("ref")
        with state.lock:
            record = found(_repo_or_none(state, owner, repo))
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
            record = found(_repo_or_none(state, owner, repo))
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
        record = found(_repo_or_none(state, owner, repo))
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
        return paged(request, runs, _shapes(state, request).run, key="workflow_runs")


def _list_jobs(
    state: GitHubState, request: Request, owner: str, repo: str, run_id: int, attempt: int | None
) -> Response:
    with state.lock:
        run = found(_run_or_none(state, owner, repo, run_id))
        if attempt is not None:
            if not 1 <= attempt <= len(run.attempts):
                return not_found()
            jobs = list(run.attempts[attempt - 1].jobs)
        else:
            which = request.query_params.get("filter", "latest")
            if which not in ("latest", "all"):
                return validation_failed("Job", "filter", "invalid")
            jobs = run.latest_jobs() if which == "latest" else run.all_jobs()
        return paged(request, jobs, _shapes(state, request).job, key="jobs")


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
    await json_body(request)  # a body that is not a JSON object is refused (400)
    with state.lock:
        run = found(_run_or_none(state, owner, repo, run_id))
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
        run = found(_run_or_none(state, owner, repo, run_id))
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
