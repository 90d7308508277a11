"""The Codegen agent API with httpx: create an agent run, poll it to completion, PR links out.

Routes and bodies follow Codegen's OpenAPI description (`/v1/organizations/{org_id}/agent/
run`, `…/agent/run/{id}`, `…/agent/runs`, `…/agent/run/resume`). Statuses are compared
case-insensitively: the CLI speaks COMPLETE/FAILED/ERROR/CANCELLED/STOPPED, the SDK
completed/failed/cancelled (see `AgentRun.succeeded` / `finished`).

Idempotency: a run is created once per key (default: the prompt). The key travels in the
run's `metadata` (`contexten_key`), so after an ambiguous failure the ledger finds the run in
`GET …/agent/runs` instead of starting a second agent on the same problem.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx
from pydantic import SecretStr

from contexten.integrations.http import RetryPolicy, request_with_retries, shared_ssl_context
from contexten.integrations.idempotency import ActionLedger, ActsOnce, idempotency_key
from contexten.integrations.interface import (
    AgentRun,
    CheckResult,
    CodingAgent,
    CodingAgentError,
    ErrorReason,
    PullRequestLink,
)
from contexten.integrations.redaction import install_log_redaction

log = logging.getLogger(__name__)

SERVICE = "codegen"
KEY_FIELD = "contexten_key"
MAX_PROMPT = 200_000
LOOKUP_PAGES = 3  # runs searched for an earlier create: 3 pages of 100, newest first


def agent_run(data: Mapping[str, Any]) -> AgentRun:
    """An AgentRunResponse as an AgentRun."""
    prs = tuple(
        PullRequestLink(
            url=str(pr["url"]),
            title=pr.get("title"),
            head_branch=pr.get("head_branch_name"),
        )
        for pr in data.get("github_pull_requests") or ()
        if isinstance(pr, dict) and pr.get("url")
    )
    return AgentRun(
        id=int(data["id"]),
        status=data.get("status"),
        web_url=data.get("web_url"),
        result=data.get("result"),
        summary=data.get("summary"),
        pull_requests=prs,
        created_at=data.get("created_at"),
    )


def _agent_run_dict(run: AgentRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "web_url": run.web_url,
        "result": run.result,
        "summary": run.summary,
        "created_at": run.created_at,
        "github_pull_requests": [
            {"url": p.url, "title": p.title, "head_branch_name": p.head_branch}
            for p in run.pull_requests
        ],
    }


class CodegenClient(ActsOnce, CodingAgent):
    """Codegen for one organisation."""

    def __init__(
        self,
        *,
        token: SecretStr | str,
        org_id: int | str,
        ledger: ActionLedger | None = None,
        api_url: str = "https://api.codegen.com",
        policy: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
        max_poll_interval: float = 60.0,
    ) -> None:
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        if not secret or not str(org_id).strip().isdigit():
            raise CodingAgentError(
                "codegen: CODEGEN_TOKEN and a numeric CODEGEN_ORG_ID are required",
                reason=ErrorReason.AUTH,
                service=SERVICE,
            )
        install_log_redaction([secret])
        self.org_id = int(str(org_id).strip())
        self.api_url = api_url.rstrip("/")
        self.ledger = ledger
        self.policy = policy or RetryPolicy()
        self.max_poll_interval = max_poll_interval
        self._headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
        self._http = http or httpx.AsyncClient(
            headers={"User-Agent": "contexten"}, verify=shared_ssl_context()
        )

    def __repr__(self) -> str:
        return f"CodegenClient(api_url={self.api_url!r}, org_id={self.org_id})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ transport

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        policy: RetryPolicy | None = None,
    ) -> Any:
        response = await request_with_retries(
            self._http,
            method,
            f"{self.api_url}{path}",
            policy=policy or self.policy,
            error_type=CodingAgentError,
            service=SERVICE,
            what=what,
            json=json,
            params=params,
            headers=self._headers,
        )
        try:
            return response.json()
        except ValueError:
            raise CodingAgentError(
                f"codegen: {what} failed: the answer is not JSON",
                reason=ErrorReason.ERROR,
                service=SERVICE,
                status_code=response.status_code,
            ) from None

    def _org(self, suffix: str) -> str:
        return f"/v1/organizations/{self.org_id}{suffix}"

    # ------------------------------------------------------------------ runs

    async def create_run(
        self,
        prompt: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        key: str | None = None,
        repo_id: int | None = None,
        model: str | None = None,
    ) -> AgentRun:
        """Start an agent run once per `key` (default: the prompt)."""
        if not prompt.strip():
            raise CodingAgentError(
                "codegen: the prompt is empty", reason=ErrorReason.INVALID, service=SERVICE
            )
        if len(prompt) > MAX_PROMPT:
            raise CodingAgentError(
                f"codegen: the prompt has {len(prompt)} characters, at most {MAX_PROMPT}",
                reason=ErrorReason.INVALID,
                service=SERVICE,
            )
        key = key or idempotency_key("codegen_run", self.org_id, prompt)
        body: dict[str, Any] = {"prompt": prompt, "metadata": {**(metadata or {}), KEY_FIELD: key}}
        if repo_id is not None:
            body["repo_id"] = repo_id
        if model is not None:
            body["model"] = model

        async def perform() -> dict[str, Any]:
            data = await self._call(
                "POST", self._org("/agent/run"), what="create agent run", json=body
            )
            return _agent_run_dict(agent_run(data))

        async def find_existing() -> dict[str, Any] | None:
            found = await self.find_run(key)
            return None if found is None else _agent_run_dict(found)

        result = await self._once(
            key, "agent_run", f"codegen:{self.org_id}", perform, find_existing
        )
        return agent_run(result)

    async def find_run(self, key: str) -> AgentRun | None:
        """The newest run this client created for `key` (from its metadata), if any."""
        for page in range(LOOKUP_PAGES):
            data = await self._call(
                "GET",
                self._org("/agent/runs"),
                what="list agent runs",
                params={"source_type": "API", "skip": page * 100, "limit": 100},
            )
            for item in data.get("items") or ():
                metadata = item.get("metadata") or {}
                if isinstance(metadata, dict) and metadata.get(KEY_FIELD) == key:
                    return agent_run(item)
            if page + 1 >= int(data.get("pages") or 0):
                return None
        return None

    async def get_run(self, run_id: int) -> AgentRun:
        data = await self._call("GET", self._org(f"/agent/run/{int(run_id)}"), what="get agent run")
        return agent_run(data)

    async def resume(self, run_id: int, prompt: str) -> AgentRun:
        """Send a follow-up prompt to a paused or finished run."""
        data = await self._call(
            "POST",
            self._org("/agent/run/resume"),
            what="resume agent run",
            json={"agent_run_id": int(run_id), "prompt": prompt},
        )
        return agent_run(data)

    async def wait(self, run_id: int, *, timeout: float, poll_interval: float = 10.0) -> AgentRun:
        """Poll until the run finishes, backing off from `poll_interval` to at most
        `max_poll_interval`; CodingAgentError (UNAVAILABLE) after `timeout` seconds.
        Transient errors while polling do not end the wait."""
        started = self.policy.monotonic()
        interval = max(0.1, poll_interval)
        last: AgentRun | None = None
        while True:
            try:
                last = await self.get_run(run_id)
                if last.finished:
                    return last
            except CodingAgentError as exc:
                if not exc.transient:
                    raise
                log.warning("codegen: polling agent run %s: %s", run_id, exc)
            elapsed = self.policy.monotonic() - started
            if elapsed >= timeout:
                status = last.status if last else "unknown"
                raise CodingAgentError(
                    f"codegen: agent run {run_id} did not finish within {timeout:g} s "
                    f"(last status {status})",
                    reason=ErrorReason.UNAVAILABLE,
                    service=SERVICE,
                )
            await self.policy.sleep(min(interval, timeout - elapsed))
            interval = min(interval * 1.5, max(poll_interval, self.max_poll_interval))

    # ------------------------------------------------------------------ health

    async def check(self) -> CheckResult:
        """Reachable, token accepted, and a member of CODEGEN_ORG_ID."""
        started = self.policy.monotonic()
        quick = replace(self.policy, max_attempts=min(2, self.policy.max_attempts))
        quick = replace(quick, max_total_seconds=min(10.0, quick.max_total_seconds))
        try:
            data = await self._call(
                "GET", "/v1/organizations", what="list organizations", policy=quick
            )
        except CodingAgentError as exc:
            return CheckResult.failed(SERVICE, exc)
        latency = (self.policy.monotonic() - started) * 1000
        orgs = {int(o["id"]): o.get("name") for o in data.get("items") or () if "id" in o}
        if self.org_id not in orgs:
            return CheckResult(
                SERVICE,
                "down",
                latency_ms=latency,
                detail=f"the token has no access to organization {self.org_id}",
            )
        return CheckResult(
            SERVICE,
            "ok",
            latency_ms=latency,
            detail=f"authenticated; organization {orgs[self.org_id]!s}",
        )
