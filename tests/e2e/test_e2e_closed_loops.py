"""End to end over real sockets, the loops that close by themselves: a scheduled health
check heals an unhealthy component through `health.unhealthy`; (more below).

Each test runs the receiver with its dispatcher (in-process workflows) against a sandbox,
with the default routing rules, and asserts what the sandbox and the store saw.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from contexten.config import Settings
from contexten.demo import scenario
from contexten.demo.loop import ReceiverThread, execution_summary, in_process_trigger
from contexten.events.dispatcher import DispatchOutcome
from contexten.events.routing import DEFAULT_RULES
from contexten.events.service import build_app
from contexten.monitoring.internal_events import (
    HEALTH_UNHEALTHY,
    REGRESSION_DETECTED,
    InternalEvent,
)
from contexten.orchestration import PrefectOrchestrator
from contexten.sandbox.github import JobSpec
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import running_sandbox
from contexten.store.db import Store, open_store
from contexten.store.models import RecoveryRecord
from contexten.workflows.pr_workflow_lint import CHECK_NAME as PR_LINT_CHECK
from contexten.workflows.regression_actions import CHECK_NAME as PERF_CHECK

SECRET = "closed-loops-secret"
_repos = itertools.count(1)


@dataclass
class Loop:
    sandbox: SandboxServer
    settings: Settings
    store: Store
    url: str
    repo: str
    outcomes: queue.Queue[DispatchOutcome] = field(default_factory=queue.Queue)
    settled: dict[str, DispatchOutcome] = field(default_factory=dict)

    def wait(self, delivery_id: str, timeout: float = 60.0) -> DispatchOutcome:
        deadline = time.monotonic() + timeout
        while delivery_id not in self.settled:
            outcome = self.outcomes.get(timeout=max(0.01, deadline - time.monotonic()))
            self.settled[outcome.delivery_id] = outcome
        return self.settled[delivery_id]

    def payloads(self) -> scenario.Payloads:
        token = self.sandbox.env()["GITHUB_TOKEN"]
        return scenario.Payloads(self.sandbox.github_url, token, repo=self.repo)

    def send(self, delivery: scenario.ScriptedWebhook) -> DispatchOutcome:
        response = httpx.post(
            self.url + "/webhook",
            content=delivery.body,
            headers=delivery.headers(SECRET),
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return self.wait(delivery.delivery_id)

    def run(self, workflow_type: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Run a workflow here (as its schedule would), recorded in the loop's store."""
        orchestrator = PrefectOrchestrator(settings=self.settings, store=self.store)
        run_id = asyncio.run(orchestrator.trigger_workflow(workflow_type, parameters))
        return execution_summary(self.store, run_id)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """One per test: Slack messages are deduplicated by alert id, which restarts per store."""
    with running_sandbox() as server:
        yield server


@pytest.fixture
def loop(sandbox: SandboxServer, tmp_path: Path) -> Iterator[Loop]:
    repo = f"loops/app{next(_repos)}"
    sandbox.state.github.add_repo(repo, default_branch="main")
    env = {k.lower(): v for k, v in sandbox.env().items()}
    env.update(github_webhook_secret=SECRET, github_repository=repo)
    settings = Settings(
        **env,
        contexten_home=tmp_path / "home",
        prefect_api_url=None,
        workflow_retry_delay=0,
        http_max_attempts=1,
    )
    store = open_store(f"sqlite:///{tmp_path / 'loops.db'}")
    outcomes: queue.Queue[DispatchOutcome] = queue.Queue()
    app = build_app(
        settings,
        store,
        trigger=in_process_trigger(settings, store),
        rules=list(DEFAULT_RULES),
        poll_interval=0.1,
        on_outcome=outcomes.put,
    )
    receiver = ReceiverThread(app).start()
    try:
        yield Loop(sandbox, settings, store, receiver.url, repo, outcomes)
    finally:
        receiver.stop()
        for injector in sandbox.faults.values():
            injector.clear()


def _recovery_started(store: Store, key: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.session() as session:
            if session.scalars(select(RecoveryRecord).where(RecoveryRecord.key == key)).first():
                return
        time.sleep(0.05)
    raise AssertionError(f"no recovery of {key} started")


def test_the_scheduled_health_check_heals_an_unhealthy_component(loop: Loop) -> None:
    loop.sandbox.faults["github"].add(path="/rate_limit", error_rate=1.0, error_status=503)
    check = loop.run("health_check", {})  # the schedule passes no parameters
    assert check["status"] == "completed", check
    assert component_status(loop.store, check["run_id"], "github") == "unhealthy"
    unhealthy = InternalEvent(HEALTH_UNHEALTHY, f"github:{check['run_id']}")
    _recovery_started(loop.store, "github")
    loop.sandbox.faults["github"].clear()  # the outage ends while recovery backs off
    outcome = loop.wait(unhealthy.delivery_id)
    assert outcome.status == "dispatched" and outcome.workflow_types == ("system_recovery",)
    [recovery] = [execution_summary(loop.store, r) for r in outcome.run_ids]
    assert recovery["status"] == "completed" and recovery["ok"], recovery
    with loop.store.session() as session:
        [record] = session.scalars(select(RecoveryRecord).where(RecoveryRecord.key == "github"))
        assert record.outcome == "succeeded"
    again = loop.run("health_check", {})
    assert component_status(loop.store, again["run_id"], "github") == "healthy"


def component_status(store: Store, run_id: str, name: str) -> str | None:
    from contexten.orchestration.execution import load_execution

    row = load_execution(store, run_id)
    assert row is not None and row.result is not None
    components = row.result["data"]["components"]
    return next((c["status"] for c in components if c["name"] == name), None)


def test_a_pull_request_run_that_regressed_alerts_and_gets_a_check_run(loop: Loop) -> None:
    gh = loop.sandbox.state.github
    gh.add_branch(loop.repo, "develop")
    number = gh.add_pull_request(loop.repo, "slow-feature", title="Slower").number
    rng = np.random.default_rng(3)
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    last = None
    for i in range(10):
        for branch, seconds in (("develop", 300.0), ("slow-feature", 480.0)):
            last = gh.add_run(
                loop.repo,
                head_branch=branch,
                event="push" if branch == "develop" else "pull_request",
                pull_requests=[number] if branch == "slow-feature" else [],
                created_at=start + timedelta(hours=i, minutes=5 if branch != "develop" else 0),
                jobs=(
                    JobSpec(
                        "test",
                        steps=(("Set up job", "success"), ("Run pytest", "success")),
                        duration_seconds=float(rng.normal(seconds, 5)),
                    ),
                ),
            )
    assert last is not None and last.head_branch == "slow-feature"
    payloads = loop.payloads()
    delivery = payloads.workflow_run(last.id, "perf", "a PR run finished")
    payloads.close()
    outcome = loop.send(delivery)
    assert outcome.workflow_types == ("test_optimization", "performance_monitoring")
    perf = execution_summary(loop.store, outcome.run_ids[1])
    assert perf["status"] == "completed" and perf["ok"] is False, perf
    [check] = [c for c in gh.check_runs(loop.repo) if c.name == PERF_CHECK]
    assert check.head_sha == last.head_sha and check.conclusion == "neutral"
    assert "CI run time" in check.summary and "p=" in check.summary
    assert "| CI | test |" in (check.text or "")
    slack = [m for m in loop.sandbox.state.slack.messages() if "perf-regression" in m.text]
    assert len(slack) == 1 and "slow-feature" in slack[0].text
    event = InternalEvent(REGRESSION_DETECTED, f"{loop.repo}:slow-feature:{last.head_sha}")
    recorded = loop.wait(event.delivery_id)
    assert recorded.status == "ignored"  # recorded for rules of one's own; none by default


BAD_WORKFLOW = """name: CI
on: [pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: pytest
"""


def test_a_pull_request_touching_a_workflow_is_linted_and_annotated(loop: Loop) -> None:
    gh = loop.sandbox.state.github
    gh.add_branch(loop.repo, "ci-change")
    head = gh.add_commit(
        loop.repo,
        "ci-change",
        {".github/workflows/ci.yml": BAD_WORKFLOW, "src/app.py": "print('x')\n"},
        "Add CI",
    )
    number = gh.add_pull_request(loop.repo, "ci-change", title="Add CI").number
    payloads = loop.payloads()
    delivery = payloads.pull_request(number, "pr", "a PR adds a workflow")
    payloads.close()
    outcome = loop.send(delivery)
    assert outcome.workflow_types == ("workflow_optimization",)
    [run] = [execution_summary(loop.store, r) for r in outcome.run_ids]
    assert run["status"] == "completed", run
    [check] = [c for c in gh.check_runs(loop.repo) if c.name == PR_LINT_CHECK]
    assert check.head_sha == head and check.conclusion == "failure"
    rules = {a["title"] for a in check.annotations}
    assert {"missing-timeout", "unpinned-action", "missing-permissions"} <= rules
    assert {a["path"] for a in check.annotations} == {".github/workflows/ci.yml"}
    unpinned = next(a for a in check.annotations if a["title"] == "unpinned-action")
    assert unpinned["start_line"] == 7


def _failed_pr_run(loop: Loop, branch: str) -> tuple[int, int]:
    gh = loop.sandbox.state.github
    gh.add_branch(loop.repo, branch)
    number = gh.add_pull_request(loop.repo, branch, title="Feature").number
    run = gh.add_run(
        loop.repo,
        head_branch=branch,
        event="pull_request",
        pull_requests=[number],
        jobs=[JobSpec("build", conclusion="failure", log=NETWORK_LOG)],
        rerun_outcomes=["success"],
    )
    return number, run.id


NETWORK_LOG = (
    "2026-11-01T08:00:00.0000000Z ##[group]Run pip install -r requirements.txt\n"
    "2026-11-01T08:00:01.0000000Z ERROR: Could not install packages due to an OSError: "
    "HTTPSConnectionPool(host='files.pythonhosted.org', port=443): Read timed out.\n"
    "2026-11-01T08:00:01.0000000Z ##[error]Process completed with exit code 1.\n"
)


def test_a_member_comment_reruns_and_an_outsider_is_refused_once(loop: Loop) -> None:
    gh = loop.sandbox.state.github
    number, run_id = _failed_pr_run(loop, "feature-x")
    payloads = loop.payloads()
    stranger = payloads.issue_comment(
        number, "/contexten rerun", "c1", "outsider", login="drive-by", association="NONE"
    )
    stranger_again = payloads.issue_comment(
        number, "/contexten rerun please", "c2", "outsider", login="drive-by", association="NONE"
    )
    member = payloads.issue_comment(
        number, "/contexten rerun", "c3", "member", login="maintainer", association="MEMBER"
    )
    payloads.close()

    for delivery in (stranger, stranger_again):
        outcome = loop.send(delivery)
        assert outcome.workflow_types == ("github_automation",)
    refusals = [c for c in gh.comments(loop.repo, number) if "limited to" in c.body]
    assert len(refusals) == 1 and "@drive-by" in refusals[0].body  # polite, and only once
    assert len(gh.runs[run_id].attempts) == 1  # nothing re-ran

    outcome = loop.send(member)
    [run] = [execution_summary(loop.store, r) for r in outcome.run_ids]
    assert run["status"] == "completed", run
    assert len(gh.runs[run_id].attempts) == 2
    replies = [c for c in gh.comments(loop.repo, number) if "Re-running the failed jobs" in c.body]
    assert len(replies) == 1 and f"#{run_id}" in replies[0].body
    again = httpx.post(
        loop.url + "/webhook", content=member.body, headers=member.headers(SECRET), timeout=10
    )
    assert again.json()["status"] == "duplicate"  # a redelivery: no second re-run or reply
    assert len(gh.runs[run_id].attempts) == 2


def test_diagnose_then_explain_answer_in_replies(loop: Loop) -> None:
    gh = loop.sandbox.state.github
    number, run_id = _failed_pr_run(loop, "feature-y")
    payloads = loop.payloads()
    diagnose = payloads.issue_comment(number, "/contexten diagnose", "d", "diagnose")
    explain = payloads.issue_comment(number, "/contexten   explain\nthanks!", "e", "explain")
    unknown = payloads.issue_comment(number, "/contexten dance", "u", "unknown command")
    payloads.close()
    for delivery in (diagnose, explain, unknown):
        [run] = [execution_summary(loop.store, r) for r in loop.send(delivery).run_ids]
        assert run["status"] == "completed", run
    bodies = [c.body for c in gh.comments(loop.repo, number)]
    [diagnosis] = [b for b in bodies if b.startswith("Diagnosis of")]
    assert f"#{run_id}" in diagnosis and "**network**" in diagnosis
    [explanation] = [b for b in bodies if b.startswith("What went wrong")]
    assert "network" in explanation and "Read timed out" in explanation
    assert any("I did not understand `/contexten dance`" in b for b in bodies)
    assert len(gh.runs[run_id].attempts) == 1  # diagnosing never re-runs


def _fire(loop: Loop, key: str, data: dict[str, Any]) -> int:
    from contexten.monitoring.alerts import Alert, Severity, alert_manager_for
    from contexten.monitoring.clients import build_clients

    async def fire() -> int:
        clients = build_clients(loop.settings, loop.store)
        try:
            manager = alert_manager_for(loop.store, loop.settings, clients)
            decision = await manager.fire(Alert(key, Severity.WARNING, f"{key} broke", data=data))
        finally:
            await clients.aclose()
        assert decision.action == "notified" and decision.alert_id is not None, decision
        return decision.alert_id

    return asyncio.run(fire())


def _message_of(loop: Loop, key: str) -> Any:
    return next(m for m in loop.sandbox.state.slack.messages() if key in m.text and m.blocks)


def test_slack_buttons_and_the_slash_command_act_on_alerts(loop: Loop) -> None:
    from contexten.monitoring.alerts import ACTION_ACK, ACTION_RERUN, ACTION_RESOLVE, AlertManager
    from contexten.sandbox.slack_interactions import SlackInteractions
    from contexten.store.loops import recent_executions

    slack = SlackInteractions(loop.sandbox.state.slack, loop.url + "/slack/interactivity")
    first = loop.run("alert_management", {})
    resolve_id = _fire(loop, "demo:queue-stuck", {"run_id": first["run_id"]})
    ack_id = _fire(loop, "demo:disk-slow", {})
    message = _message_of(loop, "demo:queue-stuck")

    body = slack.button_press_body(message, ACTION_RESOLVE)
    forged = SlackInteractions(loop.sandbox.state.slack, slack.url, signing_secret="not-it")
    assert forged.post(body).status_code == 401
    assert slack.post(body, timestamp=time.time() - 600).status_code == 401  # a replay
    assert AlertManager(loop.store, loop.settings).get(resolve_id).status == "firing"

    pressed = slack.press(message, ACTION_RESOLVE, user_name="alice")
    assert pressed.status_code == 200, pressed.text
    assert AlertManager(loop.store, loop.settings).get(resolve_id).status == "resolved"
    thread = [m for m in loop.sandbox.state.slack.messages() if m.thread_ts == message.ts]
    assert any("resolved by alice" in m.text for m in thread)

    acked = slack.press(_message_of(loop, "demo:disk-slow"), ACTION_ACK, user_name="bob")
    assert acked.status_code == 200
    view = AlertManager(loop.store, loop.settings).get(ack_id)
    assert view.status == "firing" and view.data["acknowledged_by"] == "bob"

    before = [
        r for r in recent_executions(loop.store, 50) if r["workflow_type"] == "alert_management"
    ]
    assert slack.press(message, ACTION_RERUN).status_code == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = [
            r for r in recent_executions(loop.store, 50) if r["workflow_type"] == "alert_management"
        ]
        if len(runs) > len(before) and runs[0]["status"] == "completed":
            break
        time.sleep(0.05)
    assert len(runs) == len(before) + 1 and runs[0]["status"] == "completed", runs

    status = slack.slash_command("status")
    assert status.status_code == 200
    answer = status.json()
    assert answer["response_type"] == "ephemeral" and "demo:disk-slow" in answer["text"]
    assert "acknowledged by" in slack.slash_command(f"ack {ack_id}").json()["text"]
    assert slack.slash_command("dance").json()["text"].startswith("usage: /contexten")
