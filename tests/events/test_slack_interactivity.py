"""Verifying and parsing Slack's requests (pure parts of the Slack endpoint)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from contexten.events.slack_interactivity import (
    ButtonPress,
    SlackRequestError,
    SlashCommand,
    parse_request,
    signature,
    verify,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_700_000_000.0


def test_slacks_documented_example_signature() -> None:
    # api.slack.com/authentication/verifying-requests-from-slack
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert signature(SECRET, "1531420618", body) == expected
    verify(SECRET, "1531420618", expected, body, now=1531420618 + 10)


@pytest.mark.parametrize(
    ("timestamp", "given", "message"),
    [
        (None, "v0=x", "missing"),
        ("abc", "v0=x", "not a number"),
        (str(int(NOW) - 301), None, "missing"),
        (str(int(NOW) - 301), "sign", "5 minutes"),
        (str(int(NOW) + 301), "sign", "5 minutes"),
        (str(int(NOW)), "v0=" + "0" * 64, "mismatch"),
    ],
)
def test_unverifiable_requests_are_refused(
    timestamp: str | None, given: str | None, message: str
) -> None:
    body = b"command=%2Fcontexten&text=status"
    if given == "sign" and timestamp is not None:
        given = signature(SECRET, timestamp, body)
    with pytest.raises(SlackRequestError, match=message) as caught:
        verify(SECRET, timestamp, given, body, now=NOW)
    assert caught.value.status_code == 401


def test_a_tampered_body_does_not_verify() -> None:
    stamp = str(int(NOW))
    good = signature(SECRET, stamp, b"text=status")
    verify(SECRET, stamp, good, b"text=status", now=NOW)
    with pytest.raises(SlackRequestError):
        verify(SECRET, stamp, good, b"text=rerun+x", now=NOW)


def test_parse_slash_command_and_button_press() -> None:
    command = parse_request(
        urlencode(
            {"command": "/contexten", "text": " ack 4 ", "user_id": "U1", "user_name": "al"}
        ).encode()
    )
    assert command == SlashCommand("/contexten", "ack 4", "U1", "al", None, None)
    payload = {
        "type": "block_actions",
        "user": {"id": "U1", "username": "al"},
        "channel": {"id": "C1"},
        "container": {"type": "message", "message_ts": "17.01"},
        "actions": [{"action_id": "contexten_resolve", "value": "4"}],
    }
    press = parse_request(urlencode({"payload": json.dumps(payload)}).encode())
    assert press == ButtonPress("contexten_resolve", "4", "U1", "al", "C1", "17.01")
    for bad in (
        b"hello=1",
        urlencode({"payload": "{"}).encode(),
        urlencode({"payload": json.dumps({"type": "view_submission"})}).encode(),
    ):
        with pytest.raises(SlackRequestError) as caught:
            parse_request(bad)
        assert caught.value.status_code == 400


async def test_slow_work_is_answered_at_once_and_finished_later(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import asyncio

    from contexten.config import Settings
    from contexten.events import slack_interactivity
    from contexten.events.slack_interactivity import SlackActions
    from contexten.store.db import Store

    monkeypatch.setattr(slack_interactivity, "ANSWER_WITHIN_SECONDS", 0.01)
    finished: list[str] = []

    class Slow(SlackActions):
        async def handle(self, request: SlashCommand | ButtonPress) -> dict[str, Any]:
            await asyncio.sleep(0.2)
            finished.append("done")
            return {"text": "late"}

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    actions = Slow(Settings(contexten_home=tmp_path), store)
    answer = await actions.answer(SlashCommand("/contexten", "status", "U1", "al"))
    assert answer["text"].startswith("Working on it") and finished == []
    await actions.drain()
    assert finished == ["done"]
    store.dispose()
