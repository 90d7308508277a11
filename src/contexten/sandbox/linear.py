"""A local Linear GraphQL API: `POST /graphql` executed against Linear's real schema.

Requests are parsed, validated and executed by graphql-core against `data/linear-schema.graphql`
(Linear's published schema), so every response has the shape the schema promises. Resolvers
exist for what contexten uses: `issues`/`issue`, `issueLabels`, `workflowStates`, `team(s)`,
`viewer`, `organization`, `rateLimitStatus`, and the mutations `issueCreate`, `issueUpdate`,
`commentCreate`, `issueLabelCreate`. Any other root field answers a clear GraphQL error.

Behaviour copied from Linear's public API documentation:
- auth: `Authorization: lin_api_…` (personal key, as-is) or `Bearer <oauth token>`;
- errors: `{"errors": [{"message", "path", "locations", "extensions": {"type", "code",
  "statusCode", "userError", "userPresentableMessage"}}], "data": …}` with HTTP 400;
- rate limits: `x-ratelimit-requests-limit|remaining|reset` (reset in epoch milliseconds) and
  `x-ratelimit-complexity-*` on every answer; when exhausted either HTTP 400 with
  `extensions.code == "RATELIMITED"` or HTTP 429, both seen in the wild.
"""

from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.language import DocumentNode, IntValueNode, SelectionSetNode, VariableNode

from contexten.sandbox.state import SANDBOX_LINEAR_API_KEY

SCHEMA_PATH = Path(__file__).parent / "data" / "linear-schema.graphql"
# The default team of a fresh LinearState (LINEAR_TEAM_ID of `SandboxServer.env()`).
SANDBOX_TEAM_ID = "5a4db0c4-0000-4000-8000-00000000e4e1"

RateLimitStyle = Literal["400", "429"]
STATE_TYPES = ("triage", "backlog", "unstarted", "started", "completed", "canceled", "duplicate")
PRIORITY_LABELS = {0: "No priority", 1: "Urgent", 2: "High", 3: "Medium", 4: "Low"}
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 250
MAX_BODY_BYTES = 1_000_000
MAX_QUERY_COMPLEXITY = 10_000
SCRIPTED_RESET_SECONDS = 3.0
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


@lru_cache(maxsize=1)
def linear_schema() -> GraphQLSchema:
    """Linear's schema, built once per process (about 1.5 s)."""
    return build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _slug(title: str) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60] or "issue"


# ----------------------------------------------------------------------------- records


@dataclass
class LinearTeam:
    id: str
    key: str
    name: str
    created_at: float
    next_number: int = 1


@dataclass
class LinearWorkflowState:
    id: str
    team_id: str
    name: str
    type: str
    position: float
    color: str
    created_at: float


@dataclass
class LinearLabel:
    id: str
    name: str
    team_id: str | None
    color: str
    created_at: float
    description: str | None = None


@dataclass
class LinearIssue:
    id: str
    team_id: str
    number: int
    identifier: str
    title: str
    description: str | None
    priority: int
    state_id: str
    label_ids: list[str]
    created_at: float
    updated_at: float
    creator_id: str | None = None
    assignee_id: str | None = None
    parent_id: str | None = None
    due_date: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    canceled_at: float | None = None
    archived_at: float | None = None


@dataclass
class LinearComment:
    id: str
    issue_id: str
    body: str
    user_id: str
    created_at: float
    updated_at: float


@dataclass
class LinearUser:
    id: str
    name: str
    email: str
    created_at: float


@dataclass
class _ScriptedLimit:
    remaining: int
    style: RateLimitStyle
    retry_after: int | None


_DEFAULT_STATES: tuple[tuple[str, str, str], ...] = (
    ("Triage", "triage", "#FC7840"),
    ("Backlog", "backlog", "#bec2c8"),
    ("Todo", "unstarted", "#e2e2e2"),
    ("In Progress", "started", "#f2c94c"),
    ("In Review", "started", "#0f783c"),
    ("Done", "completed", "#5e6ad2"),
    ("Canceled", "canceled", "#95a2b3"),
    ("Duplicate", "duplicate", "#95a2b3"),
)


class LinearState:
    """In-memory Linear workspace. Thread-safe; tests seed and inspect it directly.

    `api_keys` are accepted as `Authorization: <key>`; `oauth_tokens` as `Bearer <token>`.
    A fresh state has one team, ENG (`team_id`), with Linear's default workflow states;
    `api_key` is the first accepted key.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (SANDBOX_LINEAR_API_KEY,),
        oauth_tokens: Iterable[str] = (),
        organization: str = "Sandbox",
        url_key: str = "sandbox",
        web_url: str = "https://linear.app",
        requests_limit: int = 5000,
        complexity_limit: int = 250_000,
        window_seconds: float = 3600.0,
        rate_limit_style: RateLimitStyle = "400",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.api_keys = set(api_keys)
        self.oauth_tokens = set(oauth_tokens)
        self.organization = organization
        self.organization_id = str(uuid.uuid4())
        self.url_key = url_key
        self.web_url = web_url.rstrip("/")
        self.requests_limit = requests_limit
        self.complexity_limit = complexity_limit
        self.window_seconds = window_seconds
        self.rate_limit_style: RateLimitStyle = rate_limit_style
        self.clock = clock
        self.teams: dict[str, LinearTeam] = {}
        self.workflow_states: dict[str, LinearWorkflowState] = {}
        self.labels: dict[str, LinearLabel] = {}
        self.issues_by_id: dict[str, LinearIssue] = {}
        self.comments_by_id: dict[str, LinearComment] = {}
        self.users: dict[str, LinearUser] = {}
        now = clock()
        self.viewer = LinearUser(str(uuid.uuid4()), "Sandbox Bot", "bot@sandbox.invalid", now)
        self.users[self.viewer.id] = self.viewer
        self.last_sync_id = 1000.0
        self.request_log: list[dict[str, Any]] = []
        self._window_start = now
        self._requests_used = 0
        self._complexity_used = 0
        self._scripted: list[_ScriptedLimit] = []
        self.api_key = next(iter(self.api_keys), "")
        self.team_id = self.add_team("ENG", "Engineering", team_id=SANDBOX_TEAM_ID)

    def seed_demo(self) -> None:
        """Labels and an open issue for the demo."""
        for name in ("ci-failure", "flaky-test", "contexten"):
            self._label_named(name, self.team_id)
        self.add_issue(
            self.team_id,
            "Flaky: tests/test_api.py::test_timeout",
            description="Seen failing and passing on the same commit.",
            priority=3,
            state_type="unstarted",
            labels=("flaky-test",),
        )

    # --- seeding ---
    def add_team(self, key: str, name: str | None = None, *, team_id: str | None = None) -> str:
        """Create a team with Linear's default workflow states; returns the team id."""
        with self.lock:
            now = self.clock()
            team = LinearTeam(team_id or str(uuid.uuid4()), key.upper(), name or key, now)
            self.teams[team.id] = team
            for position, (state_name, state_type, color) in enumerate(_DEFAULT_STATES):
                state = LinearWorkflowState(
                    str(uuid.uuid4()), team.id, state_name, state_type, float(position), color, now
                )
                self.workflow_states[state.id] = state
            return team.id

    def add_label(self, name: str, *, team_id: str | None = None, color: str = "#eb5757") -> str:
        with self.lock:
            label = LinearLabel(str(uuid.uuid4()), name, team_id, color, self.clock())
            self.labels[label.id] = label
            return label.id

    def add_issue(
        self,
        team_id: str,
        title: str,
        *,
        description: str | None = None,
        priority: int = 0,
        state_type: str = "backlog",
        labels: Sequence[str] = (),
    ) -> LinearIssue:
        """Seed an issue; `labels` are names (created when missing)."""
        with self.lock:
            label_ids = [self._label_named(name, team_id) for name in labels]
            state = self.state_of_type(team_id, state_type)
            issue = self._new_issue(
                team_id=team_id,
                title=title,
                description=description,
                priority=priority,
                state_id=state.id,
                label_ids=label_ids,
            )
            return replace(issue)

    def _label_named(self, name: str, team_id: str) -> str:
        for label in self.labels.values():
            if label.name == name and label.team_id in (None, team_id):
                return label.id
        return self.add_label(name, team_id=team_id)

    def rate_limit_next(
        self, count: int = 1, *, style: RateLimitStyle | None = None, retry_after: int | None = 1
    ) -> None:
        """Answer the next `count` requests with a rate-limit error of the given form."""
        with self.lock:
            self._scripted.append(
                _ScriptedLimit(count, style or self.rate_limit_style, retry_after)
            )

    # --- inspection (copies, safe to keep) ---
    def issues(self, team_id: str | None = None) -> list[LinearIssue]:
        with self.lock:
            return [
                replace(i, label_ids=list(i.label_ids))
                for i in self.issues_by_id.values()
                if team_id is None or i.team_id == team_id
            ]

    def comments(self, issue_id: str | None = None) -> list[LinearComment]:
        with self.lock:
            return [
                replace(c)
                for c in self.comments_by_id.values()
                if issue_id is None or c.issue_id == issue_id
            ]

    def issue_labels(self, issue_id: str) -> list[str]:
        with self.lock:
            return [self.labels[i].name for i in self.issues_by_id[issue_id].label_ids]

    def issue_state_type(self, issue_id: str) -> str:
        with self.lock:
            return self.workflow_states[self.issues_by_id[issue_id].state_id].type

    def state_of_type(self, team_id: str, state_type: str) -> LinearWorkflowState:
        with self.lock:
            states = [
                s
                for s in self.workflow_states.values()
                if s.team_id == team_id and s.type == state_type
            ]
            if not states:
                raise KeyError(f"team {team_id} has no workflow state of type {state_type!r}")
            return min(states, key=lambda s: s.position)

    # --- internals used by the resolvers (callers hold the lock) ---
    def _new_issue(
        self,
        *,
        team_id: str,
        title: str,
        description: str | None,
        priority: int,
        state_id: str,
        label_ids: list[str],
        issue_id: str | None = None,
        assignee_id: str | None = None,
        parent_id: str | None = None,
        due_date: str | None = None,
    ) -> LinearIssue:
        team = self.teams[team_id]
        number = team.next_number
        team.next_number += 1
        now = self.clock()
        issue = LinearIssue(
            id=issue_id or str(uuid.uuid4()),
            team_id=team_id,
            number=number,
            identifier=f"{team.key}-{number}",
            title=title,
            description=description,
            priority=priority,
            state_id=state_id,
            label_ids=label_ids,
            created_at=now,
            updated_at=now,
            creator_id=self.viewer.id,
            assignee_id=assignee_id,
            parent_id=parent_id,
            due_date=due_date,
        )
        self._apply_state_times(issue, self.workflow_states[state_id].type, now)
        self.issues_by_id[issue.id] = issue
        return issue

    @staticmethod
    def _apply_state_times(issue: LinearIssue, state_type: str, now: float) -> None:
        if state_type == "started" and issue.started_at is None:
            issue.started_at = now
        issue.completed_at = now if state_type == "completed" else None
        issue.canceled_at = now if state_type in ("canceled", "duplicate") else None

    def _find_issue(self, ref: str) -> LinearIssue | None:
        """By UUID or identifier (ENG-123), as Linear accepts both."""
        issue = self.issues_by_id.get(ref)
        if issue is not None:
            return issue
        upper = ref.upper()
        for candidate in self.issues_by_id.values():
            if candidate.identifier == upper:
                return candidate
        return None

    def _next_sync_id(self) -> float:
        self.last_sync_id += 1
        return self.last_sync_id

    def _authenticate(self, header: str | None) -> bool:
        if not header:
            return False
        value = header.strip()
        if value.lower().startswith("bearer "):
            return value[7:].strip() in self.oauth_tokens
        return value in self.api_keys

    def _charge(self, complexity: int) -> tuple[_ScriptedLimit | None, dict[str, str]]:
        """Spend one request and `complexity` points; (rate-limit hit or None, headers)."""
        now = self.clock()
        if now - self._window_start >= self.window_seconds:
            self._window_start = now
            self._requests_used = 0
            self._complexity_used = 0
        hit: _ScriptedLimit | None = None
        scripted = bool(self._scripted)
        if scripted:
            hit = self._scripted[0]
            hit.remaining -= 1
            if hit.remaining <= 0:
                self._scripted.pop(0)
        elif (
            self._requests_used >= self.requests_limit
            or self._complexity_used + complexity > self.complexity_limit
        ):
            reset_in = max(1, int(self._window_start + self.window_seconds - now + 0.999))
            hit = _ScriptedLimit(0, self.rate_limit_style, reset_in)
        else:
            self._requests_used += 1
            self._complexity_used += complexity
        reset_ms = str(int((self._window_start + self.window_seconds) * 1000))
        if hit is not None and scripted:
            # A burst (leaky bucket): the bucket refills within a few seconds.
            reset_ms = str(int((now + (hit.retry_after or SCRIPTED_RESET_SECONDS)) * 1000))
        headers = {
            "x-ratelimit-requests-limit": str(self.requests_limit),
            "x-ratelimit-requests-remaining": str(
                max(0, self.requests_limit - self._requests_used)
            ),
            "x-ratelimit-requests-reset": reset_ms,
            "x-ratelimit-complexity-limit": str(self.complexity_limit),
            "x-ratelimit-complexity-remaining": str(
                max(0, self.complexity_limit - self._complexity_used)
            ),
            "x-ratelimit-complexity-reset": reset_ms,
            "x-complexity": str(complexity),
        }
        if hit is not None:
            headers["x-ratelimit-requests-remaining"] = "0"
        return hit, headers

    def _rate_status(self) -> dict[str, Any]:
        reset = (self._window_start + self.window_seconds) * 1000
        period = self.window_seconds * 1000
        return {
            "identifier": None,
            "kind": "api",
            "limits": [
                {
                    "type": "requestLimit",
                    "allowedAmount": float(self.requests_limit),
                    "period": period,
                    "remainingAmount": float(max(0, self.requests_limit - self._requests_used)),
                    "requestedAmount": 1.0,
                    "reset": reset,
                },
                {
                    "type": "complexityLimit",
                    "allowedAmount": float(self.complexity_limit),
                    "period": period,
                    "remainingAmount": float(max(0, self.complexity_limit - self._complexity_used)),
                    "requestedAmount": 0.0,
                    "reset": reset,
                },
            ],
        }


# ----------------------------------------------------------------------------- errors


def _error(
    message: str,
    *,
    type_: str = "invalid input",
    code: str = "INPUT_ERROR",
    status: int = 400,
    user_message: str | None = None,
) -> GraphQLError:
    return GraphQLError(
        message,
        extensions={
            "type": type_,
            "code": code,
            "statusCode": status,
            "userError": True,
            "userPresentableMessage": user_message or message,
        },
    )


def _not_found(entity: str) -> GraphQLError:
    return _error(
        f"Entity not found: {entity}",
        user_message=f"Could not find referenced {entity}.",
    )


def _error_body(errors: Sequence[GraphQLError]) -> dict[str, Any]:
    return {"errors": [e.formatted for e in errors], "data": None}


# ----------------------------------------------------------------------------- filters


def _fold(value: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)
    ).casefold()


_STRING_OPS: dict[str, Callable[[str, Any], bool]] = {
    "eq": lambda v, a: v == a,
    "neq": lambda v, a: v != a,
    "in": lambda v, a: v in a,
    "nin": lambda v, a: v not in a,
    "eqIgnoreCase": lambda v, a: v.casefold() == a.casefold(),
    "neqIgnoreCase": lambda v, a: v.casefold() != a.casefold(),
    "contains": lambda v, a: a in v,
    "notContains": lambda v, a: a not in v,
    "containsIgnoreCase": lambda v, a: a.casefold() in v.casefold(),
    "notContainsIgnoreCase": lambda v, a: a.casefold() not in v.casefold(),
    "containsIgnoreCaseAndAccent": lambda v, a: _fold(a) in _fold(v),
    "startsWith": lambda v, a: v.startswith(a),
    "startsWithIgnoreCase": lambda v, a: v.casefold().startswith(a.casefold()),
    "notStartsWith": lambda v, a: not v.startswith(a),
    "endsWith": lambda v, a: v.endswith(a),
    "notEndsWith": lambda v, a: not v.endswith(a),
}
_NUMBER_OPS: dict[str, Callable[[float, Any], bool]] = {
    "eq": lambda v, a: v == a,
    "neq": lambda v, a: v != a,
    "in": lambda v, a: v in a,
    "nin": lambda v, a: v not in a,
    "lt": lambda v, a: v < a,
    "lte": lambda v, a: v <= a,
    "gt": lambda v, a: v > a,
    "gte": lambda v, a: v >= a,
}
# Negative comparators hold for a null value (Linear: `neq` matches issues without one).
_NULL_PASSES = {"neq", "nin", "neqIgnoreCase", "notContains", "notContainsIgnoreCase",
                "notStartsWith", "notEndsWith"}  # fmt: skip


def _compare(
    value: Any, comparator: Mapping[str, Any], ops: Mapping[str, Callable[..., bool]]
) -> bool:
    for op, arg in comparator.items():
        if op == "null":
            if arg is not None and (value is None) != bool(arg):
                return False
            continue
        if arg is None:
            continue
        check = ops.get(op)
        if check is None:
            raise _error(f"Comparator {op} is not supported by the contexten sandbox")
        if value is None:
            if op in _NULL_PASSES:
                continue
            return False
        if not check(value, arg):
            return False
    return True


def _match_string(value: str | None, comparator: Mapping[str, Any]) -> bool:
    return _compare(value, comparator, _STRING_OPS)


def _match_number(value: float | None, comparator: Mapping[str, Any]) -> bool:
    return _compare(value, comparator, _NUMBER_OPS)


def _match_date(value: float | None, comparator: Mapping[str, Any]) -> bool:
    """Dates compare as ISO-8601 instants; durations (e.g. -P2W) are not supported."""

    def instant(text: Any) -> float:
        try:
            return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise _error(f"Invalid date {text!r}: the sandbox accepts ISO-8601 dates") from None

    converted: dict[str, Any] = {}
    for op, arg in comparator.items():
        if op == "null" or arg is None:
            converted[op] = arg
        elif isinstance(arg, list):
            converted[op] = [instant(a) for a in arg]
        else:
            converted[op] = instant(arg)
    return _match_number(value, converted)


def _combine(
    item: Any, spec: Mapping[str, Any], match: Callable[[Any, Mapping[str, Any]], bool]
) -> bool:
    """Shared `and`/`or` handling for every filter type."""
    for sub in spec.get("and") or ():
        if not match(item, sub):
            return False
    ors = spec.get("or")
    return not ors or any(match(item, sub) for sub in ors)


def _unsupported(kind: str, spec: Mapping[str, Any], supported: set[str]) -> None:
    extra = [k for k, v in spec.items() if v is not None and k not in supported]
    if extra:
        raise _error(f"{kind}.{extra[0]} is not supported by the contexten sandbox")


# ----------------------------------------------------------------------------- connections


def _connection(
    items: Sequence[Any],
    args: Mapping[str, Any],
    node: Callable[[Any], dict[str, Any]],
    key: Callable[[Any], str],
) -> dict[str, Any]:
    """Relay-style connection with Linear's defaults (first 50, cursors = ids)."""
    first, last = args.get("first"), args.get("last")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
            raise _error(f"Argument {name} must be between 0 and {MAX_PAGE_SIZE}")
    ordered = list(items)
    keys = [key(i) for i in ordered]
    start, end = 0, len(ordered)
    if args.get("after") in keys:
        start = keys.index(args["after"]) + 1
    if args.get("before") in keys:
        end = keys.index(args["before"])
    window = ordered[start:end]
    if first is None and last is None:
        first = DEFAULT_PAGE_SIZE
    has_next = has_prev = False
    if first is not None and len(window) > first:
        window, has_next = window[:first], True
    if last is not None and len(window) > last:
        window, has_prev = window[len(window) - last :], True
    has_prev = has_prev or start > 0
    has_next = has_next or end < len(ordered)
    nodes = [node(i) for i in window]
    cursors = [key(i) for i in window]
    return {
        "nodes": nodes,
        "edges": [{"node": n, "cursor": c} for n, c in zip(nodes, cursors, strict=True)],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_prev,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def _ordered(items: Iterable[Any], args: Mapping[str, Any]) -> list[Any]:
    """Linear orders by createdAt (default) or updatedAt, newest first."""
    by = args.get("orderBy") or "createdAt"
    attr = "updated_at" if by == "updatedAt" else "created_at"
    return sorted(items, key=lambda i: getattr(i, attr, 0.0), reverse=True)


def _archived(item: Any, args: Mapping[str, Any]) -> bool:
    return getattr(item, "archived_at", None) is not None and not args.get("includeArchived")


# ----------------------------------------------------------------------------- resolvers


class _Resolvers:
    """Turns records into the dicts graphql-core's default resolver reads.

    Nested objects and connections are callables, so they are built only when selected.
    """

    def __init__(self, state: LinearState, base_url: str) -> None:
        self.s = state
        self.base_url = base_url

    # --- nodes ---
    def organization(self) -> dict[str, Any]:
        s = self.s
        return {
            "id": s.organization_id,
            "name": s.organization,
            "urlKey": s.url_key,
            "createdAt": _iso(s.viewer.created_at),
            "updatedAt": _iso(s.viewer.created_at),
            "userCount": len(s.users),
            "createdIssueCount": len(s.issues_by_id),
            "teams": lambda info, **args: self.teams(args),
            "labels": lambda info, **args: self.issue_labels(args),
        }

    def user(self, user: LinearUser) -> dict[str, Any]:
        initials = "".join(part[:1] for part in user.name.split()[:2]).upper()
        return {
            "id": user.id,
            "name": user.name,
            "displayName": user.name.split()[0].lower(),
            "email": user.email,
            "active": True,
            "admin": False,
            "app": True,
            "guest": False,
            "isMe": user.id == self.s.viewer.id,
            "owner": False,
            "initials": initials,
            "avatarBackgroundColor": "#5e6ad2",
            "createdAt": _iso(user.created_at),
            "updatedAt": _iso(user.created_at),
            "url": f"{self.s.web_url}/{self.s.url_key}/profiles/{user.id}",
            "organization": lambda info: self.organization(),
        }

    def team(self, team: LinearTeam) -> dict[str, Any]:
        return {
            "id": team.id,
            "key": team.key,
            "name": team.name,
            "displayName": team.name,
            "private": False,
            "timezone": "Etc/UTC",
            "createdAt": _iso(team.created_at),
            "updatedAt": _iso(team.created_at),
            "issueCount": sum(1 for i in self.s.issues_by_id.values() if i.team_id == team.id),
            "triageEnabled": False,
            "cyclesEnabled": False,
            "organization": lambda info: self.organization(),
            "states": lambda info, **args: self.workflow_states(args, team_id=team.id),
            "labels": lambda info, **args: self.issue_labels(args, team_id=team.id),
            "issues": lambda info, **args: self.issues(args, team_id=team.id),
        }

    def workflow_state(self, state: LinearWorkflowState) -> dict[str, Any]:
        return {
            "id": state.id,
            "name": state.name,
            "type": state.type,
            "position": state.position,
            "color": state.color,
            "description": None,
            "createdAt": _iso(state.created_at),
            "updatedAt": _iso(state.created_at),
            "archivedAt": None,
            "team": lambda info: self.team(self.s.teams[state.team_id]),
            "issues": lambda info, **args: self.issues(args, state_id=state.id),
        }

    def label(self, label: LinearLabel) -> dict[str, Any]:
        team = self.s.teams.get(label.team_id or "")
        return {
            "id": label.id,
            "name": label.name,
            "color": label.color,
            "description": label.description,
            "isGroup": False,
            "createdAt": _iso(label.created_at),
            "updatedAt": _iso(label.created_at),
            "archivedAt": None,
            "team": (lambda info: self.team(team)) if team else None,
            "organization": lambda info: self.organization(),
            "issues": lambda info, **args: self.issues(args, label_id=label.id),
        }

    def issue(self, issue: LinearIssue) -> dict[str, Any]:
        s = self.s
        team = s.teams[issue.team_id]
        url = f"{s.web_url}/{s.url_key}/issue/{issue.identifier}/{_slug(issue.title)}"
        return {
            "id": issue.id,
            "identifier": issue.identifier,
            "number": float(issue.number),
            "title": issue.title,
            "description": issue.description,
            "priority": float(issue.priority),
            "priorityLabel": PRIORITY_LABELS.get(issue.priority, "No priority"),
            "url": url,
            "branchName": f"{s.viewer.name.split()[0].lower()}/{issue.identifier.lower()}-"
            f"{_slug(issue.title)}"[:100],
            "createdAt": _iso(issue.created_at),
            "updatedAt": _iso(issue.updated_at),
            "startedAt": _iso(issue.started_at) if issue.started_at else None,
            "completedAt": _iso(issue.completed_at) if issue.completed_at else None,
            "canceledAt": _iso(issue.canceled_at) if issue.canceled_at else None,
            "archivedAt": _iso(issue.archived_at) if issue.archived_at else None,
            "dueDate": issue.due_date,
            "labelIds": list(issue.label_ids),
            "previousIdentifiers": [],
            "boardOrder": 0.0,
            "sortOrder": float(-issue.number),
            "prioritySortOrder": float(issue.priority),
            "customerTicketCount": 0,
            "inheritsSharedAccess": False,
            "reactionData": {},
            "reactions": [],
            "trashed": None,
            "state": lambda info: self.workflow_state(s.workflow_states[issue.state_id]),
            "team": lambda info: self.team(team),
            "creator": (lambda info: self.user(s.users[issue.creator_id]))
            if issue.creator_id in s.users
            else None,
            "assignee": (lambda info: self.user(s.users[issue.assignee_id]))
            if issue.assignee_id in s.users
            else None,
            "parent": (lambda info: self.issue(s.issues_by_id[issue.parent_id]))
            if issue.parent_id in s.issues_by_id
            else None,
            "labels": lambda info, **args: self.issue_labels(args, ids=issue.label_ids),
            "comments": lambda info, **args: self.comments(args, issue_id=issue.id),
        }

    def comment(self, comment: LinearComment) -> dict[str, Any]:
        s = self.s
        issue = s.issues_by_id[comment.issue_id]
        body_data = {
            "type": "doc",
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": comment.body}]}],
        }
        return {
            "id": comment.id,
            "body": comment.body,
            "bodyData": json.dumps(body_data),
            "url": self.issue(issue)["url"] + f"#comment-{comment.id[:8]}",
            "createdAt": _iso(comment.created_at),
            "updatedAt": _iso(comment.updated_at),
            "editedAt": None,
            "archivedAt": None,
            "hideInLinear": False,
            "isArtificialAgentSessionRoot": False,
            "reactionData": {},
            "reactions": [],
            "issueId": issue.id,
            "issue": lambda info: self.issue(issue),
            "user": (lambda info: self.user(s.users[comment.user_id]))
            if comment.user_id in s.users
            else None,
        }

    # --- filters ---
    def match_team(self, team: LinearTeam | None, spec: Mapping[str, Any] | None) -> bool:
        if not spec:
            return True
        if spec.get("null") is not None and (team is None) != bool(spec["null"]):
            return False
        if team is None:
            return not any(v is not None for k, v in spec.items() if k != "null")
        _unsupported("TeamFilter", spec, {"id", "key", "name", "and", "or", "null"})
        return (
            _match_string(team.id, spec.get("id") or {})
            and _match_string(team.key, spec.get("key") or {})
            and _match_string(team.name, spec.get("name") or {})
            and _combine(team, spec, self.match_team)
        )

    def match_state(self, state: LinearWorkflowState, spec: Mapping[str, Any] | None) -> bool:
        if not spec:
            return True
        _unsupported(
            "WorkflowStateFilter", spec, {"id", "name", "type", "position", "team", "and", "or"}
        )
        return (
            _match_string(state.id, spec.get("id") or {})
            and _match_string(state.name, spec.get("name") or {})
            and _match_string(state.type, spec.get("type") or {})
            and _match_number(state.position, spec.get("position") or {})
            and self.match_team(self.s.teams.get(state.team_id), spec.get("team"))
            and _combine(state, spec, self.match_state)
        )

    def match_label(self, label: LinearLabel, spec: Mapping[str, Any] | None) -> bool:
        if not spec:
            return True
        _unsupported("IssueLabelFilter", spec, {"id", "name", "team", "and", "or"})
        return (
            _match_string(label.id, spec.get("id") or {})
            and _match_string(label.name, spec.get("name") or {})
            and self.match_team(self.s.teams.get(label.team_id or ""), spec.get("team"))
            and _combine(label, spec, self.match_label)
        )

    def match_label_collection(self, label_ids: list[str], spec: Mapping[str, Any]) -> bool:
        _unsupported(
            "IssueLabelCollectionFilter",
            spec,
            {"some", "every", "id", "name", "length", "null", "and", "or"},
        )
        labels = [self.s.labels[i] for i in label_ids if i in self.s.labels]
        if spec.get("null") is not None and (not labels) != bool(spec["null"]):
            return False
        if spec.get("some") is not None and not any(
            self.match_label(la, spec["some"]) for la in labels
        ):
            return False
        if spec.get("every") is not None and not all(
            self.match_label(la, spec["every"]) for la in labels
        ):
            return False
        for key in ("id", "name"):
            if spec.get(key) is not None and not any(
                self.match_label(la, {key: spec[key]}) for la in labels
            ):
                return False
        if spec.get("length") is not None and not _match_number(len(labels), spec["length"]):
            return False
        return _combine(label_ids, spec, lambda ids, sub: self.match_label_collection(ids, sub))

    def match_issue(self, issue: LinearIssue, spec: Mapping[str, Any] | None) -> bool:
        if not spec:
            return True
        _unsupported(
            "IssueFilter",
            spec,
            {
                "id", "title", "description", "priority", "number", "team", "state",
                "labels", "createdAt", "updatedAt", "completedAt", "canceledAt",
                "archivedAt", "and", "or",
            },
        )  # fmt: skip
        s = self.s
        return (
            _match_string(issue.id, spec.get("id") or {})
            and _match_string(issue.title, spec.get("title") or {})
            and _match_string(issue.description, spec.get("description") or {})
            and _match_number(issue.priority, spec.get("priority") or {})
            and _match_number(issue.number, spec.get("number") or {})
            and _match_date(issue.created_at, spec.get("createdAt") or {})
            and _match_date(issue.updated_at, spec.get("updatedAt") or {})
            and _match_date(issue.completed_at, spec.get("completedAt") or {})
            and _match_date(issue.canceled_at, spec.get("canceledAt") or {})
            and _match_date(issue.archived_at, spec.get("archivedAt") or {})
            and self.match_team(s.teams.get(issue.team_id), spec.get("team"))
            and self.match_state(s.workflow_states[issue.state_id], spec.get("state"))
            and (
                spec.get("labels") is None
                or self.match_label_collection(issue.label_ids, spec["labels"])
            )
            and _combine(issue, spec, self.match_issue)
        )

    # --- connections ---
    def issues(
        self,
        args: Mapping[str, Any],
        *,
        team_id: str | None = None,
        state_id: str | None = None,
        label_id: str | None = None,
    ) -> dict[str, Any]:
        candidates = [
            i
            for i in self.s.issues_by_id.values()
            if (team_id is None or i.team_id == team_id)
            and (state_id is None or i.state_id == state_id)
            and (label_id is None or label_id in i.label_ids)
            and not _archived(i, args)
        ]
        matching = [i for i in candidates if self.match_issue(i, args.get("filter"))]
        return _connection(_ordered(matching, args), args, self.issue, lambda i: i.id)

    def issue_labels(
        self,
        args: Mapping[str, Any],
        *,
        team_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        labels = [
            la
            for la in self.s.labels.values()
            if (team_id is None or la.team_id in (None, team_id))
            and (ids is None or la.id in ids)
            and self.match_label(la, args.get("filter"))
        ]
        return _connection(_ordered(labels, args), args, self.label, lambda la: la.id)

    def workflow_states(self, args: Mapping[str, Any], *, team_id: str | None = None) -> Any:
        states = sorted(
            (
                st
                for st in self.s.workflow_states.values()
                if (team_id is None or st.team_id == team_id)
                and self.match_state(st, args.get("filter"))
            ),
            key=lambda st: (st.team_id, st.position),
        )
        return _connection(states, args, self.workflow_state, lambda st: st.id)

    def teams(self, args: Mapping[str, Any]) -> dict[str, Any]:
        teams = [t for t in self.s.teams.values() if self.match_team(t, args.get("filter"))]
        return _connection(_ordered(teams, args), args, self.team, lambda t: t.id)

    def comments(self, args: Mapping[str, Any], *, issue_id: str | None = None) -> Any:
        if args.get("filter"):
            raise _error("CommentFilter is not supported by the contexten sandbox")
        items = [
            c for c in self.s.comments_by_id.values() if issue_id is None or c.issue_id == issue_id
        ]
        return _connection(_ordered(items, args), args, self.comment, lambda c: c.id)

    # --- root fields ---
    def root(self) -> dict[str, Any]:
        s = self.s
        return {
            "issues": lambda info, **args: self.issues(args),
            "issue": lambda info, id: self.issue(self._issue(id)),
            "issueLabels": lambda info, **args: self.issue_labels(args),
            "workflowStates": lambda info, **args: self.workflow_states(args),
            "workflowState": lambda info, id: self.workflow_state(
                s.workflow_states.get(id) or _raise(_not_found("WorkflowState"))
            ),
            "team": lambda info, id: self.team(self._team(id)),
            "teams": lambda info, **args: self.teams(args),
            "viewer": lambda info: self.user(s.viewer),
            "organization": lambda info: self.organization(),
            "rateLimitStatus": lambda info: s._rate_status(),
            "comments": lambda info, **args: self.comments(args),
            "comment": lambda info, id=None, **_: self.comment(
                s.comments_by_id.get(id or "") or _raise(_not_found("Comment"))
            ),
            "issueCreate": lambda info, input: self.issue_create(input),
            "issueUpdate": lambda info, id, input: self.issue_update(id, input),
            "commentCreate": lambda info, input: self.comment_create(input),
            "issueLabelCreate": lambda info, input, **_: self.label_create(input),
        }

    def _issue(self, ref: str) -> LinearIssue:
        issue = self.s._find_issue(ref)
        if issue is None:
            raise _not_found("Issue")
        return issue

    def _team(self, ref: str) -> LinearTeam:
        team = self.s.teams.get(ref)
        if team is None:
            team = next((t for t in self.s.teams.values() if t.key == ref.upper()), None)
        if team is None:
            raise _not_found("Team")
        return team

    def _client_id(self, value: str | None, existing: Mapping[str, Any]) -> str | None:
        if value is None:
            return None
        if not _UUID_RE.match(value):
            raise _error("Argument Validation Error", user_message="id must be a UUID.")
        if value in existing:
            raise _error(
                f"Entity with id {value} already exists",
                code="CONFLICT",
                user_message="An entity with this id already exists.",
            )
        return value

    def _check_priority(self, priority: Any) -> int:
        if priority is None:
            return 0
        if priority not in PRIORITY_LABELS:
            raise _error(
                "Argument Validation Error", user_message="priority must be between 0 and 4."
            )
        return int(priority)

    def _check_labels(self, label_ids: Iterable[str], team_id: str) -> list[str]:
        result: list[str] = []
        for label_id in label_ids:
            label = self.s.labels.get(label_id)
            if label is None or label.team_id not in (None, team_id):
                raise _not_found("IssueLabel")
            if label_id not in result:
                result.append(label_id)
        return result

    def _check_state(self, state_id: str, team_id: str) -> str:
        state = self.s.workflow_states.get(state_id)
        if state is None or state.team_id != team_id:
            raise _not_found("WorkflowState")
        return state_id

    def issue_create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        _unsupported(
            "IssueCreateInput",
            data,
            {
                "id", "teamId", "title", "description", "priority", "labelIds", "stateId",
                "assigneeId", "parentId", "dueDate",
            },
        )  # fmt: skip
        s = self.s
        team = self._team(data["teamId"])
        title = (data.get("title") or "").strip()
        if not title:
            raise _error("Argument Validation Error", user_message="Title is required.")
        if len(title) > 255:
            raise _error("Argument Validation Error", user_message="Title is too long.")
        issue_id = self._client_id(data.get("id"), s.issues_by_id)
        state_id = (
            self._check_state(data["stateId"], team.id)
            if data.get("stateId")
            else s.state_of_type(team.id, "backlog").id
        )
        assignee = data.get("assigneeId")
        if assignee is not None and assignee not in s.users:
            raise _not_found("User")
        parent = data.get("parentId")
        if parent is not None:
            parent = self._issue(parent).id
        issue = s._new_issue(
            team_id=team.id,
            title=title,
            description=data.get("description"),
            priority=self._check_priority(data.get("priority")),
            state_id=state_id,
            label_ids=self._check_labels(data.get("labelIds") or (), team.id),
            issue_id=issue_id,
            assignee_id=assignee,
            parent_id=parent,
            due_date=data.get("dueDate"),
        )
        return {"success": True, "lastSyncId": s._next_sync_id(), "issue": self.issue(issue)}

    def issue_update(self, ref: str, data: Mapping[str, Any]) -> dict[str, Any]:
        _unsupported(
            "IssueUpdateInput",
            data,
            {
                "title", "description", "priority", "stateId", "labelIds", "addedLabelIds",
                "removedLabelIds", "assigneeId", "dueDate",
            },
        )  # fmt: skip
        s = self.s
        issue = self._issue(ref)
        now = s.clock()
        if data.get("title") is not None:
            title = data["title"].strip()
            if not title:
                raise _error("Argument Validation Error", user_message="Title is required.")
            issue.title = title
        if "description" in data:
            issue.description = data["description"]
        if data.get("priority") is not None:
            issue.priority = self._check_priority(data["priority"])
        if data.get("stateId") is not None:
            issue.state_id = self._check_state(data["stateId"], issue.team_id)
            s._apply_state_times(issue, s.workflow_states[issue.state_id].type, now)
        if data.get("labelIds") is not None:
            issue.label_ids = self._check_labels(data["labelIds"], issue.team_id)
        if data.get("addedLabelIds"):
            added = self._check_labels(data["addedLabelIds"], issue.team_id)
            issue.label_ids += [i for i in added if i not in issue.label_ids]
        if data.get("removedLabelIds"):
            issue.label_ids = [i for i in issue.label_ids if i not in data["removedLabelIds"]]
        if "assigneeId" in data:
            if data["assigneeId"] is not None and data["assigneeId"] not in s.users:
                raise _not_found("User")
            issue.assignee_id = data["assigneeId"]
        if "dueDate" in data:
            issue.due_date = data["dueDate"]
        issue.updated_at = now
        return {"success": True, "lastSyncId": s._next_sync_id(), "issue": self.issue(issue)}

    def comment_create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        _unsupported(
            "CommentCreateInput",
            data,
            {"id", "issueId", "body", "parentId", "doNotSubscribeToIssue", "createAsUser"},
        )
        s = self.s
        if not data.get("issueId"):
            raise _error("Argument Validation Error", user_message="issueId is required.")
        issue = self._issue(data["issueId"])
        body = data.get("body") or ""
        if not body.strip():
            raise _error("Argument Validation Error", user_message="Comment body is empty.")
        if data.get("parentId") is not None and data["parentId"] not in s.comments_by_id:
            raise _not_found("Comment")
        comment_id = self._client_id(data.get("id"), s.comments_by_id) or str(uuid.uuid4())
        now = s.clock()
        comment = LinearComment(comment_id, issue.id, body, s.viewer.id, now, now)
        s.comments_by_id[comment.id] = comment
        issue.updated_at = now
        return {"success": True, "lastSyncId": s._next_sync_id(), "comment": self.comment(comment)}

    def label_create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        _unsupported(
            "IssueLabelCreateInput", data, {"id", "name", "teamId", "color", "description"}
        )
        s = self.s
        team_id = self._team(data["teamId"]).id if data.get("teamId") else None
        name = data["name"].strip()
        if not name:
            raise _error("Argument Validation Error", user_message="Label name is required.")
        for label in s.labels.values():
            if label.name.casefold() == name.casefold() and label.team_id in (None, team_id):
                raise _error("Duplicate label name", user_message=f"Label {name} already exists.")
        label_id = self._client_id(data.get("id"), s.labels) or str(uuid.uuid4())
        label = LinearLabel(
            label_id,
            name,
            team_id,
            data.get("color") or "#eb5757",
            s.clock(),
            data.get("description"),
        )
        s.labels[label.id] = label
        return {"success": True, "lastSyncId": s._next_sync_id(), "issueLabel": self.label(label)}


def _raise(error: Exception) -> Any:
    raise error


class _RootValue(dict[str, Any]):
    """The root object: unimplemented fields answer a clear error instead of a null."""

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return super().get(key)

        def unsupported(info: GraphQLResolveInfo, **_: Any) -> Any:
            raise _error(
                f"{info.parent_type.name}.{key} is not implemented by the contexten sandbox",
                type_="graphql error",
                code="NOT_IMPLEMENTED",
            )

        return unsupported


# ----------------------------------------------------------------------------- complexity


def _complexity(document: DocumentNode, variables: Mapping[str, Any]) -> int:
    """Linear-like estimate: one point per field, connections multiplied by their page size."""

    def page_size(node: FieldNode) -> int:
        for arg in node.arguments or ():
            if arg.name.value in ("first", "last"):
                value = arg.value
                if isinstance(value, IntValueNode):
                    return int(value.value)
                if isinstance(value, VariableNode):
                    found = variables.get(value.name.value)
                    if isinstance(found, int):
                        return found
        return DEFAULT_PAGE_SIZE

    def walk(selection_set: SelectionSetNode | None) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            inner = getattr(selection, "selection_set", None)
            if isinstance(selection, FieldNode) and inner is not None:
                names = {s.name.value for s in inner.selections if isinstance(s, FieldNode)}
                multiplier = page_size(selection) if names & {"nodes", "edges"} else 1
                total += 1 + multiplier * walk(inner)
            elif inner is not None:
                total += walk(inner)
            else:
                total += 1
        return total

    return sum(
        walk(d.selection_set)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )


# ----------------------------------------------------------------------------- app


def _json(body: dict[str, Any], status: int, headers: Mapping[str, str]) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers))


def _rate_limited(hit: _ScriptedLimit, headers: dict[str, str]) -> JSONResponse:
    if hit.retry_after is not None:
        headers["retry-after"] = str(hit.retry_after)
    error = _error(
        "Rate limit exceeded",
        type_="ratelimited",
        code="RATELIMITED",
        status=429,
        user_message="Too many requests. Please try again later.",
    )
    return _json(_error_body([error]), 429 if hit.style == "429" else 400, headers)


def create_app(state: LinearState, faults: Any = None) -> FastAPI:
    """The Linear API app. `faults` (a FaultInjector) is accepted for a uniform signature:
    SandboxServer applies it around the app with `FaultInjector.wrap`."""
    app = FastAPI(title="contexten sandbox: Linear", docs_url=None, redoc_url=None)
    schema = linear_schema()
    del faults  # applied around the app by SandboxServer (FaultInjector.wrap)

    @app.post("/graphql")
    async def graphql_endpoint(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _json(_error_body([_error("Request body too large")]), 413, {})
        with state.lock:
            authorized = state._authenticate(request.headers.get("authorization"))
        if not authorized:
            error = _error(
                "Authentication required, not authenticated",
                type_="authentication error",
                code="AUTHENTICATION_ERROR",
                status=401,
                user_message="You need to authenticate to access this operation.",
            )
            return _json(_error_body([error]), 400, {})
        try:
            payload = json.loads(raw)
            if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
                raise ValueError("expected an object with a string 'query'")
            variables = payload.get("variables") or {}
            if not isinstance(variables, dict):
                raise ValueError("'variables' must be an object")
        except ValueError as exc:
            error = _error(f"Bad request: {exc}", type_="graphql error", code="BAD_REQUEST")
            return _json(_error_body([error]), 400, {})
        try:
            document = parse(payload["query"])
        except GraphQLError as exc:
            exc.extensions = {"type": "graphql error", "code": "GRAPHQL_PARSE_FAILED"}
            return _json(_error_body([exc]), 400, {})
        complexity = _complexity(document, variables)
        with state.lock:
            hit, headers = state._charge(complexity)
            state.request_log.append(
                {"operation": payload.get("operationName"), "query": payload["query"]}
            )
        if hit is not None:
            return _rate_limited(hit, headers)
        problems = validate(schema, document)
        if problems:
            for problem in problems:
                problem.extensions = {"type": "graphql error", "code": "GRAPHQL_VALIDATION_FAILED"}
            return _json(_error_body(problems), 400, headers)
        if complexity > MAX_QUERY_COMPLEXITY:
            error = _error(f"Query too complex: {complexity} points, at most 10000 allowed")
            return _json(_error_body([error]), 400, headers)
        base = str(request.base_url)
        with state.lock:
            result = execute(
                schema,
                document,
                root_value=_RootValue(_Resolvers(state, base).root()),
                variable_values=variables,
                operation_name=payload.get("operationName"),
            )
        assert isinstance(result, ExecutionResult)  # no async resolvers
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
            return _json(body, 400, headers)
        return _json(body, 200, headers)

    return app
