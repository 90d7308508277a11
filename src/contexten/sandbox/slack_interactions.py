"""The Slack sandbox's other direction: slash commands and button presses, sent as Slack
sends them to an app's request URL.

Slack POSTs `application/x-www-form-urlencoded` bodies signed with the app's signing
secret: `X-Slack-Request-Timestamp` (Unix seconds) and `X-Slack-Signature` =
`v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>`. A slash command sends its fields
(`command`, `text`, `user_id`, `response_url`, `trigger_id`, ...); a button press sends
`payload=<JSON>` of type `block_actions` naming the message, the container and the action
(with the button's `action_id`, `block_id` and `value`). A button can only be pressed on
a message the sandbox holds that has it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from contexten.sandbox.slack import SlackMessage, SlackState
from contexten.sandbox.state import SANDBOX_SLACK_SIGNING_SECRET

APP_ID = "A0SANDBOX1"
COMMAND = "/contexten"


class NoSuchButton(LookupError):
    """The message has no button with that action id (Slack could not send the press)."""


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def find_button(message: SlackMessage, action_id: str) -> tuple[str | None, dict[str, Any]]:
    """(block_id, element) of the button with `action_id` in the message's blocks."""
    for block in message.blocks:
        if not isinstance(block, dict) or block.get("type") != "actions":
            continue
        for element in block.get("elements") or ():
            if (
                isinstance(element, dict)
                and element.get("type") == "button"
                and element.get("action_id") == action_id
            ):
                return block.get("block_id"), element
    raise NoSuchButton(f"message {message.ts} has no button {action_id!r}")


class SlackInteractions:
    """Sends a workspace's slash commands and button presses to `url`, signed."""

    def __init__(
        self,
        state: SlackState,
        url: str,
        *,
        signing_secret: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.url = url
        self.secret: str = signing_secret or str(
            getattr(state, "signing_secret", SANDBOX_SLACK_SIGNING_SECRET)
        )
        self.clock = clock
        self._triggers = 0

    def _trigger_id(self) -> str:
        self._triggers += 1
        return f"{self._triggers}.{int(self.clock())}.sandboxtrigger"

    def headers(self, body: bytes, *, timestamp: float | None = None) -> dict[str, str]:
        stamp = str(int(self.clock() if timestamp is None else timestamp))
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack_signature(self.secret, stamp, body),
        }

    def post(self, body: bytes, *, timestamp: float | None = None) -> httpx.Response:
        return httpx.post(self.url, content=body, headers=self.headers(body, timestamp=timestamp))

    def slash_command_body(
        self, text: str, *, user_id: str = "U0SBXALICE", user_name: str = "alice"
    ) -> bytes:
        channel = self.state.channels[self.state.channel]
        fields = {
            "token": "sandbox-verification-token",
            "team_id": self.state.team_id,
            "team_domain": self.state.team_name.lower(),
            "channel_id": channel.id,
            "channel_name": channel.name,
            "user_id": user_id,
            "user_name": user_name,
            "command": COMMAND,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": f"https://hooks.slack.com/commands/{self.state.team_id}/1/sandbox",
            "trigger_id": self._trigger_id(),
        }
        return urlencode(fields).encode()

    def slash_command(
        self, text: str, *, user_id: str = "U0SBXALICE", user_name: str = "alice"
    ) -> httpx.Response:
        """`/contexten <text>` typed by a person in the alerts channel."""
        return self.post(self.slash_command_body(text, user_id=user_id, user_name=user_name))

    def button_press_body(
        self,
        message: SlackMessage,
        action_id: str,
        *,
        user_id: str = "U0SBXALICE",
        user_name: str = "alice",
    ) -> bytes:
        block_id, button = find_button(message, action_id)
        channel = self.state.channels.get(message.channel)
        now = self.clock()
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {
                "id": user_id,
                "username": user_name,
                "name": user_name,
                "team_id": self.state.team_id,
            },
            "api_app_id": APP_ID,
            "token": "sandbox-verification-token",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": self._trigger_id(),
            "team": {"id": self.state.team_id, "domain": self.state.team_name.lower()},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message.channel, "name": channel.name if channel else ""},
            "message": {
                "type": "message",
                "ts": message.ts,
                "text": message.text,
                "bot_id": message.bot_id,
                "blocks": message.blocks,
            },
            "state": {"values": {}},
            "response_url": f"https://hooks.slack.com/actions/{self.state.team_id}/1/sandbox",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": button.get("text"),
                    "value": button.get("value"),
                    "style": button.get("style"),
                    "action_ts": f"{now:.6f}",
                }
            ],
        }
        return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()

    def press(
        self,
        message: SlackMessage,
        action_id: str,
        *,
        user_id: str = "U0SBXALICE",
        user_name: str = "alice",
    ) -> httpx.Response:
        """A person presses the button `action_id` on `message`."""
        body = self.button_press_body(message, action_id, user_id=user_id, user_name=user_name)
        return self.post(body)
