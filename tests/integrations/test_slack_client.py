"""The Slack notifier against the Slack sandbox over real sockets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contexten.integrations.http import RetryPolicy
from contexten.integrations.idempotency import ActionLedger
from contexten.integrations.interface import ErrorReason, Message, NotifierError
from contexten.integrations.slack import (
    SlackNotifier,
    fit_blocks,
    header,
    render_diagnosis_message,
)
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.slack import SlackState, validate_blocks
from contexten.sandbox.testing import running_sandbox
from contexten.store.db import Store


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def policy(sleep: FakeSleep) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=12, base_delay=0.01, max_total_seconds=600, timeout_seconds=5, sleep=sleep
    )


@pytest.fixture
def ledger(tmp_path: Path, policy: RetryPolicy) -> Iterator[ActionLedger]:
    store = Store(f"sqlite:///{tmp_path / 'contexten.db'}")
    store.migrate()
    yield ActionLedger(store, policy=policy)
    store.dispose()


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with running_sandbox(services=("slack",)) as running:
        yield running


@pytest.fixture
def slack(server: SandboxServer) -> SlackState:
    state = server.state.slack
    assert isinstance(state, SlackState)
    return state


def api_notifier(
    server: SandboxServer, ledger: ActionLedger, policy: RetryPolicy, token: str | None = None
) -> SlackNotifier:
    return SlackNotifier(
        ledger=ledger,
        bot_token=token or server.state.slack.bot_token,
        channel=server.state.slack.channel,
        api_url=server.slack_api_url,
        policy=policy,
    )


def webhook_notifier(
    server: SandboxServer, ledger: ActionLedger, policy: RetryPolicy, url: str | None = None
) -> SlackNotifier:
    return SlackNotifier(ledger=ledger, webhook_url=url or server.slack_webhook_url, policy=policy)


def diagnosis(key: str | None = None) -> Message:
    return render_diagnosis_message(
        title="pytest assertion in tests/test_api.py",
        summary="1 test failed deterministically; not re-run.",
        repository="acme/app",
        run_url="https://github.com/acme/app/actions/runs/42",
        job_name="test (3.11)",
        category="test_failure",
        confidence=0.93,
        evidence=["E   assert 1 == 2", "<!channel> & <https://evil|click>"],
        failing_tests=["tests/test_api.py::test_x"],
        actions=["opened ENG-7"],
        signature="abc123",
        key=key,
    )


# ----------------------------------------------------------------------------- Block Kit


def test_fit_blocks_keeps_a_huge_message_inside_slacks_limits() -> None:
    blocks = [header("H" * 400)] + [
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 5000}} for _ in range(70)
    ]
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 3000}] * 14})
    assert validate_blocks(blocks) is not None  # Slack would refuse the raw blocks
    fitted = fit_blocks(blocks)
    assert validate_blocks(fitted) is None
    assert len(fitted) == 50 and "more blocks not shown" in fitted[-1]["elements"][0]["text"]
    assert len(fitted[0]["text"]["text"]) == 150


text_objects = st.fixed_dictionaries(
    {"type": st.sampled_from(["mrkdwn", "plain_text"]), "text": st.text(min_size=1, max_size=6000)}
)
any_block = st.one_of(
    st.builds(lambda t: {"type": "header", "text": t}, text_objects),
    st.builds(lambda t: {"type": "section", "text": t}, text_objects),
    st.builds(
        lambda fs: {"type": "section", "fields": fs},
        st.lists(text_objects, min_size=1, max_size=15),
    ),
    st.builds(
        lambda es: {"type": "context", "elements": es},
        st.lists(text_objects, min_size=1, max_size=14),
    ),
    st.just({"type": "divider"}),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(any_block, max_size=80))
def test_fit_blocks_output_is_always_accepted(blocks: list[dict[str, Any]]) -> None:
    assert validate_blocks(fit_blocks(blocks)) is None


def test_diagnosis_message_escapes_log_text_and_has_a_fallback() -> None:
    message = diagnosis()
    assert validate_blocks(list(message.blocks)) is None
    rendered = str(message.blocks)
    assert (
        "<!channel>" not in rendered
        and "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;" in rendered
    )
    assert "E   assert 1 == 2" in rendered
    assert message.text.startswith("[acme/app] CI failure:") and len(message.text) <= 4000


def test_evidence_longer_than_a_section_is_cut_at_whole_lines() -> None:
    lines = [f"line {n:04d} " + "x" * 80 for n in range(200)]
    message = render_diagnosis_message(title="t", summary="s", evidence=lines)
    code = next(
        b["text"]["text"]
        for b in message.blocks
        if b.get("text", {}).get("text", "").startswith("```")
    )
    assert len(code) <= 3000 and code.endswith("more lines\n```")
    assert "line 0000 " in code and "line 0199" not in code


# ----------------------------------------------------------------------------- posting


async def test_chat_post_message_posts_once_per_key(
    server: SandboxServer, slack: SlackState, ledger: ActionLedger, policy: RetryPolicy
) -> None:
    notifier = api_notifier(server, ledger, policy)
    posted = await notifier.post(diagnosis())
    again = await notifier.post(diagnosis())
    assert posted == again and posted.via == "chat.postMessage" and posted.channel == slack.channel
    [stored] = slack.messages(slack.channel)
    assert stored.ts == posted.ts and stored.via == "chat.postMessage"
    assert stored.text.startswith("[acme/app] CI failure") and len(stored.blocks) == len(
        diagnosis().blocks
    )
    reply = await notifier.post(Message(text="re-run passed", thread_ts=posted.ts))
    assert slack.messages()[-1].thread_ts == posted.ts and reply.ts != posted.ts


async def test_webhook_posts_once_per_key(
    server: SandboxServer, slack: SlackState, ledger: ActionLedger, policy: RetryPolicy
) -> None:
    notifier = webhook_notifier(server, ledger, policy)
    first = await notifier.post(diagnosis(key="k1"))
    second = await notifier.post(diagnosis(key="k1"))
    third = await notifier.post(diagnosis(key="k2"))
    assert first == second == third and first.via == "webhook"
    assert [m.via for m in slack.messages()] == ["webhook", "webhook"]


@pytest.mark.parametrize("via", ["api", "webhook"])
async def test_429_is_retried_after_retry_after(
    via: str,
    server: SandboxServer,
    slack: SlackState,
    ledger: ActionLedger,
    policy: RetryPolicy,
    sleep: FakeSleep,
) -> None:
    notifier = (
        api_notifier(server, ledger, policy)
        if via == "api"
        else webhook_notifier(server, ledger, policy)
    )
    slack.rate_limit_next(2, retry_after=4)
    await notifier.post(Message(text="hello"))
    assert sleep.delays == [4.0, 4.0] and len(slack.messages()) == 1


async def test_refused_blocks_are_an_invalid_error_not_retried(
    server: SandboxServer, ledger: ActionLedger, policy: RetryPolicy, sleep: FakeSleep
) -> None:
    notifier = api_notifier(server, ledger, policy)
    bad = Message(text="x", blocks=({"type": "no_such_block"},))
    with pytest.raises(NotifierError) as info:
        await notifier.post(bad)
    assert info.value.reason is ErrorReason.INVALID and "invalid_blocks" in str(info.value)
    assert sleep.delays == []


async def test_bad_credentials_never_leak(
    server: SandboxServer,
    ledger: ActionLedger,
    policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "xoxb-wrong-0000000000-not-a-real-token"
    bad_hook = server.url("slack") + "/services/T0SANDBOX/B0SANDBOX/wrongSecretWrongSecret00"
    notifier = api_notifier(server, ledger, policy, token=token)
    hook = webhook_notifier(server, ledger, policy, url=bad_hook)
    with pytest.raises(NotifierError) as api_error:
        await notifier.post(Message(text="hi"))
    with pytest.raises(NotifierError) as hook_error:
        await hook.post(Message(text="hi"))
    api_check, hook_check = await notifier.check(), await hook.check()
    assert (
        api_error.value.reason is ErrorReason.AUTH and hook_error.value.reason is ErrorReason.AUTH
    )
    assert api_check.status == hook_check.status == "down"
    assert "invalid_auth" in api_check.detail and "invalid_token" in hook_check.detail
    texts = [
        str(api_error.value),
        repr(hook_error.value),
        str(hook_error.value),
        repr(notifier),
        repr(hook),
        api_check.detail,
        hook_check.detail,
        caplog.text,
    ]
    for text in texts:
        assert token not in text and "wrongSecretWrongSecret00" not in text


async def test_check_ok_for_live_credentials_and_posts_nothing(
    server: SandboxServer, slack: SlackState, ledger: ActionLedger, policy: RetryPolicy
) -> None:
    api, hook = api_notifier(server, ledger, policy), webhook_notifier(server, ledger, policy)
    assert (await api.check()).status == "ok"
    assert (await hook.check()).status == "ok"
    assert slack.messages() == []
    slack.archive(slack.channel)
    assert (await hook.check()).status == "ok"  # the hook itself is alive
    with pytest.raises(NotifierError) as info:
        await hook.post(Message(text="x"))
    assert info.value.reason is ErrorReason.NOT_FOUND and "channel_is_archived" in str(info.value)


async def test_no_lost_or_duplicated_posts_at_20_percent_faults(
    server: SandboxServer,
    slack: SlackState,
    ledger: ActionLedger,
    policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = server.faults["slack"]
    faults.add(error_rate=0.05, drop_before_rate=0.05, error_after_rate=0.05, drop_rate=0.05)
    faults.rate_limit(2, wait=1)
    notifier = api_notifier(server, ledger, policy)
    keys = [f"alert-{n:02d}" for n in range(40)]
    for _ in range(2):  # every event delivered twice
        for key in keys:
            await notifier.post(Message(text=f"alert {key}", idempotency_key=key))
    texts = sorted(m.text for m in slack.messages())
    assert texts == sorted(f"alert {k}" for k in keys)
    assert sum(faults.counts.values()) >= 5  # the faults really happened
    assert server.state.slack.bot_token not in caplog.text


@pytest.mark.parametrize("fault", ["error_after_rate", "drop_rate"])
async def test_post_that_landed_despite_a_failure_is_found_not_repeated(
    fault: str, server: SandboxServer, slack: SlackState, ledger: ActionLedger, policy: RetryPolicy
) -> None:
    server.faults["slack"].add(path="/api/chat.postMessage", **{fault: 1.0})
    notifier = api_notifier(server, ledger, policy)
    posted = await notifier.post(Message(text="landed", idempotency_key="once"))
    [stored] = slack.messages()
    assert stored.text == "landed" and posted.ts == stored.ts
    assert (
        server.faults["slack"].counts[fault.replace("_rate", "").replace("drop", "drop_after")] == 1
    )


async def test_webhook_at_20_percent_faults_loses_nothing(
    server: SandboxServer,
    slack: SlackState,
    ledger: ActionLedger,
    policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A webhook post cannot be looked up: after a fault that hides whether it landed it is
    sent again. So none is ever lost, and duplicates come only from such faults."""
    caplog.set_level(logging.DEBUG)
    faults = server.faults["slack"]
    faults.add(error_rate=0.05, drop_before_rate=0.05, error_after_rate=0.05, drop_rate=0.05)
    faults.rate_limit(2, wait=1)
    notifier = webhook_notifier(server, ledger, policy)
    keys = [f"alert-{n:02d}" for n in range(40)]
    for _ in range(2):
        for key in keys:
            await notifier.post(Message(text=f"alert {key}", idempotency_key=key))
    texts = [m.text for m in slack.messages()]
    assert set(texts) == {f"alert {k}" for k in keys}
    ambiguous_landed = faults.counts["error_after"] + faults.counts["drop_after"]
    assert len(texts) - len(keys) <= ambiguous_landed
    assert server.slack_webhook_url.rsplit("/", 1)[1] not in caplog.text


async def test_factory_prefers_the_bot_token_and_falls_back_to_the_webhook(
    server: SandboxServer,
) -> None:
    from contexten.config import Settings
    from contexten.integrations.factory import slack_notifier

    env = {k.lower(): v for k, v in server.env().items()}
    both = slack_notifier(Settings(**env))
    webhook_only = slack_notifier(
        Settings(**{**env, "slack_bot_token": None, "slack_channel": None})
    )
    assert slack_notifier(Settings(slack_webhook_url=None, slack_bot_token=None)) is None
    assert both is not None and webhook_only is not None
    assert "chat.postMessage" in repr(both) and "webhook" in repr(webhook_only)
    assert (await both.check()).status == (await webhook_only.check()).status == "ok"
