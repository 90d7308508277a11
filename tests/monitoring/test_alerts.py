"""Alert lifecycle: dedupe, rate limit, routing, repeat, escalation, resolve, config file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contexten.config import Settings
from contexten.integrations.circuits import load_breaker
from contexten.integrations.interface import (
    ErrorReason,
    IssueRef,
    Message,
    NotifierError,
    PostedMessage,
)
from contexten.monitoring.alerts import (
    Alert,
    AlertConfigError,
    AlertManager,
    AlertRoutingRule,
    AlertView,
    EscalationPolicy,
    LinearSink,
    Severity,
    load_routing,
    route,
    sinks_for,
)
from contexten.store.db import Store

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


class RecordingSink:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, str, int]] = []
        self.fail = fail

    async def send(self, alert: AlertView, event: str) -> str:
        if self.fail:
            raise RuntimeError("sink down")
        self.events.append((alert.key, event, alert.count))
        return f"ref-{len(self.events)}"


def manager(store: Store, settings: Settings, clock: Clock, **sinks: Any) -> AlertManager:
    return AlertManager(
        store,
        settings,
        sinks=sinks,
        policy=EscalationPolicy(
            min_notify_interval_seconds=300,
            repeat_after_seconds=3600,
            escalate_after_repeats=2,
            max_notifications_per_hour=30,
        ),
        clock=clock,
    )


async def test_first_fire_notifies_then_dedupes_and_counts(
    store: Store, settings: Settings
) -> None:
    clock = Clock()
    slack, linear = RecordingSink(), RecordingSink()
    alerts = manager(store, settings, clock, slack=slack, linear=linear)
    first = await alerts.fire(Alert("health:github", Severity.WARNING, "github down"))
    assert first.action == "notified"
    assert first.channels == ("log", "slack")  # warning: not Linear
    for _ in range(5):
        clock.advance(seconds=30)
        again = await alerts.fire(Alert("health:github", Severity.WARNING, "github down"))
        assert again.action == "deduped"
    assert again.count == 6
    assert slack.events == [("health:github", "firing", 1)]
    assert linear.events == []
    [view] = alerts.list_alerts(status="firing")
    assert view.count == 6 and view.last_seen == T0 + timedelta(seconds=150)


async def test_severity_increase_notifies_again(store: Store, settings: Settings) -> None:
    clock = Clock()
    slack, linear = RecordingSink(), RecordingSink()
    alerts = manager(store, settings, clock, slack=slack, linear=linear)
    await alerts.fire(Alert("disk", Severity.WARNING, "91%"))
    clock.advance(seconds=600)
    raised = await alerts.fire(Alert("disk", Severity.CRITICAL, "98%"))
    assert raised.action == "notified"
    assert "linear" in raised.channels
    assert [e[1] for e in slack.events] == ["firing", "firing"]


async def test_resolve_tells_the_channels_that_heard(store: Store, settings: Settings) -> None:
    clock = Clock()
    slack = RecordingSink()
    alerts = manager(store, settings, clock, slack=slack)
    await alerts.fire(Alert("health:prefect", Severity.WARNING, "down"))
    resolved = await alerts.resolve("health:prefect", reason="healthy again")
    assert resolved.action == "resolved"
    assert resolved.channels == ("log", "slack")
    assert slack.events[-1][1] == "resolved"
    assert (await alerts.resolve("health:prefect")).action == "not_firing"
    [view] = alerts.list_alerts()
    assert view.status == "resolved" and view.resolved_at == T0


async def test_flapping_key_is_rate_limited(store: Store, settings: Settings) -> None:
    clock = Clock()
    slack = RecordingSink()
    alerts = manager(store, settings, clock, slack=slack)
    await alerts.fire(Alert("k", Severity.WARNING, "m"))
    await alerts.resolve("k")
    clock.advance(seconds=60)
    again = await alerts.fire(Alert("k", Severity.WARNING, "m"))
    assert again.action == "rate_limited"
    clock.advance(seconds=400)
    await alerts.resolve("k")
    third = await alerts.fire(Alert("k", Severity.WARNING, "m"))
    assert third.action == "notified"
    assert [e[1] for e in slack.events] == ["firing", "resolved", "firing"]


async def test_global_limit_stops_a_storm_of_warnings(store: Store, settings: Settings) -> None:
    clock = Clock()
    slack = RecordingSink()
    alerts = AlertManager(
        store,
        settings,
        sinks={"slack": slack},
        policy=EscalationPolicy(max_notifications_per_hour=3),
        clock=clock,
    )
    actions = [(await alerts.fire(Alert(f"k{i}", Severity.WARNING, "m"))).action for i in range(6)]
    assert actions == ["notified"] * 3 + ["rate_limited"] * 3
    assert len(slack.events) == 3
    # critical alerts still get through
    assert (await alerts.fire(Alert("big", Severity.CRITICAL, "m"))).action == "notified"


async def test_repeat_then_escalate_to_a_human(store: Store, settings: Settings) -> None:
    clock = Clock()
    slack, linear = RecordingSink(), RecordingSink()
    alerts = manager(store, settings, clock, slack=slack, linear=linear)
    await alerts.fire(Alert("ci:abc", Severity.WARNING, "tests keep failing"))
    assert await alerts.process() == []  # not due yet
    clock.advance(hours=1)
    [repeat] = await alerts.process()
    assert repeat.action == "notified"
    clock.advance(hours=1)
    [repeat2] = await alerts.process()
    assert repeat2.action == "notified"
    clock.advance(hours=1)
    [escalation] = await alerts.process()
    assert escalation.action == "escalated"
    assert set(escalation.channels) == {"log", "linear", "slack"}
    clock.advance(hours=1)
    assert await alerts.process() == []  # escalated once only
    assert [e[1] for e in slack.events] == ["firing", "repeat", "repeat", "escalation"]
    assert linear.events == [("ci:abc", "escalation", 1)]


async def test_escalate_now_dedupes_while_firing(store: Store, settings: Settings) -> None:
    clock = Clock()
    slack, linear = RecordingSink(), RecordingSink()
    alerts = manager(store, settings, clock, slack=slack, linear=linear)
    first = await alerts.escalate(Alert("recovery:github", Severity.CRITICAL, "token revoked"))
    assert first.action == "escalated"
    second = await alerts.escalate(Alert("recovery:github", Severity.CRITICAL, "token revoked"))
    assert second.action == "deduped" and second.count == 2
    assert len(linear.events) == 1 and len(slack.events) == 1


async def test_stale_alerts_resolve(store: Store, settings: Settings) -> None:
    clock = Clock()
    alerts = manager(store, settings, clock)
    await alerts.fire(Alert("old", Severity.INFO, "m"))
    clock.advance(minutes=30)
    await alerts.fire(Alert("recent", Severity.INFO, "m"))
    clock.advance(minutes=40)
    decisions = await alerts.process(resolve_stale_after=timedelta(minutes=60))
    assert [(d.key, d.action) for d in decisions] == [("old", "resolved")]
    assert {a.key for a in alerts.list_alerts(status="firing")} == {"recent"}


async def test_failing_channel_is_recorded_and_counts_against_its_circuit(
    store: Store, settings: Settings
) -> None:
    clock = Clock()
    alerts = manager(store, settings, clock, slack=RecordingSink(fail=True))
    decision = await alerts.fire(Alert("k", Severity.WARNING, "m"))
    assert decision.channels == ("log",)
    assert decision.failures and "sink down" in decision.failures[0]
    assert load_breaker(store, "slack").consecutive_failures == 1
    view = alerts.list_alerts()[0]
    notes = view.to_dict()["notifications"]
    assert [(n["channel"], n["ok"]) for n in notes] == [("log", True), ("slack", False)]


class FakeNotifier:
    def __init__(self, via: str, error: Exception | None = None) -> None:
        self.via = via
        self.error = error
        self.posted: list[Message] = []

    async def post(self, message: Message) -> PostedMessage:
        if self.error is not None:
            raise self.error
        self.posted.append(message)
        return PostedMessage("C1", "1.0", self.via)  # type: ignore[arg-type]


async def test_slack_web_api_failure_falls_back_to_the_webhook(
    store: Store, settings: Settings
) -> None:
    revoked = NotifierError("token_revoked", reason=ErrorReason.AUTH, service="slack")
    web = FakeNotifier("chat.postMessage", revoked)
    hook = FakeNotifier("webhook")
    alerts = AlertManager(store, settings, sinks=sinks_for(notifier=web, slack_webhook=hook))
    decision = await alerts.fire(Alert("k", Severity.WARNING, "m"))
    assert decision.channels == ("log", "slack")
    assert len(hook.posted) == 1
    assert load_breaker(store, "slack").state == "open"  # auth opens at once
    # while open, the Web API is not called at all
    web.error = AssertionError("must not be called")
    await alerts.fire(Alert("k2", Severity.WARNING, "m"))
    assert len(hook.posted) == 2
    assert hook.posted[0].text.startswith("[FIRING] [warning] k:")


class FakeTracker:
    def __init__(self) -> None:
        self.issues: dict[str, IssueRef] = {}
        self.priorities: list[int] = []
        self.comments: list[str] = []

    async def find_open_issue(self, *, title: str | None = None, label: str | None = None) -> Any:
        return self.issues.get(title or "")

    async def create_issue(
        self, *, title: str, description: str, priority: int = 0, **_: Any
    ) -> IssueRef:
        ref = IssueRef(f"id{len(self.issues)}", f"ENG-{len(self.issues) + 1}", "http://x", title)
        self.issues[title] = ref
        self.priorities.append(priority)
        return ref

    async def comment(self, issue_id: str, body: str, *, key: str | None = None) -> str:
        self.comments.append(body)
        return "c1"


async def test_linear_sink_creates_urgent_issue_once_then_comments(
    store: Store, settings: Settings
) -> None:
    tracker = FakeTracker()
    alerts = AlertManager(store, settings, sinks={"linear": LinearSink(tracker)})
    await alerts.escalate(Alert("recovery:x", Severity.CRITICAL, "down"))
    assert tracker.priorities == [1]  # urgent
    await alerts.resolve("recovery:x")
    assert len(tracker.comments) == 1 and tracker.comments[0].startswith("Resolved.")
    await alerts.escalate(Alert("recovery:x", Severity.CRITICAL, "down again"))
    assert tracker.priorities == [1]  # the open issue got a comment, not a twin
    assert len(tracker.comments) == 2


def test_routing_rules_first_match_wins() -> None:
    rules = (
        AlertRoutingRule(("github", "log"), Severity.WARNING, "ci:*"),
        AlertRoutingRule(("slack",), Severity.INFO),
    )
    assert route(rules, "ci:sig", Severity.CRITICAL) == ("github", "log")
    assert route(rules, "ci:sig", Severity.INFO) == ("slack",)
    assert route(rules, "health:x", Severity.WARNING) == ("slack",)
    assert route((), "x", Severity.CRITICAL) == ("log",)


def test_load_routing_file(tmp_path: Path) -> None:
    path = tmp_path / "alert_routes.json"
    rules, policy = load_routing(path)
    assert rules[0].channels == ("log", "slack", "linear") and policy == EscalationPolicy()
    path.write_text(
        json.dumps(
            {
                "rules": [{"match": "ci:*", "min_severity": "warning", "channels": ["github"]}],
                "policy": {"repeat_after_seconds": 60, "escalate_after_repeats": 1},
            }
        )
    )
    rules, policy = load_routing(path)
    assert rules == (AlertRoutingRule(("github",), Severity.WARNING, "ci:*"),)
    assert policy.repeat_after_seconds == 60 and policy.escalate_after_repeats == 1
    for bad, message in [
        ("{", "not valid JSON"),
        ('{"rules": [{"channels": ["email"]}]}', "'email' is not one of"),
        ('{"rules": [{"channels": ["log"], "min_severity": "loud"}]}', "min_severity"),
        ('{"policy": {"repeat_after_seconds": -1}}', "non-negative"),
        ('{"policy": {"bogus": 1}}', "unknown policy setting"),
    ]:
        path.write_text(bad)
        with pytest.raises(AlertConfigError, match=message):
            load_routing(path)


async def test_secrets_never_reach_the_store_or_a_channel(tmp_path: Path, store: Store) -> None:
    token = "xoxb-" + "s3cr3t" * 6
    settings = Settings(contexten_home=tmp_path / "h", slack_bot_token=token, slack_channel="C1")
    slack = RecordingSink()
    alerts = AlertManager(store, settings, sinks={"slack": slack})
    await alerts.fire(Alert("k", Severity.WARNING, f"slack refused token {token}"))
    [view] = alerts.list_alerts()
    assert token not in view.message and "***" in view.message
