"""The GitHub client against the GitHub sandbox over real sockets."""

from __future__ import annotations

import io
import logging
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contexten.integrations.github import GitHubClient
from contexten.integrations.http import RetryPolicy
from contexten.integrations.idempotency import ActionLedger, marker
from contexten.integrations.interface import Annotation, CIProviderError, ErrorReason
from contexten.sandbox.github import CommentRecord, GitHubState, JobSpec
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import ManualClock, fast_policy
from contexten.store.db import Store

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
REAL_LOG = TEST_DATA / "ci-logs" / "bugswarm" / "python" / "2062223369-orig.log"


def client_for(server: SandboxServer, policy: RetryPolicy, **kwargs: object) -> GitHubClient:
    values: dict[str, object] = {
        "base_url": server.github_url,
        "token": server.env()["GITHUB_TOKEN"],
        "policy": policy,
    }
    values.update(kwargs)
    return GitHubClient(**values)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- reads


async def test_list_runs_filters_and_follows_pagination(
    gh: GitHubClient, gh_state: GitHubState, gh_repo: str
) -> None:
    base = datetime(2024, 5, 1, tzinfo=UTC)
    gh_state.add_branch(gh_repo, "develop")
    for day in range(7):
        gh_state.add_run(
            gh_repo,
            head_branch="main" if day % 2 else "develop",
            jobs=[JobSpec("test", conclusion="failure" if day in (1, 3) else "success")],
            created_at=base + timedelta(days=day),
        )
    runs = await gh.list_workflow_runs(gh_repo, per_page=2)
    assert len(runs) == 7  # four pages followed by Link rel="next"
    assert [r.created_at for r in runs] == sorted((r.created_at for r in runs), reverse=True)
    assert len(await gh.list_workflow_runs(gh_repo, per_page=2, max_items=3)) == 3
    failed = await gh.list_workflow_runs(gh_repo, status="failure")
    assert {r.created_at.day for r in failed} == {2, 4}
    assert all(r.failed and r.repository == gh_repo for r in failed)
    develop = await gh.list_workflow_runs(gh_repo, branch="develop")
    assert len(develop) == 4 and {r.head_branch for r in develop} == {"develop"}
    window = await gh.list_workflow_runs(gh_repo, created="2024-05-02..2024-05-04")
    assert sorted(r.created_at.day for r in window) == [2, 3, 4]
    since = await gh.list_workflow_runs(gh_repo, created=">=2024-05-06")
    assert sorted(r.created_at.day for r in since) == [6, 7]
    by_workflow = await gh.list_workflow_runs(gh_repo, workflow_id="ci.yml")
    assert len(by_workflow) == 7


async def test_run_jobs_steps_and_real_log(
    gh: GitHubClient, gh_state: GitHubState, gh_repo: str, tmp_path: Path
) -> None:
    spec = JobSpec.from_log_file(REAL_LOG, name="tests (3.10)")
    run = gh_state.add_run(gh_repo, jobs=[spec, JobSpec("lint")])
    got = await gh.get_run(gh_repo, run.id)
    assert got.conclusion == "failure" and got.run_attempt == 1
    jobs = await gh.list_jobs(gh_repo, run.id)
    assert [j.name for j in jobs] == ["tests (3.10)", "lint"]
    failing = jobs[0]
    assert failing.failed and failing.steps[0].name == "Set up job"
    assert any(s.conclusion == "failure" for s in failing.steps)
    assert (await gh.get_job(gh_repo, failing.id)).name == "tests (3.10)"

    streamed = b"".join([chunk async for chunk in gh.stream_job_log(gh_repo, failing.id)])
    assert streamed == REAL_LOG.read_bytes()

    capped = await gh.download_job_log(gh_repo, failing.id, tmp_path / "cut.log", max_bytes=1000)
    assert capped.truncated and capped.size_bytes == 1000
    assert (tmp_path / "cut.log").read_bytes() == REAL_LOG.read_bytes()[:1000]
    whole = await gh.download_job_log(gh_repo, failing.id, tmp_path / "job.log")
    assert not whole.truncated and whole.size_bytes == REAL_LOG.stat().st_size


async def test_expired_log_url_is_requested_again(
    gh: GitHubClient, github_sandbox: SandboxServer, gh_state: GitHubState, gh_repo: str
) -> None:
    run = gh_state.add_run(gh_repo, jobs=[JobSpec("test", conclusion="failure")])
    job_id = run.attempt.jobs[0].id
    github_sandbox.faults["github"].expire_next_log_urls(1)
    text = b"".join([c async for c in gh.stream_job_log(gh_repo, job_id)])
    assert b"Process completed with exit code 1" in text
    assert github_sandbox.faults["github"].counts["expired_log_url"] == 1

    github_sandbox.faults["github"].log_url_ttl = -10  # every URL is stale on arrival
    with pytest.raises(CIProviderError, match="refused"):
        _ = [c async for c in gh.stream_job_log(gh_repo, job_id)]


async def test_run_logs_zip_artifacts_and_timing(
    gh: GitHubClient, gh_state: GitHubState, gh_repo: str, tmp_path: Path
) -> None:
    run = gh_state.add_run(gh_repo, jobs=[JobSpec("test", conclusion="failure"), JobSpec("lint")])
    junit = (
        b'<testsuite tests="1" failures="1"><testcase name="t"><failure/></testcase></testsuite>'
    )
    gh_state.add_artifact(run.id, "junit-report", {"reports/junit.xml": junit})
    gh_state.add_artifact(run.id, "coverage", {"coverage.xml": "<coverage/>"})

    logs = await gh.download_run_logs(gh_repo, run.id, tmp_path / "logs.zip")
    with zipfile.ZipFile(logs.path) as archive:
        assert archive.namelist() == ["0_test.txt", "1_lint.txt"]
        assert b"exit code 1" in archive.read("0_test.txt")

    artifacts = await gh.list_artifacts(gh_repo, run.id)
    assert {a.name for a in artifacts} == {"junit-report", "coverage"}
    only = await gh.list_artifacts(gh_repo, run.id, name="junit-report")
    assert len(only) == 1 and only[0].run_id == run.id and not only[0].expired
    download = await gh.download_artifact(gh_repo, only[0].id, tmp_path / "junit.zip")
    with zipfile.ZipFile(io.BytesIO(download.path.read_bytes())) as archive:
        assert archive.read("reports/junit.xml") == junit

    with pytest.raises(CIProviderError, match="limit") as caught:
        await gh.download_artifact(gh_repo, only[0].id, tmp_path / "small.zip", max_bytes=10)
    assert caught.value.reason is ErrorReason.INVALID and not (tmp_path / "small.zip").exists()

    timing = await gh.get_run_timing(gh_repo, run.id)
    assert timing.run_duration_ms == 60_000
    assert timing.billable_ms == {"UBUNTU": 120_000}
    assert {t.job_id for t in timing.job_runs} == {j.id for j in run.attempt.jobs}


# ----------------------------------------------------------------------------- actions


async def test_rerun_failed_jobs_once_and_pass_on_rerun(
    gh: GitHubClient, gh_state: GitHubState, gh_repo: str
) -> None:
    run = gh_state.add_run(
        gh_repo,
        jobs=[JobSpec("flaky", conclusion="failure"), JobSpec("lint")],
        rerun_outcomes=["success"],
    )
    before = gh_state.received["rerun_failed_jobs"]
    after = await gh.rerun_failed_jobs(gh_repo, run.id)
    assert after.run_attempt == 2 and after.conclusion == "success"
    # A second request for the same attempt (a redelivered event) re-runs nothing.
    again = await gh.rerun_failed_jobs(gh_repo, run.id, run_attempt=1)
    assert again.run_attempt == 2
    assert gh_state.received["rerun_failed_jobs"] == before + 1

    latest = await gh.list_jobs(gh_repo, run.id)
    every = await gh.list_jobs(gh_repo, run.id, filter="all")
    assert {(j.name, j.run_attempt) for j in latest} == {("flaky", 2), ("lint", 1)}
    assert len(every) == 3


async def test_rerun_whole_run_and_deterministic_failure_stays(
    gh: GitHubClient, gh_state: GitHubState, gh_repo: str
) -> None:
    run = gh_state.add_run(gh_repo, jobs=[JobSpec("test", conclusion="failure")])
    after = await gh.rerun_run(gh_repo, run.id)
    assert after.run_attempt == 2 and after.conclusion == "failure"


async def test_cancel(gh: GitHubClient, gh_state: GitHubState, gh_repo: str) -> None:
    running = gh_state.add_run(gh_repo, jobs=[JobSpec("long")], in_progress_seconds=600)
    assert (await gh.get_run(gh_repo, running.id)).status == "in_progress"
    assert await gh.cancel_run(gh_repo, running.id) is True
    cancelled = await gh.get_run(gh_repo, running.id)
    assert (cancelled.status, cancelled.conclusion) == ("completed", "cancelled")
    assert await gh.cancel_run(gh_repo, running.id) is False  # 409: already finished


async def test_comment_is_posted_once_with_marker(
    gh: GitHubClient, gh_state: GitHubState, gh_repo: str
) -> None:
    pull = gh_state.add_pull_request(gh_repo, "feature")
    first = await gh.create_issue_comment(gh_repo, pull.number, "CI failed: test_x")
    second = await gh.create_issue_comment(gh_repo, pull.number, "CI failed: test_x")
    assert first.id == second.id
    comments = gh_state.comments(gh_repo, pull.number)
    assert len(comments) == 1 and "<!-- contexten:key=" in comments[0].body
    other = await gh.create_issue_comment(gh_repo, pull.number, "different text")
    assert other.id != first.id and len(gh_state.comments(gh_repo, pull.number)) == 2


async def test_comment_found_after_a_crash_before_recording(
    github_sandbox: SandboxServer,
    gh_state: GitHubState,
    gh_repo: str,
    gh_policy: RetryPolicy,
    action_store: Store,
) -> None:
    issue = gh_state.add_issue(gh_repo, "tracking")
    crashed = client_for(
        github_sandbox, gh_policy, ledger=ActionLedger(action_store, lease_seconds=0)
    )
    # The first process posted the comment but died before its ledger recorded it.
    claim = crashed.ledger._claim_sync("key-1", "github_comment", None)  # type: ignore[union-attr]
    assert claim.outcome == "claimed"
    gh_state.repo(gh_repo).comments.append(
        CommentRecord(id=123456, issue_number=issue.number, body=f"hello\n\n{marker('key-1')}")
    )
    restarted = client_for(github_sandbox, gh_policy, ledger=ActionLedger(action_store))
    ref = await restarted.create_issue_comment(gh_repo, issue.number, "hello", key="key-1")
    assert ref.id == 123456
    assert len(gh_state.comments(gh_repo, issue.number)) == 1


async def test_check_run_annotations_are_batched_by_50(
    gh: GitHubClient, gh_state: GitHubState, gh_repo: str
) -> None:
    sha = gh_state.repo(gh_repo).branches["main"]
    notes = [
        Annotation(path="src/app.py", start_line=i, end_line=i, level="failure", message=f"E{i}")
        for i in range(1, 121)
    ]
    before = dict(gh_state.received)
    ref = await gh.create_check_run(
        gh_repo,
        name="contexten",
        head_sha=sha,
        title="2 failures",
        summary="see annotations",
        conclusion="failure",
        annotations=notes,
    )
    assert ref.annotations_count == 120 and ref.conclusion == "failure"
    assert gh_state.received["check_run"] - before.get("check_run", 0) == 1
    assert gh_state.received["check_run_update"] - before.get("check_run_update", 0) == 2
    again = await gh.create_check_run(
        gh_repo,
        name="contexten",
        head_sha=sha,
        title="2 failures",
        summary="x",
        conclusion="failure",
        annotations=notes,
    )
    assert again.id == ref.id
    checks = gh_state.check_runs(gh_repo)
    assert len(checks) == 1 and len(checks[0].annotations) == 120


async def test_branch_file_and_pull_request(
    gh: GitHubClient, gh_state: GitHubState, gh_repo: str
) -> None:
    main = await gh.get_ref(gh_repo, "heads/main")
    branch = await gh.create_branch(gh_repo, "contexten/fix-1", main.sha)
    assert branch.ref == "refs/heads/contexten/fix-1" and branch.sha == main.sha
    assert (await gh.create_branch(gh_repo, "contexten/fix-1", main.sha)).sha == main.sha

    current = await gh.get_file(gh_repo, "src/app.py", ref="contexten/fix-1")
    assert current.content == b"print('hi')\n"
    commit = await gh.put_file(
        gh_repo,
        "src/app.py",
        b"print('fixed')\n",
        message="Fix app",
        branch="contexten/fix-1",
        sha=current.sha,
    )
    assert commit == gh_state.repo(gh_repo).branches["contexten/fix-1"]
    assert (
        await gh.get_file(gh_repo, "src/app.py", ref="contexten/fix-1")
    ).content == b"print('fixed')\n"
    with pytest.raises(CIProviderError) as caught:
        await gh.put_file(gh_repo, "src/app.py", b"x", message="m", branch="main", sha="0" * 40)
    assert caught.value.status_code == 409

    assert await gh.find_pull_request(gh_repo, head="contexten/fix-1") is None
    pr = await gh.create_pull_request(
        gh_repo, head="contexten/fix-1", base="main", title="Fix app", body="Automated fix"
    )
    same = await gh.create_pull_request(
        gh_repo, head="contexten/fix-1", base="main", title="Fix app"
    )
    assert same.number == pr.number and pr.head == "contexten/fix-1" and pr.state == "open"
    found = await gh.find_pull_request(gh_repo, head="contexten/fix-1", base="main")
    assert found is not None and found.number == pr.number
    assert len(gh_state.pulls(gh_repo)) == 1


async def test_pull_request_already_open_elsewhere_is_returned(
    github_sandbox: SandboxServer, gh_state: GitHubState, gh_repo: str, gh_policy: RetryPolicy
) -> None:
    gh_state.add_commit(gh_repo, "dep-bump", {"requirements.txt": "x==2\n"}, "Bump x")
    opened = gh_state.add_pull_request(gh_repo, "dep-bump")
    no_ledger = client_for(github_sandbox, gh_policy)  # 422 "already exists" → look it up
    pr = await no_ledger.create_pull_request(gh_repo, head="dep-bump", base="main", title="Bump")
    assert pr.number == opened.number and len(gh_state.pulls(gh_repo)) == 1


async def test_caches_and_release(gh: GitHubClient, gh_state: GitHubState, gh_repo: str) -> None:
    gh_state.add_cache(gh_repo, "pip-linux-abc")
    gh_state.add_cache(gh_repo, "pip-linux-abc", ref="refs/heads/develop")
    other = gh_state.add_cache(gh_repo, "npm-xyz")
    assert await gh.delete_actions_caches(gh_repo, key="pip-linux-abc") == 2
    assert await gh.delete_actions_caches(gh_repo, key="pip-linux-abc") == 0
    assert await gh.delete_actions_caches(gh_repo, cache_id=other.id) == 1
    assert gh_state.repo(gh_repo).caches == []

    release = await gh.create_release(gh_repo, tag_name="v1.2.0", name="1.2.0", body="## Changes")
    again = await gh.create_release(gh_repo, tag_name="v1.2.0", name="1.2.0", body="## Changes")
    assert release.draft and again.id == release.id
    assert len(gh_state.repo(gh_repo).releases) == 1


# ----------------------------------------------------------------------------- auth, limits, errors


async def test_check_reports_rate_limit_and_auth(
    gh: GitHubClient, github_sandbox: SandboxServer, gh_policy: RetryPolicy
) -> None:
    healthy = await gh.check()
    assert healthy.status == "ok" and healthy.rate_limit_remaining is not None
    assert "token" in healthy.detail and healthy.latency_ms is not None

    bad = client_for(github_sandbox, gh_policy, token="ghp_notAValidTokenForTheSandbox00000")
    result = await bad.check()
    assert result.status == "down" and "Bad credentials" in result.detail
    with pytest.raises(CIProviderError) as caught:
        await bad.list_workflow_runs("octo/none")
    assert caught.value.auth_error and caught.value.status_code == 401


async def test_typed_not_found(gh: GitHubClient, gh_repo: str) -> None:
    with pytest.raises(CIProviderError) as caught:
        await gh.get_run(gh_repo, 1)
    assert caught.value.not_found and caught.value.service == "github"
    with pytest.raises(CIProviderError, match="owner/name"):
        await gh.get_run("not-a-repo", 1)


@pytest.mark.parametrize(
    "style",
    ["github_primary_403", "github_primary_429", "github_secondary_403", "github_secondary_429"],
)
async def test_rate_limit_responses_are_waited_out(
    style: str, github_sandbox: SandboxServer, gh_repo: str, clock: ManualClock
) -> None:
    gh = client_for(github_sandbox, fast_policy(clock, max_total_seconds=600))
    github_sandbox.faults["github"].rate_limit(2, style=style, path=f"/repos/{gh_repo}/*", wait=5)  # type: ignore[arg-type]
    runs = await gh.list_workflow_runs(gh_repo)
    assert runs == []
    assert len(clock.sleeps) == 2
    if "primary" in style:
        assert all(4 <= s <= 7 for s in clock.sleeps)  # until x-ratelimit-reset (+1 s)
    else:
        assert all(s >= 60 for s in clock.sleeps)  # secondary: at least a minute


async def test_primary_limit_far_away_fails_fast_with_reset_time(
    gh: GitHubClient, github_sandbox: SandboxServer, gh_repo: str, clock: ManualClock
) -> None:
    github_sandbox.faults["github"].rate_limit(1, style="github_primary_403", path="*", wait=3600)
    with pytest.raises(CIProviderError) as caught:
        await gh.list_workflow_runs(gh_repo)
    assert caught.value.rate_limited and caught.value.reset_at is not None
    assert caught.value.reset_at > datetime.now(UTC).timestamp() + 3000
    assert clock.sleeps == []


async def test_exhausted_budget_makes_check_degraded(
    github_sandbox: SandboxServer, gh_state: GitHubState, gh_repo: str
) -> None:
    token = "ghp_budgetTestToken00000000000000000000"
    gh_state.tokens[token] = None
    gh_state.rate_used[token] = gh_state.rate_limit - 1
    client = client_for(github_sandbox, fast_policy(max_total_seconds=5), token=token)
    assert (await client.check()).status == "degraded"  # 1 left of 5000
    await client.list_workflow_runs(gh_repo)  # uses the last one
    with pytest.raises(CIProviderError) as caught:
        await client.list_workflow_runs(gh_repo)
    assert caught.value.rate_limited and caught.value.status_code == 403


async def test_github_app_installation_auth(
    github_sandbox: SandboxServer, gh_state: GitHubState, gh_repo: str, gh_policy: RetryPolicy
) -> None:
    installation = gh_state.enable_app()
    gh_state.add_run(gh_repo, jobs=[JobSpec("test")])
    app = GitHubClient(
        base_url=github_sandbox.github_url,
        app_id=installation.app_id,
        app_private_key=installation.private_key_pem.decode(),
        installation_id=installation.id,
        policy=gh_policy,
    )
    before = gh_state.received["installation_token"]
    assert len(await app.list_workflow_runs(gh_repo)) == 1
    assert len(await app.list_workflow_runs(gh_repo)) == 1
    assert gh_state.received["installation_token"] == before + 1  # token cached
    assert (await app.check()).status == "ok"
    assert "private" not in repr(app) and "BEGIN" not in repr(app)


async def test_no_secret_in_logs_or_errors(
    github_sandbox: SandboxServer,
    gh_state: GitHubState,
    gh_repo: str,
    gh_policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from contexten.integrations.redaction import install_log_redaction

    secret = "ghp_secretThatMustNeverBeLogged000000000"
    gh_state.tokens[secret] = None
    install_log_redaction([secret])
    caplog.set_level(logging.DEBUG)
    client = client_for(github_sandbox, gh_policy, token=secret)
    github_sandbox.faults["github"].add(
        path=f"/repos/{gh_repo}/actions/runs", error_rate=1.0, error_status=503
    )
    errors: list[str] = []
    try:
        await client.list_workflow_runs(gh_repo)
    except CIProviderError as exc:
        errors += [str(exc), repr(exc)]
    try:
        await client.get_run(gh_repo, 42)
    except CIProviderError as exc:
        errors += [str(exc), repr(exc)]
    bad = client_for(github_sandbox, gh_policy, token=secret + "x")
    try:
        await bad.get_run(gh_repo, 1)
    except CIProviderError as exc:
        errors += [str(exc), repr(exc)]
    assert len(errors) == 6
    assert caplog.records  # the retries were logged
    assert secret not in caplog.text
    assert all(secret not in e for e in errors)
    assert secret not in repr(client)
