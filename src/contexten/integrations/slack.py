"""Slack notifications with slack-sdk: `chat.postMessage` (bot token) or an incoming webhook.

Messages are Block Kit blocks plus a plain-text fallback; `fit_blocks` keeps any message
inside Slack's limits (50 blocks, section text 3000, header 150, ...) so Slack never answers
`invalid_blocks`, and `render_diagnosis_message` builds the message for a diagnosed CI
failure with untrusted log text escaped.

Retries: slack-sdk's own retry handlers are switched off and every call runs under the
shared policy (`http.call_with_retries`), which honours `Retry-After` on 429 and never
re-sends a post that may have gone through. Idempotency: each post has a key (the message's
`idempotency_key`, or one derived from its content) recorded in the ActionLedger. With a
bot token the key also travels in the message's `metadata`, so after an ambiguous failure
(a dropped connection after sending) `conversations.history` tells whether the post landed.
An incoming webhook offers no way to look a post up: after an ambiguous failure it is sent
again (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import SecretStr

from contexten.integrations.http import (
    AttemptFailure,
    FailedAttempt,
    RetryPolicy,
    call_with_retries,
    classify_response,
)
from contexten.integrations.idempotency import ActionLedger, ActsOnce, idempotency_key
from contexten.integrations.interface import (
    CheckResult,
    ErrorReason,
    Message,
    Notifier,
    NotifierError,
    PostedMessage,
)
from contexten.integrations.redaction import install_log_redaction

log = logging.getLogger(__name__)

SERVICE = "slack"
METADATA_EVENT_TYPE = "contexten_notification"

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BLOCK_ID = 255
MAX_FALLBACK_TEXT = 4000
MAX_CODE_LINE = 500
ELLIPSIS = "…"

_AUTH_ERRORS = {
    "not_authed", "invalid_auth", "token_revoked", "token_expired", "account_inactive",
    "missing_scope", "not_in_channel", "no_permission", "ekm_access_denied", "action_prohibited",
    "invalid_token", "team_disabled", "posting_to_general_channel_denied",
}  # fmt: skip
_NOT_FOUND_ERRORS = {
    "channel_not_found", "is_archived", "channel_is_archived", "no_service", "no_service_id",
    "no_team", "no_active_hooks", "user_not_found",
}  # fmt: skip
_UNAVAILABLE_ERRORS = {
    "internal_error", "service_unavailable", "fatal_error", "request_timeout", "rollup_error",
}  # fmt: skip
_RATE_LIMIT_ERRORS = {"ratelimited", "rate_limited", "message_limit_exceeded"}


# ----------------------------------------------------------------------------- Block Kit


def escape(text: str) -> str:
    """Escape &, < and > so Slack shows text literally (no <!channel> or links from logs)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(text, MAX_HEADER_TEXT), "emoji": True},
    }


def section(markdown: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate(markdown, MAX_SECTION_TEXT)},
    }


def fields(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    items = [
        {"type": "mrkdwn", "text": truncate(f"*{escape(k)}*\n{v}", MAX_FIELD_TEXT)}
        for k, v in list(pairs)[:MAX_SECTION_FIELDS]
    ]
    return {"type": "section", "fields": items}


def context(*texts: str) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": truncate(t, MAX_SECTION_TEXT)} for t in texts if t]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def code_section(lines: Sequence[str], *, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    """Log lines verbatim (escaped) in a code block: as many whole lines as fit, then a note."""
    budget = limit - len("```\n\n```")
    rendered = [truncate(escape(line.replace("```", "ˋˋˋ")), MAX_CODE_LINE) for line in lines]
    kept: list[str] = []
    used = 0
    for i, text in enumerate(rendered):
        rest = len(rendered) - i - 1
        reserve = len(f"{ELLIPSIS} {rest} more lines") + 1 if rest else 0
        if used + len(text) + 1 + reserve > budget:
            kept.append(f"{ELLIPSIS} {len(rendered) - i} more lines")
            break
        kept.append(text)
        used += len(text) + 1
    return section("```\n" + ("\n".join(kept) or " ") + "\n```")


def _fit_text_object(obj: Any, limit: int) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        obj["text"] = truncate(obj["text"], limit) or " "
    return obj


def fit_blocks(blocks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A copy of `blocks` that Slack accepts: texts cut to their limits, at most 50 blocks."""
    fitted: list[dict[str, Any]] = []
    for original in blocks:
        block = copy.deepcopy(dict(original))
        kind = block.get("type")
        if isinstance(block.get("block_id"), str):
            block["block_id"] = block["block_id"][:MAX_BLOCK_ID]
        if kind == "header":
            text = block.get("text")
            if isinstance(text, dict):
                text["type"] = "plain_text"
            _fit_text_object(text, MAX_HEADER_TEXT)
        elif kind == "section":
            _fit_text_object(block.get("text"), MAX_SECTION_TEXT)
            if isinstance(block.get("fields"), list):
                block["fields"] = [
                    _fit_text_object(f, MAX_FIELD_TEXT)
                    for f in block["fields"][:MAX_SECTION_FIELDS]
                ]
                if not block["fields"]:
                    del block["fields"]
            if not block.get("text") and not block.get("fields"):
                continue
        elif kind in ("context", "actions") and isinstance(block.get("elements"), list):
            limit = MAX_CONTEXT_ELEMENTS if kind == "context" else MAX_ACTIONS_ELEMENTS
            block["elements"] = block["elements"][:limit]
            if kind == "context":
                block["elements"] = [
                    _fit_text_object(e, MAX_SECTION_TEXT) for e in block["elements"]
                ]
            if not block["elements"]:
                continue
        fitted.append(block)
    if len(fitted) > MAX_BLOCKS:
        dropped = len(fitted) - (MAX_BLOCKS - 1)
        fitted = [*fitted[: MAX_BLOCKS - 1], context(f"{ELLIPSIS} {dropped} more blocks not shown")]
    return fitted


def fallback_text(text: str, blocks: Sequence[Mapping[str, Any]] = ()) -> str:
    """The plain-text fallback (notifications, screen readers): never empty, ≤ 4000 chars."""
    text = text.strip()
    if not text:
        for block in blocks:
            inner = block.get("text")
            if (
                isinstance(inner, dict)
                and isinstance(inner.get("text"), str)
                and inner["text"].strip()
            ):
                text = inner["text"].strip()
                break
    return truncate(text or "contexten notification", MAX_FALLBACK_TEXT)


def render_diagnosis_message(
    *,
    title: str,
    summary: str,
    repository: str | None = None,
    run_url: str | None = None,
    job_name: str | None = None,
    category: str | None = None,
    confidence: float | None = None,
    evidence: Sequence[str] = (),
    failing_tests: Sequence[str] = (),
    actions: Sequence[str] = (),
    links: Mapping[str, str] | None = None,
    signature: str | None = None,
    key: str | None = None,
) -> Message:
    """The Slack message for a diagnosed CI failure. Untrusted text (logs, test names) is
    escaped; the evidence lines are shown verbatim in a code block."""
    blocks: list[dict[str, Any]] = [header(f"CI failure: {title}"), section(escape(summary))]
    facts: list[tuple[str, str]] = []
    if repository:
        facts.append(("Repository", escape(repository)))
    if job_name:
        facts.append(("Job", escape(job_name)))
    if category:
        facts.append(("Category", escape(category)))
    if confidence is not None:
        facts.append(("Confidence", f"{confidence:.0%}"))
    if facts:
        blocks.append(fields(facts))
    if evidence:
        blocks.append(section("*Evidence*"))
        blocks.append(code_section(list(evidence)))
    if failing_tests:
        shown = [f"• `{escape(t)}`" for t in failing_tests[:20]]
        if len(failing_tests) > 20:
            shown.append(f"{ELLIPSIS} and {len(failing_tests) - 20} more")
        blocks.append(section("*Failing tests*\n" + "\n".join(shown)))
    if actions:
        blocks.append(
            section("*What contexten did*\n" + "\n".join(f"• {escape(a)}" for a in actions))
        )
    link_items = dict(links or {})
    if run_url:
        link_items = {"Workflow run": run_url, **link_items}
    if link_items:
        rendered = " · ".join(f"<{url}|{escape(label)}>" for label, url in link_items.items())
        blocks.append(context(rendered))
    if signature:
        blocks.append(context(f"signature `{escape(signature)}`"))
    text = f"CI failure: {title} — {summary}"
    if repository:
        text = f"[{repository}] {text}"
    if run_url:
        text += f" {run_url}"
    return Message(text=fallback_text(text), blocks=tuple(fit_blocks(blocks)), idempotency_key=key)


# ----------------------------------------------------------------------------- errors


def _slack_failure(status: int, headers: Mapping[str, str], error: str) -> AttemptFailure:
    """What a Slack error code means (Web API `error`, or a webhook's plain-text body)."""
    detail = f"HTTP {status}: {error}" if error else f"HTTP {status}"
    if status == 429 or error in _RATE_LIMIT_ERRORS:
        limited = classify_response(429, headers, error, time.time())
        assert limited is not None
        return replace(limited, status_code=status, detail=detail)
    if status >= 500 or error in _UNAVAILABLE_ERRORS:
        return AttemptFailure(
            ErrorReason.UNAVAILABLE,
            detail,
            retryable=True,
            status_code=status,
            maybe_processed=True,
        )
    if error in _AUTH_ERRORS:
        return AttemptFailure(ErrorReason.AUTH, detail, retryable=False, status_code=status)
    if error in _NOT_FOUND_ERRORS:
        return AttemptFailure(ErrorReason.NOT_FOUND, detail, retryable=False, status_code=status)
    return AttemptFailure(ErrorReason.INVALID, detail, retryable=False, status_code=status)


def classify_slack_exception(exc: BaseException) -> AttemptFailure | None:
    """slack-sdk errors and the aiohttp transport errors under them."""
    import aiohttp
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        response = exc.response
        data = getattr(response, "data", None)
        error = str(data.get("error", "")) if isinstance(data, dict) else str(data or "").strip()
        headers = {k: v for k, v in dict(getattr(response, "headers", {}) or {}).items()}
        status = int(getattr(response, "status_code", 200) or 200)
        return _slack_failure(status, headers, error[:100])
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):  # nothing was sent
        return AttemptFailure(ErrorReason.UNAVAILABLE, f"cannot connect ({name})", retryable=True)
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError):
        return AttemptFailure(
            ErrorReason.UNAVAILABLE,
            f"connection failed ({name})",
            retryable=True,
            maybe_processed=True,
        )
    return None


# ----------------------------------------------------------------------------- client


def _secret(value: SecretStr | str | None) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value() or None
    return value or None


class SlackNotifier(ActsOnce, Notifier):
    """Posts with `chat.postMessage` when a bot token and channel are set, else the webhook."""

    def __init__(
        self,
        *,
        ledger: ActionLedger | None = None,
        webhook_url: SecretStr | str | None = None,
        bot_token: SecretStr | str | None = None,
        channel: str | None = None,
        api_url: str = "https://slack.com/api/",
        policy: RetryPolicy | None = None,
    ) -> None:
        from slack_sdk.web.async_client import AsyncWebClient
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        webhook = _secret(webhook_url)
        token = _secret(bot_token)
        if not webhook and not (token and channel):
            raise NotifierError(
                "slack: set SLACK_WEBHOOK_URL, or SLACK_BOT_TOKEN and SLACK_CHANNEL",
                reason=ErrorReason.AUTH,
                service=SERVICE,
            )
        # The webhook's last path segment is its secret: mask it even where a URL is shown
        # in another form (e.g. normalised by aiohttp).
        hook_secret = webhook.rstrip("/").rsplit("/", 1)[-1] if webhook else None
        install_log_redaction([webhook, hook_secret, token])
        self.ledger = ledger
        self.policy = policy or RetryPolicy()
        self.channel = channel
        self.api_url = api_url
        timeout = max(1, int(self.policy.timeout_seconds))
        # retry_handlers=[]: the shared policy retries; slack-sdk's connection-error handler
        # would re-send a post after a dropped connection and post it twice.
        self._webhook = (
            AsyncWebhookClient(webhook, timeout=timeout, retry_handlers=[]) if webhook else None
        )
        self._web = (
            AsyncWebClient(token=token, base_url=api_url, timeout=timeout, retry_handlers=[])
            if token and channel
            else None
        )

    def __repr__(self) -> str:
        via = "chat.postMessage" if self._web else "webhook"
        return f"SlackNotifier(via={via!r}, channel={self.channel!r})"

    async def aclose(self) -> None:
        """slack-sdk opens a session per request; nothing to release."""

    # ------------------------------------------------------------------ posting

    async def post(self, message: Message) -> PostedMessage:
        blocks = fit_blocks(message.blocks)
        text = fallback_text(message.text, blocks)
        via = "chat.postMessage" if self._web else "webhook"
        destination = self.channel if self._web else "webhook"
        key = message.idempotency_key or idempotency_key(
            "slack_message", destination, text, blocks, message.thread_ts
        )
        started = time.time()

        async def perform() -> dict[str, Any]:
            if self._web is not None:
                return await self._post_api(text, blocks, message.thread_ts, key)
            return await self._post_webhook(text, blocks, message.thread_ts)

        async def find_existing() -> dict[str, Any] | None:
            if self._web is None:
                return None  # a webhook post cannot be looked up
            return await self._find_posted(key, since=started - 300)

        result = await self._once(
            key, "slack_message", f"slack:{destination}", perform, find_existing
        )
        return PostedMessage(
            channel=result.get("channel"),
            ts=result.get("ts"),
            via="chat.postMessage" if result.get("via", via) == "chat.postMessage" else "webhook",
        )

    async def _post_api(
        self, text: str, blocks: list[dict[str, Any]], thread_ts: str | None, key: str
    ) -> dict[str, Any]:
        assert self._web is not None and self.channel is not None
        web, channel = self._web, self.channel

        async def call() -> dict[str, Any]:
            response = await web.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks or None,
                thread_ts=thread_ts,
                metadata={"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": key}},
                unfurl_links=False,
                unfurl_media=False,
            )
            return {
                "channel": response.get("channel"),
                "ts": response.get("ts"),
                "via": "chat.postMessage",
            }

        return await self._retry(call, what="chat.postMessage", unsafe=True)

    async def _post_webhook(
        self, text: str, blocks: list[dict[str, Any]], thread_ts: str | None
    ) -> dict[str, Any]:
        assert self._webhook is not None
        webhook = self._webhook
        body: dict[str, Any] = {"text": text}
        if blocks:
            body["blocks"] = blocks
        if thread_ts:
            body["thread_ts"] = thread_ts

        async def call() -> dict[str, Any]:
            response = await webhook.send_dict(body)
            if response.status_code == 200 and response.body.strip() == "ok":
                return {"channel": None, "ts": None, "via": "webhook"}
            headers = {k: str(v) for k, v in dict(response.headers or {}).items()}
            raise FailedAttempt(
                _slack_failure(response.status_code, headers, response.body.strip()[:100])
            )

        return await self._retry(call, what="incoming webhook post", unsafe=True)

    async def _find_posted(self, key: str, *, since: float) -> dict[str, Any] | None:
        """The message carrying `key` in its metadata, from conversations.history."""
        assert self._web is not None and self.channel is not None
        web, channel = self._web, self.channel
        cursor: str | None = None
        for _ in range(5):  # at most 1000 recent messages

            async def call(cursor: str | None = cursor) -> Any:
                return await web.conversations_history(
                    channel=channel,
                    oldest=f"{since:.6f}",
                    limit=200,
                    include_all_metadata=True,
                    cursor=cursor,
                )

            try:
                response = await self._retry(call, what="conversations.history", unsafe=False)
            except NotifierError as exc:
                if exc.reason is ErrorReason.AUTH:  # e.g. no channels:history scope
                    log.warning("slack: cannot look up earlier posts: %s", exc)
                    return None
                raise
            for item in response.get("messages") or ():
                metadata = item.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == METADATA_EVENT_TYPE and payload.get("key") == key:
                    return {"channel": channel, "ts": item.get("ts"), "via": "chat.postMessage"}
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or not cursor:
                return None
        return None

    async def _retry(self, call: Any, *, what: str, unsafe: bool) -> Any:
        return await call_with_retries(
            call,
            policy=self.policy,
            classify=classify_slack_exception,
            error_type=NotifierError,
            what=what,
            service=SERVICE,
            unsafe=unsafe,
        )

    # ------------------------------------------------------------------ health

    async def check(self) -> CheckResult:
        """Bot token: auth.test. Webhook only: an empty post, which Slack refuses with
        `no_text`/`invalid_payload` (400) for a live webhook and with `no_service` (404) or
        `invalid_token` (403) for a dead one; nothing is posted."""
        started = self.policy.monotonic()
        quick = replace(self.policy, max_attempts=min(2, self.policy.max_attempts))
        quick = replace(quick, max_total_seconds=min(10.0, quick.max_total_seconds))
        try:
            if self._web is not None:
                web = self._web

                async def call() -> Any:
                    return await web.auth_test()

                response = await call_with_retries(
                    call,
                    policy=quick,
                    classify=classify_slack_exception,
                    error_type=NotifierError,
                    what="auth.test",
                    service=SERVICE,
                )
                detail = f"authenticated as {response.get('user')} in {response.get('team')}"
            else:
                detail = await self._check_webhook(quick)
        except NotifierError as exc:
            return CheckResult.failed(SERVICE, exc)
        latency = (self.policy.monotonic() - started) * 1000
        return CheckResult(SERVICE, "ok", latency_ms=latency, detail=detail)

    async def _check_webhook(self, policy: RetryPolicy) -> str:
        assert self._webhook is not None
        webhook = self._webhook

        async def call() -> str:
            response = await webhook.send_dict({})
            body = response.body.strip()
            if response.status_code == 400 and body in ("no_text", "invalid_payload"):
                return "webhook accepted the request (empty test post refused as expected)"
            headers = {k: str(v) for k, v in dict(response.headers or {}).items()}
            raise FailedAttempt(_slack_failure(response.status_code, headers, body[:100]))

        result: str = await call_with_retries(
            call,
            policy=policy,
            classify=classify_slack_exception,
            error_type=NotifierError,
            what="webhook check",
            service=SERVICE,
        )
        return result
