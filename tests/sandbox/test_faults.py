"""Fault injection: errors, dropped connections, rate-limit bursts with the real headers."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contexten.integrations.http import classify_response
from contexten.integrations.interface import ErrorReason
from contexten.sandbox.faults import FaultInjector, FaultRule
from contexten.sandbox.github import GitHubState, JobSpec
from contexten.sandbox.server import SandboxServer, serve_asgi


class Counter:
    def __init__(self) -> None:
        self.hits = 0

    async def endpoint(self, request: Request) -> JSONResponse:
        self.hits += 1
        return JSONResponse({"ok": True, "hits": self.hits})


def app_with(counter: Counter) -> Starlette:
    return Starlette(
        routes=[
            Route("/api/{name}", counter.endpoint, methods=["GET", "POST"]),
            Route("/services/{a}/{b}/{c}", counter.endpoint, methods=["POST"]),
            Route("/graphql", counter.endpoint, methods=["POST"]),
        ]
    )


def test_decisions_are_seeded_and_rates_respected() -> None:
    def sample(seed: int) -> list[str]:
        injector = FaultInjector(seed=seed, rules=[FaultRule(error_rate=0.1, drop_rate=0.1)])
        return [injector._decide("GET", "/x")[0] for _ in range(2000)]

    first, again, other = sample(7), sample(7), sample(8)
    assert first == again and first != other
    share = sum(1 for d in first if d != "none") / len(first)
    assert 0.16 < share < 0.24
    assert {"error", "drop_after", "none"} == set(first)


def test_rules_match_method_and_path() -> None:
    rule = FaultRule(path="/repos/*/rerun*", method="POST", error_rate=1.0)
    assert rule.matches("POST", "/repos/o/r/actions/runs/1/rerun-failed-jobs")
    assert not rule.matches("GET", "/repos/o/rerun")
    assert not rule.matches("POST", "/rate_limit")


async def test_error_before_has_no_effect_error_after_does() -> None:
    counter = Counter()
    injector = FaultInjector(service="github")
    with serve_asgi(injector.wrap(app_with(counter))) as url:
        async with httpx.AsyncClient() as client:
            injector.add(path="/api/before", error_rate=1.0, error_status=503)
            injector.add(path="/api/after", error_after_rate=1.0)
            before = await client.post(f"{url}/api/before")
            assert before.status_code == 503 and before.json()["message"] == "Server Error"
            assert counter.hits == 0
            after = await client.post(f"{url}/api/after")
            assert after.status_code == 502 and counter.hits == 1  # it happened anyway
            fine = await client.get(f"{url}/api/other")
            assert fine.status_code == 200
    assert injector.counts["error"] == 1 and injector.counts["error_after"] == 1


async def test_dropped_connections_before_and_after() -> None:
    counter = Counter()
    injector = FaultInjector(service="codegen")
    with serve_asgi(injector.wrap(app_with(counter))) as url:
        injector.add(path="/api/gone", drop_rate=1.0)
        injector.add(path="/api/never", drop_before_rate=1.0)
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.TransportError):
                await client.post(f"{url}/api/gone")
            assert counter.hits == 1
            with pytest.raises(httpx.TransportError):
                await client.post(f"{url}/api/never")
            assert counter.hits == 1
            injector.clear()
            assert (await client.post(f"{url}/api/gone")).status_code == 200


@pytest.mark.parametrize(
    ("service", "style", "path", "status", "header"),
    [
        ("github", "github_primary_403", "/api/x", 403, "x-ratelimit-reset"),
        ("github", "github_primary_429", "/api/x", 429, "x-ratelimit-reset"),
        ("github", "github_secondary_403", "/api/x", 403, "retry-after"),
        ("github", "github_secondary_429", "/api/x", 429, "retry-after"),
        ("linear", "linear_400", "/graphql", 400, "x-ratelimit-requests-reset"),
        ("linear", "linear_429", "/graphql", 429, "retry-after"),
        ("slack", "slack_429", "/services/T/B/X", 429, "retry-after"),
        ("slack", "slack_429", "/api/chat.postMessage", 429, "retry-after"),
        ("codegen", "codegen_429", "/api/run", 429, "retry-after"),
    ],
)
async def test_rate_limit_bursts_look_like_the_real_service(
    service: str, style: str, path: str, status: int, header: str
) -> None:
    counter = Counter()
    injector = FaultInjector(service=service)
    injector.rate_limit(2, style=style, wait=7)  # type: ignore[arg-type]
    with serve_asgi(injector.wrap(app_with(counter))) as url:
        async with httpx.AsyncClient() as client:
            responses = [await client.post(f"{url}{path}") for _ in range(3)]
    limited = responses[:2]
    assert [r.status_code for r in limited] == [status, status]
    assert responses[2].status_code == 200 and counter.hits == 1
    first = limited[0]
    assert header in first.headers
    # Our shared classifier reads every style as a rate limit with a wait of about 7 s.
    failure = classify_response(first.status_code, first.headers, first.content, injector.clock())
    assert failure is not None and failure.reason is ErrorReason.RATE_LIMITED
    if failure.wait_seconds is not None and not failure.secondary:
        assert 6 <= failure.wait_seconds <= 9
    if service == "slack" and path.startswith("/services/"):
        assert first.text == "rate_limited"
    elif service == "slack":
        assert first.json() == {"ok": False, "error": "ratelimited"}
    elif service == "linear":
        assert first.json()["errors"][0]["extensions"]["code"] == "RATELIMITED"
    elif style.startswith("github_primary"):
        assert first.headers["x-ratelimit-remaining"] == "0"
    elif style.startswith("github_secondary"):
        assert "secondary rate limit" in json.loads(first.content)["message"]


async def test_latency_is_applied_and_counted() -> None:
    counter = Counter()
    injector = FaultInjector()
    injector.add(path="/api/slow", latency=0.01)
    with serve_asgi(injector.wrap(app_with(counter))) as url:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/api/slow")).status_code == 200
            assert (await client.get(f"{url}/api/fast")).status_code == 200
    assert injector.counts["latency"] == 1


async def test_error_after_on_the_github_sandbox_changes_state(
    github_only: SandboxServer, github_state: GitHubState, repo_name: str
) -> None:
    run = github_state.add_run(repo_name, jobs=[JobSpec("t", conclusion="failure")])
    github_only.faults["github"].add(path="*/rerun-failed-jobs", error_after_rate=1.0)
    headers = {"Authorization": f"token {github_state.token}"}
    async with httpx.AsyncClient(headers=headers) as client:
        answer = await client.post(
            f"{github_only.github_url}/repos/{repo_name}/actions/runs/{run.id}/rerun-failed-jobs"
        )
    assert answer.status_code == 502
    assert len(github_state.runs[run.id].attempts) == 2  # the re-run happened
