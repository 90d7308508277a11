"""Slack both ways: the `/contexten` slash command and the buttons on alert messages.

Slack POSTs both to the receiver (`/slack/commands` and `/slack/interactivity`; one URL
serves both) as `application/x-www-form-urlencoded`: a slash command as its fields, a
button press as `payload=<JSON>` of type `block_actions`. Every request is verified first:
`X-Slack-Signature` must be `v0=` + hex HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<body>`
under SLACK_SIGNING_SECRET (compared in constant time), and a timestamp more than five
minutes from now is refused (a replayed request).

Slash command: `/contexten status | health | rerun RUN_ID | ack ALERT_ID` (answered to the
person who typed it: an ephemeral response). Buttons (see `monitoring.alerts.alert_buttons`):
Acknowledge (the alert stops repeating and escalating), Resolve, Re-run (the workflow run
the alert is about, with the same parameters). What a button did is posted in the alert's
thread, so the channel sees who did what. A re-run goes through the dispatcher's trigger
under an idempotency key, so a double click starts one run.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from contexten.config import Settings
from contexten.store.db import Store

logger = logging.getLogger("contexten.slack")

VERSION = "v0"
MAX_AGE_SECONDS = 300
MAX_BODY_BYTES = 64 * 1024
# Slack wants an answer within 3 s; slower work goes on in the background.
ANSWER_WITHIN_SECONDS = 2.5
Trigger = Callable[[str, dict[str, Any], str], Awaitable[str]]
USAGE = "usage: /contexten status | health | rerun RUN_ID | ack ALERT_ID"


class SlackRequestError(Exception):
    """A request that is not (provably) from Slack, or not understood; one-line message."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    given: str | None,
    body: bytes,
    *,
    now: float | None = None,
) -> None:
    """Raise SlackRequestError(401) unless the request is signed with `secret` and fresh."""
    if not timestamp or not given:
        raise SlackRequestError(401, "missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SlackRequestError(401, "X-Slack-Request-Timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - sent) > MAX_AGE_SECONDS:
        raise SlackRequestError(401, "request timestamp is more than 5 minutes old")
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        raise SlackRequestError(401, "signature mismatch")


@dataclass(frozen=True, slots=True)
class SlashCommand:
    command: str
    text: str
    user_id: str
    user_name: str
    channel_id: str | None = None
    trigger_id: str | None = None


@dataclass(frozen=True, slots=True)
class ButtonPress:
    action_id: str
    value: str
    user_id: str
    user_name: str
    channel_id: str | None = None
    message_ts: str | None = None


def parse_request(body: bytes) -> SlashCommand | ButtonPress:
    """A verified body as a slash command or a button press; SlackRequestError(400) else."""
    try:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8")).items()}
    except UnicodeDecodeError:
        raise SlackRequestError(400, "body is not UTF-8 form data") from None
    if "payload" in form:
        try:
            payload = json.loads(form["payload"])
        except ValueError:
            raise SlackRequestError(400, "payload is not JSON") from None
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            raise SlackRequestError(400, "only block_actions interactions are handled")
        actions = payload.get("actions") or []
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            raise SlackRequestError(400, "block_actions without an action")
        user = payload.get("user") or {}
        channel = payload.get("channel") or {}
        message = payload.get("container") or payload.get("message") or {}
        return ButtonPress(
            action_id=str(actions[0].get("action_id") or ""),
            value=str(actions[0].get("value") or ""),
            user_id=str(user.get("id") or ""),
            user_name=str(user.get("username") or user.get("name") or user.get("id") or ""),
            channel_id=channel.get("id") if isinstance(channel, dict) else None,
            message_ts=message.get("message_ts") or message.get("ts"),
        )
    if "command" in form:
        return SlashCommand(
            command=form["command"],
            text=form.get("text", "").strip(),
            user_id=form.get("user_id", ""),
            user_name=form.get("user_name", form.get("user_id", "")),
            channel_id=form.get("channel_id"),
            trigger_id=form.get("trigger_id"),
        )
    raise SlackRequestError(400, "neither a slash command nor an interaction payload")


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


class SlackActions:
    """What the slash command and the buttons do, over the store, alerts and a trigger."""

    def __init__(self, settings: Settings, store: Store, trigger: Trigger | None = None) -> None:
        self.settings = settings
        self.store = store
        self.trigger = trigger
        self._tasks: set[asyncio.Task[None]] = set()

    # ----- entry point -----
    async def handle(self, request: SlashCommand | ButtonPress) -> dict[str, Any]:
        if isinstance(request, SlashCommand):
            return await self.slash(request)
        return await self.button(request)

    async def answer(self, request: SlashCommand | ButtonPress) -> dict[str, Any]:
        """`handle`, but never later than Slack waits: slower work finishes in the
        background (a button's result is posted in the thread anyway)."""
        task: asyncio.Task[dict[str, Any]] = asyncio.create_task(self.handle(request))
        done, _pending = await asyncio.wait({task}, timeout=ANSWER_WITHIN_SECONDS)
        if task in done:
            return task.result()
        keeper = asyncio.ensure_future(self._finish(task))
        self._tasks.add(keeper)
        keeper.add_done_callback(self._tasks.discard)
        return _ephemeral("Working on it: the result follows in the channel.")

    @staticmethod
    async def _finish(task: asyncio.Task[dict[str, Any]]) -> None:
        try:
            await task
        except Exception as exc:
            logger.warning("slack action failed: %s", exc)

    async def drain(self) -> None:
        """Wait for re-runs started by buttons or commands (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ----- slash command -----
    async def slash(self, command: SlashCommand) -> dict[str, Any]:
        verb, _, rest = command.text.partition(" ")
        verb, rest = verb.lower(), rest.strip()
        if verb == "status":
            return _ephemeral(self._status())
        if verb == "health":
            return _ephemeral(self._health())
        if verb == "rerun" and rest:
            return _ephemeral(await self._rerun(rest, command.user_name, command.trigger_id))
        if verb == "ack" and rest.isdigit():
            return _ephemeral(self._ack(int(rest), command.user_name))
        return _ephemeral(USAGE)

    def _status(self) -> str:
        from contexten.monitoring.alerts import AlertManager
        from contexten.store.loops import recent_executions

        runs = recent_executions(self.store, 5)
        firing = AlertManager(self.store, self.settings).list_alerts(status="firing")
        lines = [f"{len(firing)} alert(s) firing" + (":" if firing else ".")]
        lines += [f"• #{a.id} [{a.severity.value}] {a.key}: {a.message[:120]}" for a in firing[:5]]
        lines.append("Recent runs:" if runs else "No workflow runs yet.")
        lines += [f"• {r['workflow_type']} {r['status']} `{r['run_id']}`" for r in runs]
        return "\n".join(lines)

    def _health(self) -> str:
        from contexten.store.loops import latest_execution

        last = latest_execution(self.store, "health_check")
        if last is None:
            return "No health check has run yet (`contexten health-check`)."
        result = last["result"] or {}
        data = result.get("data") or {}
        summary = result.get("summary") or last["status"]
        problems = data.get("problems") or []
        text = f"Last health check ({last['finished_at']:%Y-%m-%d %H:%M} UTC): {summary}"
        return text + "".join(f"\n• {p}" for p in problems[:5])

    def _ack(self, alert_id: int, user: str) -> str:
        from contexten.monitoring.alerts import AlertManager

        view = AlertManager(self.store, self.settings).acknowledge(alert_id, user)
        if view is None:
            return f"There is no alert #{alert_id}."
        if view.status != "firing":
            return f"Alert #{alert_id} ({view.key}) is already {view.status}."
        return f"Alert #{alert_id} ({view.key}) acknowledged by {user}: no more repeats."

    async def _rerun(self, run_id: str, user: str, request_id: str | None) -> str:
        from contexten.orchestration.execution import load_execution

        row = load_execution(self.store, run_id)
        if row is None:
            return f"There is no workflow run `{run_id}`."
        if self.trigger is None:
            return "Re-runs need the dispatcher: this receiver runs without one."
        key = f"slack-rerun:{run_id}:{request_id or user}"
        parameters = dict(row.parameters or {})
        task = asyncio.create_task(self._run(row.workflow_type, parameters, key, run_id, user))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return f"Re-running {row.workflow_type} with the parameters of run `{run_id}` ({user})."

    async def _run(
        self, workflow_type: str, parameters: dict[str, Any], key: str, old: str, user: str
    ) -> None:
        assert self.trigger is not None
        try:
            new = await self.trigger(workflow_type, parameters, key)
            text = f"Re-run of {workflow_type} run `{old}` requested by {user}: run `{new}`."
        except Exception as exc:
            text = f"Re-run of {workflow_type} run `{old}` failed to start: {exc}"[:500]
        await self._post(text, None)

    # ----- buttons -----
    async def button(self, press: ButtonPress) -> dict[str, Any]:
        from contexten.monitoring.alerts import (
            ACTION_ACK,
            ACTION_RERUN,
            ACTION_RESOLVE,
            alert_manager_for,
        )
        from contexten.monitoring.clients import build_clients

        who = press.user_name or press.user_id
        if press.action_id == ACTION_RERUN:
            text = await self._rerun(press.value, who, press.message_ts)
        elif press.action_id in (ACTION_ACK, ACTION_RESOLVE) and press.value.isdigit():
            alert_id = int(press.value)
            if press.action_id == ACTION_ACK:
                text = self._ack(alert_id, who)
            else:
                clients = build_clients(self.settings, self.store)
                try:
                    manager = alert_manager_for(self.store, self.settings, clients)
                    try:
                        decision = await manager.resolve_id(alert_id, reason=f"resolved by {who}")
                    except KeyError:
                        decision = None
                finally:
                    await clients.aclose()
                if decision is None:
                    text = f"There is no alert #{alert_id}."
                elif decision.action == "resolved":
                    text = f"Alert #{alert_id} ({decision.key}) resolved by {who}."
                else:
                    text = f"Alert #{alert_id} ({decision.key}) was not firing."
        else:
            text = f"Unknown action {press.action_id!r}."
        await self._post(text, press.message_ts)
        return {"text": text}

    async def _post(self, text: str, thread_ts: str | None) -> None:
        """Tell the channel (in the alert's thread when there is one)."""
        from contexten.integrations.factory import slack_notifier
        from contexten.integrations.interface import Message

        notifier = slack_notifier(self.settings, self.store)
        if notifier is None:
            logger.info("slack: %s", text)
            return
        try:
            await notifier.post(Message(text=text[:3000], thread_ts=thread_ts))
        except Exception as exc:
            logger.warning("slack: cannot post %r: %s", text[:80], exc)
        finally:
            await notifier.aclose()


def slack_router(settings: Settings, store: Store, trigger: Trigger | None = None) -> APIRouter:
    """The receiver's Slack endpoints (an APIRouter): verify, parse, act, answer."""
    router = APIRouter()
    actions = SlackActions(settings, store, trigger)
    router.slack_actions = actions  # type: ignore[attr-defined]

    async def endpoint(request: Request) -> Response:
        secret = settings.slack_signing_secret
        if secret is None or not secret.get_secret_value():
            return JSONResponse({"error": "SLACK_SIGNING_SECRET is not set"}, status_code=503)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            verify(
                secret.get_secret_value(),
                request.headers.get("x-slack-request-timestamp"),
                request.headers.get("x-slack-signature"),
                body,
            )
            if b"ssl_check=1" in body and b"command=" not in body:
                return Response(status_code=200)  # Slack checking the certificate
            parsed = parse_request(body)
        except SlackRequestError as exc:
            logger.warning("slack request refused: %s", exc)
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
        return JSONResponse(await actions.answer(parsed))

    for path in ("/slack/commands", "/slack/interactivity"):
        router.add_api_route(path, endpoint, methods=["POST"])
    return router
