"""Routes: rate limit, the authenticated app and installations."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from contexten.sandbox.github.records import Installation, _background, iso, utc
from contexten.sandbox.github.responses import (
    _bearer,
    _repo_or_none,
    _shapes,
    created,
    error,
    found,
    json_body,
    not_found,
    paged,
)
from contexten.sandbox.github.state import GitHubState


def _routes_misc(app: FastAPI, state: GitHubState) -> None:
    @app.get("/rate_limit")
    async def rate_limit(request: Request) -> Response:
        remaining, used, reset = state.peek_rate_limit(_bearer(request) or "anonymous")
        core = {
            "limit": state.rate_limit,
            "remaining": remaining,
            "reset": reset,
            "used": used,
            "resource": "core",
        }

        def other(name: str, limit: int) -> dict[str, Any]:
            return {"limit": limit, "remaining": limit, "reset": reset, "used": 0, "resource": name}

        return JSONResponse(
            {
                "resources": {
                    "core": core,
                    "search": other("search", 30),
                    "graphql": other("graphql", 5000),
                    "integration_manifest": other("integration_manifest", 5000),
                    "code_search": other("code_search", 10),
                },
                "rate": core,
            }
        )

    @app.get("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries")
    async def list_deliveries(owner: str, repo: str, hook_id: int, request: Request) -> Response:
        wanted = request.query_params.get("status")
        with state.lock:
            found(_repo_or_none(state, owner, repo))
            items = [
                {k: v for k, v in d.items() if not k.startswith("_")}
                for d in reversed(state.hook_deliveries)
                if d["_hook_id"] == hook_id
                and d["_repository"] == f"{owner}/{repo}"
                and (wanted is None or (wanted == "success") == (d["status"] == "OK"))
            ]
        return paged(request, items)

    @app.post("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts")
    async def redeliver(owner: str, repo: str, hook_id: int, delivery_id: int) -> Response:
        with state.lock:
            found = next(
                (
                    d
                    for d in state.hook_deliveries
                    if d["id"] == delivery_id and d["_hook_id"] == hook_id
                ),
                None,
            )
            sender = state.webhook_senders.get(hook_id)
        if found is None or found["_repository"] != f"{owner}/{repo}":
            return not_found()
        if sender is None:
            return error(422, "The hook that made this delivery is gone")
        state.received["hook_redelivery"] += 1
        task = asyncio.get_running_loop().create_task(sender.redeliver(found["guid"]))
        _background.add(task)
        task.add_done_callback(_background.discard)
        return JSONResponse({}, status_code=202)

    @app.get("/repos/{owner}/{repo}/installation")
    async def repo_installation(owner: str, repo: str, request: Request) -> Response:
        with state.lock:
            record = _repo_or_none(state, owner, repo)
            installation = next(iter(state.installations.values()), None)
            if record is None or installation is None:
                return not_found()
            return JSONResponse(_installation_json(state, request, installation))

    @app.post("/app/installations/{installation_id}/access_tokens")
    async def access_token(installation_id: int, request: Request) -> Response:
        installation = state.installations.get(installation_id)
        token = _bearer(request)
        if installation is None:
            return not_found()
        if token is None or not _valid_app_jwt(token, installation):
            return error(401, "A JSON web token could not be decoded")
        body = await json_body(request)
        issued = "ghs_" + secrets.token_urlsafe(27)[:36]
        expires = time.time() + 3600
        with state.lock:
            state.tokens[issued] = expires
            state.received["installation_token"] += 1
        permissions = body.get("permissions") or {
            "actions": "write",
            "checks": "write",
            "contents": "write",
            "issues": "write",
            "pull_requests": "write",
        }
        return created(
            {
                "token": issued,
                "expires_at": iso(utc(expires)),
                "permissions": permissions,
                "repository_selection": "all",
            }
        )


def _installation_json(
    state: GitHubState, request: Request, installation: Installation
) -> dict[str, Any]:
    shapes = _shapes(state, request)
    base = shapes.base
    return {
        "id": installation.id,
        "account": shapes.user(installation.account, kind="Organization"),
        "repository_selection": "all",
        "access_tokens_url": f"{base}/app/installations/{installation.id}/access_tokens",
        "repositories_url": f"{base}/installation/repositories",
        "html_url": f"{shapes.web}/organizations/{installation.account}/settings/installations/"
        f"{installation.id}",
        "app_id": installation.app_id,
        "target_id": 1,
        "target_type": "Organization",
        "permissions": {"checks": "write", "actions": "write", "contents": "write"},
        "events": ["workflow_run", "workflow_job", "check_run"],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "single_file_name": None,
        "app_slug": "contexten-sandbox",
        "suspended_by": None,
        "suspended_at": None,
    }


def _valid_app_jwt(token: str, installation: Installation) -> bool:
    import jwt

    try:
        claims = jwt.decode(
            token,
            installation.public_key_pem,
            algorithms=["RS256"],
            options={"require": ["iat", "exp", "iss"]},
            leeway=60,
        )
    except jwt.PyJWTError:
        return False
    return str(claims.get("iss")) == str(installation.app_id)
