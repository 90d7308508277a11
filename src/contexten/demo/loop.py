"""Run the demo loop: sandbox, receiver + dispatcher, orchestrator, webhooks, checks.

Everything listens on 127.0.0.1. The receiver is the events module's app (verify, inbox,
dispatcher in its lifespan) under uvicorn in a thread. Workflows run through the
orchestrator in-process, or, when a `contexten server` is already running, as Prefect flow
runs of this process reported to that server (the server's own runner would run them with
its own settings, not against this sandbox). Each expected outcome is then checked at the
sandbox by counting what it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contexten.config import Settings, reload_settings
from contexten.demo import scenario
from contexten.events.dispatcher import DispatchOutcome, Trigger
from contexten.sandbox.clients import WebhookPoster
from contexten.sandbox.server import SandboxServer
from contexten.store import executions as run_records
from contexten.store.db import Store, open_store
from contexten.store.recoveries import count_recoveries

Progress = Callable[[str], None]
WEBHOOK_PATH = "/webhook"
START_TIMEOUT_SECONDS = 15.0


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    expected: str
    observed: str
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expected": self.expected,
            "observed": self.observed,
            "ok": self.ok,
        }


@dataclass
class EventRecord:
    """One delivered webhook and what happened to it."""

    delivery: scenario.ScriptedWebhook
    status_code: int = 0
    reply: str = ""
    dispatch: DispatchOutcome | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.delivery.name,
            "title": self.delivery.title,
            "event": self.delivery.event,
            "delivery_id": self.delivery.delivery_id,
            "http_status": self.status_code,
            "reply": self.reply,
            "dispatch": None
            if self.dispatch is None
            else {
                "status": self.dispatch.status,
                "workflow_types": list(self.dispatch.workflow_types),
                "run_ids": list(self.dispatch.run_ids),
                "error": self.dispatch.error,
            },
            "runs": self.runs,
        }


@dataclass
class DemoResult:
    mode: str  # "in-process" | "prefect"
    home: Path
    prefect_ui: str | None = None
    seconds: float = 0.0
    events: list[EventRecord] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "home": str(self.home),
            "prefect_ui": self.prefect_ui,
            "seconds": round(self.seconds, 2),
            "events": [e.to_dict() for e in self.events],
            "checks": [c.to_dict() for c in self.checks],
            "services": self.services,
            "error": self.error,
        }


# ----------------------------------------------------------------------------- plumbing


class ReceiverThread:
    """uvicorn serving the receiver app (lifespan on: the dispatcher runs inside it)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop="asyncio",
            http="h11",
            ws="none",
        )
        self.server = uvicorn.Server(config)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="demo-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # reported by start()
            self.error = exc

    def start(self) -> ReceiverThread:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.server.started:
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError(f"the webhook receiver did not start: {self.error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("the webhook receiver did not start within 15 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=40)
        self.sock.close()


@contextlib.contextmanager
def patched_environ(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; restore them afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reload_settings()
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reload_settings()


def demo_environ(
    sandbox: SandboxServer, home: Path, secret: str, prefect_api: str | None
) -> dict[str, str | None]:
    """Every setting the demo pins: the sandbox's services, a private home and store, and
    nothing of the machine's own configuration (credentials, database, Prefect)."""
    values: dict[str, str | None] = {
        "CONTEXTEN_HOME": str(home),
        "DATABASE_URL": None,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_API_KEY": None,
        "PREFECT_WORKSPACE": None,
        "PREFECT_WORK_POOL": None,
        "GITHUB_APP_ID": None,
        "GITHUB_APP_PRIVATE_KEY": None,
        "GITHUB_APP_INSTALLATION_ID": None,
        "AUTO_FIX_ENABLED": "false",
        "RECOVERY_ENABLED": "true",
        "AUTO_RESTART_ENABLED": "false",
        "MAX_RERUN_ATTEMPTS": "3",
        "ESCALATION_THRESHOLD": "3",
        "WEBHOOK_INSECURE": "false",
        "WORKFLOW_RETRY_DELAY": "1",
        "ROUTING_RULES_FILE": None,
    }
    if prefect_api is not None:
        # Prefect's own console log would drown the demo's; the UI keeps the flow logs.
        values["PREFECT_LOGGING_LEVEL"] = "WARNING"
    values.update(sandbox.env())
    values["GITHUB_WEBHOOK_SECRET"] = secret
    values["GITHUB_REPOSITORY"] = scenario.REPO
    return values


def find_prefect_server(home: Path | None) -> tuple[str, str] | None:
    """(API URL, UI URL) of a running `contexten server` (or PREFECT_API_URL), or None."""
    from contexten.orchestration.prefect_server import api_healthy, read_server_record

    homes: list[Path] = [home] if home is not None else []
    with contextlib.suppress(Exception):
        homes.append(Settings().data_dir)
    for candidate in homes:
        record = read_server_record(Settings(contexten_home=candidate))
        if record and api_healthy(str(record["api_url"])):
            api = str(record["api_url"])
            return api, str(record.get("ui_url") or api.removesuffix("/api"))
    url = os.environ.get("PREFECT_API_URL")
    if url and api_healthy(url):
        return url, url.removesuffix("/api")
    return None


def in_process_trigger(settings: Settings, store: Store) -> Trigger:
    from contexten.orchestration import PrefectOrchestrator

    orchestrator = PrefectOrchestrator(settings=settings, store=store)

    async def trigger(workflow_type: str, parameters: dict[str, Any], key: str) -> str:
        return await orchestrator.trigger_workflow(workflow_type, parameters, idempotency_key=key)

    return trigger


def prefect_trigger() -> Trigger:
    """Each workflow as a Prefect flow run of this process (reported to the server)."""
    from contexten.orchestration.flows import FLOWS
    from contexten.orchestration.workflows import AutonomousWorkflowType, validate_parameters

    started: dict[str, asyncio.Future[str]] = {}

    async def trigger(workflow_type: str, parameters: dict[str, Any], key: str) -> str:
        if key in started:  # one run per idempotency key
            return await asyncio.shield(started[key])
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        started[key] = future
        try:
            params = validate_parameters(workflow_type, parameters)
            payload = params.model_dump(mode="json", exclude_defaults=True)
            flow: Any = FLOWS[AutonomousWorkflowType(workflow_type)]
            state = await flow(parameters=payload, return_state=True)
            run_id = str(state.state_details.flow_run_id)
        except BaseException as exc:
            del started[key]
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning
            raise
        future.set_result(run_id)
        return run_id

    return trigger


# ----------------------------------------------------------------------------- the run


class Demo:
    def __init__(
        self,
        home: Path,
        *,
        use_prefect: bool | None,
        timeout: float,
        progress: Progress,
        prepare_sandbox: Callable[[SandboxServer], None] | None = None,
        extra_environ: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.use_prefect = use_prefect
        self.timeout = timeout
        self.progress = progress
        self.prepare_sandbox = prepare_sandbox  # e.g. fault rules (benchmarks)
        self.extra_environ = dict(extra_environ or {})
        self.outcomes: queue.Queue[DispatchOutcome] = queue.Queue()
        self.records: dict[str, EventRecord] = {}
        self.deadline = 0.0

    def run(self) -> DemoResult:
        started = time.monotonic()
        self.deadline = started + self.timeout
        server = None
        if self.use_prefect is not False:
            server = find_prefect_server(self.home)
            if server is None and self.use_prefect:
                raise RuntimeError("no running Prefect server found (start `contexten server`)")
        result = DemoResult(mode="prefect" if server else "in-process", home=self.home)
        result.prefect_ui = server[1] if server else None
        with SandboxServer() as sandbox:
            result.services = {
                "github": sandbox.github_url,
                "linear": sandbox.linear_url,
                "slack": sandbox.slack_api_url,
                "codegen": sandbox.codegen_url,
            }
            self.progress(f"sandbox up: GitHub {sandbox.github_url}, Linear, Slack, Codegen")
            runs = scenario.seed(sandbox.state, sandbox.github_url)
            secret = secrets.token_hex(32)
            environ = demo_environ(sandbox, self.home, secret, server[0] if server else None)
            environ.update(self.extra_environ)
            if self.prepare_sandbox is not None:
                self.prepare_sandbox(sandbox)
            with patched_environ(environ):
                settings = Settings()
                store = open_store(settings.effective_database_url)
                try:
                    self._loop(sandbox, settings, store, runs, secret, result)
                except Exception as exc:
                    result.error = f"{type(exc).__name__}: {exc}"
                result.checks = verify(sandbox, store, runs, self.records)
        result.events = list(self.records.values())
        result.seconds = time.monotonic() - started
        return result

    def _loop(
        self,
        sandbox: SandboxServer,
        settings: Settings,
        store: Store,
        runs: scenario.SeededRuns,
        secret: str,
        result: DemoResult,
    ) -> None:
        from contexten.events.service import build_app

        if result.mode == "prefect":
            self.progress(f"orchestrator: Prefect server at {result.prefect_ui}")
            trigger = prefect_trigger()
        else:
            self.progress("orchestrator: in-process (no `contexten server` is running)")
            trigger = in_process_trigger(settings, store)
        app = build_app(
            settings,
            store,
            trigger=trigger,
            rules=scenario.demo_rules(),
            poll_interval=0.2,
            on_outcome=self.outcomes.put,
        )
        receiver = ReceiverThread(app).start()
        self.progress(
            f"webhook receiver up at {receiver.url}{WEBHOOK_PATH} (signed with a new secret)"
        )
        payloads = scenario.Payloads(
            sandbox.github_url,
            settings.github_token.get_secret_value() if settings.github_token else "",
        )
        try:
            with WebhookPoster(receiver.url) as client:
                self._deliver_all(client, payloads, runs, secret, store)
                self._conversations(client, payloads, runs, secret, store, sandbox, receiver.url)
        finally:
            payloads.close()
            receiver.stop()

    def _deliver_all(
        self,
        client: WebhookPoster,
        payloads: scenario.Payloads,
        runs: scenario.SeededRuns,
        secret: str,
        store: Store,
    ) -> None:
        network = payloads.workflow_run(
            runs.network, "network", "CI/build: host name did not resolve"
        )
        test_pr = payloads.workflow_run(runs.test_pr, "test-pr", "Tests: pytest failure on a PR")
        compile_pr = payloads.workflow_run(
            runs.compile_pr, "compile-pr", "Build/e2e: SyntaxError on a PR (auto-fix on)"
        )
        for delivery in (network, test_pr, compile_pr):
            self._send(client, delivery, secret)
        self._wait_for(test_pr.delivery_id)
        again = scenario.ScriptedWebhook(
            "test-pr-again", "the same delivery again (redelivery)", test_pr.event,
            test_pr.delivery_id, test_pr.body,
        )  # fmt: skip
        self._send(client, again, secret)
        job_event = payloads.workflow_job(
            runs.test_pr, "test-pr-job", "workflow_job event of the same failed run"
        )
        self._send(client, job_event, secret)
        test_main = payloads.workflow_run(
            runs.test_main, "test-main", "Tests: the same failure again on main"
        )
        self._send(client, test_main, secret)
        self._wait_for(network.delivery_id)
        passed = payloads.workflow_run(
            runs.network, "network-rerun", "CI/build: the re-run's result"
        )
        self._send(client, passed, secret)
        for delivery_id in (
            job_event.delivery_id,
            test_main.delivery_id,
            compile_pr.delivery_id,
            passed.delivery_id,
        ):
            self._wait_for(delivery_id)
        for record in self.records.values():
            record.runs = [
                execution_summary(store, run_id)
                for run_id in (record.dispatch.run_ids if record.dispatch else ())
            ]

    def _conversations(
        self,
        client: WebhookPoster,
        payloads: scenario.Payloads,
        runs: scenario.SeededRuns,
        secret: str,
        store: Store,
        sandbox: SandboxServer,
        receiver_url: str,
    ) -> None:
        """A slower PR run (regression: alert + check run), a PR comment command, and a
        person pressing Resolve on the alert in Slack."""
        perf = payloads.workflow_run(
            runs.perf_run, "perf-pr", "Perf: a pull request's benchmarks passed, slower"
        )
        self._send(client, perf, secret)
        self._wait_for(perf.delivery_id)
        command = payloads.issue_comment(
            runs.test_pr_number,
            "/contexten explain",
            "pr-command",
            "a member comments `/contexten explain` on the test failure's PR",
            login="demo-maintainer",
            association="MEMBER",
        )
        self._send(client, command, secret)
        self._wait_for(command.delivery_id)
        self._press_resolve(sandbox, receiver_url)
        self._wait_idle(store)
        for record in self.records.values():
            record.runs = [
                execution_summary(store, run_id)
                for run_id in (record.dispatch.run_ids if record.dispatch else ())
            ]

    def _press_resolve(self, sandbox: SandboxServer, receiver_url: str) -> None:
        from contexten.monitoring.alerts import ACTION_RESOLVE
        from contexten.sandbox.slack_interactions import SlackInteractions

        slack = sandbox.state.slack
        if slack is None:
            return
        key = regression_alert_key()
        message = next(
            (m for m in slack.messages() if key in m.text and m.blocks and not m.thread_ts), None
        )
        if message is None:
            self.progress(f"Slack: no alert message for {key} to press Resolve on")
            return
        sender = SlackInteractions(slack, receiver_url + "/slack/interactivity")
        response = sender.press(message, ACTION_RESOLVE, user_name=SLACK_USER)
        self.progress(
            f"Slack: {SLACK_USER} pressed Resolve on the {key} alert: HTTP {response.status_code}"
        )

    def _wait_idle(self, store: Store, limit: float = 20.0) -> None:
        """Let the follow-up work the outcomes asked for (internal events) settle."""
        from contexten.events.inbox import CLAIMED, PENDING, Inbox

        inbox = Inbox(store)
        until = min(self.deadline, time.monotonic() + limit)
        while time.monotonic() < until:
            counts = inbox.counts()
            if not counts.get(PENDING) and not counts.get(CLAIMED):
                return
            time.sleep(0.1)

    def _send(self, client: WebhookPoster, delivery: scenario.ScriptedWebhook, secret: str) -> None:
        answer = client.post(WEBHOOK_PATH, delivery.body, delivery.headers(secret))
        reply = answer.status
        key = delivery.name
        self.records[key] = EventRecord(delivery, answer.status_code, reply)
        self.progress(
            f"sent {delivery.event} '{delivery.title}': HTTP {answer.status_code} {reply}"
        )

    def _record_for(self, delivery_id: str) -> list[EventRecord]:
        return [r for r in self.records.values() if r.delivery.delivery_id == delivery_id]

    def _wait_for(self, delivery_id: str) -> None:
        """Wait until the dispatcher settled `delivery_id` (or the demo's time is up)."""

        def pending() -> list[EventRecord]:
            return [
                r
                for r in self._record_for(delivery_id)
                if r.dispatch is None and r.reply not in ("duplicate", "ignored")
            ]

        while pending():
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"delivery {delivery_id} was not dispatched in time")
            try:
                outcome = self.outcomes.get(timeout=remaining)
            except queue.Empty:
                continue
            for record in self._record_for(outcome.delivery_id):
                if record.dispatch is None and record.reply != "duplicate":
                    record.dispatch = outcome
                    self.progress(
                        f"dispatched '{record.delivery.title}': {outcome.status} -> "
                        f"{', '.join(outcome.workflow_types) or 'no workflow'}"
                    )


SLACK_USER = "demo-oncall"


def regression_alert_key() -> str:
    from contexten.workflows.regression_actions import alert_key

    return alert_key(scenario.REPO, scenario.PERF_BRANCH)


def execution_summary(store: Store, run_id: str) -> dict[str, Any]:
    row = run_records.load(store, run_id)
    if row is None:
        return {"run_id": run_id, "status": "unknown"}
    result = dict(row.result or {})
    data = dict(result.get("data") or {})
    return {
        "run_id": run_id,
        "workflow_type": row.workflow_type,
        "mode": row.mode,
        "status": row.status,
        "ok": result.get("ok"),
        "summary": result.get("summary") or row.error,
        "decision": data.get("decision"),
        "jobs": data.get("jobs", []),
        "actions": data.get("actions", []),
        "report": str(store_reports_dir(store) / run_id / f"{data.get('report')}.md")
        if data.get("report")
        else None,
    }


def store_reports_dir(store: Store) -> Path:
    # The reports of a run live under CONTEXTEN_HOME/reports/<run id>/ (WorkflowContext).
    from contexten.config import get_settings

    return get_settings().data_dir / "reports"


# ----------------------------------------------------------------------------- checks


def verify(
    sandbox: SandboxServer,
    store: Store,
    runs: scenario.SeededRuns,
    records: dict[str, EventRecord],
) -> list[Check]:
    """What must have happened, counted at the sandbox (and in the store where it records)."""
    state = sandbox.state
    gh = state.github
    checks: list[Check] = []

    def check(name: str, expected: Any, observed: Any, ok: bool | None = None) -> None:
        passed = (expected == observed) if ok is None else ok
        checks.append(Check(name, str(expected), str(observed), passed))

    received = dict(gh.received)
    check(
        "GitHub: failed jobs re-run (network failure only)", 1, received.get("rerun_failed_jobs", 0)
    )
    check("GitHub: whole runs re-run", 0, received.get("rerun", 0))
    network = gh.runs[runs.network]
    status = gh.run_status(network)
    check(
        "GitHub: the re-run passed (attempt 2)",
        "attempt 2 success",
        f"attempt {network.attempt.number} {status[1]}",
    )
    signatures = _signatures(records)
    settled = count_recoveries(store, signatures.get("network", "?"), "succeeded")
    check("store: the network recovery was confirmed by the passing re-run", 1, settled)
    issues = state.linear.issues() if state.linear is not None else []
    check("Linear: one issue per distinct signature (test, compile)", 2, len(issues))
    test_issue = next((i for i in issues if signatures.get("test-pr", "?") in i.title), None)
    compile_issue = next((i for i in issues if signatures.get("compile-pr", "?") in i.title), None)
    test_comments = state.linear.comments(test_issue.id) if test_issue and state.linear else []
    check(
        "Linear: the second identical test failure only commented",
        f"1 comment naming run {runs.test_main}",
        f"{len(test_comments)} comment"
        + ("" if len(test_comments) == 1 else "s")
        + (
            f" naming run {runs.test_main}"
            if any(str(runs.test_main) in c.body for c in test_comments)
            else ""
        ),
    )
    slack = state.slack.messages() if state.slack is not None else []
    escalations = [m for m in slack if f"[{scenario.REPO}]" in m.text]
    check("Slack: one message per escalation (test, compile)", 2, len(escalations))
    test_pr_comments = gh.comments(scenario.REPO, runs.test_pr_number)
    replies = [c for c in test_pr_comments if c.body.startswith("What went wrong")]
    check(
        "GitHub: one comment on the test failure's PR",
        1,
        len(test_pr_comments) - len(replies),
    )
    quoted = any("AssertionError" in c.body for c in replies)
    check(
        "GitHub: `/contexten explain` from a member answered in one reply with the evidence",
        "1 reply quoting the AssertionError",
        f"{len(replies)} repl{'y' if len(replies) == 1 else 'ies'}"
        + (" quoting the AssertionError" if quoted else ""),
    )
    check(
        "GitHub: one comment on the compile error's PR",
        1,
        len(gh.comments(scenario.REPO, runs.compile_pr_number)),
    )
    check(
        "GitHub: PR comments in all (2 escalations, 1 command reply)",
        3,
        received.get("issue_comment", 0),
    )
    from contexten.workflows.regression_actions import CHECK_NAME as PERF_CHECK

    all_check_runs = gh.check_runs(scenario.REPO)
    perf_head = gh.runs[runs.perf_run].head_sha if runs.perf_run in gh.runs else "?"
    perf_checks = [c for c in all_check_runs if c.name == PERF_CHECK]
    check(
        "GitHub: the slower PR run's head commit got a performance check run",
        f"1 on {perf_head[:12]} naming job bench",
        f"{len(perf_checks)} on "
        + ", ".join(c.head_sha[:12] for c in perf_checks)
        + (" naming job bench" if any("bench" in (c.text or "") for c in perf_checks) else ""),
    )
    check_runs = [c for c in all_check_runs if c.name != PERF_CHECK]
    located = any(
        (a.get("path"), a.get("start_line")) == scenario.COMPILE_LOCATION
        for c in check_runs
        for a in c.annotations
    )
    check("GitHub: check runs, one per escalated run (file/line known)", 3, len(check_runs))
    check(
        "GitHub: annotation at the syntax error",
        "{}:{}".format(*scenario.COMPILE_LOCATION),
        "{}:{}".format(*scenario.COMPILE_LOCATION) if located else "none",
    )
    check_alert_resolved_from_slack(check, store, slack)
    agent_runs = state.codegen.runs() if state.codegen is not None else []
    check("Codegen: one agent run (compile error only)", 1, len(agent_runs))
    fenced = bool(agent_runs) and "BEGIN-LOG-" in agent_runs[0].prompt
    check("Codegen: the prompt quotes the log in a tagged fence", True, fenced)
    pr_urls = [
        a.get("url")
        for r in records.values()
        for run in r.runs
        for a in run.get("actions", ())
        if a.get("kind") == "agent_pr" and a.get("status") == "done"
    ]
    check("Codegen: the agent opened a PR and it was linked", 1, len(pr_urls))
    compile_comments = (
        state.linear.comments(compile_issue.id) if compile_issue and state.linear else []
    )
    linked = bool(pr_urls) and any(str(pr_urls[0]) in c.body for c in compile_comments)
    check("Linear: the agent's PR is linked on the compile issue", True, linked)
    duplicate = records.get("test-pr-again")
    check(
        "receiver: a redelivery is answered 'duplicate' and not dispatched",
        "duplicate",
        duplicate.reply if duplicate else "not sent",
    )
    job_event, first = records.get("test-pr-job"), records.get("test-pr")
    same_run = bool(
        job_event
        and first
        and job_event.dispatch
        and first.dispatch
        and set(job_event.dispatch.run_ids) == set(first.dispatch.run_ids)
    )
    check(
        "dispatcher: the workflow_job event of an analysed run started nothing new", True, same_run
    )
    modes = {
        name: [j.get("mode") for run in r.runs for j in run.get("jobs", ())]
        for name, r in records.items()
        if name in ("network", "test-pr", "test-main", "compile-pr")
    }
    check(
        "analysis: every failed job compared with the last passing run",
        "baseline x4",
        "baseline x4"
        if all(m == ["baseline"] for m in modes.values()) and len(modes) == 4
        else str(modes),
    )
    analyses = run_records.count(store, workflow_type="failure_analysis")
    failed = run_records.count(store, status_not="completed")
    check("orchestrator: one failure_analysis per run attempt (4 failures + 1 re-run)", 5, analyses)
    check("orchestrator: every workflow run completed", 0, failed)
    return checks


def check_alert_resolved_from_slack(
    check: Callable[..., None], store: Store, slack: list[Any]
) -> None:
    from contexten.config import get_settings
    from contexten.monitoring.alerts import AlertManager

    key = regression_alert_key()
    alerts = [a for a in AlertManager(store, get_settings()).list_alerts() if a.key == key]
    resolved = [a for a in alerts if a.status == "resolved"]
    by = str(resolved[0].data.get("resolution", "")) if resolved else ""
    check(
        "Slack: the regression alert's Resolve button resolved it",
        f"resolved by {SLACK_USER}",
        by or (alerts[0].status if alerts else "no alert"),
    )
    thread = [m for m in slack if m.thread_ts and f"resolved by {SLACK_USER}" in m.text]
    check("Slack: the press answered in the alert's thread", 1, len(thread))


def _signatures(records: dict[str, EventRecord]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, record in records.items():
        for run in record.runs:
            for job in run.get("jobs", ()):
                out.setdefault(name, str(job.get("signature")))
    return out


def run_demo(
    home: Path,
    *,
    use_prefect: bool | None = None,
    timeout: float = 50.0,
    progress: Progress | None = None,
    prepare_sandbox: Callable[[SandboxServer], None] | None = None,
    extra_environ: dict[str, str] | None = None,
) -> DemoResult:
    """Run the whole demo; `use_prefect` None = a Prefect server if one runs, else in-process.

    `prepare_sandbox` is called with the started sandbox before anything is sent (fault
    rules, for benchmarks); `extra_environ` adds settings (e.g. HTTP_TIMEOUT_SECONDS).
    """
    return Demo(
        home,
        use_prefect=use_prefect,
        timeout=timeout,
        progress=progress or (lambda _m: None),
        prepare_sandbox=prepare_sandbox,
        extra_environ=extra_environ,
    ).run()
