"""Alerts: firing → (deduplicated while firing, counted) → resolved, over the AlertRecord table.

An alert has a key (what is wrong: "health:github", "ci:<signature>") and a severity. The
first `fire` of a key notifies the channels its routing rule names; later fires of the
same key while it is firing only count. While it keeps firing, the escalation policy
repeats the notification every `repeat_after_seconds` and, after
`escalate_after_repeats` repeats, escalates to a human: a Linear issue with priority
urgent plus a Slack message. Notifications per key are rate-limited
(`min_notify_interval_seconds`, which also stops a flapping alert from notifying on
every re-fire) and overall (`max_notifications_per_hour`), so an outage is not an alert
storm. `resolve` closes the alert and tells the channels that were notified.

Routing rules are ordered; the first whose key pattern (fnmatch) and minimum severity
match decides the channels. Defaults: critical → log, Slack, Linear; warning → log, Slack;
info → log. Override them in `<CONTEXTEN_HOME>/alert_routes.json`:

    {"rules": [{"match": "ci:*", "min_severity": "warning", "channels": ["github", "slack"]}],
     "policy": {"min_notify_interval_seconds": 300, "repeat_after_seconds": 3600,
                "escalate_after_repeats": 2, "max_notifications_per_hour": 30}}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

# the routing file and alert levels, re-exported: their home is contexten.alert_routing
from contexten.alert_routing import (  # noqa: F401
    CHANNELS,
    DEFAULT_RULES,
    ROUTES_FILE,
    AlertConfigError,
    AlertRoutingRule,
    Channel,
    EscalationPolicy,
    Severity,
    load_routing,
    parse_severity,
    route,
)
from contexten.config import Settings
from contexten.store import alerts as alert_store
from contexten.store.alerts import AlertView as AlertView
from contexten.store.db import Store

logger = logging.getLogger("contexten.alerts")

Event = Literal["firing", "repeat", "escalation", "resolved"]
Action = Literal["notified", "deduped", "rate_limited", "escalated", "resolved", "not_firing"]


@dataclass(frozen=True, slots=True)
class Alert:
    """Something to tell people about. `repository` and `issue_number` let the GitHub
    channel comment on the pull request or issue concerned."""

    key: str
    severity: Severity
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)
    repository: str | None = None
    issue_number: int | None = None


# ----------------------------------------------------------------------------- sinks


class AlertSink(Protocol):
    """Delivers one alert event to one channel; returns a reference (message ts, issue id)."""

    async def send(self, alert: AlertView, event: Event) -> str: ...


def render_text(alert: AlertView, event: Event) -> str:
    label = {
        "firing": "FIRING",
        "repeat": "STILL FIRING",
        "escalation": "ESCALATED",
        "resolved": "RESOLVED",
    }[event]
    seen = f"seen {alert.count}×" if alert.count > 1 else "seen once"
    return f"[{label}] [{alert.severity.value}] {alert.key}: {alert.message} ({seen})"


class LogSink:
    async def send(self, alert: AlertView, event: Event) -> str:
        level = {
            Severity.INFO: logging.INFO,
            Severity.WARNING: logging.WARNING,
            Severity.CRITICAL: logging.ERROR,
        }[alert.severity]
        if event == "resolved":
            level = logging.INFO
        logger.log(level, "%s", render_text(alert, event))
        return "log"


# Slack interactivity (see events.slack_interactivity): the buttons' action ids.
ACTION_ACK = "contexten_ack"
ACTION_RESOLVE = "contexten_resolve"
ACTION_RERUN = "contexten_rerun"


def alert_buttons(alert: AlertView) -> dict[str, Any]:
    """Acknowledge / Resolve (value: the alert id) and, for an alert about a workflow run,
    Re-run (value: the run id); answered by the receiver's Slack endpoint."""

    def button(label: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
        element: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": label},
            "action_id": action_id,
            "value": value[:2000],
        }
        if style:
            element["style"] = style
        return element

    elements = [
        button("Acknowledge", ACTION_ACK, str(alert.id)),
        button("Resolve", ACTION_RESOLVE, str(alert.id), "primary"),
    ]
    run_id = alert.data.get("run_id")
    if isinstance(run_id, str) and run_id:
        elements.append(button("Re-run", ACTION_RERUN, run_id))
    return {"type": "actions", "block_id": f"alert-{alert.id}", "elements": elements}


class SlackSink:
    """Posts through a Notifier; `fallback` (an incoming-webhook notifier) is used when the
    primary fails or its circuit is open."""

    def __init__(self, notifier: Any, fallback: Any = None) -> None:
        self.notifier = notifier
        self.fallback = fallback

    @staticmethod
    def message(alert: AlertView, event: Event) -> Any:
        from contexten.integrations.interface import Message

        text = render_text(alert, event)
        blocks: tuple[dict[str, Any], ...] = (
            {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": alert.message[:2900]}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"key `{alert.key[:200]}` · first seen "
                        f"{alert.first_seen:%Y-%m-%d %H:%M} UTC · count {alert.count}",
                    }
                ],
            },
        )
        if event != "resolved":
            blocks = (*blocks, alert_buttons(alert))
        return Message(
            text=text[:3000],
            blocks=blocks,
            idempotency_key=f"alert:{alert.id}:{event}:{alert.escalation_level}",
        )

    async def primary(self, alert: AlertView, event: Event) -> str:
        posted = await self.notifier.post(self.message(alert, event))
        return f"{posted.via}:{posted.ts or ''}"

    async def via_fallback(self, alert: AlertView, event: Event) -> str:
        if self.fallback is None:
            raise RuntimeError("no Slack fallback (SLACK_WEBHOOK_URL) configured")
        posted = await self.fallback.post(self.message(alert, event))
        return f"{posted.via}:{posted.ts or ''} (fallback)"

    async def send(self, alert: AlertView, event: Event) -> str:
        try:
            return await self.primary(alert, event)
        except Exception:
            if self.fallback is None:
                raise
            return await self.via_fallback(alert, event)


class LinearSink:
    """Creates one issue per alert key (found again by title); escalation asks for urgent."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker

    @staticmethod
    def title(alert: AlertView) -> str:
        return f"[contexten alert] {alert.key}"[:250]

    async def send(self, alert: AlertView, event: Event) -> str:
        title = self.title(alert)
        body = (
            f"{render_text(alert, event)}\n\n{alert.message}\n\n"
            f"- key: `{alert.key}`\n- severity: {alert.severity.value}\n"
            f"- first seen: {alert.first_seen.isoformat()}\n- count: {alert.count}\n"
        )
        existing = await self.tracker.find_open_issue(title=title)
        if event == "resolved":
            if existing is None:
                return "linear:none"
            await self.tracker.comment(existing.id, f"Resolved.\n\n{body}", key=None)
            return f"linear:{existing.identifier}"
        if existing is not None:
            await self.tracker.comment(existing.id, body, key=None)
            return f"linear:{existing.identifier}"
        priority = 1 if event == "escalation" else (2 if alert.severity is Severity.CRITICAL else 3)
        issue = await self.tracker.create_issue(
            title=title,
            description=body,
            priority=priority,
            labels=("contexten", "alert"),
            key=f"alert-issue:{alert.key}:{alert.first_seen.isoformat()}",
        )
        return f"linear:{issue.identifier}"


class GitHubSink:
    """Comments on the pull request or issue named in the alert's data."""

    def __init__(self, ci: Any) -> None:
        self.ci = ci

    async def send(self, alert: AlertView, event: Event) -> str:
        repository = alert.data.get("repository")
        number = alert.data.get("issue_number")
        if not repository or not number:
            raise ValueError("alert has no repository and issue_number to comment on")
        comment = await self.ci.create_issue_comment(
            str(repository),
            int(number),
            f"**contexten**: {render_text(alert, event)}",
            key=f"alert:{alert.id}:{event}:{alert.escalation_level}",
        )
        return f"github:{comment.html_url}"


# ----------------------------------------------------------------------------- manager

SINK_INTEGRATION: dict[str, str] = {"slack": "slack", "linear": "linear", "github": "github"}


@dataclass(frozen=True, slots=True)
class AlertDecision:
    key: str
    action: Action
    channels: tuple[str, ...] = ()
    count: int = 0
    alert_id: int | None = None
    failures: tuple[str, ...] = ()


class AlertManager:
    """The alert lifecycle over the store, with routing, rate limits and escalation.

    `sinks` maps a channel to its sink; a channel routed to but missing (the integration is
    not configured) is recorded as skipped and the log channel always works.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        sinks: Mapping[str, AlertSink] | None = None,
        rules: Sequence[AlertRoutingRule] | None = None,
        policy: EscalationPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        if rules is None or policy is None:
            file_rules, file_policy = load_routing(
                settings.alert_routes_file or settings.data_dir / ROUTES_FILE
            )
            rules = file_rules if rules is None else rules
            policy = file_policy if policy is None else policy
        self.rules = tuple(rules)
        self.policy = policy
        self.sinks: dict[str, AlertSink] = {"log": LogSink(), **dict(sinks or {})}
        self.clock = clock

    # --- queries ---
    def list_alerts(self, *, status: str | None = None, limit: int = 100) -> list[AlertView]:
        return alert_store.list_alerts(self.store, status=status, limit=limit)

    def get(self, alert_id: int) -> AlertView | None:
        return alert_store.get_alert(self.store, alert_id)

    # --- lifecycle ---
    async def fire(self, alert: Alert) -> AlertDecision:
        """Record a firing alert; notify if new (or newly more severe), else count it."""
        now = self.clock()
        view, new, raised = self._upsert(alert, now)
        if new:
            self._emit("alert.firing", view)
        if new or raised:
            if self._recently_notified(view.key, now, exclude_id=None if new else view.id):
                return AlertDecision(view.key, "rate_limited", (), view.count, view.id)
            return await self._notify(view, "firing")
        return AlertDecision(view.key, "deduped", (), view.count, view.id)

    def _upsert(self, alert: Alert, now: datetime) -> tuple[AlertView, bool, bool]:
        """Insert the firing record of a key, or count one more fire; (view, new, raised)."""
        from contexten.integrations.redaction import redact

        # messages quote errors; a secret must never reach the store or a channel
        message = redact(alert.message, self.settings.secret_values())[:4000]
        data = dict(alert.data)
        if alert.repository:
            data["repository"] = alert.repository
        if alert.issue_number:
            data["issue_number"] = alert.issue_number
        return alert_store.upsert_firing(
            self.store, key=alert.key, severity=alert.severity, message=message, data=data, now=now
        )

    async def resolve(self, key: str, *, reason: str = "") -> AlertDecision:
        """Resolve the firing alert of a key and tell the channels that heard about it."""
        now = self.clock()
        view = alert_store.resolve_firing(self.store, key, now=now, reason=reason)
        if view is None:
            return AlertDecision(key, "not_firing")
        self._emit("alert.resolved", view)
        notified = {n.get("channel") for n in view.data.get("notifications", []) if n.get("ok")}
        channels = tuple(c for c in self._channels(view) if c in notified)
        if not channels:
            return AlertDecision(key, "resolved", (), view.count, view.id)
        decision = await self._deliver(view, "resolved", channels, update_notified=False)
        return AlertDecision(
            key, "resolved", decision.channels, view.count, view.id, decision.failures
        )

    async def resolve_id(self, alert_id: int, *, reason: str = "") -> AlertDecision:
        view = self.get(alert_id)
        if view is None:
            raise KeyError(alert_id)
        if view.status != "firing":
            return AlertDecision(view.key, "not_firing", (), view.count, view.id)
        return await self.resolve(view.key, reason=reason)

    async def escalate(self, alert: Alert) -> AlertDecision:
        """Fire and escalate to a human at once (Linear urgent + Slack).

        Escalating a key that is already escalated and still firing only counts it, so a
        recovery that keeps failing does not page someone every few minutes.
        """
        view, new, _raised = self._upsert(alert, self.clock())
        if new:
            self._emit("alert.firing", view)
        if view.data.get("escalated"):
            return AlertDecision(view.key, "deduped", (), view.count, view.id)
        return await self._escalate(view)

    async def process(self, *, resolve_stale_after: timedelta | None = None) -> list[AlertDecision]:
        """The periodic pass: repeat and escalate alerts still firing; resolve stale ones."""
        now = self.clock()
        decisions: list[AlertDecision] = []
        for view in self.list_alerts(status="firing", limit=1000):
            if resolve_stale_after is not None and now - view.last_seen >= resolve_stale_after:
                minutes = int(resolve_stale_after.total_seconds() // 60)
                decisions.append(
                    await self.resolve(view.key, reason=f"not seen for {minutes} minutes")
                )
                continue
            if view.data.get("acknowledged_by"):
                continue  # a person has it (Slack "Acknowledge"): no repeats, no paging
            last = view.last_notified_at or view.first_seen
            if now - last < timedelta(seconds=self.policy.repeat_after_seconds):
                continue
            if view.escalation_level >= self.policy.escalate_after_repeats:
                if not view.data.get("escalated"):
                    decisions.append(await self._escalate(view))
                continue
            decisions.append(await self._notify(view, "repeat", bump_level=True))
        return decisions

    # --- internals ---
    def _emit(self, name: str, view: AlertView) -> None:
        """`alert.firing` / `alert.resolved` into the event inbox (never fails the caller)."""
        try:
            from contexten.monitoring.internal_events import alert_event, emit

            emit(self.store, [alert_event(name, view.to_dict())])
        except Exception as exc:
            logger.error("alert %s: cannot record %s: %s", view.key, name, exc)

    def acknowledge(self, alert_id: int, by: str) -> AlertView | None:
        """Mark a firing alert as taken by a person: it stops repeating and escalating.
        None when there is no such alert; a resolved alert is returned unchanged."""
        from contexten.store.loops import acknowledge_alert

        acknowledge_alert(self.store, alert_id, by[:100], self.clock())
        return self.get(alert_id)

    def _channels(self, view: AlertView) -> tuple[Channel, ...]:
        return route(self.rules, view.key, view.severity)

    def _recently_notified(self, key: str, now: datetime, *, exclude_id: int | None) -> bool:
        """Per-key rate limit, which also covers a flapping key (resolved, then re-fired)."""
        since = now - timedelta(seconds=self.policy.min_notify_interval_seconds)
        return bool(alert_store.notified_since(self.store, since, key=key, exclude_id=exclude_id))

    def _over_global_limit(self, now: datetime) -> bool:
        recent = alert_store.notified_since(self.store, now - timedelta(hours=1))
        return recent >= self.policy.max_notifications_per_hour

    async def _notify(
        self, view: AlertView, event: Event, *, bump_level: bool = False
    ) -> AlertDecision:
        now = self.clock()
        if view.severity is not Severity.CRITICAL and self._over_global_limit(now):
            # only log: a storm of warnings must not drown the channels
            await self.sinks["log"].send(view, event)
            return AlertDecision(view.key, "rate_limited", ("log",), view.count, view.id)
        if bump_level:
            view = alert_store.bump_escalation_level(self.store, view.id) or view
        return await self._deliver(view, event, self._channels(view))

    async def _escalate(self, view: AlertView) -> AlertDecision:
        channels: tuple[str, ...] = ("log", "linear", "slack")
        decision = await self._deliver(view, "escalation", channels)
        reached = any(c in ("linear", "slack") for c in decision.channels)
        alert_store.mark_escalated(
            self.store, view.id, level=self.policy.escalate_after_repeats + 1, reached=reached
        )
        action: Action = "escalated" if reached else "notified"
        return AlertDecision(
            view.key, action, decision.channels, view.count, view.id, decision.failures
        )

    async def _deliver(
        self,
        view: AlertView,
        event: Event,
        channels: Sequence[str],
        *,
        update_notified: bool = True,
    ) -> AlertDecision:
        delivered: list[str] = []
        failures: list[str] = []
        log: list[dict[str, Any]] = []
        for channel in channels:
            ok, detail = await self._send_one(channel, view, event)
            log.append(
                {
                    "channel": channel,
                    "event": event,
                    "ok": ok,
                    "detail": detail[:300],
                    "at": self.clock().isoformat(),
                }
            )
            (delivered if ok else failures).append(channel if ok else f"{channel}: {detail}")
        alert_store.record_notifications(
            self.store, view.id, log, notified_at=self.clock() if update_notified else None
        )
        return AlertDecision(
            view.key, "notified", tuple(delivered), view.count, view.id, tuple(failures)
        )

    async def _send_one(self, channel: str, view: AlertView, event: Event) -> tuple[bool, str]:
        from contexten.integrations.circuits import (
            integration_gate,
            record_exception,
            record_integration_result,
        )

        sink = self.sinks.get(channel)
        if sink is None:
            return False, "channel not configured"
        integration = SINK_INTEGRATION.get(channel)
        blocked = None
        if integration is not None:
            blocked = integration_gate(self.store, self.settings, integration, now=time.time())
        has_fallback = isinstance(sink, SlackSink) and sink.fallback is not None
        if blocked is not None and not has_fallback:
            return False, blocked
        try:
            if isinstance(sink, SlackSink) and has_fallback:
                if blocked is not None:
                    return True, await sink.via_fallback(view, event)
                try:
                    reference = await sink.primary(view, event)
                except Exception as exc:
                    record_exception(self.store, "slack", exc)
                    logger.warning(
                        "alert %s: Slack Web API failed (%s); using the webhook", view.key, exc
                    )
                    return True, await sink.via_fallback(view, event)
            else:
                reference = await sink.send(view, event)
        except Exception as exc:
            if integration is not None:
                record_exception(self.store, integration, exc)
            logger.warning("alert %s: %s channel failed: %s", view.key, channel, exc)
            return False, f"{type(exc).__name__}: {exc}"
        if integration is not None:
            record_integration_result(self.store, integration, True)
        return True, reference


def sinks_for(
    *, ci: Any = None, issues: Any = None, notifier: Any = None, slack_webhook: Any = None
) -> dict[str, AlertSink]:
    """Sinks for the configured clients; `slack_webhook` is the Slack fallback."""
    sinks: dict[str, AlertSink] = {}
    primary = notifier or slack_webhook
    if primary is not None:
        fallback = slack_webhook if slack_webhook is not primary else None
        sinks["slack"] = SlackSink(primary, fallback)
    if issues is not None:
        sinks["linear"] = LinearSink(issues)
    if ci is not None:
        sinks["github"] = GitHubSink(ci)
    return sinks


def alert_manager_for(store: Store, settings: Settings, clients: Any) -> AlertManager:
    """An AlertManager whose sinks are the configured clients (an IntegrationClients)."""
    return AlertManager(
        store,
        settings,
        sinks=sinks_for(
            ci=clients.ci,
            issues=clients.issues,
            notifier=clients.notifier,
            slack_webhook=clients.slack_webhook,
        ),
    )
