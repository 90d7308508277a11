"""The Slack sandbox returns Slack's documented bodies: `ok`, plain-text webhook errors,
`{"ok": false, "error": …}`, 429 with Retry-After; Block Kit limits enforced server-side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from contexten.sandbox.server import SandboxServer
from contexten.sandbox.slack import SlackState
from contexten.sandbox.testing import running_sandbox


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with running_sandbox(services=("slack",)) as running:
        yield running


@pytest.fixture
def state(server: SandboxServer) -> SlackState:
    assert isinstance(server.state.slack, SlackState)
    return server.state.slack


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_webhook_documented_bodies(server: SandboxServer, state: SlackState) -> None:
    url = server.slack_webhook_url
    ok = httpx.post(url, json={"text": "hello"})
    assert (ok.status_code, ok.text) == (200, "ok") and ok.headers["content-type"].startswith(
        "text/plain"
    )
    assert [m.text for m in state.messages(state.channel)] == ["hello"]
    cases = [
        (
            httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "invalid_payload",
        ),
        (httpx.post(url, json={}), 400, "no_text"),
        (httpx.post(url, json={"text": "x", "blocks": [section("x")] * 51}), 400, "invalid_blocks"),
        (
            httpx.post(url, json={"text": "x", "attachments": [{}] * 101}),
            400,
            "too_many_attachments",
        ),
        (
            httpx.post(url.rsplit("/", 1)[0] + "/wrongsecret", json={"text": "x"}),
            403,
            "invalid_token",
        ),
        (
            httpx.post(server.url("slack") + "/services/T1/B1/X1", json={"text": "x"}),
            404,
            "no_service",
        ),
    ]
    for answer, status, body in cases:
        assert (answer.status_code, answer.text) == (status, body)
    form = httpx.post(url, data={"payload": json.dumps({"text": "from a form"})})
    assert form.text == "ok" and state.messages()[-1].text == "from a form"
    state.archive(state.channel)
    archived = httpx.post(url, json={"text": "x"})
    assert (archived.status_code, archived.text) == (410, "channel_is_archived")


def test_webhook_429_has_retry_after(server: SandboxServer, state: SlackState) -> None:
    state.rate_limit_next(1, retry_after=3)
    limited = httpx.post(server.slack_webhook_url, json={"text": "x"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert httpx.post(server.slack_webhook_url, json={"text": "x"}).text == "ok"


def test_slack_sdk_webhook_client_reads_it(server: SandboxServer) -> None:
    response = WebhookClient(server.slack_webhook_url).send(text="via slack-sdk")
    assert (response.status_code, response.body) == (200, "ok")


def test_chat_post_message_documented_bodies(server: SandboxServer, state: SlackState) -> None:
    api = server.slack_api_url
    auth = {"Authorization": f"Bearer {state.bot_token}"}
    ok = httpx.post(
        api + "chat.postMessage",
        json={"channel": state.channel, "text": "hi", "blocks": [section("*hi*")]},
        headers=auth,
    ).json()
    assert (
        ok["ok"] is True and ok["channel"] == state.channel and ok["ts"] == state.messages()[0].ts
    )
    assert ok["message"]["text"] == "hi" and ok["message"]["blocks"] == [section("*hi*")]
    assert ok["warning"] == "missing_charset"  # like Slack, for JSON without a charset

    def error(body: dict[str, Any], headers: dict[str, str] | None = None) -> str:
        answer = httpx.post(
            api + "chat.postMessage", json=body, headers=auth if headers is None else headers
        )
        assert answer.status_code == 200
        data = answer.json()
        assert data["ok"] is False
        return str(data["error"])

    assert error({"channel": state.channel, "text": "x"}, headers={}) == "not_authed"
    assert (
        error(
            {"channel": state.channel, "text": "x"}, headers={"Authorization": "Bearer xoxb-nope"}
        )
        == "invalid_auth"
    )
    assert error({"channel": "C404", "text": "x"}) == "channel_not_found"
    assert error({"channel": state.channel}) == "no_text"
    assert (
        error({"channel": state.channel, "text": "x", "blocks": [section("x")] * 51})
        == "invalid_blocks"
    )
    assert (
        error(
            {
                "channel": state.channel,
                "text": "x",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            }
        )
        == "invalid_blocks"
    )
    assert (
        error({"channel": state.channel, "text": "x", "blocks": [section("s" * 3001)]})
        == "invalid_blocks"
    )
    assert (
        error(
            {
                "channel": state.channel,
                "text": "x",
                "blocks": [{"type": "markdown", "text": "m" * 7000}] * 2,
            }
        )
        == "msg_blocks_too_long"
    )
    private = state.add_channel("private", is_member=False)
    assert error({"channel": private, "text": "x"}) == "not_in_channel"
    state.archive(state.channel)
    assert error({"channel": state.channel, "text": "x"}) == "is_archived"
    details = httpx.post(
        api + "chat.postMessage",
        json={"channel": "#private", "text": "x", "blocks": [section("x")] * 60},
        headers=auth,
    ).json()
    assert details["error"] in ("not_in_channel", "invalid_blocks")
    unknown = httpx.post(api + "no.such.method", headers=auth)
    assert unknown.status_code == 404 and unknown.json() == {"ok": False, "error": "unknown_method"}


def test_invalid_blocks_explain_why(server: SandboxServer, state: SlackState) -> None:
    answer = httpx.post(
        server.slack_api_url + "chat.postMessage",
        json={"channel": state.channel, "text": "x", "blocks": [section("x")] * 51},
        headers={"Authorization": f"Bearer {state.bot_token}"},
    ).json()
    assert answer["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]


def test_slack_sdk_web_client_reads_it(server: SandboxServer, state: SlackState) -> None:
    client = WebClient(token=state.bot_token, base_url=server.slack_api_url)
    posted = client.chat_postMessage(
        channel=state.channel,
        text="from sdk",
        metadata={"event_type": "t", "event_payload": {"k": "v"}},
    )
    assert posted["ok"] and posted["channel"] == state.channel
    history = client.conversations_history(channel=state.channel, include_all_metadata=True)
    assert history["messages"][0]["metadata"] == {"event_type": "t", "event_payload": {"k": "v"}}
    assert client.auth_test()["bot_id"].startswith("B")
    state.rate_limit_next(1, retry_after=5)
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=state.channel, text="limited")
    assert info.value.response.status_code == 429 and info.value.response["error"] == "ratelimited"
    assert info.value.response.headers["retry-after"] == "5"


def test_channel_burst_limit(server: SandboxServer, state: SlackState) -> None:
    now = [100.0]
    state.clock = lambda: now[0]
    state.channel_burst = 2
    answers = [
        httpx.post(server.slack_webhook_url, json={"text": str(n)}).status_code for n in range(3)
    ]
    assert answers == [200, 200, 429]
    now[0] += 1.0
    assert httpx.post(server.slack_webhook_url, json={"text": "later"}).status_code == 200
