"""The failure_analysis workflow: why did this run fail, and what do we do about it.

1. Fetch the run and its failed jobs. Each failed job's log is streamed to a temporary file
   (bounded by LOG_MAX_BYTES) and diagnosed with the streaming analysis API in a thread.
2. Baseline: the most recent successful run of the same workflow on the same branch (then
   the default branch) and its job with the same name (matrix values are part of the name).
   Its log comes from the store's log cache (compressed, bounded) or is downloaded once. No
   passing run, or an expired log: single-log mode, and the report says so.
3. Decide per run: when every failed job is transient (network, timeout, rate limit,
   runner lost, flaky test, ...) the recovery manager re-runs the failed jobs (back-off,
   at most MAX_RERUN_ATTEMPTS per run, escalation after ESCALATION_THRESHOLD failed
   recoveries of a signature). A deterministic failure is never re-run: it is escalated
   (see escalation.py): one Linear issue per signature, one Slack message per issue, a PR
   comment, a check run with annotations, and with auto-fix the Codegen agent.
4. Record the diagnoses and actions; publish a Markdown report.

A run that concluded success (a re-run that passed) confirms the recoveries of its earlier
attempts' signatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contexten.analysis.logs import diagnose_stream
from contexten.analysis.logs.model import Diagnosis, DiagnosisStatus
from contexten.analysis.taxonomy import FailureCategory, is_transient, strategies_for
from contexten.catalog import FailureAnalysisParameters
from contexten.integrations.idempotency import idempotency_key
from contexten.integrations.interface import (
    CIProvider,
    CIProviderError,
    ErrorReason,
    IntegrationError,
    Job,
    WorkflowRun,
)
from contexten.recovery.cleanup import TEMP_PREFIX
from contexten.store import log_cache
from contexten.store.db import Store
from contexten.workflows import escalation as esc
from contexten.workflows.base import WorkflowContext, WorkflowError, WorkflowOutcome

logger = logging.getLogger("contexten.workflow.failure_analysis")

LOG_MAX_BYTES = 256 * 1024 * 1024  # a failed job's log is cut here (and the report says so)
BASELINE_MAX_BYTES = 64 * 1024 * 1024  # a passing log: its head is enough to align lines
CACHE_ENTRY_MAX_BYTES = 16 * 1024 * 1024  # compressed; bigger baselines are not cached
CACHE_TOTAL_MAX_BYTES = 256 * 1024 * 1024  # compressed; oldest entries go first
CHUNK_BYTES = 1024 * 1024
BASELINE_CANDIDATES = 5  # passing runs looked at per branch for a job of the same name
RUN_WAIT_SECONDS = 900.0  # a run still in progress (a job's event came first): wait this long
RUN_POLL_SECONDS = 5.0  # first poll interval while waiting; grows 1.5x up to a minute
RERUN_BACKOFF_SECONDS = 30.0  # the 2nd re-run of a run waits this long, the 3rd twice as long
NEARBY_LINES = 30  # lines before an evidence line searched for a file/line reference
_OTHER_BREAKS = re.compile(rb"[\r\x0b\x0c\x1c-\x1e]|\xc2\x85|\xe2\x80[\xa8\xa9]")


# ----------------------------------------------------------------------------- logs


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def compress_file(path: Path, limit: int) -> bytes | None:
    """zlib-compressed content, or None once the compressed size passes `limit`."""
    compressor = zlib.compressobj(6)
    parts: list[bytes] = []
    size = 0
    for chunk in file_chunks(path):
        part = compressor.compress(chunk)
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
    parts.append(compressor.flush())
    blob = b"".join(parts)
    return blob if len(blob) <= limit else None


def decompressed_chunks(blob: bytes) -> Iterator[bytes]:
    """The original bytes of a `compress_file` blob, a megabyte at a time."""
    decompressor = zlib.decompressobj()
    for start in range(0, len(blob), CHUNK_BYTES):
        data = blob[start : start + CHUNK_BYTES]
        while data:
            out = decompressor.decompress(data, CHUNK_BYTES)
            if out:
                yield out
            data = decompressor.unconsumed_tail
    tail = decompressor.flush()
    if tail:
        yield tail


def read_lines(path: Path, wanted: set[int]) -> dict[int, str]:
    """The text of the wanted lines, numbered like the analysis (str.splitlines of the log)."""
    out: dict[int, str] = {}
    if not wanted:
        return out
    last = max(wanted)
    number = 0
    with path.open("rb") as handle:
        for raw in handle:
            body = raw[:-1] if raw.endswith(b"\n") else raw
            if _OTHER_BREAKS.search(body):
                parts = body.decode("utf-8", "replace").splitlines() or [""]
            else:
                parts = [body.decode("utf-8", "replace")] if number + 1 in wanted else [""]
            for part in parts:
                number += 1
                if number in wanted:
                    out[number] = part[:2000]
            if number >= last:
                break
    return out


def diagnose_files(log: Path, baselines: Iterable[Iterable[bytes]]) -> Diagnosis:
    return diagnose_stream(file_chunks(log), baseline_streams=list(baselines))


def effective(diagnosis: Diagnosis, job: Job) -> Diagnosis:
    """A job GitHub timed out whose log names no cause failed by timeout."""
    if job.conclusion != "timed_out" or diagnosis.status is DiagnosisStatus.DIAGNOSED:
        return diagnosis
    category = FailureCategory.TIMEOUT
    return replace(
        diagnosis,
        category=category,
        summary="GitHub stopped the job at its time limit (conclusion timed_out).",
        transient=is_transient(category),
        recommended_strategies=strategies_for(category),
    )


# ----------------------------------------------------------------------------- the analysis


@dataclass
class Baseline:
    """A passing run's job of the same name and its log (or why there is none)."""

    run: WorkflowRun | None
    job: Job | None
    blob: bytes | None
    path: Path | None
    note: str

    def stream(self) -> Iterable[bytes] | None:
        if self.blob is not None:
            return decompressed_chunks(self.blob)
        if self.path is not None:
            return file_chunks(self.path)
        return None


@dataclass
class Analysis:
    params: FailureAnalysisParameters
    ctx: WorkflowContext
    repo: str
    ci: CIProvider
    escalator: esc.Escalator
    workdir: Path
    actions: list[esc.ActionResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _candidates: dict[str, list[WorkflowRun]] = field(default_factory=dict)
    _default: str | None = None
    _jobs_of: dict[int, list[Job]] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.ctx.store

    # --- fetching ---
    async def fetch_run(self) -> WorkflowRun:
        run_id = self.params.workflow_run_id
        try:
            return await self.ci.get_run(self.repo, run_id)
        except CIProviderError as exc:
            if exc.not_found:
                raise WorkflowError(f"workflow run {run_id} not found in {self.repo}") from None
            if exc.auth_error:
                raise WorkflowError(
                    f"GitHub refused to show run {run_id} of {self.repo}: {exc}"
                ) from None
            raise

    async def successful_runs(self, run: WorkflowRun, branch: str) -> list[WorkflowRun]:
        """The newest successful runs of the run's workflow on `branch` (cached per branch)."""
        if branch not in self._candidates:
            runs = await self.ci.list_workflow_runs(
                self.repo,
                branch=branch,
                status="success",
                workflow_id=run.workflow_id,
                per_page=BASELINE_CANDIDATES,
                max_items=BASELINE_CANDIDATES,
            )
            self._candidates[branch] = [r for r in runs if r.id != run.id]
        return self._candidates[branch]

    async def default_branch(self) -> str | None:
        # CIProvider has no repository lookup; probe the usual default branch names.
        for name in ("main", "master"):
            try:
                await self.ci.get_ref(self.repo, f"heads/{name}")
            except CIProviderError as exc:
                if exc.not_found or exc.reason is ErrorReason.CONFLICT:
                    continue
                raise
            return name
        return None

    async def jobs_of(self, run_id: int) -> list[Job]:
        if run_id not in self._jobs_of:
            self._jobs_of[run_id] = await self.ci.list_jobs(self.repo, run_id)
        return self._jobs_of[run_id]

    async def baseline_for(self, run: WorkflowRun, job: Job) -> Baseline:
        """The job of the same name in the newest passing run: same branch, then default."""
        if not self.params.use_baseline:
            note = "baseline comparison is off (use_baseline=false): single-log mode"
            return Baseline(None, None, None, None, note)
        searched: list[str] = []
        branches = [run.head_branch] if run.head_branch else []
        for index in range(2):
            if index == 1:
                if self._default is None:
                    self._default = await self.default_branch() or ""
                if not self._default or self._default in branches:
                    break
                branches.append(self._default)
            branch = branches[-1] if branches else None
            if branch is None:
                continue
            searched.append(f"`{branch}`")
            for candidate in await self.successful_runs(run, branch):
                same = [
                    j
                    for j in await self.jobs_of(candidate.id)
                    if j.name == job.name and j.conclusion == "success"
                ]
                if same:
                    return await self.fetch_baseline(candidate, same[0])
        where = " or ".join(searched) or "any branch"
        note = (
            f"no passing job `{job.name}` in the last successful runs of "
            f"{run.name or 'this workflow'} on {where}: single-log mode"
        )
        return Baseline(None, None, None, None, note)

    async def fetch_baseline(self, run: WorkflowRun, job: Job) -> Baseline:
        label = f"job {job.id} of run {run.id} on `{run.head_branch}`"
        blob = await asyncio.to_thread(log_cache.cached_log, self.store, job.id)
        if blob is not None:
            return Baseline(run, job, blob, None, f"compared with {label} (cached log)")
        dest = self.workdir / f"baseline-{job.id}.log"
        try:
            download = await self.ci.download_job_log(
                self.repo, job.id, dest, max_bytes=BASELINE_MAX_BYTES
            )
        except CIProviderError as exc:
            if exc.not_found:
                note = f"the log of the passing {label} has expired: single-log mode"
                return Baseline(run, job, None, None, note)
            raise
        if download.size_bytes == 0:
            return Baseline(run, job, None, None, f"the passing {label} has an empty log")
        blob = await asyncio.to_thread(compress_file, dest, CACHE_ENTRY_MAX_BYTES)
        if blob is not None:
            await asyncio.to_thread(
                log_cache.cache_log,
                self.store,
                self.repo,
                job.id,
                blob,
                max_total_bytes=CACHE_TOTAL_MAX_BYTES,
            )
        return Baseline(run, job, None, dest, f"compared with {label}")

    # --- diagnosing ---
    async def diagnose_job(self, run: WorkflowRun, job: Job) -> esc.JobDiagnosis:
        dest = self.workdir / f"job-{job.id}.log"
        try:
            download = await self.ci.download_job_log(
                self.repo, job.id, dest, max_bytes=LOG_MAX_BYTES
            )
            size, truncated = download.size_bytes, download.truncated
        except CIProviderError as exc:
            if not exc.not_found:
                raise
            dest.write_bytes(b"")
            size, truncated = 0, False
            self.notes.append(f"the log of job `{job.name}` is gone (expired or deleted)")
        baseline = (
            await self.baseline_for(run, job)
            if size
            else Baseline(None, None, None, None, "no log")
        )
        stream = baseline.stream()
        diagnosis = await asyncio.to_thread(
            diagnose_files, dest, [stream] if stream is not None else []
        )
        diagnosis = effective(diagnosis, job)
        used = diagnosis.baseline is not None and diagnosis.baseline.used > 0
        note = baseline.note
        if diagnosis.baseline is not None and not used:
            warnings = "; ".join(diagnosis.baseline.warnings) or "it did not align"
            note = f"{note}, but it was not used ({warnings}): single-log mode"
        wanted = {
            n
            for line in diagnosis.evidence
            for n in range(max(1, line.line - NEARBY_LINES), line.line + 1)
        }
        nearby = await asyncio.to_thread(read_lines, dest, wanted) if size else {}
        locations = esc.locations_for(diagnosis.evidence, nearby, before=NEARBY_LINES)
        return esc.JobDiagnosis(
            job_id=job.id,
            job_name=job.name,
            job_url=job.html_url,
            diagnosis=diagnosis,
            mode="baseline" if used else "single-log",
            mode_note=note,
            baseline_run_id=baseline.run.id if used and baseline.run else None,
            baseline_job_id=baseline.job.id if used and baseline.job else None,
            log_bytes=size,
            log_truncated=truncated,
            locations=locations,
        )

    # --- acting ---
    async def await_completion(self, run: WorkflowRun) -> WorkflowRun:
        waited, delay = 0.0, RUN_POLL_SECONDS
        while run.status != "completed" and waited < RUN_WAIT_SECONDS:
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 1.5, 60.0)
            run = await self.ci.get_run(self.repo, run.id)
        return run

    async def recover(
        self, run: WorkflowRun, info: esc.RunInfo, jobs: list[esc.JobDiagnosis]
    ) -> list[tuple[esc.JobDiagnosis, str]]:
        """Re-run transient failures; returns the jobs to escalate instead, with the reason."""
        from contexten.monitoring.clients import IntegrationClients
        from contexten.recovery.failures import Failure
        from contexten.recovery.manager import RecoveryManager
        from contexten.recovery.policy import parse_category
        from contexten.store.recoveries import settle_awaiting

        settings = self.ctx.settings
        manager = RecoveryManager(
            settings,
            self.store,
            clients=IntegrationClients(ci=self.ci),
            retry_base_seconds=RERUN_BACKOFF_SECONDS,
        )
        escalate: list[tuple[esc.JobDiagnosis, str]] = []
        by_signature = {j.signature: j for j in jobs}
        if run.run_attempt > settings.max_rerun_attempts:
            reason = (
                f"re-run budget used up: attempt {run.run_attempt} of at most "
                f"{settings.max_rerun_attempts} re-runs (MAX_RERUN_ATTEMPTS)"
            )
            return [(j, reason) for j in by_signature.values()]
        for signature, job in by_signature.items():
            failure = Failure(
                key=signature,
                category=parse_category(job.category.value),
                scope="ci",
                detail=job.diagnosis.summary,
                seen_at=datetime.now(UTC),
                repository=self.repo,
                run_id=run.id,
                run_attempt=run.run_attempt,
            )
            # This failure means the signature's earlier re-runs did not fix it: settle them
            # before planning, so the escalation threshold counts them.
            settle_awaiting(self.store, signature, "failed", datetime.now(UTC), run_id=run.id)
            plan = manager.plan(failure)
            if plan.escalated:
                escalate.append((job, plan.reason))
                continue
            key = idempotency_key(
                "failure_analysis", "recovery", self.repo, run.id, run.run_attempt, signature
            )

            async def perform(failure: Any = failure) -> dict[str, Any]:
                report = await manager.recover(failure)
                if report.outcome not in ("awaiting_result", "succeeded"):
                    detail = "; ".join(a.detail for a in report.attempts) or report.outcome
                    raise IntegrationError(
                        f"recovery of {failure.key} ended {report.outcome}: {detail}",
                        reason=ErrorReason.UNAVAILABLE,
                        service="github",
                    )
                return dict(report.to_dict())

            target = f"{self.repo} run {run.id} attempt {run.run_attempt}"
            try:
                done = await self.escalator.ledger.once(key, "ci_recovery", target, perform)
            except IntegrationError as exc:
                self.actions.append(esc.failed("rerun", target, exc))
                continue
            strategies = ", ".join(str(a["strategy"]) for a in done.get("attempts", ()))
            self.actions.append(
                esc.ActionResult(
                    "rerun",
                    "done",
                    target,
                    f"{job.category.value}: {strategies or 'recovery'} -> {done.get('outcome')}",
                    run.html_url,
                )
            )
        return escalate

    async def escalate(
        self, info: esc.RunInfo, jobs: list[esc.JobDiagnosis], reasons: dict[str, str]
    ) -> None:
        settings = self.ctx.settings
        auto_fix = self.params.auto_fix_enabled or settings.auto_fix_enabled
        unique = list({j.signature: j for j in jobs}.values())
        issues: dict[str, esc.ActionResult] = {}
        for job in unique:
            why = reasons.get(job.signature, "deterministic failure")
            self.notes.append(f"escalated `{job.signature}` ({job.category.value}): {why}")
            issue = await self.escalator.ensure_issue(info, job)
            self.actions.append(issue)
            issues[job.signature] = issue
            # a recurrence only comments on the open issue; a new issue gets one message
            created = issue.kind != "linear_comment"
            planned = []
            if issue.url:
                planned.append(f"Linear {issue.target.split(' ')[0]}: {issue.detail}")
            if auto_fix and esc.agent_wanted(job):
                planned.append("handed to the Codegen agent for a fix")
            if created:
                self.actions.append(await self.escalator.notify(info, job, issue, planned))
            esc.record_escalation(
                self.store,
                info,
                job,
                {"issue": issue.url, "reason": why},
            )
        links = [f"Linear: [{r.target}]({r.url})" for r in issues.values() if r.url]
        self.actions.extend(await self.escalator.comment_on_prs(info, jobs, links))
        check = await self.escalator.check_run(info, jobs)
        if check is not None:
            self.actions.append(check)
        if not auto_fix:
            return
        for job in unique:
            if not esc.agent_wanted(job):
                self.notes.append(
                    f"auto-fix: {job.category.value} failures are not handed to the agent"
                )
                continue
            self.actions.extend(
                await self.escalator.hand_to_agent(
                    info,
                    job,
                    create_pr=self.params.create_pr_for_fixes,
                    wait_seconds=esc.AGENT_WAIT_SECONDS,
                )
            )


# ----------------------------------------------------------------------------- the body


async def run(params: FailureAnalysisParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    repo = params.repository or ctx.settings.github_repository
    if not repo:
        raise WorkflowError(
            "failure_analysis needs a repository: pass repository=owner/name or set "
            "GITHUB_REPOSITORY"
        )
    from contexten.integrations import factory

    ci = factory.github_client(ctx.settings, ctx.store)
    if ci is None:
        raise WorkflowError(
            f"GitHub is not configured: {esc.SETUP_HINTS['github']} so failure_analysis can "
            f"read run {params.workflow_run_id} of {repo}"
        )
    escalator = esc.Escalator.from_settings(ctx.settings, ctx.store, ci=ci)
    scratch = ctx.settings.data_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX + "logs-", dir=scratch) as workdir:
            analysis = Analysis(params, ctx, repo, ci, escalator, Path(workdir))
            return await _analyze(analysis)
    finally:
        await escalator.aclose()
        with contextlib.suppress(Exception):
            await ci.aclose()


def diagnosis_cache_key(a: Analysis, job: Job) -> str:
    """A job id names one attempt's log for good: its diagnosis can be reused."""
    return f"diagnosis:{a.ctx.settings.github_api_url}:{a.repo}:{job.id}"


async def _analyze(a: Analysis) -> WorkflowOutcome:
    # Each step is a Prefect task in a flow run (the UI shows where the time went).
    run = await a.ctx.step("fetch", a.fetch_run)
    if run.status != "completed":
        # A job's event arrived before the run finished: the run's own event shares this
        # analysis (one per run attempt), so wait to see every job that fails.
        run = await a.await_completion(run)
        if run.status != "completed":
            a.notes.append(
                f"the run was still {run.status} after {RUN_WAIT_SECONDS:.0f}s: analysed the "
                "jobs that had failed by then"
            )
    info = esc.RunInfo.from_run(run)
    if run.conclusion == "success":
        return _recovered(a, info)
    failed_jobs = [j for j in await a.jobs_of(run.id) if j.failed]
    if not failed_jobs:
        summary = (
            f"{info.label} has no failed job to diagnose "
            f"(status {run.status}, conclusion {run.conclusion})"
        )
        a.ctx.publish_markdown(_report_key(info), f"# Failure analysis\n\n{summary}\n")
        return WorkflowOutcome(ok=True, summary=summary, data={"run": info.to_dict(), "jobs": []})
    diagnosed = [
        await a.ctx.step(
            f"diagnose {job.name}"[:100],
            functools.partial(a.diagnose_job, run, job),
            cache_key=diagnosis_cache_key(a, job),
        )
        for job in failed_jobs
    ]
    for job in diagnosed:
        esc.save_diagnosis(a.store, info, job)

    # A job without a log (expired, deleted) cannot be diagnosed: say so, do not escalate a
    # guess (one shared "empty log" issue would collect every such job of the repository).
    no_log = [
        j
        for j in diagnosed
        if j.diagnosis.status is DiagnosisStatus.EMPTY and not j.diagnosis.transient
    ]
    for job in no_log:
        a.notes.append(f"job `{job.job_name}` has no log to diagnose: nothing done for it")
    deterministic = [j for j in diagnosed if not j.diagnosis.transient and j not in no_log]
    transient = [j for j in diagnosed if j.diagnosis.transient]
    to_escalate = list(deterministic)
    reasons = {
        j.signature: "deterministic failure: re-running would fail the same way"
        for j in deterministic
    }
    settings = a.ctx.settings
    if transient and deterministic:
        a.notes.append(
            "transient failures were not re-run: the run also failed deterministically "
            f"({', '.join(sorted({j.job_name for j in deterministic}))}), and a re-run would "
            "repeat that failure"
        )
    elif transient and not (a.params.auto_recovery and settings.recovery_enabled):
        switch = "auto_recovery=false" if not a.params.auto_recovery else "RECOVERY_ENABLED=false"
        a.notes.append(f"transient failures were not re-run: automatic recovery is off ({switch})")
    elif transient:
        for job, reason in await a.ctx.step(
            "recover", functools.partial(a.recover, run, info, transient)
        ):
            to_escalate.append(job)
            reasons[job.signature] = reason
    if to_escalate:
        await a.ctx.step("escalate", functools.partial(a.escalate, info, to_escalate, reasons))

    decision = _decision(a, transient, to_escalate)

    async def report() -> None:
        text = render_report(info, diagnosed, a.actions, a.notes, decision)
        a.ctx.publish_markdown(_report_key(info), text)

    await a.ctx.step("report", report)
    failures = [r for r in a.actions if r.failed]
    data = {
        "run": info.to_dict(),
        "decision": decision,
        "jobs": [
            {
                "job_id": j.job_id,
                "job": j.job_name,
                "category": j.category.value,
                "confidence": round(j.diagnosis.confidence, 3),
                "signature": j.signature,
                "transient": j.diagnosis.transient,
                "mode": j.mode,
                "mode_note": j.mode_note,
                "evidence_lines": [e.line for e in j.diagnosis.evidence],
                "locations": [loc.to_dict() for loc in j.locations],
            }
            for j in diagnosed
        ],
        "actions": [r.to_dict() for r in a.actions],
        "notes": list(a.notes),
        "report": _report_key(info),
    }
    if any(r.transient for r in failures):
        names = ", ".join(f"{r.kind} ({r.detail})" for r in failures if r.transient)
        raise IntegrationError(
            f"failure_analysis of {info.label}: will retry: {names}"[:500],
            reason=ErrorReason.UNAVAILABLE,
        )
    categories = ", ".join(sorted({j.category.value for j in diagnosed}))
    summary = f"{info.label} of {info.repository}: {categories}; {decision}"
    if failures:
        summary += f"; {len(failures)} action(s) failed"
    return WorkflowOutcome(ok=not failures, summary=summary, data=data)


def _decision(
    a: Analysis, transient: list[esc.JobDiagnosis], escalated: list[esc.JobDiagnosis]
) -> str:
    reran = any(r.kind == "rerun" and r.status == "done" for r in a.actions)
    parts = []
    if reran:
        parts.append("re-ran the failed jobs")
    if escalated:
        parts.append("escalated")
    if transient and not reran and not escalated:
        parts.append("not re-run")
    return " and ".join(parts) or "reported"


def _recovered(a: Analysis, info: esc.RunInfo) -> WorkflowOutcome:
    from contexten.recovery.manager import confirm_recovered

    signatures = esc.signatures_of_run(a.store, info.repository, info.run_id)
    settled = sum(confirm_recovered(a.store, sig) for sig in signatures)
    summary = f"{info.label} of {info.repository} passed" + (
        f": {settled} recovery(ies) confirmed" if settled else ": nothing to diagnose"
    )
    lines = [f"# Failure analysis: {info.repository} run {info.run_id}", "", summary, ""]
    if signatures:
        lines.append(
            "Signatures recorded for earlier attempts: " + ", ".join(f"`{s}`" for s in signatures)
        )
    a.ctx.publish_markdown(_report_key(info), "\n".join(lines) + "\n")
    return WorkflowOutcome(
        ok=True,
        summary=summary,
        data={"run": info.to_dict(), "decision": "recovered", "confirmed": settled, "jobs": []},
    )


def _report_key(info: esc.RunInfo) -> str:
    return f"failure-analysis-{info.run_id}-{info.run_attempt}"


def render_report(
    info: esc.RunInfo,
    jobs: list[esc.JobDiagnosis],
    actions: list[esc.ActionResult],
    notes: list[str],
    decision: str,
) -> str:
    lines = [
        f"# Failure analysis: {info.repository} run {info.run_id} (attempt {info.run_attempt})",
        "",
        f"[{esc.sanitize(info.workflow_name, 100)} #{info.run_id}]({info.html_url}) on "
        f"`{esc.sanitize(info.head_branch or '-', 100)}` at `{info.head_sha[:12]}`: "
        f"{esc.sanitize(info.display_title, 200)}",
        "",
        f"**Decision:** {decision}",
        "",
        "| job | category | confidence | transient | signature | analysis |",
        "|---|---|---|---|---|---|",
    ]
    for j in jobs:
        lines.append(
            f"| {esc.sanitize(j.job_name, 100).replace('|', '/')} | {j.category.value} | "
            f"{j.diagnosis.confidence:.2f} | {'yes' if j.diagnosis.transient else 'no'} | "
            f"`{j.signature}` | {j.mode} |"
        )
    lines += ["", "## Actions", "", esc.actions_table(actions)]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    lines += ["## Diagnoses", ""]
    lines += [esc.job_section(j) for j in jobs]
    return "\n".join(lines)
