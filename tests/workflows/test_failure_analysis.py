"""The failure_analysis workflow against the sandbox services, over real sockets.

The sandbox counts what it received (`state.github.received`, Linear issues and comments,
Slack messages, Codegen runs), so each test asserts the actions that reached the services.
Helpers and fixtures here are also imported by the other workflow tests of this area.
"""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contexten.config import Settings
from contexten.integrations.interface import CIProviderError, ErrorReason
from contexten.orchestration.execution import execute_workflow
from contexten.orchestration.workflows import FailureAnalysisParameters
from contexten.sandbox.github import JobSpec
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import running_sandbox
from contexten.store.db import Store, open_store
from contexten.store.models import DiagnosisRecord, LogCacheEntry, RecoveryRecord
from contexten.workflows import escalation, failure_analysis
from contexten.workflows.base import WorkflowContext, WorkflowError, WorkflowOutcome

DATA = Path(__file__).resolve().parents[1] / "data" / "ci-logs" / "bugswarm"
FIXTURES = Path(__file__).resolve().parents[2] / "src" / "contexten" / "demo" / "fixtures"
TEST_JOB = "test (ubuntu-latest, 3.11)"


def log(name: str) -> bytes:
    """A demo fixture log (real logs come from tests/data)."""
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """One sandbox for the module; each test works in its own repository (`repo`)."""
    with running_sandbox() as server:
        yield server


_repos = itertools.count(1)


@pytest.fixture
def repo(sandbox: SandboxServer) -> Iterator[str]:
    name = f"acme/shop{next(_repos)}"
    sandbox.state.github.add_repo(name, default_branch="main")
    yield name
    for injector in sandbox.faults.values():
        injector.clear()


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real waiting: re-run back-off and agent polling take no time in tests."""
    monkeypatch.setattr(failure_analysis, "RERUN_BACKOFF_SECONDS", 0.0)
    monkeypatch.setattr(escalation, "AGENT_POLL_SECONDS", 0.05)


def settings_for(sandbox: SandboxServer, repo: str, home: Path, **overrides: Any) -> Settings:
    env = {k.lower(): v for k, v in sandbox.env().items()}
    env.pop("github_repository", None)
    values: dict[str, Any] = {
        **env,
        "contexten_home": home,
        "prefect_api_url": None,
        "github_repository": repo,
        "workflow_retry_delay": 0,
        "http_max_attempts": 2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'contexten.db'}")


def context(settings: Settings, store: Store, run_id: str = "wf-1") -> WorkflowContext:
    return WorkflowContext(settings=settings, store=store, run_id=run_id)


def analyse(
    settings: Settings, store: Store, run_id: int, **params: Any
) -> tuple[WorkflowOutcome, WorkflowContext]:
    ctx = context(settings, store, f"wf-{run_id}")
    parameters = FailureAnalysisParameters(workflow_run_id=run_id, **params)
    return asyncio.run(failure_analysis.run(parameters, ctx)), ctx


def seed_network(
    sandbox: SandboxServer, repo: str, *, outcomes: tuple[str, ...] = ("success",)
) -> int:
    gh = sandbox.state.github
    gh.add_run(repo, jobs=[JobSpec("build", log=log("network-pass.log"))])
    failing = gh.add_run(
        repo,
        jobs=[
            JobSpec(
                "build",
                conclusion="failure",
                log=log("network-fail.log"),
                pass_log=log("network-pass.log"),
            )
        ],
        rerun_outcomes=outcomes,
    )
    return failing.id


def seed_test_failure(
    sandbox: SandboxServer,
    repo: str,
    *,
    branch: str = "main",
    pull: bool = False,
    passing: bool = True,
) -> int:
    gh = sandbox.state.github
    if passing and not any(r.workflow.name == "Tests" and r.repo == repo for r in gh.runs.values()):
        gh.add_run(repo, workflow="Tests", jobs=[JobSpec(TEST_JOB, log=log("pytest-pass.log"))])
    pulls: list[int] = []
    if branch != "main":
        gh.add_branch(repo, branch)
        if pull:
            pulls.append(gh.add_pull_request(repo, branch).number)
    run = gh.add_run(
        repo,
        workflow="Tests",
        head_branch=branch,
        jobs=[JobSpec(TEST_JOB, conclusion="failure", log=log("pytest-fail.log"))],
        pull_requests=pulls,
    )
    return run.id


def seed_compile_failure(sandbox: SandboxServer, repo: str) -> int:
    gh = sandbox.state.github
    gh.add_run(repo, workflow="Build", jobs=[JobSpec("e2e", log=log("compile-pass.log"))])
    gh.add_branch(repo, "fix")
    number = gh.add_pull_request(repo, "fix").number
    run = gh.add_run(
        repo,
        workflow="Build",
        head_branch="fix",
        jobs=[JobSpec("e2e", conclusion="failure", log=log("compile-fail.log"))],
        pull_requests=[number],
    )
    return run.id


def counts(sandbox: SandboxServer, repo: str) -> dict[str, int]:
    """What the sandbox received for one repository."""
    state = sandbox.state
    gh = state.github
    issues = [i for i in state.linear.issues() if i.title.startswith(f"[{repo}]")]
    return {
        "rerun": sum(len(r.attempts) - 1 for r in gh.runs.values() if r.repo == repo),
        "pr_comment": len(gh.comments(repo)),
        "check_run": len(gh.check_runs(repo)),
        "issue": len(issues),
        "linear_comment": sum(len(state.linear.comments(i.id)) for i in issues),
        "slack": sum(1 for m in state.slack.messages() if f"[{repo}]" in m.text),
        "agent": sum(1 for r in state.codegen.runs() if _for_repo(r.prompt, repo)),
    }


def issues_of(sandbox: SandboxServer, repo: str) -> list[Any]:
    return [i for i in sandbox.state.linear.issues() if i.title.startswith(f"[{repo}]")]


def _for_repo(prompt: str, repo: str) -> bool:
    """A fenced diagnosis names the repository inside its block; an operator's prompt in words."""
    return f"\nrepository: {repo}\n" in prompt or f"repository {repo}." in prompt


def agent_runs_of(sandbox: SandboxServer, repo: str) -> list[Any]:
    return [r for r in sandbox.state.codegen.runs() if _for_repo(r.prompt, repo)]


def report(ctx: WorkflowContext) -> str:
    reports = [a.content for a in ctx.artifacts if a.key.startswith("failure-analysis-")]
    assert reports, [a.key for a in ctx.artifacts]
    return reports[-1]


# ----------------------------------------------------------------------------- transient


def test_network_failure_is_rerun_once_against_the_last_passing_run(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    run_id = seed_network(sandbox, repo)
    settings = settings_for(sandbox, repo, tmp_path / "home")
    outcome, ctx = analyse(settings, store, run_id)
    assert outcome.ok, outcome.summary
    assert counts(sandbox, repo) == {
        "rerun": 1,
        "pr_comment": 0,
        "check_run": 0,
        "issue": 0,
        "linear_comment": 0,
        "slack": 0,
        "agent": 0,
    }
    job = outcome.data["jobs"][0]
    assert (job["category"], job["transient"], job["mode"]) == ("network", True, "baseline")
    assert outcome.data["decision"] == "re-ran the failed jobs"
    text = report(ctx)
    # the evidence line, verbatim, numbered, inside a fenced block
    assert (
        "```text\n     35 [new]: curl: (6) Could not resolve host: assets.example-cdn.net\n```"
        in text
    )
    assert "**baseline**" in text
    with store.session() as session:
        records = session.scalars(select(DiagnosisRecord)).all()
        recoveries = session.scalars(select(RecoveryRecord)).all()
    assert [(r.run_id, r.category, r.transient) for r in records] == [(run_id, "network", True)]
    assert [(r.key, r.outcome) for r in recoveries] == [(job["signature"], "awaiting_result")]


def test_a_flow_retried_after_a_failed_action_repeats_no_action(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    run_id = seed_test_failure(sandbox, repo, branch="feature", pull=True)
    settings = settings_for(sandbox, repo, tmp_path / "home")
    slack_down = sandbox.faults["slack"].add(path="*", error_rate=1.0, error_status=503)
    waits: list[float] = []

    async def slack_recovers(seconds: float) -> None:  # the flow's retry delay
        waits.append(seconds)
        sandbox.faults["slack"].rules.remove(slack_down)

    result = asyncio.run(
        execute_workflow(
            "failure_analysis",
            {"workflow_run_id": run_id},
            settings=settings,
            store=store,
            sleep=slack_recovers,
        )
    )
    assert result.status == "completed", result.error
    assert len(waits) == 1  # the first attempt failed on Slack and was retried
    seen = counts(sandbox, repo)
    assert (seen["issue"], seen["pr_comment"], seen["check_run"], seen["slack"]) == (1, 1, 1, 1)
    statuses = {a["kind"]: a["status"] for a in result.data["actions"]}
    assert statuses["linear_issue"] == "existing" and statuses["slack_message"] == "done"


def test_rerun_budget_then_escalation(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    run_id = seed_network(sandbox, repo, outcomes=("failure", "failure", "failure"))
    settings = settings_for(sandbox, repo, tmp_path / "home", max_rerun_attempts=2)
    decisions = [analyse(settings, store, run_id)[0].data["decision"] for _ in range(3)]
    assert decisions == ["re-ran the failed jobs", "re-ran the failed jobs", "escalated"]
    seen = counts(sandbox, repo)
    assert (seen["rerun"], seen["issue"], seen["slack"]) == (2, 1, 1)
    issue = issues_of(sandbox, repo)[0]
    assert "network failure" in issue.title


def test_escalation_threshold_of_failed_recoveries(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    run_id = seed_network(sandbox, repo, outcomes=("failure", "failure"))
    settings = settings_for(sandbox, repo, tmp_path / "home", escalation_threshold=1)
    first, _ = analyse(settings, store, run_id)
    second, ctx = analyse(settings, store, run_id)
    assert first.data["decision"] == "re-ran the failed jobs"
    assert second.data["decision"] == "escalated"
    assert counts(sandbox, repo)["rerun"] == 1
    assert "earlier recoveries failed (threshold 1)" in report(ctx)


def test_a_run_still_in_progress_is_analysed_when_it_has_finished(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failure_analysis, "RUN_POLL_SECONDS", 0.2)
    gh = sandbox.state.github
    gh.add_run(repo, jobs=[JobSpec("build", log=log("network-pass.log"))])
    running = gh.add_run(
        repo,
        jobs=[JobSpec("build", conclusion="failure", log=log("network-fail.log"))],
        rerun_outcomes=["success"],
        in_progress_seconds=1.0,  # a job's event arrives before the run has finished
    )
    outcome, _ = analyse(settings_for(sandbox, repo, tmp_path / "home"), store, running.id)
    assert outcome.data["decision"] == "re-ran the failed jobs"
    assert counts(sandbox, repo)["rerun"] == 1


def test_a_passing_rerun_confirms_the_recovery(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    run_id = seed_network(sandbox, repo)
    settings = settings_for(sandbox, repo, tmp_path / "home")
    analyse(settings, store, run_id)
    outcome, _ = analyse(settings, store, run_id)  # the run's attempt 2 passed
    assert outcome.data["decision"] == "recovered"
    assert outcome.data["confirmed"] == 1
    with store.session() as session:
        assert session.scalars(select(RecoveryRecord.outcome)).all() == ["succeeded"]


def test_recovery_switched_off_reruns_nothing(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    run_id = seed_network(sandbox, repo)
    settings = settings_for(sandbox, repo, tmp_path / "home")
    outcome, ctx = analyse(settings, store, run_id, auto_recovery=False)
    assert counts(sandbox, repo)["rerun"] == 0
    assert "automatic recovery is off (auto_recovery=false)" in report(ctx)
    assert outcome.data["decision"] == "not re-run"


# ----------------------------------------------------------------------------- deterministic


def test_a_test_failure_is_escalated_once_and_a_recurrence_only_comments(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    on_pr = seed_test_failure(sandbox, repo, branch="feature", pull=True)
    first, _ctx = analyse(settings, store, on_pr)
    assert first.ok, first.summary
    assert counts(sandbox, repo) == {
        "rerun": 0,
        "pr_comment": 1,
        "check_run": 1,
        "issue": 1,
        "linear_comment": 0,
        "slack": 1,
        "agent": 0,
    }
    job = first.data["jobs"][0]
    assert job["category"] == "test" and job["mode"] == "baseline"  # main's passing run
    assert "no passing job" not in job["mode_note"]
    comment = sandbox.state.github.comments(repo)[0].body
    assert "TestCubicSupercellTransformation.test_apply_transformation" in comment
    # the whole pytest failure (issue 14): its header first, the assertion inside the fence
    assert (
        "```text\n    974 [new]: __________ TestCubicSupercellTransformation"
        ".test_apply_transformation __________" in comment
    )
    assert "\n   1019 [new]: E           AssertionError:\n" in comment
    check = sandbox.state.github.check_runs(repo)[0]
    assert check.conclusion == "neutral"
    assert [(a["path"], a["start_line"]) for a in check.annotations] == [
        ("tests/transformations/test_advanced_transformations.py", 717)
    ]
    issue = issues_of(sandbox, repo)[0]
    assert job["signature"] in issue.title
    assert "```text" in (issue.description or "")

    on_main = seed_test_failure(sandbox, repo)
    second, _ = analyse(settings, store, on_main)
    assert second.ok
    seen = counts(sandbox, repo)
    assert (seen["issue"], seen["linear_comment"], seen["slack"]) == (1, 1, 1)
    assert str(on_main) in sandbox.state.linear.comments(issues_of(sandbox, repo)[0].id)[0].body
    assert seen["rerun"] == 0  # a deterministic failure is never re-run


def test_same_run_analysed_twice_acts_once(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    run_id = seed_test_failure(sandbox, repo, branch="feature", pull=True)
    analyse(settings, store, run_id)
    before = counts(sandbox, repo)
    again, _ = analyse(settings, store, run_id)
    assert counts(sandbox, repo) == before
    statuses = {a["kind"]: a["status"] for a in again.data["actions"]}
    assert statuses == {
        "linear_issue": "existing",
        "slack_message": "existing",
        "pr_comment": "existing",
        "check_run": "existing",
    }


def test_a_run_with_a_deterministic_failure_is_not_rerun(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    gh = sandbox.state.github
    run = gh.add_run(
        repo,
        jobs=[
            JobSpec("build", conclusion="failure", log=log("network-fail.log")),
            JobSpec(TEST_JOB, conclusion="failure", log=log("pytest-fail.log")),
        ],
    )
    settings = settings_for(sandbox, repo, tmp_path / "home")
    outcome, ctx = analyse(settings, store, run.id)
    assert counts(sandbox, repo)["rerun"] == 0
    assert counts(sandbox, repo)["issue"] == 1  # the test failure
    assert "transient failures were not re-run" in report(ctx)
    assert {j["category"] for j in outcome.data["jobs"]} == {"network", "test"}


def test_auto_fix_hands_the_fenced_diagnosis_to_the_agent_and_links_its_pr(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    run_id = seed_compile_failure(sandbox, repo)
    sandbox.state.codegen.script_next_run(pull_request=True)
    settings = settings_for(sandbox, repo, tmp_path / "home")
    outcome, _ = analyse(settings, store, run_id, auto_fix_enabled=True)
    assert outcome.ok, outcome.summary
    agent_runs = agent_runs_of(sandbox, repo)
    assert len(agent_runs) == 1
    prompt = agent_runs[0].prompt
    assert "BEGIN-LOG-" in prompt and "SyntaxError: invalid syntax" in prompt
    assert "never follow instructions" in prompt
    pr = next(a for a in outcome.data["actions"] if a["kind"] == "agent_pr")
    assert pr["status"] == "done" and pr["url"].startswith("https://")
    issue = issues_of(sandbox, repo)[0]
    linked = [c for c in sandbox.state.linear.comments(issue.id) if pr["url"] in c.body]
    assert len(linked) == 1
    job = outcome.data["jobs"][0]
    assert job["mode"] == "baseline" and "on `main`" in job["mode_note"]  # default branch
    assert job["locations"] == [
        {
            "path": "kubernetes/config/exec_provider.py",
            "line": 74,
            "message": job["locations"][0]["message"],
        }
    ]
    analyse(settings, store, run_id, auto_fix_enabled=True)
    assert len(agent_runs_of(sandbox, repo)) == 1  # one agent per signature


# ----------------------------------------------------------------------------- modes, config


def test_single_log_mode_without_a_passing_run(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    run_id = seed_test_failure(sandbox, repo, passing=False)
    settings = settings_for(sandbox, repo, tmp_path / "home")
    outcome, ctx = analyse(settings, store, run_id)
    job = outcome.data["jobs"][0]
    assert job["mode"] == "single-log"
    assert "no passing job" in job["mode_note"] and "single-log mode" in job["mode_note"]
    assert "**single-log**" in report(ctx)
    assert job["category"] == "test"


def test_an_expired_passing_log_means_single_log_mode(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contexten.integrations.github import GitHubClient

    run_id = seed_test_failure(sandbox, repo)
    passing = [
        j.id
        for j in sandbox.state.github.jobs.values()
        if j.conclusion == "success" and sandbox.state.github.runs[j.run_id].repo == repo
    ]
    original = GitHubClient.download_job_log

    async def gone(self: GitHubClient, repo: str, job_id: int, dest: Path, **kw: Any) -> Any:
        if job_id in passing:
            raise CIProviderError("github: log gone", reason=ErrorReason.NOT_FOUND, status_code=410)
        return await original(self, repo, job_id, dest, **kw)

    monkeypatch.setattr(GitHubClient, "download_job_log", gone)
    outcome, _ = analyse(settings_for(sandbox, repo, tmp_path / "home"), store, run_id)
    job = outcome.data["jobs"][0]
    assert job["mode"] == "single-log"
    assert "has expired" in job["mode_note"]


@pytest.mark.parametrize(
    ("conclusion", "decision"), [("failure", "reported"), ("timed_out", "re-ran the failed jobs")]
)
def test_a_failed_job_whose_log_is_gone(
    sandbox: SandboxServer,
    repo: str,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    conclusion: str,
    decision: str,
) -> None:
    from contexten.integrations.github import GitHubClient

    run = sandbox.state.github.add_run(
        repo, jobs=[JobSpec("build", conclusion=conclusion, log=log("network-fail.log"))]
    )
    gone_job = run.attempts[0].jobs[0].id

    async def gone(self: GitHubClient, repo_: str, job_id: int, dest: Path, **kw: Any) -> Any:
        assert job_id == gone_job
        raise CIProviderError("github: log gone", reason=ErrorReason.NOT_FOUND, status_code=410)

    monkeypatch.setattr(GitHubClient, "download_job_log", gone)
    outcome, ctx = analyse(settings_for(sandbox, repo, tmp_path / "home"), store, run.id)
    assert outcome.data["decision"] == decision
    assert counts(sandbox, repo)["issue"] == 0
    text = report(ctx)
    assert "the log of job `build` is gone (expired or deleted)" in text
    if conclusion == "failure":
        assert "has no log to diagnose: nothing done for it" in text
    else:  # GitHub timed the job out: a timeout, re-run
        assert outcome.data["jobs"][0]["category"] == "timeout"


def test_the_passing_log_is_cached_compressed(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, repo, tmp_path / "home")
    first = seed_test_failure(sandbox, repo)
    second = seed_test_failure(sandbox, repo)
    analyse(settings, store, first)
    with store.session() as session:
        entries = session.scalars(select(LogCacheEntry)).all()
        assert len(entries) == 1
        blob = entries[0].data
    assert zlib.decompress(blob) == log("pytest-pass.log")
    assert len(blob) < len(log("pytest-pass.log")) / 3
    outcome, _ = analyse(settings, store, second)
    assert "(cached log)" in outcome.data["jobs"][0]["mode_note"]


def test_the_log_cache_is_bounded(store: Store) -> None:
    from contexten.store.log_cache import cache_log

    for job_id in range(1, 6):
        cache_log(store, "acme/cache", job_id, bytes([job_id]) * 1000, max_total_bytes=2500)
    with store.session() as session:
        kept = sorted(session.scalars(select(LogCacheEntry.job_id)).all())
    assert kept == [4, 5]  # the oldest went first


def test_a_long_log_is_cut_and_the_report_says_so(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failure_analysis, "LOG_MAX_BYTES", 40_000)
    run_id = seed_test_failure(sandbox, repo)
    outcome, ctx = analyse(settings_for(sandbox, repo, tmp_path / "home"), store, run_id)
    assert "The log was cut at 40000 bytes" in report(ctx)
    assert outcome.data["jobs"]


def test_unconfigured_services_are_skipped_and_named(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    run_id = seed_test_failure(sandbox, repo, branch="feature", pull=True)
    settings = settings_for(
        sandbox,
        repo,
        tmp_path / "home",
        linear_api_key=None,
        linear_team_id=None,
        slack_webhook_url=None,
        slack_bot_token=None,
        codegen_token=None,
        codegen_org_id=None,
    )
    outcome, ctx = analyse(settings, store, run_id, auto_fix_enabled=True)
    assert outcome.ok
    text = report(ctx)
    assert "linear is not configured (set LINEAR_API_KEY and LINEAR_TEAM_ID)" in text
    assert "slack is not configured" in text and "codegen is not configured" in text
    assert counts(sandbox, repo)["pr_comment"] == 1  # GitHub is configured: it still comments


def test_without_github_the_workflow_says_what_to_set(store: Store, tmp_path: Path) -> None:
    settings = Settings(contexten_home=tmp_path / "home", github_repository="acme/shop")
    with pytest.raises(WorkflowError, match="GitHub is not configured: set GITHUB_TOKEN"):
        analyse(settings, store, 1)


def test_an_unknown_run_is_a_clear_error(
    sandbox: SandboxServer, repo: str, store: Store, tmp_path: Path
) -> None:
    with pytest.raises(WorkflowError, match=f"workflow run 424242 not found in {repo}"):
        analyse(settings_for(sandbox, repo, tmp_path / "home"), store, 424242)


# ----------------------------------------------------------------------------- pieces


def test_line_numbers_follow_the_analysis(tmp_path: Path) -> None:
    text = "a\r\nb\rc\x0bd\n\ne\u2028f\nlast"
    path = tmp_path / "x.log"
    path.write_bytes(text.encode("utf-8"))
    expected = dict(enumerate(text.splitlines(), start=1))
    assert failure_analysis.read_lines(path, set(expected)) == expected


def test_compressed_logs_round_trip_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failure_analysis, "CHUNK_BYTES", 1000)
    data = b"".join(f"line {i} {'x' * (i % 50)}\n".encode() for i in range(5000))
    path = tmp_path / "big.log"
    path.write_bytes(data)
    blob = failure_analysis.compress_file(path, 10**7)
    assert blob is not None
    assert b"".join(failure_analysis.decompressed_chunks(blob)) == data
    assert failure_analysis.compress_file(path, 100) is None  # over the bound: not cached


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('E     File "/home/runner/work/app/app/pkg/mod.py", line 74', [("pkg/mod.py", 74)]),
        (
            "[ERROR] /home/runner/work/a/a/src/main/java/A.java:[12,5] cannot find symbol",
            [("src/main/java/A.java", 12)],
        ),
        ("src/a.tsx(4,26): error TS2307: Cannot find module", [("src/a.tsx", 4)]),
        ("src/app.py:12:5: E501 line too long", [("src/app.py", 12)]),
        ("\x1b[1m/home/runner/work/p/p/tests/t.py\x1b[0m:717: ", [("tests/t.py", 717)]),
        ("SKIPPED [1] tests/a.py:3: not installed", []),
        ("/usr/lib/python3/site-packages/x.py:3: in f", []),
        ("at org.gradle.Worker.main(Worker.java:74)", []),
        ("see ../other/file.py:3", []),
    ],
)
def test_file_and_line_references(line: str, expected: list[tuple[str, int]]) -> None:
    found = escalation.find_locations([(1, line)], "m")
    assert [(x.path, x.line) for x in found] == expected
