"""A local Codegen agent API, shaped by Codegen's published OpenAPI description.

Routes (`codegen-openapi3.json`): create a run, get a run, list runs (newest first, paged),
resume a run, the alpha logs endpoint, `GET /v1/users/me` and `GET /v1/organizations`.
Responses are AgentRunResponse / Page[AgentRunResponse] / AgentRunWithLogsResponse; errors
are the spec's bodies: 402 `{message, status_code}` (plan limit), 403 (no access), 404 (no
repos / run not found), 422 FastAPI `{detail: [{loc, msg, type}]}`, 429 (rate limit:
10 creates a minute, 60 other requests per 30 s).

A run walks through its script's statuses (default PENDING → RUNNING → COMPLETE), one step
per poll of `GET …/agent/run/{id}` (`advance="poll"`) or one step per `seconds_per_step`
(`advance="time"`). `script_next_run(...)` sets the outcome of the next created run (e.g.
FAILED, or a pull request). `status_case="lower"` answers the SDK's lowercase statuses
(`completed`, `failed`, …) instead of the CLI's uppercase ones.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from contexten.sandbox.state import SANDBOX_CODEGEN_ORG_ID, SANDBOX_CODEGEN_TOKEN

FINAL_STATUSES = ("COMPLETE", "FAILED", "ERROR", "CANCELLED", "STOPPED")
LOWER_STATUS = {"COMPLETE": "completed", "ACTIVE": "running"}
SOURCE_TYPES = (
    "LOCAL", "SLACK", "GITHUB", "GITHUB_CHECK_SUITE", "GITHUB_PR_REVIEW", "LINEAR", "API",
    "CHAT", "JIRA", "CLICKUP", "MONDAY", "SETUP_COMMANDS",
)  # fmt: skip

MESSAGES = {
    402: "Alloted agent runs for the current billing plan have been reached. "
    "Please upgrade your plan to continue.",
    403: "You do not have access to this organization.",
    "no_repos": "No repos found in the organization. Please add some repos and try again.",
    "run_not_found": "Agent run not found.",
    429: "Rate limit exceeded. Please try again later.",
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass(frozen=True)
class RunScript:
    """How a run will go: its statuses in order, and what it produces when it finishes."""

    statuses: tuple[str, ...] = ("PENDING", "RUNNING", "COMPLETE")
    result: str | None = "Fixed the failing test and opened a pull request."
    summary: str | None = "Agent run finished."
    pull_requests: tuple[Mapping[str, Any], ...] = ()


@dataclass
class CodegenRun:
    id: int
    organization_id: int
    user_id: int
    prompt: str
    script: RunScript
    created_at: float
    metadata: dict[str, Any] | None = None
    repo_id: int | None = None
    model: str | None = None
    agent_type: str | None = None
    images: list[str] = field(default_factory=list)
    source_type: str = "API"
    step: int = 0
    polls: int = 0
    step_started_at: float = 0.0
    follow_ups: list[str] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.script.statuses[min(self.step, len(self.script.statuses) - 1)]

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass
class CodegenOrg:
    id: int
    name: str
    members: set[int]
    repos: list[str]
    run_limit: int | None = None  # runs allowed by the plan (None: unlimited)


@dataclass
class CodegenUser:
    id: int
    github_username: str
    email: str | None
    full_name: str | None
    role: str = "MEMBER"


class _Window:
    """A sliding-window request counter."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.hits: deque[float] = deque()

    def take(self, now: float) -> float | None:
        """None if allowed (and counted), else seconds until a slot frees."""
        while self.hits and now - self.hits[0] >= self.seconds:
            self.hits.popleft()
        if len(self.hits) >= self.limit:
            return self.seconds - (now - self.hits[0])
        self.hits.append(now)
        return None


class CodegenState:
    """In-memory Codegen organisation, users and agent runs. Thread-safe.

    A fresh state has organisation `org_id` (1) with one repository and one user whose API
    token is `token`.
    """

    def __init__(
        self,
        *,
        advance: Literal["poll", "time"] = "poll",
        seconds_per_step: float = 5.0,
        status_case: Literal["upper", "lower"] = "upper",
        create_limit_per_minute: int | None = 10,
        requests_limit_per_30s: int | None = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.advance = advance
        self.seconds_per_step = seconds_per_step
        self.status_case = status_case
        self.clock = clock
        self.orgs: dict[int, CodegenOrg] = {}
        self.users: dict[int, CodegenUser] = {}
        self.tokens: dict[str, int] = {}
        self.runs_by_id: dict[int, CodegenRun] = {}
        self.pr_url_base = "https://github.com/sandbox/app/pull/"
        self._scripts: deque[RunScript] = deque()
        self._next_run_id = 1001
        self._next_pr = 1
        self._create_windows: dict[int, _Window] = {}
        self._request_windows: dict[int, _Window] = {}
        self.create_limit_per_minute = create_limit_per_minute
        self.requests_limit_per_30s = requests_limit_per_30s
        self.org_id = int(SANDBOX_CODEGEN_ORG_ID)
        user = self.add_user(SANDBOX_CODEGEN_TOKEN, github_username="sandbox-dev")
        self.add_org(self.org_id, "Sandbox Org", members=[user], repos=["sandbox/app"])
        self.token = SANDBOX_CODEGEN_TOKEN

    # --- seeding ---
    def add_user(
        self, token: str, *, github_username: str = "dev", email: str | None = None
    ) -> int:
        with self.lock:
            user_id = len(self.users) + 1
            self.users[user_id] = CodegenUser(
                user_id, github_username, email or f"{github_username}@sandbox.invalid", None
            )
            self.tokens[token] = user_id
            return user_id

    def add_org(
        self,
        org_id: int,
        name: str,
        *,
        members: Iterable[int] = (),
        repos: Iterable[str] = (),
        run_limit: int | None = None,
    ) -> None:
        with self.lock:
            self.orgs[org_id] = CodegenOrg(org_id, name, set(members), list(repos), run_limit)

    def script_next_run(
        self,
        *,
        statuses: Sequence[str] | None = None,
        final: str | None = None,
        result: str | None = "Fixed the failing test and opened a pull request.",
        summary: str | None = "Agent run finished.",
        pull_request: bool | Mapping[str, Any] = False,
    ) -> None:
        """The next created run follows this script (FIFO; default: the standard script).

        `final` replaces the last status (e.g. "FAILED"); `pull_request=True` attaches a
        generated PR link when the run completes, a mapping attaches that PR object.
        """
        base = tuple(statuses) if statuses else RunScript().statuses
        if final is not None:
            base = (*base[:-1], final)
        prs: tuple[Mapping[str, Any], ...] = ()
        if pull_request:
            prs = (dict(pull_request) if isinstance(pull_request, Mapping) else {},)
        with self.lock:
            self._scripts.append(RunScript(base, result, summary, prs))

    # --- inspection (copies) ---
    def runs(self) -> list[CodegenRun]:
        with self.lock:
            return [
                replace(r, logs=list(r.logs), follow_ups=list(r.follow_ups))
                for r in self.runs_by_id.values()
            ]

    def run(self, run_id: int) -> CodegenRun:
        with self.lock:
            r = self.runs_by_id[run_id]
            return replace(r, logs=list(r.logs), follow_ups=list(r.follow_ups))

    # --- internals (callers hold the lock) ---
    def _status_text(self, status: str) -> str:
        if self.status_case == "lower":
            return LOWER_STATUS.get(status, status.lower())
        return status

    def _sync(self, run: CodegenRun, *, polled: bool) -> None:
        """Move the run along its script: one step per poll, or per seconds_per_step."""
        if run.finished:
            return
        last = len(run.script.statuses) - 1
        if self.advance == "poll":
            if polled:
                run.polls += 1
                self._step_to(run, min(last, run.step + 1))
        else:
            elapsed = self.clock() - run.step_started_at
            self._step_to(run, min(last, run.step + int(elapsed // self.seconds_per_step)))

    def _step_to(self, run: CodegenRun, step: int) -> None:
        while run.step < step:
            run.step += 1
            run.step_started_at = self.clock()
            self._log(run)

    def _log(self, run: CodegenRun) -> None:
        status = run.status
        message_type = {"COMPLETE": "FINAL_ANSWER", "FAILED": "ERROR", "ERROR": "ERROR"}.get(
            status, "ACTION"
        )
        run.logs.append(
            {
                "agent_run_id": run.id,
                "created_at": _iso(self.clock()),
                "tool_name": None if run.finished else "run_command",
                "message_type": message_type,
                "thought": f"status is now {status}",
                "observation": run.script.result if run.finished else None,
                "tool_input": None,
                "tool_output": None,
            }
        )

    def _pull_requests(self, run: CodegenRun) -> list[dict[str, Any]] | None:
        if run.status != "COMPLETE":
            return None
        prs: list[dict[str, Any]] = []
        for i, spec in enumerate(run.script.pull_requests):
            number = spec.get("number") or run.id * 10 + i
            prs.append(
                {
                    "id": int(spec.get("id") or 900_000 + number),
                    "title": spec.get("title") or f"Fix: {run.prompt.splitlines()[0][:60]}",
                    "url": spec.get("url") or f"{self.pr_url_base}{number}",
                    "created_at": _iso(run.step_started_at),
                    "head_branch_name": spec.get("head_branch_name") or f"codegen-bot/run-{run.id}",
                }
            )
        return prs

    def _response(self, run: CodegenRun, base_url: str) -> dict[str, Any]:
        return {
            "id": run.id,
            "organization_id": run.organization_id,
            "status": self._status_text(run.status),
            "created_at": _iso(run.created_at),
            "web_url": f"{base_url}agent/trace/{run.id}",
            "result": run.script.result if run.finished else None,
            "summary": run.script.summary if run.finished else None,
            "source_type": run.source_type,
            "github_pull_requests": self._pull_requests(run),
            "metadata": run.metadata,
        }

    def _throttle(self, org_id: int, *, create: bool) -> float | None:
        now = self.clock()
        wait: float | None = None
        if self.requests_limit_per_30s is not None:
            window = self._request_windows.setdefault(
                org_id, _Window(self.requests_limit_per_30s, 30.0)
            )
            wait = window.take(now)
        if wait is None and create and self.create_limit_per_minute is not None:
            window = self._create_windows.setdefault(
                org_id, _Window(self.create_limit_per_minute, 60.0)
            )
            wait = window.take(now)
        return wait


# ----------------------------------------------------------------------------- models


class CreateAgentRunInput(BaseModel):
    prompt: str
    images: list[str] | None = None
    metadata: dict[str, Any] | None = None
    repo_id: int | None = None
    model: str | None = None
    agent_type: Literal["codegen", "claude_code"] | None = None


class ResumeAgentRunInput(BaseModel):
    agent_run_id: int
    prompt: str
    images: list[str] | None = None


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"message": message, "status_code": status}, status_code=status, headers=dict(headers or {})
    )


def _bad_images(images: list[str] | None, field_name: str = "images") -> JSONResponse | None:
    for i, image in enumerate(images or ()):
        if not image.startswith("data:image/"):
            detail = [
                {
                    "loc": ["body", field_name, i],
                    "msg": "Value error, images must be base64 data URIs (data:image/...)",
                    "type": "value_error",
                }
            ]
            return JSONResponse({"detail": detail}, status_code=422)
    return None


# ----------------------------------------------------------------------------- app


def create_app(state: CodegenState, faults: Any = None) -> FastAPI:
    """The Codegen app. `faults` (a FaultInjector) is accepted for a uniform signature:
    SandboxServer applies it around the app with `FaultInjector.wrap`."""
    del faults
    app = FastAPI(title="contexten sandbox: Codegen", docs_url=None, redoc_url=None)

    def authorize(request: Request, org_id: int | None, *, create: bool = False) -> Any:
        """The caller's user id, or an error response (403 / 429)."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        user_id = state.tokens.get(token)
        if user_id is None:
            return _error(403, "Invalid or missing API token.")
        if org_id is not None:
            org = state.orgs.get(org_id)
            if org is None or user_id not in org.members:
                return _error(403, MESSAGES[403])
        wait = state._throttle(org_id or 0, create=create)
        if wait is not None:
            return _error(429, MESSAGES[429], {"Retry-After": str(max(1, math.ceil(wait)))})
        return user_id

    @app.post("/v1/organizations/{org_id}/agent/run")
    def create_agent_run(org_id: int, body: CreateAgentRunInput, request: Request) -> Response:
        with state.lock:
            user_id = authorize(request, org_id, create=True)
            if isinstance(user_id, Response):
                return user_id
            org = state.orgs[org_id]
            if not org.repos:
                return _error(404, str(MESSAGES["no_repos"]))
            used = sum(1 for r in state.runs_by_id.values() if r.organization_id == org_id)
            if org.run_limit is not None and used >= org.run_limit:
                return _error(402, str(MESSAGES[402]))
            bad = _bad_images(body.images)
            if bad is not None:
                return bad
            now = state.clock()
            run = CodegenRun(
                id=state._next_run_id,
                organization_id=org_id,
                user_id=user_id,
                prompt=body.prompt,
                script=state._scripts.popleft() if state._scripts else RunScript(),
                created_at=now,
                metadata=body.metadata,
                repo_id=body.repo_id,
                model=body.model,
                agent_type=body.agent_type,
                images=list(body.images or ()),
                step_started_at=now,
            )
            state._next_run_id += 1
            state._log(run)
            state.runs_by_id[run.id] = run
            return JSONResponse(state._response(run, str(request.base_url)))

    @app.get("/v1/organizations/{org_id}/agent/run/{agent_run_id}")
    def get_agent_run(org_id: int, agent_run_id: int, request: Request) -> Response:
        with state.lock:
            user_id = authorize(request, org_id)
            if isinstance(user_id, Response):
                return user_id
            run = state.runs_by_id.get(agent_run_id)
            if run is None or run.organization_id != org_id:
                return _error(404, str(MESSAGES["run_not_found"]))
            state._sync(run, polled=True)
            return JSONResponse(state._response(run, str(request.base_url)))

    @app.get("/v1/organizations/{org_id}/agent/runs")
    def list_agent_runs(
        org_id: int,
        request: Request,
        user_id: int | None = None,
        source_type: str | None = None,
        skip: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=100),
    ) -> Response:
        with state.lock:
            caller = authorize(request, org_id)
            if isinstance(caller, Response):
                return caller
            if source_type is not None and source_type not in SOURCE_TYPES:
                detail = [
                    {
                        "loc": ["query", "source_type"],
                        "msg": f"Input should be one of {', '.join(SOURCE_TYPES)}",
                        "type": "enum",
                    }
                ]
                return JSONResponse({"detail": detail}, status_code=422)
            runs = [
                r
                for r in state.runs_by_id.values()
                if r.organization_id == org_id
                and (user_id is None or r.user_id == user_id)
                and (source_type is None or r.source_type == source_type)
            ]
            runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
            for run in runs:
                state._sync(run, polled=False)
            base = str(request.base_url)
            page = [state._response(r, base) for r in runs[skip : skip + limit]]
            return JSONResponse(
                {
                    "items": page,
                    "total": len(runs),
                    "page": skip // limit + 1,
                    "size": limit,
                    "pages": math.ceil(len(runs) / limit),
                }
            )

    @app.post("/v1/organizations/{org_id}/agent/run/resume")
    def resume_agent_run(org_id: int, body: ResumeAgentRunInput, request: Request) -> Response:
        with state.lock:
            user_id = authorize(request, org_id)
            if isinstance(user_id, Response):
                return user_id
            run = state.runs_by_id.get(body.agent_run_id)
            if run is None or run.organization_id != org_id:
                return _error(404, str(MESSAGES["run_not_found"]))
            bad = _bad_images(body.images)
            if bad is not None:
                return bad
            state._sync(run, polled=False)
            run.follow_ups.append(body.prompt)
            # A resumed run works again, then finishes the way its script said.
            final = run.script.statuses[-1]
            run.script = replace(run.script, statuses=(*run.script.statuses[: run.step + 1],
                                                       "RUNNING", final))  # fmt: skip
            run.step += 1
            run.step_started_at = state.clock()
            state._log(run)
            return JSONResponse(state._response(run, str(request.base_url)))

    @app.get("/v1/alpha/organizations/{org_id}/agent/run/{agent_run_id}/logs")
    def agent_run_logs(
        org_id: int,
        agent_run_id: int,
        request: Request,
        skip: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=100),
        reverse: bool = False,
    ) -> Response:
        with state.lock:
            user_id = authorize(request, org_id)
            if isinstance(user_id, Response):
                return user_id
            run = state.runs_by_id.get(agent_run_id)
            if run is None or run.organization_id != org_id:
                return _error(404, str(MESSAGES["run_not_found"]))
            state._sync(run, polled=False)
            logs = list(reversed(run.logs)) if reverse else list(run.logs)
            body = state._response(run, str(request.base_url))
            for key in ("summary", "source_type", "github_pull_requests"):
                body.pop(key)
            body.update(
                logs=logs[skip : skip + limit],
                total_logs=len(logs),
                page=skip // limit + 1,
                size=limit,
                pages=math.ceil(len(logs) / limit),
            )
            return JSONResponse(body)

    @app.get("/v1/users/me")
    def current_user(request: Request) -> Response:
        with state.lock:
            user_id = authorize(request, None)
            if isinstance(user_id, Response):
                return user_id
            user = state.users[user_id]
            return JSONResponse(
                {
                    "id": user.id,
                    "email": user.email,
                    "github_user_id": str(10_000 + user.id),
                    "github_username": user.github_username,
                    "avatar_url": None,
                    "full_name": user.full_name,
                    "role": user.role,
                    "is_admin": user.role == "ADMIN",
                }
            )

    @app.get("/v1/organizations")
    def organizations(
        request: Request, skip: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=100)
    ) -> Response:
        with state.lock:
            user_id = authorize(request, None)
            if isinstance(user_id, Response):
                return user_id
            orgs = sorted(
                (o for o in state.orgs.values() if user_id in o.members), key=lambda o: o.id
            )
            items = [
                {
                    "id": o.id,
                    "name": o.name,
                    "settings": {"enable_pr_creation": True, "enable_rules_detection": True},
                }
                for o in orgs[skip : skip + limit]
            ]
            return JSONResponse(
                {
                    "items": items,
                    "total": len(orgs),
                    "page": skip // limit + 1,
                    "size": limit,
                    "pages": math.ceil(len(orgs) / limit),
                }
            )

    @app.get("/agent/trace/{agent_run_id}")
    def trace_page(agent_run_id: int) -> Response:
        """What `web_url` points at: a plain-text view of the run."""
        with state.lock:
            run = state.runs_by_id.get(agent_run_id)
            if run is None:
                return PlainTextResponse("Agent run not found.", status_code=404)
            lines = [f"Agent run {run.id}: {state._status_text(run.status)}", "", run.prompt]
            lines += [f"\n> {p}" for p in run.follow_ups]
            return PlainTextResponse("\n".join(lines))

    return app
