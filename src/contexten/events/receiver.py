"""The GitHub webhook receiver: verify, record in the durable inbox, answer at once.

`POST /webhook` does no work beyond checks and one insert (group-committed with other
requests, see InboxWriter), so it answers in milliseconds; a dispatcher turns inbox rows
into workflow runs. Answers:

- 401: X-Hub-Signature-256 missing or malformed (checked before the body is read, which is
  then never read: the connection is closed) or wrong (checked before anything is parsed).
- 413: Content-Length or the streamed body exceeds WEBHOOK_MAX_BODY_BYTES.
- 400: missing/invalid X-GitHub-Event or X-GitHub-Delivery; a content type other than
  JSON or form-encoded `payload=`; a body that is not a JSON object.
- 200: ping (`pong`); a delivery id seen before (`duplicate`; nothing new is done).
- 202: recorded: `accepted` (a rule listens to this event) or `ignored` (none does).
- 503: the inbox could not be written, or the bodies being read at once already fill
  WEBHOOK_MAX_BUFFERED_BYTES for 10 s (the sender should redeliver).

Also `GET /healthz` (the process answers), `GET /readyz` (the store answers and the inbox
writer runs) and, when `contexten.monitoring.metrics` provides one, `GET /metrics`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from contexten.config import Settings
from contexten.events.inbox import IGNORED, PENDING, Inbox, InboxError, InboxWriter, NewDelivery
from contexten.events.limits import BodyBudget, BudgetExhausted
from contexten.events.routing import PING_EVENT, RoutingRule, known_events, load_rules
from contexten.events.signature import SIGNATURE_HEADER, verify, well_formed
from contexten.store.db import Store

if TYPE_CHECKING:
    from contexten.events.dispatcher import Dispatcher

logger = logging.getLogger("contexten.events.receiver")

WEBHOOK_PATH = "/webhook"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
INSERT_TIMEOUT_SECONDS = 8.0  # GitHub gives up after 10 s
READY_TIMEOUT_SECONDS = 2.0
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
_JSON_TYPES = ("application/json",)

_loads: Callable[[str], Any] = json.loads
try:  # orjson (a Prefect dependency) parses webhook bodies several times faster
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    pass
_FORM_TYPE = "application/x-www-form-urlencoded"


class ReceiverConfigError(ValueError):
    """The receiver cannot start with this configuration; the message says what to set."""


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and literal loopback addresses (127.0.0.0/8, ::1); no DNS."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def insecure_bind_problem(
    settings: Settings, host: str, *, insecure: bool, origin: str = ""
) -> str | None:
    """Why the receiver must not serve on `host`: unsigned intake beyond this machine.

    Unsigned deliveries (`--insecure` or WEBHOOK_INSECURE with no GITHUB_WEBHOOK_SECRET)
    are accepted on a loopback address only; anywhere else anyone who can reach the port
    could start workflows.
    """
    unsigned = (insecure or settings.webhook_insecure) and settings.github_webhook_secret is None
    if not unsigned or is_loopback_host(host):
        return None
    return (
        f"--insecure accepts unsigned deliveries and binds to loopback only, not {host!r}"
        f"{f' ({origin})' if origin else ''}: "
        "set GITHUB_WEBHOOK_SECRET, or serve on 127.0.0.1"
    )


@dataclass
class IntakeStats:
    """Counters of what the receiver answered, by outcome (for /readyz and metrics)."""

    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] += 1


class _Rejection(Exception):
    """A delivery refused with an HTTP status and a one-line reason.

    `close`: the body was not read (or not all of it); the connection is closed after the
    answer instead of reading and discarding what the sender still has.
    """

    def __init__(self, status: int, reason: str, *, close: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.close = close


def _reply(status: int, outcome: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": outcome, "detail": detail, **extra}, status_code=status)


def _declared_length(request: Request, limit: int) -> int | None:
    """Content-Length, checked against the limit before a byte of the body is read."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.strip().isdigit():
        raise _Rejection(400, "Content-Length is not a number", close=True)
    if int(declared) > limit:
        raise _Rejection(
            413, f"body of {int(declared)} bytes exceeds the {limit}-byte limit", close=True
        )
    return int(declared)


async def _read_body(request: Request, limit: int, declared: int | None) -> bytearray:
    """The body, read into one buffer (each chunk freed as soon as it is copied).

    With a Content-Length the buffer is allocated once at that size: no copies as it grows.
    """
    if declared is None:
        body = bytearray()
        async for chunk in request.stream():
            if len(body) + len(chunk) > limit:  # chunked: stop reading at the limit
                raise _Rejection(413, f"body exceeds the {limit}-byte limit", close=True)
            body += chunk
        return body
    body = bytearray(declared)
    filled = 0
    with memoryview(body) as view:
        async for chunk in request.stream():
            end = filled + len(chunk)
            if end > declared:  # the server's framing prevents it; never write past
                raise _Rejection(400, "body is longer than its Content-Length", close=True)
            view[filled:end] = chunk
            filled = end
    if filled < declared:
        del body[filled:]
    return body


def _payload_text(content_type: str, body: bytes | bytearray) -> str:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise _Rejection(400, "JSON body is not UTF-8") from None
    if media == _FORM_TYPE:
        try:
            fields = parse_qs(body.decode("ascii"), max_num_fields=20, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise _Rejection(400, "form-encoded body is malformed") from None
        values = fields.get("payload")
        if not values:
            raise _Rejection(400, "form-encoded body has no payload field")
        return values[0]
    raise _Rejection(
        400,
        f"content type {media or '(none)'!r} is not application/json or "
        "application/x-www-form-urlencoded",
    )


def _parse_object(text: str) -> dict[str, Any]:
    try:
        payload = _loads(text)
    except (ValueError, RecursionError):
        raise _Rejection(400, "body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _Rejection(400, "body is JSON but not an object")
    return payload


def _short_str(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _repository(payload: dict[str, Any]) -> str | None:
    repo = payload.get("repository")
    return _short_str(repo.get("full_name"), 300) if isinstance(repo, dict) else None


def _metrics_route(store: Store, settings: Settings) -> BaseRoute | None:
    """A /metrics route from contexten.monitoring.metrics, if that module provides one."""
    try:
        from contexten.monitoring import metrics as module
    except ImportError:
        return None
    from starlette.routing import Mount

    render = getattr(module, "render_prometheus", None)
    if callable(render):

        async def metrics_endpoint(_request: Request) -> Response:
            body = await asyncio.to_thread(render, store, settings)
            return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

        return Route("/metrics", metrics_endpoint, methods=["GET"])
    app = getattr(module, "metrics_asgi_app", None)
    if app is None:
        return None
    if inspect.isfunction(app) and len(inspect.signature(app).parameters) >= 2:
        app = app(store, settings)  # a factory(store, settings) -> ASGI app
    return Mount("/metrics", app=app)


def create_app(
    settings: Settings,
    store: Store,
    *,
    insecure: bool = False,
    extra_routes: Iterable[BaseRoute | APIRouter] = (),
    rules: Sequence[RoutingRule] | None = None,
    inbox: Inbox | None = None,
    on_accepted: Callable[[], None] | None = None,
    dispatcher: Dispatcher | None = None,
    dispatcher_grace_seconds: float = 30.0,
) -> FastAPI:
    """The receiver app. Raises ReceiverConfigError without a secret unless insecure.

    With `dispatcher`, the app runs it for its lifetime (started with the app, stopped and
    drained on shutdown, inside the server's own signal handling) and wakes it after each
    new pending delivery. `on_accepted` is another hook called then (in the event loop).
    """
    secret_value = settings.github_webhook_secret
    secret = secret_value.get_secret_value().encode("utf-8") if secret_value else b""
    insecure = insecure or settings.webhook_insecure
    if not secret and not insecure:
        raise ReceiverConfigError(
            "GITHUB_WEBHOOK_SECRET is not set; set it to the webhook's secret, or pass "
            "--insecure (WEBHOOK_INSECURE=true) to accept unsigned deliveries on a trusted network"
        )
    if settings.webhook_max_body_bytes < 1:
        raise ReceiverConfigError("WEBHOOK_MAX_BODY_BYTES must be at least 1")
    if settings.webhook_max_buffered_bytes < 1:
        raise ReceiverConfigError("WEBHOOK_MAX_BUFFERED_BYTES must be at least 1")
    rule_set = list(rules) if rules is not None else load_rules()
    listened = known_events(rule_set)
    the_inbox = inbox or Inbox(store)
    writer = InboxWriter(the_inbox)
    if dispatcher is not None and dispatcher.inbox is the_inbox:
        dispatcher.writer = writer  # its claims and settlements share the group commit
    stats = IntakeStats()
    tasks: dict[str, asyncio.Task[None]] = {}
    limit = settings.webhook_max_body_bytes
    budget = BodyBudget(settings.webhook_max_buffered_bytes)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        if not secret:
            logger.warning("webhook receiver is INSECURE: deliveries are not authenticated")
        writer.start()
        running = None
        if dispatcher is not None:
            running = asyncio.create_task(dispatcher.run(grace_seconds=dispatcher_grace_seconds))
            tasks["dispatcher"] = running
        try:
            yield
        finally:
            if dispatcher is not None and running is not None:
                dispatcher.stop()
                await asyncio.wait_for(running, dispatcher_grace_seconds + 10)
            await asyncio.to_thread(writer.stop)

    app = FastAPI(
        title="contexten webhook receiver",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.inbox = the_inbox
    app.state.writer = writer
    app.state.stats = stats
    app.state.rules = rule_set
    app.state.dispatcher = dispatcher
    app.state.body_budget = budget

    async def record(delivery: NewDelivery) -> bool:
        if not writer.alive:
            writer.start()
        # A request that times out cancels only its own future: the writer thread still
        # writes (or fails) the delivery, and nobody is told.
        future = writer.enqueue(delivery)
        async with asyncio.timeout(INSERT_TIMEOUT_SECONDS):
            return bool(await future)

    async def intake(request: Request) -> Response:
        signature = request.headers.get(SIGNATURE_HEADER)
        if secret and not well_formed(signature):  # refused unread: costs no memory
            raise _Rejection(401, "missing or invalid X-Hub-Signature-256", close=True)
        declared = _declared_length(request, limit)
        try:
            async with budget.reserve(limit if declared is None else declared):
                return await verified_intake(request, signature, declared)
        except BudgetExhausted as exc:
            logger.warning("delivery refused unread: %s", exc)
            stats.add("busy")
            return JSONResponse(
                {"status": "busy", "detail": "too many bodies being read; redeliver later"},
                status_code=503,
                headers={"Retry-After": "10", "Connection": "close"},
            )

    async def verified_intake(
        request: Request, signature: str | None, declared: int | None
    ) -> Response:
        body = await _read_body(request, limit, declared)
        if secret and not verify(secret, body, signature):
            raise _Rejection(401, "missing or invalid X-Hub-Signature-256")
        event = request.headers.get(EVENT_HEADER, "")
        delivery_id = request.headers.get(DELIVERY_HEADER, "")
        if not _EVENT_NAME.fullmatch(event):
            raise _Rejection(400, f"missing or invalid {EVENT_HEADER} header")
        if not _DELIVERY_ID.fullmatch(delivery_id):
            raise _Rejection(400, f"missing or invalid {DELIVERY_HEADER} header")
        text = _payload_text(request.headers.get("content-type", ""), body)
        payload = _parse_object(text)
        listened_to = event in listened and event != PING_EVENT
        note = None if listened_to else ("ping" if event == PING_EVENT else "no rule for event")
        delivery = NewDelivery(
            delivery_id=delivery_id,
            event=event,
            payload=text,
            action=_short_str(payload.get("action"), 100),
            repository=_repository(payload),
            status=PENDING if listened_to else IGNORED,
            note=note,
        )
        try:
            created = await record(delivery)
        except (InboxError, TimeoutError) as exc:
            logger.error("delivery %s (%s) not recorded: %s", delivery_id, event, exc)
            stats.add("unavailable")
            return JSONResponse(
                {"status": "unavailable", "detail": "inbox unavailable; redeliver later"},
                status_code=503,
                headers={"Retry-After": "30"},
            )
        if event == PING_EVENT:
            stats.add("ping")
            return _reply(200, "pong", "webhook receiver is up", zen=payload.get("zen"))
        if not created:
            stats.add("duplicate")
            return _reply(200, "duplicate", "delivery already received", delivery=delivery_id)
        if not listened_to:
            stats.add("ignored")
            return _reply(202, "ignored", f"no rule listens to {event!r}", delivery=delivery_id)
        stats.add("accepted")
        if dispatcher is not None:
            dispatcher.wake()
        if on_accepted is not None:
            on_accepted()
        return _reply(202, "accepted", "recorded", delivery=delivery_id)

    # A plain Starlette route: FastAPI's dependency machinery costs more than the
    # whole intake for this one hot endpoint.
    async def webhook(request: Request) -> Response:
        try:
            return await intake(request)
        except _Rejection as rejection:
            stats.add(f"rejected_{rejection.status}")
            logger.warning(
                "rejected delivery %s (%s): %d %s",
                request.headers.get(DELIVERY_HEADER, "-")[:100],
                request.headers.get(EVENT_HEADER, "-")[:100],
                rejection.status,
                rejection.reason,
            )
            reply = _reply(rejection.status, "rejected", rejection.reason)
            if rejection.close:
                reply.headers["Connection"] = "close"
            return reply

    app.router.routes.append(Route(WEBHOOK_PATH, webhook, methods=["POST"]))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        problems: list[str] = []
        try:
            await asyncio.wait_for(asyncio.to_thread(store.ping), READY_TIMEOUT_SECONDS)
        except Exception as exc:
            problems.append(f"store unreachable: {type(exc).__name__}")
        if not writer.alive:
            problems.append("inbox writer not running")
        running = tasks.get("dispatcher")
        if dispatcher is not None and (running is None or running.done()):
            problems.append("dispatcher not running")
        body = {
            "status": "ready" if not problems else "not ready",
            "problems": problems,
            "received": dict(stats.outcomes),
        }
        return JSONResponse(body, status_code=200 if not problems else 503)

    metrics = _metrics_route(store, settings)
    if metrics is not None:
        app.router.routes.append(metrics)
    for extra in extra_routes:
        if isinstance(extra, APIRouter):
            app.include_router(extra)
        else:
            app.router.routes.append(extra)
    return app
