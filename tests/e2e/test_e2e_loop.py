"""End to end over real sockets: signed webhook → receiver → inbox → dispatcher →
orchestrator (in-process) → failure_analysis → sandbox GitHub / Linear / Slack.

The sandbox asserts what it received. Deliveries are built from the sandbox's own run and
job JSON (the shapes GitHub sends) and signed like GitHub signs them.
"""

from __future__ import annotations

import itertools
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from contexten.config import Settings
from contexten.demo import scenario
from contexten.demo.loop import ReceiverThread, execution_summary, in_process_trigger
from contexten.events.dispatcher import DispatchOutcome
from contexten.events.service import build_app
from contexten.monitoring.internal_events import DIAGNOSIS_CREATED, InternalEvent
from contexten.sandbox.github import JobSpec
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import running_sandbox
from contexten.store.db import Store, open_store
from contexten.store.models import WorkflowExecution
from contexten.workflows import escalation, failure_analysis

SECRET = "e2e-webhook-secret"
FIXTURES = Path(__file__).resolve().parents[2] / "src" / "contexten" / "demo" / "fixtures"
TEST_JOB = "test (ubuntu-latest, 3.12)"
_repos = itertools.count(1)


def log(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class Loop:
    """A running receiver with its dispatcher, pointed at a sandbox."""

    sandbox: SandboxServer
    store: Store
    url: str
    repo: str
    outcomes: queue.Queue[DispatchOutcome] = field(default_factory=queue.Queue)
    settled: dict[str, DispatchOutcome] = field(default_factory=dict)

    def payloads(self) -> scenario.Payloads:
        token = self.sandbox.env()["GITHUB_TOKEN"]
        return scenario.Payloads(self.sandbox.github_url, token, repo=self.repo)

    def send(self, delivery: scenario.ScriptedWebhook, *, secret: str = SECRET) -> httpx.Response:
        return httpx.post(
            self.url + "/webhook",
            content=delivery.body,
            headers=delivery.headers(secret),
            timeout=10,
        )

    def wait(self, delivery_id: str, timeout: float = 60.0) -> DispatchOutcome:
        deadline = time.monotonic() + timeout
        while delivery_id not in self.settled:
            outcome = self.outcomes.get(timeout=max(0.01, deadline - time.monotonic()))
            self.settled[outcome.delivery_id] = outcome
        return self.settled[delivery_id]

    def runs_of(self, outcome: DispatchOutcome) -> list[dict[str, Any]]:
        return [execution_summary(self.store, run_id) for run_id in outcome.run_ids]

    def executions(self) -> int:
        with self.store.session() as session:
            count = session.scalar(select(func.count()).select_from(WorkflowExecution))
        return int(count or 0)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        yield server


@pytest.fixture
def loop(sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    monkeypatch.setattr(failure_analysis, "RERUN_BACKOFF_SECONDS", 0.0)
    monkeypatch.setattr(escalation, "AGENT_POLL_SECONDS", 0.05)
    repo = f"e2e/app{next(_repos)}"
    sandbox.state.github.add_repo(repo, default_branch="main")
    env = {k.lower(): v for k, v in sandbox.env().items()}
    env.update(github_webhook_secret=SECRET, github_repository=repo)
    settings = Settings(
        **env,
        contexten_home=tmp_path / "home",
        prefect_api_url=None,
        workflow_retry_delay=0,
        http_max_attempts=2,
    )
    store = open_store(f"sqlite:///{tmp_path / 'e2e.db'}")
    outcomes: queue.Queue[DispatchOutcome] = queue.Queue()
    app = build_app(
        settings,
        store,
        trigger=in_process_trigger(settings, store),
        rules=scenario.demo_rules(),
        poll_interval=0.1,
        on_outcome=outcomes.put,
    )
    receiver = ReceiverThread(app).start()
    try:
        yield Loop(sandbox, store, receiver.url, repo, outcomes)
    finally:
        receiver.stop()


def network_run(loop: Loop) -> int:
    gh = loop.sandbox.state.github
    gh.add_run(loop.repo, jobs=[JobSpec("build", log=log("network-pass.log"))])
    failing = gh.add_run(
        loop.repo,
        jobs=[
            JobSpec(
                "build",
                conclusion="failure",
                log=log("network-fail.log"),
                pass_log=log("network-pass.log"),
            )
        ],
        rerun_outcomes=["success"],
    )
    return failing.id


def test_a_failed_run_webhook_gets_one_rerun_however_often_it_arrives(loop: Loop) -> None:
    run_id = network_run(loop)
    gh = loop.sandbox.state.github
    payloads = loop.payloads()
    delivery = payloads.workflow_run(run_id, "network", "network failure")
    job_event = payloads.workflow_job(run_id, "network-job", "its job event")
    payloads.close()

    forged = loop.send(delivery, secret="not-the-secret")
    assert forged.status_code == 401
    first = loop.send(delivery)
    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    outcome = loop.wait(delivery.delivery_id)
    assert outcome.status == "dispatched" and outcome.workflow_types == ("failure_analysis",)
    [run] = loop.runs_of(outcome)
    assert run["status"] == "completed" and run["decision"] == "re-ran the failed jobs"
    assert run["jobs"][0]["mode"] == "baseline"
    assert gh.received["rerun_failed_jobs"] == 1
    assert len(gh.runs[run_id].attempts) == 2

    again = loop.send(delivery)  # GitHub redelivers the same delivery
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    by_job = loop.send(job_event)  # the job's own event: same run attempt, same key
    assert by_job.status_code == 202
    assert set(loop.wait(job_event.delivery_id).run_ids) == set(outcome.run_ids)
    assert len(gh.runs[run_id].attempts) == 2  # still exactly one re-run for this run
    assert loop.executions() == 1


def test_a_deterministic_failure_webhook_reaches_linear_slack_and_the_pr(loop: Loop) -> None:
    gh = loop.sandbox.state.github
    gh.add_run(loop.repo, workflow="Tests", jobs=[JobSpec(TEST_JOB, log=log("pytest-pass.log"))])
    gh.add_branch(loop.repo, "feature")
    number = gh.add_pull_request(loop.repo, "feature", title="Faster supercells").number
    failing = gh.add_run(
        loop.repo,
        workflow="Tests",
        head_branch="feature",
        event="pull_request",
        jobs=[JobSpec(TEST_JOB, conclusion="failure", log=log("pytest-fail.log"))],
        pull_requests=[number],
    )
    payloads = loop.payloads()
    delivery = payloads.workflow_run(failing.id, "test", "test failure")
    payloads.close()
    assert loop.send(delivery).status_code == 202
    [run] = loop.runs_of(loop.wait(delivery.delivery_id))
    assert run["status"] == "completed" and run["ok"], run
    signature = run["jobs"][0]["signature"]

    linear = loop.sandbox.state.linear
    issues = [i for i in linear.issues() if i.title.startswith(f"[{loop.repo}]")]
    assert len(issues) == 1 and signature in issues[0].title
    assert "TestCubicSupercellTransformation" in issues[0].title
    assert set(linear.issue_labels(issues[0].id)) >= {"ci-failure", "test"}

    slack = [m for m in loop.sandbox.state.slack.messages() if f"[{loop.repo}]" in m.text]
    assert len(slack) == 1
    blocks = str(slack[0].blocks)
    assert "1019: E           AssertionError:" in blocks and signature in blocks

    [comment] = gh.comments(loop.repo, number)
    # the whole pytest failure is the evidence block (issue 14); the assertion is inside it
    assert "\n   1019 [new]: E           AssertionError:\n" in comment.body
    assert f"Linear: [{issues[0].identifier} ({signature})]" in comment.body
    [check] = gh.check_runs(loop.repo)
    assert check.head_sha == failing.head_sha
    assert all(len(r.attempts) == 1 for r in gh.runs.values() if r.repo == loop.repo)

    # The outcome's diagnosis.created went through the inbox to linear_sync and
    # github_automation, which found their work done: still one issue, one comment, one check.
    event = InternalEvent(DIAGNOSIS_CREATED, f"{loop.repo}:{failing.id}:1")
    follow_up = loop.wait(event.delivery_id)
    assert follow_up.status == "dispatched", follow_up
    assert follow_up.workflow_types == ("linear_sync", "github_automation")
    assert [r["status"] for r in loop.runs_of(follow_up)] == ["completed", "completed"]
    assert len([i for i in linear.issues() if i.title.startswith(f"[{loop.repo}]")]) == 1
    assert len(gh.comments(loop.repo, number)) == 1
    assert len(gh.check_runs(loop.repo)) == 1
