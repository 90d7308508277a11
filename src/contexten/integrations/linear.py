"""Linear over GraphQL (httpx): find an open issue, create issues, comment, close.

Every operation sent is a module constant listed in `OPERATIONS`; a test validates each one
against Linear's schema. Calls go through the shared retry policy (`http.py`), which knows
Linear's rate limits (HTTP 400 with `extensions.code == "RATELIMITED"`, or HTTP 429).

Idempotency: issues, comments and labels are created with a client-chosen id derived from
the idempotency key (Linear's `IssueCreateInput.id` etc. take a UUID v4), and creates go
through the ActionLedger. So a retry after an ambiguous failure, a second delivery of the same
event or another process finds the issue by that id instead of making a second one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx
from pydantic import SecretStr

from contexten.integrations.http import (
    AttemptFailure,
    RetryPolicy,
    classify_response,
    request_with_retries,
    shared_ssl_context,
)
from contexten.integrations.idempotency import ActionLedger, ActsOnce, idempotency_key
from contexten.integrations.interface import (
    CheckResult,
    CheckStatus,
    ErrorReason,
    IssueRef,
    IssueTracker,
    IssueTrackerError,
)
from contexten.integrations.redaction import install_log_redaction

log = logging.getLogger(__name__)

SERVICE = "linear"
OPEN_EXCLUDED_STATES = ("completed", "canceled", "duplicate")
MAX_TITLE = 255
MAX_DESCRIPTION = 100_000

ISSUE_FIELDS = """
fragment IssueFields on Issue {
  id
  identifier
  url
  title
  state { type }
}
"""

FIND_OPEN_ISSUE = (
    """
query FindOpenIssue($filter: IssueFilter!) {
  issues(first: 1, filter: $filter, orderBy: createdAt) {
    nodes { ...IssueFields }
  }
}
"""
    + ISSUE_FIELDS
)

GET_ISSUE = (
    """
query GetIssue($id: String!) {
  issue(id: $id) { ...IssueFields }
}
"""
    + ISSUE_FIELDS
)

CREATE_ISSUE = (
    """
mutation CreateIssue($input: IssueCreateInput!) {
  issueCreate(input: $input) {
    success
    issue { ...IssueFields }
  }
}
"""
    + ISSUE_FIELDS
)

UPDATE_ISSUE = (
    """
mutation UpdateIssue($id: String!, $input: IssueUpdateInput!) {
  issueUpdate(id: $id, input: $input) {
    success
    issue { ...IssueFields }
  }
}
"""
    + ISSUE_FIELDS
)

CREATE_COMMENT = """
mutation CreateComment($input: CommentCreateInput!) {
  commentCreate(input: $input) {
    success
    comment { id url }
  }
}
"""

GET_COMMENT = """
query GetComment($id: String!) {
  comment(id: $id) { id url }
}
"""

FIND_LABELS = """
query FindLabels($filter: IssueLabelFilter!) {
  issueLabels(first: 250, filter: $filter) {
    nodes { id name team { id } }
  }
}
"""

CREATE_LABEL = """
mutation CreateLabel($input: IssueLabelCreateInput!) {
  issueLabelCreate(input: $input) {
    success
    issueLabel { id name }
  }
}
"""

COMPLETED_STATES = """
query CompletedStates($team: ID!) {
  workflowStates(first: 50, filter: { team: { id: { eq: $team } }, type: { eq: "completed" } }) {
    nodes { id name type position }
  }
}
"""

CHECK = """
query Check($team: String!) {
  viewer { id name }
  team(id: $team) { id key name }
}
"""

OPERATIONS: dict[str, str] = {
    "FindOpenIssue": FIND_OPEN_ISSUE,
    "GetIssue": GET_ISSUE,
    "CreateIssue": CREATE_ISSUE,
    "UpdateIssue": UPDATE_ISSUE,
    "CreateComment": CREATE_COMMENT,
    "GetComment": GET_COMMENT,
    "FindLabels": FIND_LABELS,
    "CreateLabel": CREATE_LABEL,
    "CompletedStates": COMPLETED_STATES,
    "Check": CHECK,
}


def client_uuid(*parts: Any) -> str:
    """A UUID v4-shaped id that is a pure function of `parts` (Linear accepts client ids)."""
    digest = hashlib.sha256(json.dumps(parts, default=str).encode("utf-8")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def open_issue_filter(
    team_id: str, *, title: str | None = None, label: str | None = None
) -> dict[str, Any]:
    """The IssueFilter for "open issue in this team with this title and/or label"."""
    if not title and not label:
        raise IssueTrackerError(
            "linear: find_open_issue needs a title or a label",
            reason=ErrorReason.INVALID,
            service=SERVICE,
        )
    spec: dict[str, Any] = {
        "team": {"id": {"eq": team_id}},
        "state": {"type": {"nin": list(OPEN_EXCLUDED_STATES)}},
    }
    if title:
        spec["title"] = {"eq": title}
    if label:
        spec["labels"] = {"some": {"name": {"eq": label}}}
    return spec


# ----------------------------------------------------------------------------- errors


def _first_error(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return None


def classify_linear(
    status_code: int, headers: Mapping[str, str], body: bytes | str | None, now: float
) -> AttemptFailure | None:
    """Linear answers errors in the GraphQL `errors` list (HTTP 400, sometimes 200)."""
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        data = None
    error = _first_error(data)
    if status_code < 400 and error is None:
        return None
    base = classify_response(max(status_code, 400), headers, body, now)
    if base is not None and base.reason in (ErrorReason.RATE_LIMITED, ErrorReason.UNAVAILABLE):
        return base
    if error is None:
        return base
    extensions = error.get("extensions") if isinstance(error.get("extensions"), dict) else {}
    assert isinstance(extensions, dict)
    kind = str(extensions.get("type", "")).lower()
    code = str(extensions.get("code", "")).upper()
    message = str(extensions.get("userPresentableMessage") or error.get("message") or kind)
    raw = str(error.get("message") or "")
    detail = f"HTTP {status_code}: {message}"
    if kind == "ratelimited" or code == "RATELIMITED":
        limited = classify_response(429, headers, body, now)
        return replace(limited, status_code=status_code) if limited else None
    if kind in ("authentication error", "forbidden") or code in (
        "AUTHENTICATION_ERROR",
        "FORBIDDEN",
    ):
        reason = ErrorReason.AUTH
    elif code == "CONFLICT" or "already exist" in (raw + message).lower():
        reason = ErrorReason.CONFLICT
    elif raw.startswith("Entity not found"):
        reason = ErrorReason.NOT_FOUND
    elif kind in ("internal error", "lock timeout", "network error"):
        return AttemptFailure(
            ErrorReason.UNAVAILABLE,
            detail,
            retryable=True,
            status_code=status_code,
            maybe_processed=True,
        )
    else:
        reason = ErrorReason.INVALID
    return AttemptFailure(reason, detail, retryable=False, status_code=status_code)


def _auth_header(key: str) -> str:
    """A personal API key goes as-is; an OAuth token as Bearer."""
    key = key.strip()
    if key.lower().startswith("bearer ") or key.startswith("lin_api_"):
        return key
    if key.startswith("lin_oauth_"):
        return f"Bearer {key}"
    return key


def _ref(node: Mapping[str, Any]) -> IssueRef:
    state = node.get("state")
    return IssueRef(
        id=str(node["id"]),
        identifier=str(node["identifier"]),
        url=str(node["url"]),
        title=str(node["title"]),
        state=state.get("type") if isinstance(state, dict) else None,
    )


# ----------------------------------------------------------------------------- client


class LinearClient(ActsOnce, IssueTracker):
    """Linear for one team. `api_key`: a personal key (`lin_api_…`) or an OAuth token."""

    def __init__(
        self,
        *,
        api_key: SecretStr | str,
        team_id: str,
        ledger: ActionLedger | None = None,
        api_url: str = "https://api.linear.app/graphql",
        policy: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not secret or not team_id:
            raise IssueTrackerError(
                "linear: LINEAR_API_KEY and LINEAR_TEAM_ID are required",
                reason=ErrorReason.AUTH,
                service=SERVICE,
            )
        install_log_redaction([secret])
        self._auth = _auth_header(secret)
        self.team_id = team_id
        self.api_url = api_url
        self.ledger = ledger
        self.policy = policy or RetryPolicy()
        self._http = http or httpx.AsyncClient(
            headers={"User-Agent": "contexten"}, follow_redirects=False, verify=shared_ssl_context()
        )
        self._label_ids: dict[str, str] = {}
        self._completed_state: str | None = None

    def __repr__(self) -> str:
        return f"LinearClient(api_url={self.api_url!r}, team_id={self.team_id!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ transport

    async def _post(
        self,
        query: str,
        variables: Mapping[str, Any],
        *,
        what: str,
        idempotent: bool = True,
        policy: RetryPolicy | None = None,
    ) -> httpx.Response:
        return await request_with_retries(
            self._http,
            "POST",
            self.api_url,
            policy=policy or self.policy,
            error_type=IssueTrackerError,
            service=SERVICE,
            what=what,
            classify=classify_linear,
            idempotent=idempotent,
            json={"query": query, "variables": dict(variables)},
            headers={"Authorization": self._auth, "Content-Type": "application/json"},
        )

    async def _execute(
        self, query: str, variables: Mapping[str, Any], *, what: str, idempotent: bool = True
    ) -> dict[str, Any]:
        response = await self._post(query, variables, what=what, idempotent=idempotent)
        try:
            body = response.json()
        except ValueError:
            raise IssueTrackerError(
                f"linear: {what} failed: the answer is not JSON",
                reason=ErrorReason.ERROR,
                service=SERVICE,
                status_code=response.status_code,
            ) from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise IssueTrackerError(
                f"linear: {what} failed: the answer has no data",
                reason=ErrorReason.ERROR,
                service=SERVICE,
                status_code=response.status_code,
            )
        return data

    # ------------------------------------------------------------------ reads

    async def find_open_issue(
        self, *, title: str | None = None, label: str | None = None
    ) -> IssueRef | None:
        spec = open_issue_filter(self.team_id, title=title, label=label)
        data = await self._execute(FIND_OPEN_ISSUE, {"filter": spec}, what="find open issue")
        nodes = data["issues"]["nodes"]
        return _ref(nodes[0]) if nodes else None

    async def get_issue(self, issue_id: str) -> IssueRef | None:
        """By id or identifier (ENG-123); None when it does not exist."""
        try:
            data = await self._execute(GET_ISSUE, {"id": issue_id}, what="get issue")
        except IssueTrackerError as exc:
            if exc.not_found:
                return None
            raise
        return _ref(data["issue"])

    async def _completed_state_id(self) -> str:
        if self._completed_state is None:
            data = await self._execute(
                COMPLETED_STATES, {"team": self.team_id}, what="list completed states"
            )
            nodes = sorted(data["workflowStates"]["nodes"], key=lambda n: n["position"])
            if not nodes:
                raise IssueTrackerError(
                    f"linear: team {self.team_id} has no workflow state of type completed",
                    reason=ErrorReason.INVALID,
                    service=SERVICE,
                )
            self._completed_state = str(nodes[0]["id"])
        return self._completed_state

    async def _resolve_labels(self, names: Sequence[str]) -> list[str]:
        """Label ids for `names` (team or workspace labels), creating missing team labels."""
        wanted = [n.strip() for n in dict.fromkeys(names) if n and n.strip()]
        missing = [n for n in wanted if n.casefold() not in self._label_ids]
        if missing:
            await self._load_labels(missing)
        for name in missing:
            if name.casefold() not in self._label_ids:
                await self._create_label(name)
        return [self._label_ids[n.casefold()] for n in wanted]

    async def _load_labels(self, names: Sequence[str]) -> None:
        spec = {"name": {"in": list(names)}}
        data = await self._execute(FIND_LABELS, {"filter": spec}, what="find labels")
        for node in data["issueLabels"]["nodes"]:
            team = node.get("team")
            if team is None or team.get("id") == self.team_id:
                # A team label wins over a workspace label of the same name.
                key = str(node["name"]).casefold()
                if team is not None or key not in self._label_ids:
                    self._label_ids[key] = str(node["id"])

    async def _create_label(self, name: str) -> None:
        label_id = client_uuid("linear_label", self.team_id, name.casefold())
        variables = {"input": {"id": label_id, "name": name, "teamId": self.team_id}}
        try:
            data = await self._execute(
                CREATE_LABEL, variables, what=f"create label {name!r}", idempotent=False
            )
            self._label_ids[name.casefold()] = str(data["issueLabelCreate"]["issueLabel"]["id"])
        except IssueTrackerError as exc:
            if not (
                exc.maybe_processed or exc.reason in (ErrorReason.CONFLICT, ErrorReason.INVALID)
            ):
                raise
            # Created by an earlier attempt or by someone else meanwhile: look it up again.
            await self._load_labels([name])
            if name.casefold() not in self._label_ids:
                raise

    # ------------------------------------------------------------------ actions

    async def create_issue(
        self,
        *,
        title: str,
        description: str,
        priority: int = 0,
        labels: Sequence[str] = (),
        key: str | None = None,
    ) -> IssueRef:
        """Create an issue once per `key` (default: team + title + description).

        The same key always answers the same issue, even after it was closed: to open a new
        issue for a failure that came back, pass a new key (e.g. with an occurrence count).
        """
        title = " ".join(title.split())
        if not title:
            raise IssueTrackerError(
                "linear: an issue needs a title", reason=ErrorReason.INVALID, service=SERVICE
            )
        if not 0 <= priority <= 4:
            raise IssueTrackerError(
                f"linear: priority {priority} must be 0 (none) to 4 (low)",
                reason=ErrorReason.INVALID,
                service=SERVICE,
            )
        if len(title) > MAX_TITLE:
            title = title[: MAX_TITLE - 1] + "…"
        if len(description) > MAX_DESCRIPTION:
            description = description[: MAX_DESCRIPTION - 40] + "\n\n… (truncated by contexten)"
        key = key or idempotency_key("linear_issue", self.team_id, title, description)
        issue_id = client_uuid("linear_issue", key)

        async def find_existing() -> dict[str, Any] | None:
            found = await self.get_issue(issue_id)
            return None if found is None else found.to_dict()

        async def perform() -> dict[str, Any]:
            label_ids = await self._resolve_labels(labels)
            variables = {
                "input": {
                    "id": issue_id,
                    "teamId": self.team_id,
                    "title": title,
                    "description": description,
                    "priority": priority,
                    "labelIds": label_ids,
                }
            }
            try:
                data = await self._execute(
                    CREATE_ISSUE, variables, what="create issue", idempotent=False
                )
            except IssueTrackerError as exc:
                if exc.reason is ErrorReason.CONFLICT:
                    existing = await find_existing()
                    if existing is not None:
                        return existing
                raise
            payload = data["issueCreate"]
            if not payload.get("success") or not payload.get("issue"):
                raise IssueTrackerError(
                    "linear: create issue failed: success is false",
                    reason=ErrorReason.ERROR,
                    service=SERVICE,
                )
            return _ref(payload["issue"]).to_dict()

        result = await self._once(
            key, "linear_issue", f"linear:{self.team_id}:{title[:200]}", perform, find_existing
        )
        return IssueRef.from_dict(result)

    async def comment(self, issue_id: str, body: str, *, key: str | None = None) -> str:
        if not body.strip():
            raise IssueTrackerError(
                "linear: a comment needs a body", reason=ErrorReason.INVALID, service=SERVICE
            )
        key = key or idempotency_key("linear_comment", issue_id, body)
        comment_id = client_uuid("linear_comment", key)

        async def find_existing() -> dict[str, Any] | None:
            try:
                data = await self._execute(GET_COMMENT, {"id": comment_id}, what="get comment")
            except IssueTrackerError as exc:
                if exc.not_found:
                    return None
                raise
            return {"id": str(data["comment"]["id"]), "url": data["comment"].get("url")}

        async def perform() -> dict[str, Any]:
            variables = {"input": {"id": comment_id, "issueId": issue_id, "body": body}}
            try:
                data = await self._execute(
                    CREATE_COMMENT, variables, what="comment on issue", idempotent=False
                )
            except IssueTrackerError as exc:
                if exc.reason is ErrorReason.CONFLICT:
                    return {"id": comment_id, "url": None}
                raise
            comment = data["commentCreate"]["comment"]
            return {"id": str(comment["id"]), "url": comment.get("url")}

        result = await self._once(
            key, "linear_comment", f"linear:{issue_id}", perform, find_existing
        )
        return str(result["id"])

    async def close_issue(self, issue_id: str) -> IssueRef:
        """Move the issue to the team's first completed state (idempotent by nature)."""
        state_id = await self._completed_state_id()
        data = await self._execute(
            UPDATE_ISSUE,
            {"id": issue_id, "input": {"stateId": state_id}},
            what="close issue",
            idempotent=True,
        )
        payload = data["issueUpdate"]
        if not payload.get("success") or not payload.get("issue"):
            raise IssueTrackerError(
                "linear: close issue failed: success is false",
                reason=ErrorReason.ERROR,
                service=SERVICE,
            )
        return _ref(payload["issue"])

    # ------------------------------------------------------------------ health

    async def check(self) -> CheckResult:
        """Reachable, authenticated, team visible, and how much of the rate limit is left."""
        started = self.policy.monotonic()
        quick = replace(self.policy, max_attempts=min(2, self.policy.max_attempts))
        quick = replace(quick, max_total_seconds=min(10.0, quick.max_total_seconds))
        try:
            response = await self._post(
                CHECK, {"team": self.team_id}, what="health check", policy=quick
            )
        except IssueTrackerError as exc:
            return CheckResult.failed(SERVICE, exc)
        latency = (self.policy.monotonic() - started) * 1000
        remaining, limit, reset_at = _rate_headers(response.headers)
        status: CheckStatus = "ok"
        detail = "authenticated; team visible"
        if remaining is not None and limit and remaining < limit * 0.1:
            status, detail = "degraded", f"only {remaining} of {limit} requests left"
        return CheckResult(
            SERVICE,
            status,
            latency_ms=latency,
            detail=detail,
            rate_limit_remaining=remaining,
            rate_limit_reset_at=reset_at,
        )


def _rate_headers(headers: Mapping[str, str]) -> tuple[int | None, int | None, float | None]:
    def number(name: str) -> float | None:
        try:
            return float(headers[name])
        except (KeyError, ValueError):
            return None

    remaining = number("x-ratelimit-requests-remaining")
    limit = number("x-ratelimit-requests-limit")
    reset = number("x-ratelimit-requests-reset")
    if reset is not None and reset > 1e11:  # epoch milliseconds
        reset /= 1000.0
    return (
        None if remaining is None else int(remaining),
        None if limit is None else int(limit),
        reset,
    )
