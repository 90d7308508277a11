"""At a 20 % injected fault rate, no action is lost and none is done twice.

The sandbox drops or fails one request in five on the repository's routes: 5xx before the
handler (no effect), 502 after it (the action happened, the client saw a failure),
connections dropped before and after the handler. Every action is then delivered again
(a redelivered event), and once more by a process with an empty store (a CI job's fresh
database). The sandbox's own records must show each action exactly once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from contexten.integrations.github import GitHubClient
from contexten.integrations.idempotency import ActionLedger
from contexten.integrations.interface import Annotation
from contexten.sandbox.faults import FaultRule
from contexten.sandbox.github import GitHubState, JobSpec
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import ManualClock, fast_policy
from contexten.store.db import Store

RERUNS = 8
COMMENTS = 8
CHECKS = 5
PULLS = 4


def twenty_percent(repo: str) -> FaultRule:
    return FaultRule(
        path=f"/repos/{repo}/*",
        error_rate=0.05,
        drop_before_rate=0.03,
        error_after_rate=0.06,
        drop_rate=0.06,
    )


def new_client(server: SandboxServer, store: Store, clock: ManualClock) -> GitHubClient:
    # One request in five fails; with six attempts one of the ~180 requests failed every
    # attempt about once in a hundred runs. Ten attempts make that ~1e-5 (the clock is
    # manual, so the back-off costs no time).
    policy = fast_policy(clock, max_attempts=10)
    return GitHubClient(
        base_url=server.github_url,
        token=server.env()["GITHUB_TOKEN"],
        policy=policy,
        ledger=ActionLedger(store, policy=policy),
    )


async def deliver_everything(
    client: GitHubClient, repo: str, run_ids: list[int], pr_number: int, sha: str
) -> list[Any]:
    notes = [
        Annotation(path="src/app.py", start_line=i, end_line=i, level="warning", message=f"W{i}")
        for i in range(1, 76)
    ]
    actions = [
        *(client.rerun_failed_jobs(repo, run_id, run_attempt=1) for run_id in run_ids),
        *(
            client.create_issue_comment(repo, pr_number, f"diagnosis {i}: flaky network")
            for i in range(COMMENTS)
        ),
        *(
            client.create_check_run(
                repo,
                name=f"contexten/check-{i}",
                head_sha=sha,
                title="findings",
                summary="75 warnings",
                conclusion="neutral",
                annotations=notes,
            )
            for i in range(CHECKS)
        ),
        *(
            client.create_pull_request(repo, head=f"fix-{i}", base="main", title=f"Fix {i}")
            for i in range(PULLS)
        ),
    ]
    return list(await asyncio.gather(*actions, return_exceptions=True))


def assert_each_action_exactly_once(state: GitHubState, repo: str, run_ids: list[int]) -> None:
    with state.lock:
        assert [len(state.runs[r].attempts) for r in run_ids] == [2] * RERUNS
        record = state.repo(repo)
        bodies = [c.body for c in record.comments]
        assert len(bodies) == COMMENTS
        assert len({b.split("<!--")[0] for b in bodies}) == COMMENTS
        checks = list(record.check_runs.values())
        assert sorted(c.name for c in checks) == [f"contexten/check-{i}" for i in range(CHECKS)]
        assert all(len(c.annotations) == 75 for c in checks)
        pulls = [p for p in record.pulls.values() if p.head.startswith("fix-")]
        assert sorted(p.head for p in pulls) == [f"fix-{i}" for i in range(PULLS)]


async def test_no_lost_and_no_duplicated_actions_at_20_percent_faults(
    github_sandbox: SandboxServer, gh_state: GitHubState, gh_repo: str, tmp_path: Path
) -> None:
    run_ids = [
        gh_state.add_run(
            gh_repo, jobs=[JobSpec("flaky", conclusion="failure")], rerun_outcomes=["success"]
        ).id
        for _ in range(RERUNS)
    ]
    pr = gh_state.add_pull_request(gh_repo, "feature")
    for i in range(PULLS):
        gh_state.add_commit(gh_repo, f"fix-{i}", {f"fix{i}.txt": "x"}, f"Fix {i}")
    sha = gh_state.repo(gh_repo).branches["main"]
    faults = github_sandbox.faults["github"]
    faults.reseed(20)
    faults.add(twenty_percent(gh_repo))

    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.migrate()
    clock = ManualClock()
    client = new_client(github_sandbox, store, clock)
    first = await deliver_everything(client, gh_repo, run_ids, pr.number, sha)
    # Whatever failed for good in the first delivery is done by the second one.
    second = await deliver_everything(client, gh_repo, run_ids, pr.number, sha)
    assert [r for r in second if isinstance(r, BaseException)] == []

    injected = faults.counts
    assert all(injected[kind] > 0 for kind in ("error", "drop_before", "error_after", "drop_after"))
    assert_each_action_exactly_once(gh_state, gh_repo, run_ids)
    # The first delivery's successes and the second's agree (same PR, same comment, ...).
    for a, b in zip(first, second, strict=True):
        if not isinstance(a, BaseException):
            assert a == b or getattr(a, "id", None) == getattr(b, "id", None)

    # A process with an empty store (a fresh CI job) finds everything remotely.
    fresh = Store(f"sqlite:///{tmp_path / 'b.db'}")
    fresh.migrate()
    third = await deliver_everything(
        new_client(github_sandbox, fresh, ManualClock()), gh_repo, run_ids, pr.number, sha
    )
    assert [r for r in third if isinstance(r, BaseException)] == []
    assert_each_action_exactly_once(gh_state, gh_repo, run_ids)
    assert sum(injected.values()) >= 20  # the faults were real and many
