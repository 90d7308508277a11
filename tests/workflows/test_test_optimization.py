"""The test_optimization workflow: local reports and run artifacts → report, quarantine, shards."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contexten.config import Settings
from contexten.integrations.interface import (
    Artifact,
    CIProviderError,
    ErrorReason,
    LogDownload,
    WorkflowRun,
)
from contexten.orchestration.workflows import TestOptimizationParameters as Params
from contexten.store.db import open_store
from contexten.workflows import test_optimization
from contexten.workflows.base import WorkflowContext, WorkflowError

JUNIT = Path(__file__).resolve().parents[1] / "data" / "junit"
FLAKY = JUNIT / "mikepenz-action-junit-report" / "flaky_retries"


@pytest.fixture
def ctx(tmp_path: Path) -> WorkflowContext:
    settings = Settings(contexten_home=tmp_path / "home", github_repository="o/r")
    store = open_store(f"sqlite:///{tmp_path / 'wf.db'}")
    return WorkflowContext(settings=settings, store=store, run_id="run-1")


def params(**kw: Any) -> Params:
    return Params(**kw)


def test_local_reports_give_a_report_and_a_quarantine_file(ctx: WorkflowContext) -> None:
    outcome = asyncio.run(
        test_optimization.run(
            params(
                report_paths=[
                    str(FLAKY),
                    str(JUNIT / "enricomi-publish-unit-test-result-action/pytest"),
                ],
                shards=2,
            ),
            ctx,
        )
    )
    assert outcome.ok
    data = outcome.data
    assert data["ingested"]["reports"] == 14  # 3 + 11 well-formed
    assert len(data["ingested"]["problems"]) == 1  # corrupt-xml.xml, named
    assert "corrupt-xml.xml: not well-formed XML" in data["ingested"]["problems"][0]
    names = {f["name"] for f in data["flaky"]}
    assert any(n.endswith("test_success_first") for n in names)
    assert data["shards"]["requested"] == 2 and len(data["shards"]["shards"]) == 2
    quarantine = json.loads(Path(data["quarantine_file"]).read_text())
    assert quarantine["tests"] == []  # auto_quarantine is off
    assert "flaky" in outcome.summary
    published = {a.key for a in ctx.artifacts}
    assert {"test-report", "flaky-tests", "shards"} <= published
    assert (ctx.reports_dir / "test-report.md").read_text().startswith("# Test report")


def test_auto_quarantine_applies_the_plan(ctx: WorkflowContext, tmp_path: Path) -> None:
    # The same retried report on two commits: two flaky events per test.
    from contexten.analysis.junit import parse_junit
    from contexten.store.test_history import ReportOrigin, ingest_report

    data = (FLAKY / "flaky_success_first.xml").read_bytes()
    for n in (1, 2):
        run = ReportOrigin(
            "o/r", str(n), 1, f"c{n}", "main", "test", datetime.now(UTC) - timedelta(hours=n)
        )
        ingest_report(ctx.store, parse_junit(data, "r.xml"), run, data)
    outcome = asyncio.run(test_optimization.run(params(auto_quarantine=True), ctx))
    assert [a["action"] for a in outcome.data["quarantine_applied"]] == ["add"]
    quarantine = json.loads(Path(outcome.data["quarantine_file"]).read_text())
    assert len(quarantine["tests"]) == 1
    assert "quarantine: 1 changes" in outcome.summary


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


class FakeCI:
    """The runs-and-jobs and run-logs roles, as far as test_optimization uses them."""

    def __init__(
        self, artifacts: dict[str, tuple[bytes, datetime]], fail_download: str | None = None
    ) -> None:
        self.artifacts = artifacts
        self.fail_download = fail_download
        self.closed = False
        self.started = datetime(2025, 1, 2, 10, 0, tzinfo=UTC)

    async def get_run(self, repo: str, run_id: int) -> WorkflowRun:
        return WorkflowRun(
            id=run_id,
            name="CI",
            workflow_id=1,
            repository=repo,
            head_branch="main",
            head_sha="f00d",
            run_number=3,
            run_attempt=2,
            event="push",
            status="completed",
            conclusion="success",
            html_url="",
            display_title="",
            created_at=datetime(2025, 1, 2, 9, 0, tzinfo=UTC),
            updated_at=self.started,
            run_started_at=self.started,
        )

    async def list_artifacts(
        self, repo: str, run_id: int, *, name: str | None = None
    ) -> list[Artifact]:
        return [
            Artifact(n, name, len(data), False, "", created_at=created, run_id=run_id)
            for n, (name, (data, created)) in enumerate(self.artifacts.items(), start=1)
        ] + [Artifact(99, "coverage-html", 10, True, "")]

    async def download_artifact(
        self, repo: str, artifact_id: int, dest: Path, *, max_bytes: int | None = None
    ) -> LogDownload:
        name, (data, _) = list(self.artifacts.items())[artifact_id - 1]
        if name == self.fail_download:
            raise CIProviderError("gone", reason=ErrorReason.NOT_FOUND, status_code=410)
        dest.write_bytes(data)
        return LogDownload(dest, len(data), False)

    async def aclose(self) -> None:
        self.closed = True


def test_run_artifacts_are_ingested_per_attempt(
    ctx: WorkflowContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = datetime(2025, 1, 2, 9, 30, tzinfo=UTC)  # uploaded by attempt 1
    after = datetime(2025, 1, 2, 10, 30, tzinfo=UTC)  # uploaded by attempt 2
    failing = (JUNIT / "mikepenz-action-junit-report/python/report.xml").read_bytes()
    fake = FakeCI(
        {
            "test-results-py311": (zip_of({"junit.xml": failing, "notes.txt": b"x"}), before),
            "test-results-py311-rerun": (zip_of({"junit.xml": failing}), after),
            "junit-broken": (zip_of({"bad.xml": b"<testsuite"}), after),
            "test-results-gone": (b"", after),
        },
        fail_download="test-results-gone",
    )
    monkeypatch.setattr(test_optimization, "ci_provider", lambda _ctx: fake)
    outcome = asyncio.run(test_optimization.run(params(workflow_run_id=42), ctx))
    assert fake.closed
    ingested = outcome.data["ingested"]
    assert ingested["reports"] == 2 and ingested["results"] == 6
    problems = " | ".join(ingested["problems"])
    assert "junit-broken!bad.xml: not well-formed XML" in problems
    assert "artifact test-results-gone: cannot download" in problems
    from contexten.store.test_history import HistoryFilter, iter_executions

    rows = list(iter_executions(ctx.store, HistoryFilter(repository="o/r")))
    assert {(r.run_id, r.run_attempt, r.job, r.commit) for r in rows} == {
        ("42", 1, "test-results-py311", "f00d"),
        ("42", 2, "test-results-py311-rerun", "f00d"),
    }


def test_bad_inputs_are_workflow_errors(ctx: WorkflowContext, tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="no JUnit reports found"):
        asyncio.run(test_optimization.run(params(report_paths=[str(tmp_path / "nothing")]), ctx))
    with pytest.raises(WorkflowError, match="GitHub client"):
        asyncio.run(test_optimization.optimize(params(workflow_run_id=1), ctx, None))


def test_empty_history_is_fine(ctx: WorkflowContext) -> None:
    outcome = asyncio.run(test_optimization.run(params(), ctx))
    assert outcome.ok
    assert outcome.summary.startswith("0 tests over 14 days")


def test_artifacts_from_the_github_sandbox_over_real_sockets(tmp_path: Path) -> None:
    from contexten.sandbox.github import JobSpec
    from contexten.sandbox.testing import running_sandbox

    with running_sandbox(services=("github",)) as sandbox:
        state = sandbox.state.github
        repo = "octo/tests"
        state.add_repo(repo, files={"README.md": "# tests\n"})
        run = state.add_run(repo, jobs=(JobSpec("test", conclusion="failure"),))
        state.add_artifact(
            run.id,
            "junit-py311",
            {"reports/junit.xml": (FLAKY / "flaky_success_first.xml").read_bytes()},
        )
        state.add_artifact(run.id, "coverage", {"index.html": "<html></html>"})
        settings = Settings(
            contexten_home=tmp_path / "home",
            github_api_url=sandbox.github_url,
            github_token=sandbox.env()["GITHUB_TOKEN"],
            github_repository=repo,
            http_max_attempts=2,
        )
        ctx = WorkflowContext(settings, open_store(f"sqlite:///{tmp_path / 'sb.db'}"), "to-sb")
        outcome = asyncio.run(test_optimization.run(params(workflow_run_id=run.id), ctx))
    assert outcome.data["ingested"]["reports"] == 1
    assert outcome.data["ingested"]["results"] == 3
    assert outcome.data["tests"] == 1
    (flaky,) = outcome.data["flaky"]
    assert flaky["name"].endswith("test_success_first")
    assert flaky["evidence"][0]["commit"] == run.head_sha
