"""HTTP helpers: errors, pagination, created filters, headers and auth, lookups."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from contexten.sandbox.faults import FaultInjector
from contexten.sandbox.github.records import (
    API_VERSIONS,
    DEFAULT_PER_PAGE,
    DOCS,
    MAX_PER_PAGE,
    ArtifactRecord,
    JobRecord,
    RepoRecord,
    RunRecord,
    utc,
)
from contexten.sandbox.github.shapes import Shapes
from contexten.sandbox.github.state import GitHubState

T = TypeVar("T")

# ============================================================================ HTTP helpers


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    body = {"message": message, "documentation_url": DOCS, "status": str(status), **extra}
    return JSONResponse(body, status_code=status)


def not_found() -> JSONResponse:
    return error(404, "Not Found")


def validation_failed(
    resource: str, field_name: str, code: str, message: str | None = None
) -> JSONResponse:
    item: dict[str, Any] = {"resource": resource, "field": field_name, "code": code}
    if message:
        item["message"] = message
    return error(422, "Validation Failed", errors=[item])


def created(body: Any, location: str | None = None) -> JSONResponse:
    headers = {"Location": location} if location else None
    return JSONResponse(body, status_code=201, headers=headers)


def record_created(state: GitHubState, kind: str, body: dict[str, Any]) -> JSONResponse:
    """Count a world-changing request of `kind` that took effect; 201 with its Location."""
    state.received[kind] += 1
    return created(body, body["url"])


async def read_json(request: Request) -> dict[str, Any] | JSONResponse:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return error(400, "Problems parsing JSON")
    if not isinstance(data, dict):
        return error(400, "Body should be a JSON object")
    return data


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or GitHub's 400 (Abort)."""
    body = await read_json(request)
    if isinstance(body, JSONResponse):
        raise Abort(body)
    return body


def page_params(request: Request) -> tuple[int, int] | JSONResponse:
    try:
        per_page = int(request.query_params.get("per_page", DEFAULT_PER_PAGE))
        page = int(request.query_params.get("page", 1))
    except ValueError:
        return error(422, "Invalid per_page or page parameter")
    return max(1, min(per_page, MAX_PER_PAGE)), max(1, page)


def paginate(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]] | JSONResponse:
    """One page of `items` and the Link header for the others."""
    params = page_params(request)
    if isinstance(params, JSONResponse):
        return params
    per_page, page = params
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []

    def url(number: int) -> str:
        return str(request.url.include_query_params(page=number, per_page=per_page))

    if page > 1:
        links.append(f'<{url(page - 1)}>; rel="prev"')
    if page < last:
        links.append(f'<{url(page + 1)}>; rel="next"')
        links.append(f'<{url(last)}>; rel="last"')
    if page > 1:
        links.append(f'<{url(1)}>; rel="first"')
    return chunk, ({"Link": ", ".join(links)} if links else {})


def paged(
    request: Request,
    items: list[Any],
    render: Callable[[Any], Any] | None = None,
    *,
    key: str | None = None,
) -> Response:
    """One page of `items` (each through `render`) with the Link header: a JSON list, or
    with `key` the object GitHub wraps some lists in, `{"total_count": n, key: [...]}`."""
    page = paginate(request, items)
    if isinstance(page, JSONResponse):
        return page
    rendered = page[0] if render is None else [render(item) for item in page[0]]
    body = rendered if key is None else {"total_count": len(items), key: rendered}
    return JSONResponse(body, headers=page[1])


def _compare(op: str, bound: datetime) -> Any:
    if op == ">=":
        return lambda t: t >= bound
    if op == "<=":
        return lambda t: t <= bound
    if op == ">":
        return lambda t: t > bound
    return lambda t: t < bound


def _created_filter(spec: str) -> Any:
    """A predicate for GitHub's `created` search syntax on datetimes."""

    def parse(text: str, end: bool = False) -> datetime:
        text = text.strip()
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1) if end else day
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))

    spec = spec.strip()
    if ".." in spec:
        low, high = spec.split("..", 1)
        lo = None if low in ("", "*") else parse(low)
        hi = None if high in ("", "*") else parse(high, end=True)
        return lambda t: (lo is None or t >= lo) and (hi is None or t <= hi)
    for op in (">=", "<=", ">", "<"):
        if spec.startswith(op):
            return _compare(op, parse(spec[len(op) :], end=op in ("<=", ">")))
    lo, hi = parse(spec), parse(spec, end=True)
    return lambda t: lo <= t <= hi


# ============================================================================ the app


class _GitHubHeaders(BaseHTTPMiddleware):
    """Authentication, API version, rate limit accounting and headers on every response."""

    def __init__(self, app: Any, state: GitHubState) -> None:
        super().__init__(app)
        self.state = state

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if path.startswith("/_blobs/"):
            return await call_next(request)
        version = request.headers.get("x-github-api-version")
        if version is not None and version not in API_VERSIONS:
            return error(400, f"Unsupported 'X-GitHub-Api-Version' header: {version}")
        token = _bearer(request)
        app_route = path.startswith("/app/")
        if not app_route and (token is None or not self.state.token_valid(token)):
            message = "Requires authentication" if token is None else "Bad credentials"
            return error(401, message)
        key = token or "anonymous"
        if path == "/rate_limit" or app_route:  # these do not count against the limit
            allowed = True
            remaining, used, reset = self.state.peek_rate_limit(key)
        else:
            allowed, remaining, used, reset = self.state.take_rate_limit(key)
        response: Response
        if allowed:
            response = await call_next(request)
        else:
            response = error(403, "API rate limit exceeded for user ID 1.")
        response.headers["x-ratelimit-limit"] = str(self.state.rate_limit)
        response.headers["x-ratelimit-remaining"] = str(remaining)
        response.headers["x-ratelimit-used"] = str(used)
        response.headers["x-ratelimit-reset"] = str(reset)
        response.headers["x-ratelimit-resource"] = "core"
        response.headers["x-github-api-version-selected"] = version or "2022-11-28"
        response.headers["x-github-request-id"] = secrets.token_hex(8).upper()
        return response


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return None


def _shapes(state: GitHubState, request: Request) -> Shapes:
    return Shapes(state, str(request.base_url))


class Abort(Exception):
    """Raised in a route to answer with `response` at once (GitHub's 404, a bad JSON body);
    the app's exception handler returns it."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def abort_response(_request: Request, exc: Exception) -> Response:
    """The app's handler of Abort."""
    assert isinstance(exc, Abort)
    return exc.response


def found(value: T | None) -> T:
    """`value`, or GitHub's 404 (Abort) when it is None."""
    if value is None:
        raise Abort(not_found())
    return value


def _repo_or_none(state: GitHubState, owner: str, repo: str) -> RepoRecord | None:
    return state.repos.get(f"{owner}/{repo}")


def _run_or_none(state: GitHubState, owner: str, repo: str, run_id: int) -> RunRecord | None:
    run = state.runs.get(run_id)
    if run is None or run.repo != f"{owner}/{repo}":
        return None
    return run


def _job_or_none(state: GitHubState, owner: str, repo: str, job_id: int) -> JobRecord | None:
    job = state.jobs.get(job_id)
    if job is None or state.runs[job.run_id].repo != f"{owner}/{repo}":
        return None
    return job


def _artifact_or_none(
    state: GitHubState, owner: str, repo: str, artifact_id: int
) -> ArtifactRecord | None:
    artifact = state.artifacts.get(artifact_id)
    if artifact is None or state.runs[artifact.run_id].repo != f"{owner}/{repo}":
        return None
    return artifact


def _blob_redirect(
    state: GitHubState, faults: FaultInjector, request: Request, kind: str, ident: int
) -> RedirectResponse:
    """The 302 to a signed loopback URL, as GitHub redirects logs and archives to storage."""
    return RedirectResponse(_blob_url(state, faults, request, kind, ident), status_code=302)


def _blob_url(
    state: GitHubState, faults: FaultInjector, request: Request, kind: str, ident: int
) -> str:
    expires = int(time.time() + faults.log_url_lifetime())
    sig = state.sign_blob(kind, ident, expires)
    return f"{str(request.base_url).rstrip('/')}/_blobs/{kind}/{ident}?expires={expires}&sig={sig}"
