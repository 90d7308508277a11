"""A local Slack: incoming webhooks and the Web API methods contexten calls.

- `POST /services/T…/B…/X…` (incoming webhook): HTTP 200 with the plain-text body `ok`, or a
  plain-text error name with its status: 400 `invalid_payload` / `no_text` /
  `invalid_blocks` / `too_many_attachments`, 403 `invalid_token` / `action_prohibited`,
  404 `no_service` / `channel_not_found`, 410 `channel_is_archived`, 429 with `Retry-After`.
- `POST /api/chat.postMessage`: bearer token (or a `token` form field), JSON or form body;
  HTTP 200 `{"ok": true, "channel", "ts", "message"}` or `{"ok": false, "error": …}`; HTTP 429
  `{"ok": false, "error": "ratelimited"}` with `Retry-After`.
- `POST /api/conversations.history`: a channel's top-level messages, newest first
  (`oldest`, `latest`, `limit`, `cursor`, `include_all_metadata` for message metadata).
- `POST /api/auth.test`: who the token is (for health checks).

Block Kit is validated server-side as Slack does (at most 50 blocks, section text ≤ 3000,
header ≤ 150, …) and answered with `invalid_blocks` (details in `response_metadata.messages`)
or `msg_blocks_too_long` (markdown blocks over 12,000 characters in total).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from contexten.sandbox.state import (
    SANDBOX_SLACK_BOT_TOKEN,
    SANDBOX_SLACK_CHANNEL,
    SANDBOX_SLACK_WEBHOOK_PATH,
)

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BLOCK_ID = 255
MAX_MARKDOWN_TOTAL = 12_000
MAX_ATTACHMENTS = 100
MAX_TEXT = 40_000  # Slack truncates longer text
MAX_BODY_BYTES = 1_000_000

BLOCK_TYPES = {
    "section", "header", "divider", "context", "actions", "image", "input",
    "rich_text", "markdown", "file", "video", "table",
}  # fmt: skip

Via = Literal["webhook", "chat.postMessage"]


@dataclass
class SlackChannel:
    id: str
    name: str
    is_member: bool = True
    archived: bool = False


@dataclass
class SlackBot:
    token: str
    team_id: str
    user_id: str
    bot_id: str
    scopes: frozenset[str] = frozenset({"chat:write", "channels:history"})
    revoked: bool = False


@dataclass
class SlackWebhook:
    team: str
    bot: str
    secret: str
    channel_id: str

    @property
    def path(self) -> str:
        return f"/services/{self.team}/{self.bot}/{self.secret}"


@dataclass
class SlackMessage:
    channel: str
    ts: str
    text: str
    via: Via
    blocks: list[Any] = field(default_factory=list)
    attachments: list[Any] = field(default_factory=list)
    thread_ts: str | None = None
    bot_id: str | None = None
    metadata: dict[str, Any] | None = None


class SlackState:
    """In-memory Slack workspace. Thread-safe; tests seed and inspect it directly.

    A fresh state has the channel `channel` (#ci-alerts), a bot whose token is `bot_token`
    (a member of it) and an incoming webhook at `webhook_path` posting to it.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0SANDBOX",
        team_name: str = "Sandbox",
        channel_burst: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`channel_burst`: when set, each channel takes about one message per second with
        bursts of this many (Slack's documented limit); None disables that limit."""
        self.lock = threading.RLock()
        self.team_id = team_id
        self.team_name = team_name
        self.clock = clock
        self.channel_burst = channel_burst
        self.channels: dict[str, SlackChannel] = {}
        self.bots: dict[str, SlackBot] = {}
        self.webhooks: dict[str, SlackWebhook] = {}
        self.message_log: list[SlackMessage] = []
        self._scripted: list[list[int]] = []  # [[remaining, retry_after], ...]
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)
        self._ts_counter = 0
        self._ids = 0
        self.channel = self.add_channel("ci-alerts", channel_id=SANDBOX_SLACK_CHANNEL)
        self.bot_token = self.add_bot(SANDBOX_SLACK_BOT_TOKEN).token
        self.webhook_path = self.add_webhook(self.channel, path=SANDBOX_SLACK_WEBHOOK_PATH)

    # --- seeding ---
    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}0SBX{self._ids:05d}"

    def add_channel(
        self,
        name: str,
        *,
        is_member: bool = True,
        archived: bool = False,
        channel_id: str | None = None,
    ) -> str:
        with self.lock:
            channel = SlackChannel(
                channel_id or self._next_id("C"), name.lstrip("#"), is_member, archived
            )
            self.channels[channel.id] = channel
            return channel.id

    def add_bot(
        self, token: str, *, scopes: Iterable[str] = ("chat:write", "channels:history")
    ) -> SlackBot:
        with self.lock:
            bot = SlackBot(
                token, self.team_id, self._next_id("U"), self._next_id("B"), frozenset(scopes)
            )
            self.bots[token] = bot
            return bot

    def add_webhook(self, channel: str, *, path: str | None = None) -> str:
        """Register an incoming webhook posting to `channel` (id or name); returns its path
        (`path`, /services/T…/B…/X…, or a new one)."""
        with self.lock:
            found = self._channel(channel)
            if found is None:
                raise KeyError(f"no channel {channel!r}")
            if path is None:
                secret = f"{self._next_id('X')}{self._ids:019d}"[:24]
                hook = SlackWebhook(self.team_id, self._next_id("B"), secret, found.id)
            else:
                parts = path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "services":
                    raise ValueError(f"webhook path {path!r} is not /services/T…/B…/X…")
                hook = SlackWebhook(parts[1], parts[2], parts[3], found.id)
            self.webhooks[hook.path] = hook
            return hook.path

    def archive(self, channel: str) -> None:
        with self.lock:
            found = self._channel(channel)
            if found is None:
                raise KeyError(f"no channel {channel!r}")
            found.archived = True

    def rate_limit_next(self, count: int = 1, *, retry_after: int = 1) -> None:
        """Answer the next `count` posts (webhook or API) with HTTP 429 and Retry-After."""
        with self.lock:
            self._scripted.append([count, retry_after])

    # --- inspection (copies) ---
    def messages(self, channel: str | None = None) -> list[SlackMessage]:
        with self.lock:
            wanted = self._channel(channel) if channel else None
            if channel and wanted is None:
                return []
            return [
                replace(m) for m in self.message_log if wanted is None or m.channel == wanted.id
            ]

    # --- internals (callers hold the lock) ---
    def _channel(self, ref: str | None) -> SlackChannel | None:
        if not ref:
            return None
        if ref in self.channels:
            return self.channels[ref]
        name = ref.lstrip("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def _rate_limited(self, channel_id: str | None) -> int | None:
        """Seconds to wait when this post is rate limited, else None (and a token is spent)."""
        if self._scripted:
            entry = self._scripted[0]
            entry[0] -= 1
            if entry[0] <= 0:
                self._scripted.pop(0)
            return entry[1]
        if self.channel_burst is None or channel_id is None:
            return None
        now = self.clock()
        tokens, at = self._buckets.get(channel_id, (float(self.channel_burst), now))
        tokens = min(float(self.channel_burst), tokens + (now - at))
        if tokens < 1.0:
            self._buckets[channel_id] = (tokens, now)
            return max(1, math.ceil(1.0 - tokens))
        self._buckets[channel_id] = (tokens - 1.0, now)
        return None

    def _next_ts(self) -> str:
        self._ts_counter += 1
        return f"{int(self.clock())}.{self._ts_counter % 1_000_000:06d}"

    def _store(self, message: SlackMessage) -> None:
        self.message_log.append(message)


# ----------------------------------------------------------------------------- Block Kit


def _text_object(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"must be a text object [json-pointer:{where}]"]
    if plain_only and obj["type"] != "plain_text":
        return [f"must be a plain_text object [json-pointer:{where}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _check_block(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"must be an object [json-pointer:{where}]"]
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        return [f"unsupported type: {kind!r} [json-pointer:{where}/type]"]
    problems: list[str] = []
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID):
        problems.append(
            f"must be less than {MAX_BLOCK_ID + 1} characters [json-pointer:{where}/block_id]"
        )
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and not fields:
            problems.append(f"must provide text or fields [json-pointer:{where}]")
        if text is not None:
            problems += _text_object(text, f"{where}/text", MAX_SECTION_TEXT)
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
                problems.append(
                    f"no more than {MAX_SECTION_FIELDS} items allowed [json-pointer:{where}/fields]"
                )
            else:
                for i, item in enumerate(fields):
                    problems += _text_object(item, f"{where}/fields/{i}", MAX_FIELD_TEXT)
    elif kind == "header":
        problems += _text_object(
            block.get("text"), f"{where}/text", MAX_HEADER_TEXT, plain_only=True
        )
    elif kind in ("context", "actions"):
        limit = MAX_CONTEXT_ELEMENTS if kind == "context" else MAX_ACTIONS_ELEMENTS
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            problems.append(f"must provide elements [json-pointer:{where}/elements]")
        elif len(elements) > limit:
            problems.append(f"no more than {limit} items allowed [json-pointer:{where}/elements]")
        elif kind == "context":
            for i, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") == "image":
                    continue
                problems += _text_object(element, f"{where}/elements/{i}", MAX_SECTION_TEXT)
    elif kind == "image":
        if not block.get("image_url") and not block.get("slack_file"):
            problems.append(f"must provide image_url or slack_file [json-pointer:{where}]")
        alt = block.get("alt_text")
        if not isinstance(alt, str) or not alt or len(alt) > 2000:
            problems.append(f"must provide alt_text [json-pointer:{where}/alt_text]")
    elif kind == "markdown":
        if not isinstance(block.get("text"), str) or not block["text"]:
            problems.append(f"must provide text [json-pointer:{where}/text]")
    elif kind == "rich_text" and not isinstance(block.get("elements"), list):
        problems.append(f"must provide elements [json-pointer:{where}/elements]")
    return problems


def validate_blocks(blocks: Any) -> tuple[str, list[str]] | None:
    """None when Slack would accept `blocks`, else (error code, messages)."""
    if not isinstance(blocks, list):
        return "invalid_blocks", ["[ERROR] must be an array [json-pointer:/blocks]"]
    if len(blocks) > MAX_BLOCKS:
        return "invalid_blocks", [
            f"[ERROR] no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"
        ]
    problems: list[str] = []
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        problems += _check_block(block, f"/blocks/{i}")
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen:
                problems.append(f"duplicate block_id [json-pointer:/blocks/{i}/block_id]")
            seen.add(block_id)
    if problems:
        return "invalid_blocks", [f"[ERROR] {p}" for p in problems]
    markdown_total = sum(
        len(b.get("text") or "")
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "markdown"
    )
    if markdown_total > MAX_MARKDOWN_TOTAL:
        return "msg_blocks_too_long", [
            f"[ERROR] markdown blocks total {markdown_total} characters, "
            f"at most {MAX_MARKDOWN_TOTAL}"
        ]
    return None


def _message_problem(payload: Mapping[str, Any]) -> tuple[str, list[str]] | None:
    """Content checks shared by the webhook and chat.postMessage."""
    blocks = payload.get("blocks")
    if isinstance(blocks, str):  # form-encoded bodies carry blocks as a JSON string
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "invalid_blocks", ["[ERROR] blocks is not valid JSON"]
    attachments = payload.get("attachments")
    if isinstance(attachments, str):
        try:
            attachments = json.loads(attachments)
        except ValueError:
            return "invalid_attachments", ["[ERROR] attachments is not valid JSON"]
    text = payload.get("text")
    if text is not None and not isinstance(text, str):
        return "invalid_arguments", ["[ERROR] text must be a string"]
    if not text and not blocks and not attachments and not payload.get("markdown_text"):
        return "no_text", []
    if payload.get("markdown_text") and (text or blocks):
        return "invalid_arguments", ["[ERROR] markdown_text cannot be used with text or blocks"]
    if attachments is not None and (
        not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS
    ):
        return "too_many_attachments", []
    if blocks is not None:
        return validate_blocks(blocks)
    return None


def _parse_body(raw: bytes, content_type: str) -> dict[str, Any] | None:
    """JSON or form-encoded (with a `payload` JSON field for webhooks); None if invalid."""
    try:
        if "application/x-www-form-urlencoded" in content_type:
            form = {
                k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), strict_parsing=False).items()
            }
            if "payload" in form:
                parsed = json.loads(form["payload"])
                return parsed if isinstance(parsed, dict) else None
            return dict(form)
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []


# ----------------------------------------------------------------------------- app


def create_app(state: SlackState, faults: Any = None) -> FastAPI:
    """The Slack app. `faults` (a FaultInjector) is accepted for a uniform signature:
    SandboxServer applies it around the app with `FaultInjector.wrap`."""
    del faults
    app = FastAPI(title="contexten sandbox: Slack", docs_url=None, redoc_url=None)

    def plain(status: int, body: str, headers: Mapping[str, str] | None = None) -> Response:
        return PlainTextResponse(body, status_code=status, headers=dict(headers or {}))

    @app.post("/services/{team}/{bot}/{secret}")
    async def incoming_webhook(team: str, bot: str, secret: str, request: Request) -> Response:
        raw = await request.body()
        with state.lock:
            hook = state.webhooks.get(f"/services/{team}/{bot}/{secret}")
            if hook is None:
                known = any(h.team == team and h.bot == bot for h in state.webhooks.values())
                return plain(403, "invalid_token") if known else plain(404, "no_service")
            if len(raw) > MAX_BODY_BYTES:
                return plain(400, "invalid_payload")
            payload = _parse_body(raw, request.headers.get("content-type", ""))
            if payload is None:
                return plain(400, "invalid_payload")
            channel = state.channels.get(hook.channel_id)
            if channel is None:
                return plain(404, "channel_not_found")
            if channel.archived:
                return plain(410, "channel_is_archived")
            problem = _message_problem(payload)
            if problem is not None:
                code = problem[0]
                return plain(400, code if code != "invalid_arguments" else "invalid_payload")
            wait = state._rate_limited(channel.id)
            if wait is not None:
                return plain(429, "rate_limited", {"Retry-After": str(wait)})
            state._store(
                SlackMessage(
                    channel=channel.id,
                    ts=state._next_ts(),
                    text=str(payload.get("text") or "")[:MAX_TEXT],
                    via="webhook",
                    blocks=_as_list(payload.get("blocks")),
                    attachments=_as_list(payload.get("attachments")),
                    thread_ts=payload.get("thread_ts"),
                    bot_id=hook.bot,
                )
            )
        return plain(200, "ok")

    def api_error(error: str, messages: list[str] | None = None) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "error": error}
        if messages:
            body["errors"] = messages
            body["response_metadata"] = {"messages": messages}
        return JSONResponse(body)

    def bot_for(request: Request, payload: Mapping[str, Any]) -> SlackBot | str:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        token = token or str(payload.get("token") or "")
        if not token:
            return "not_authed"
        bot = state.bots.get(token)
        if bot is None:
            return "invalid_auth"
        if bot.revoked:
            return "token_revoked"
        return bot

    async def api_payload(request: Request) -> dict[str, Any] | None:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return None
        content_type = request.headers.get("content-type", "")
        if not raw:
            return {}
        if "application/json" in content_type:
            parsed = _parse_body(raw, content_type)
            return parsed
        return _parse_body(raw, "application/x-www-form-urlencoded")

    @app.post("/api/chat.postMessage")
    async def chat_post_message(request: Request) -> Response:
        payload = await api_payload(request)
        if payload is None:
            return api_error("invalid_json")
        with state.lock:
            bot = bot_for(request, payload)
            if isinstance(bot, str):
                return api_error(bot)
            if "chat:write" not in bot.scopes:
                return api_error("missing_scope")
            channel = state._channel(str(payload.get("channel") or ""))
            if channel is None:
                return api_error("channel_not_found")
            if channel.archived:
                return api_error("is_archived")
            if not channel.is_member and "chat:write.public" not in bot.scopes:
                return api_error("not_in_channel")
            problem = _message_problem(payload)
            if problem is not None:
                return api_error(*problem)
            wait = state._rate_limited(channel.id)
            if wait is not None:
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"},
                    status_code=429,
                    headers={"Retry-After": str(wait)},
                )
            metadata = payload.get("metadata")
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    return api_error("invalid_metadata_format")
            if metadata is not None and (
                not isinstance(metadata, dict)
                or not isinstance(metadata.get("event_type"), str)
                or not isinstance(metadata.get("event_payload"), dict)
            ):
                return api_error("invalid_metadata_format")
            text = str(payload.get("text") or payload.get("markdown_text") or "")
            message = SlackMessage(
                channel=channel.id,
                ts=state._next_ts(),
                text=text[:MAX_TEXT],
                via="chat.postMessage",
                blocks=_as_list(payload.get("blocks")),
                attachments=_as_list(payload.get("attachments")),
                thread_ts=payload.get("thread_ts"),
                bot_id=bot.bot_id,
                metadata=metadata,
            )
            state._store(message)
        body: dict[str, Any] = {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "message": {
                "type": "message",
                "subtype": "bot_message",
                "text": message.text,
                "user": bot.user_id,
                "bot_id": bot.bot_id,
                "team": bot.team_id,
                "ts": message.ts,
                **({"blocks": message.blocks} if message.blocks else {}),
                **({"attachments": message.attachments} if message.attachments else {}),
                **({"thread_ts": message.thread_ts} if message.thread_ts else {}),
            },
        }
        if "charset" not in request.headers.get("content-type", "").lower():
            body["warning"] = "missing_charset"
            body["response_metadata"] = {"warnings": ["missing_charset"]}
        return JSONResponse(body)

    @app.api_route("/api/conversations.history", methods=["GET", "POST"])
    async def conversations_history(request: Request) -> Response:
        payload = dict(request.query_params)
        payload.update(await api_payload(request) or {})
        with state.lock:
            bot = bot_for(request, payload)
            if isinstance(bot, str):
                return api_error(bot)
            if "channels:history" not in bot.scopes:
                return api_error("missing_scope")
            channel = state._channel(str(payload.get("channel") or ""))
            if channel is None:
                return api_error("channel_not_found")
            if not channel.is_member:
                return api_error("not_in_channel")
            try:
                limit = min(999, max(1, int(payload.get("limit") or 100)))
                oldest = float(payload.get("oldest") or 0)
                latest = float(payload.get("latest") or "inf")
                start = int(payload.get("cursor") or 0)
            except ValueError:
                return api_error("invalid_arguments")
            with_metadata = str(payload.get("include_all_metadata", "")).lower() in ("1", "true")
            found = [
                m
                for m in reversed(state.message_log)  # newest first
                if m.channel == channel.id
                and m.thread_ts in (None, m.ts)  # replies live in conversations.replies
                and oldest < float(m.ts) <= latest
            ]
            page = found[start : start + limit]
            more = start + limit < len(found)
            messages = []
            for m in page:
                item: dict[str, Any] = {
                    "type": "message",
                    "text": m.text,
                    "ts": m.ts,
                    **({"bot_id": m.bot_id} if m.bot_id else {}),
                    **({"blocks": m.blocks} if m.blocks else {}),
                }
                if with_metadata and m.metadata is not None:
                    item["metadata"] = m.metadata
                messages.append(item)
            return JSONResponse(
                {
                    "ok": True,
                    "messages": messages,
                    "has_more": more,
                    "pin_count": 0,
                    "response_metadata": {"next_cursor": str(start + limit) if more else ""},
                }
            )

    @app.post("/api/auth.test")
    async def auth_test(request: Request) -> Response:
        payload = await api_payload(request)
        with state.lock:
            bot = bot_for(request, payload or {})
            if isinstance(bot, str):
                return api_error(bot)
            return JSONResponse(
                {
                    "ok": True,
                    "url": f"{request.base_url}",
                    "team": state.team_name,
                    "user": "contexten",
                    "team_id": bot.team_id,
                    "user_id": bot.user_id,
                    "bot_id": bot.bot_id,
                    "is_enterprise_install": False,
                }
            )

    @app.post("/api/{method}")
    async def unknown_method(method: str) -> Response:
        return JSONResponse({"ok": False, "error": "unknown_method"}, status_code=404)

    return app
