"""The test_optimization workflow body: JUnit reports → history → flaky, slow, quarantine, shards.

Reports come from local paths (`report_paths`) and from a run's artifacts on GitHub
(`workflow_run_id`: every non-expired artifact whose name looks like test results, each
XML file in its zip). Each report is ingested once; bad files are listed, never fatal.
Then the window's history gives the flaky tests (with the runs that prove it), broken
tests, the slowest and slowing tests, the quarantine plan (applied when
`auto_quarantine`), and balanced shards when `shards` > 0. The quarantine list is also
written as JSON next to the report, for a CI gate (`contexten tests gate`).
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contexten.catalog import TestOptimizationParameters
from contexten.workflows.base import WorkflowContext, WorkflowError, WorkflowOutcome, ci_provider

if TYPE_CHECKING:
    from contexten.integrations.interface import Artifact, CIProvider

MAX_ARTIFACT_BYTES = 512 * 1024 * 1024
MAX_ARTIFACTS = 50
TEST_ARTIFACT = re.compile(r"test|junit|xunit|surefire|failsafe|report|result", re.IGNORECASE)


async def run(params: TestOptimizationParameters, ctx: WorkflowContext) -> WorkflowOutcome:
    from contexten.store.test_history import TestHistoryError

    provider = ci_provider(ctx) if params.workflow_run_id is not None else None
    try:
        return await optimize(params, ctx, provider)
    except TestHistoryError as exc:
        raise WorkflowError(str(exc)) from None
    finally:
        if provider is not None:
            await provider.aclose()


@dataclass
class _Ingested:
    files: int = 0
    stored: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)


def _ingest_bytes(ctx: WorkflowContext, name: str, data: bytes, run: Any, tally: _Ingested) -> None:
    from contexten.analysis.junit import JUnitError, parse_junit
    from contexten.store.test_history import ingest_report

    try:
        report = parse_junit(data, name)
    except JUnitError as exc:
        tally.problems.append(str(exc))
        return
    outcome = ingest_report(ctx.store, report, run, data)
    tally.files += 1
    tally.stored += outcome.stored
    tally.duplicates += outcome.duplicate


async def optimize(
    params: TestOptimizationParameters, ctx: WorkflowContext, provider: CIProvider | None
) -> WorkflowOutcome:
    from contexten.store.test_history import ReportOrigin
    from contexten.testhistory.files import (
        ReportFileError,
        find_report_files,
        iter_report_sources,
    )

    repository = params.repository or ctx.settings.github_repository
    tally = _Ingested()
    run_info = ReportOrigin(
        repository=repository,
        run_id=str(params.workflow_run_id) if params.workflow_run_id else None,
    )
    if params.workflow_run_id is not None:
        if provider is None or repository is None:
            raise WorkflowError(
                "workflow_run_id needs the GitHub client and a repository (GITHUB_REPOSITORY)"
            )
        run_info = await _ingest_artifacts(ctx, provider, repository, params.workflow_run_id, tally)
    if params.report_paths:
        files, errors = find_report_files([Path(p) for p in params.report_paths])
        tally.problems.extend(errors)
        for source in iter_report_sources(files):
            if isinstance(source, ReportFileError):
                tally.problems.append(str(source))
            else:
                _ingest_bytes(ctx, source.name, source.data, run_info, tally)
        if not files and not tally.files:
            raise WorkflowError(f"no JUnit reports found in {', '.join(params.report_paths)}")
    for problem in tally.problems:
        ctx.logger.warning("skipped report: %s", problem)
    return _analyse(params, ctx, repository, tally)


async def _ingest_artifacts(
    ctx: WorkflowContext, provider: CIProvider, repository: str, run_id: int, tally: _Ingested
) -> Any:
    from contexten.integrations.interface import CIProviderError
    from contexten.store.test_history import ReportOrigin
    from contexten.testhistory.files import ReportFileError

    try:
        run = await provider.get_run(repository, run_id)
        artifacts = await provider.list_artifacts(repository, run_id)
    except CIProviderError as exc:
        raise WorkflowError(f"cannot read run {run_id} of {repository}: {exc}") from None
    chosen = [a for a in artifacts if not a.expired and TEST_ARTIFACT.search(a.name)]
    if not chosen:
        chosen = [a for a in artifacts if not a.expired]  # no telling names: try them all
    base = ReportOrigin(
        repository=repository,
        run_id=str(run.id),
        run_attempt=run.run_attempt,
        commit=run.head_sha,
        branch=run.head_branch,
    )
    with tempfile.TemporaryDirectory(prefix="contexten-artifacts-") as tmp:
        for artifact in chosen[:MAX_ARTIFACTS]:
            dest = Path(tmp) / f"{artifact.id}.zip"
            try:
                download = await provider.download_artifact(
                    repository, artifact.id, dest, max_bytes=MAX_ARTIFACT_BYTES
                )
            except CIProviderError as exc:
                tally.problems.append(f"artifact {artifact.name}: cannot download: {exc}")
                continue
            if download.truncated:
                tally.problems.append(
                    f"artifact {artifact.name}: over {MAX_ARTIFACT_BYTES} bytes, skipped"
                )
                continue
            run_info = ReportOrigin(
                repository=base.repository,
                run_id=base.run_id,
                run_attempt=_attempt_of(artifact, run),
                commit=base.commit,
                branch=base.branch,
                job=artifact.name,  # matrix legs upload one artifact each
                recorded_at=artifact.created_at,
            )
            try:
                members = await asyncio.to_thread(_zip_members, download.path, artifact.name)
            except ReportFileError as exc:
                tally.problems.append(str(exc))
                continue
            for member in members:
                if isinstance(member, ReportFileError):
                    tally.problems.append(str(member))
                else:
                    _ingest_bytes(ctx, member.name, member.data, run_info, tally)
    return base


def _zip_members(path: Path, name: str) -> list[Any]:
    from contexten.testhistory.files import iter_zip_reports

    return list(iter_zip_reports(path, name))


def _attempt_of(artifact: Artifact, run: Any) -> int:
    """The run attempt an artifact came from.

    Artifacts belong to the run, not the attempt; one made before the current attempt
    started belongs to an earlier attempt (the previous one, as far as we can tell).
    """
    attempt = int(run.run_attempt or 1)
    started = getattr(run, "run_started_at", None)
    if (
        attempt > 1
        and artifact.created_at is not None
        and started is not None
        and artifact.created_at < started
    ):
        return attempt - 1
    return attempt


def _analyse(
    params: TestOptimizationParameters,
    ctx: WorkflowContext,
    repository: str | None,
    tally: _Ingested,
) -> WorkflowOutcome:
    from contexten.store.test_history import identities
    from contexten.testhistory import quarantine as q
    from contexten.testhistory.report import (
        ReportOptions,
        ShardRequest,
        build_report,
        plan_from_history,
        report_json,
        report_markdown,
        report_tables,
        shard_json,
        shard_table,
    )

    now = datetime.now(UTC)
    options = ReportOptions(repository=repository, window_days=params.window_days, now=now)
    report = build_report(ctx.store, options)
    applied = []
    if params.auto_quarantine:
        applied = q.apply_plan(
            ctx.store, report.plan, report.identities, now=now, repository=repository
        )
        report = build_report(ctx.store, options)  # show the list as it is now
    data = report_json(report)
    markdown = report_markdown(report)
    tables = list(report_tables(report))
    if tally.problems:
        markdown += "\n**Reports skipped**\n\n" + "".join(f"- {p}\n" for p in tally.problems[:50])
    shard_data = None
    if params.shards > 0 and report.snapshot.stats:
        known = identities(ctx.store, test_ids=report.snapshot.stats)
        plan = plan_from_history(report.snapshot, known, ShardRequest(params.shards))
        shard_data = shard_json(plan)
        table = shard_table(plan)
        tables.append(table)
        markdown += "\n" + table.to_markdown() + "\n"
        (ctx.reports_dir / "shards.json").write_text(json.dumps(shard_data, indent=2), "utf-8")
    document = q.export_document(q.list_entries(ctx.store), now)
    quarantine_file = ctx.reports_dir / "quarantine.json"
    quarantine_file.write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")

    ctx.publish_markdown("test-report", markdown)
    for table, key in zip(
        tables,
        ("flaky-tests", "slow-tests", "slower-tests", "quarantine-plan", "shards"),
        strict=False,
    ):
        if table.rows:
            ctx.publish_table(key, table)

    flaky = len(report.flaky)
    summary = (
        f"{len(report.snapshot.stats)} tests over {params.window_days} days:"
        f" {flaky} flaky, {len(report.broken)} broken, {len(report.slower)} getting slower"
    )
    if tally.files or tally.problems:
        summary += f"; ingested {tally.files} reports ({tally.stored} results)"
        if tally.problems:
            summary += f", skipped {len(tally.problems)}"
    if params.auto_quarantine:
        summary += f"; quarantine: {len(applied)} changes"
    elif report.plan.decisions:
        summary += f"; quarantine plan: {len(report.plan.decisions)} changes (auto_quarantine off)"
    data.update(
        ingested={
            "reports": tally.files,
            "results": tally.stored,
            "duplicates": tally.duplicates,
            "problems": tally.problems[:100],
        },
        quarantine_applied=[{"test_id": d.test_id, "action": d.action} for d in applied],
        quarantine_file=str(quarantine_file),
        shards=shard_data,
    )
    return WorkflowOutcome(
        ok=True, summary=summary, markdown=markdown, data=data, tables=tuple(tables)
    )
