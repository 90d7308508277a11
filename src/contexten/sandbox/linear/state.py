"""The Linear sandbox's records and LinearState (teams, states, labels, issues, comments, users)."""

from __future__ import annotations

import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from graphql import (
    GraphQLSchema,
    build_schema,
)

from contexten.sandbox.state import SANDBOX_LINEAR_API_KEY

SCHEMA_PATH = Path(__file__).parent.parent / "data" / "linear-schema.graphql"
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
