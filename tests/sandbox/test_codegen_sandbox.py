"""The Codegen sandbox answers what codegen-openapi3.json describes (jsonschema-validated)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from contexten.sandbox.codegen import CodegenState
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import running_sandbox

SPEC_PATH = Path(__file__).resolve().parents[1] / "data" / "contracts" / "codegen-openapi3.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
ORG = "/v1/organizations/{org_id}"


def assert_matches_spec(response: httpx.Response, path: str, method: str) -> Any:
    """The response's status is documented for this operation and its body validates."""
    operation = SPEC["paths"][path][method]
    documented = operation["responses"]
    assert str(response.status_code) in documented, (path, response.status_code, response.text)
    schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
    body = response.json()
    validator = Draft202012Validator({**schema, "components": SPEC["components"]})
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, (path, response.status_code, [e.message for e in errors])
    return body


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with running_sandbox(services=("codegen",)) as running:
        yield running


@pytest.fixture
def state(server: SandboxServer) -> CodegenState:
    assert isinstance(server.state.codegen, CodegenState)
    return server.state.codegen


@pytest.fixture
def http(server: SandboxServer, state: CodegenState) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.codegen_url, headers={"Authorization": f"Bearer {state.token}"}
    ) as client:
        yield client


def test_every_success_response_validates(http: httpx.Client, state: CodegenState) -> None:
    state.script_next_run(pull_request=True)
    created = assert_matches_spec(
        http.post("/v1/organizations/1/agent/run", json={"prompt": "fix", "metadata": {"k": 1}}),
        f"{ORG}/agent/run",
        "post",
    )
    run_id = created["id"]
    statuses = [
        assert_matches_spec(
            http.get(f"/v1/organizations/1/agent/run/{run_id}"),
            f"{ORG}/agent/run/{{agent_run_id}}",
            "get",
        )["status"]
        for _ in range(3)
    ]
    assert [created["status"], *statuses] == ["PENDING", "RUNNING", "COMPLETE", "COMPLETE"]
    done = http.get(f"/v1/organizations/1/agent/run/{run_id}").json()
    assert (
        done["github_pull_requests"]
        and done["result"]
        and done["web_url"].endswith(f"/agent/trace/{run_id}")
    )
    assert http.get(done["web_url"]).status_code == 200
    page = assert_matches_spec(
        http.get("/v1/organizations/1/agent/runs", params={"limit": 10, "source_type": "API"}),
        f"{ORG}/agent/runs",
        "get",
    )
    assert page["total"] == 1 and page["items"][0]["metadata"] == {"k": 1}
    resumed = assert_matches_spec(
        http.post(
            "/v1/organizations/1/agent/run/resume", json={"agent_run_id": run_id, "prompt": "more"}
        ),
        f"{ORG}/agent/run/resume",
        "post",
    )
    assert resumed["status"] == "RUNNING"
    logs = assert_matches_spec(
        http.get(f"/v1/alpha/organizations/1/agent/run/{run_id}/logs", params={"limit": 2}),
        "/v1/alpha/organizations/{org_id}/agent/run/{agent_run_id}/logs",
        "get",
    )
    assert len(logs["logs"]) == 2 and logs["total_logs"] >= 4 and logs["pages"] >= 2
    assert_matches_spec(http.get("/v1/users/me"), "/v1/users/me", "get")
    orgs = assert_matches_spec(http.get("/v1/organizations"), "/v1/organizations", "get")
    assert [o["id"] for o in orgs["items"]] == [1]


def test_runs_are_listed_newest_first_and_paged(http: httpx.Client) -> None:
    ids = [
        http.post("/v1/organizations/1/agent/run", json={"prompt": f"p{n}"}).json()["id"]
        for n in range(5)
    ]
    first = http.get("/v1/organizations/1/agent/runs", params={"limit": 2}).json()
    third = http.get("/v1/organizations/1/agent/runs", params={"limit": 2, "skip": 4}).json()
    assert [r["id"] for r in first["items"]] == ids[::-1][:2] and first["pages"] == 3
    assert [r["id"] for r in third["items"]] == [ids[0]] and third["page"] == 3


def test_error_responses_validate(
    server: SandboxServer, http: httpx.Client, state: CodegenState
) -> None:
    create = f"{ORG}/agent/run"
    assert http.post("/v1/organizations/1/agent/run", json={}).status_code == 422
    assert_matches_spec(http.post("/v1/organizations/1/agent/run", json={}), create, "post")
    assert_matches_spec(
        http.post("/v1/organizations/1/agent/run", json={"prompt": "x", "agent_type": "nope"}),
        create,
        "post",
    )
    forbidden = assert_matches_spec(
        http.post("/v1/organizations/2/agent/run", json={"prompt": "x"}), create, "post"
    )
    assert forbidden == {
        "message": "You do not have access to this organization.",
        "status_code": 403,
    }
    missing = assert_matches_spec(
        http.get("/v1/organizations/1/agent/run/999"), f"{ORG}/agent/run/{{agent_run_id}}", "get"
    )
    assert missing == {"message": "Agent run not found.", "status_code": 404}
    assert_matches_spec(
        http.get("/v1/organizations/1/agent/runs", params={"limit": 500}),
        f"{ORG}/agent/runs",
        "get",
    )
    state.orgs[1].run_limit = 0
    plan = assert_matches_spec(
        http.post("/v1/organizations/1/agent/run", json={"prompt": "x"}), create, "post"
    )
    assert plan["status_code"] == 402
    state.orgs[1].run_limit = None
    state.orgs[1].repos = []
    no_repos = assert_matches_spec(
        http.post("/v1/organizations/1/agent/run", json={"prompt": "x"}), create, "post"
    )
    assert no_repos["status_code"] == 404 and "No repos" in no_repos["message"]
    state.orgs[1].repos = ["sandbox/app"]
    server.faults["codegen"].rate_limit(1, style="codegen_429")
    limited = http.post("/v1/organizations/1/agent/run", json={"prompt": "x"})
    assert assert_matches_spec(limited, create, "post")["status_code"] == 429


def test_create_rate_limit_is_ten_a_minute(http: httpx.Client, state: CodegenState) -> None:
    now = [1000.0]
    state.clock = lambda: now[0]
    answers = [
        http.post("/v1/organizations/1/agent/run", json={"prompt": f"p{n}"}) for n in range(11)
    ]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert answers[-1].json() == {
        "message": "Rate limit exceeded. Please try again later.",
        "status_code": 429,
    }
    assert int(answers[-1].headers["retry-after"]) == 60
    now[0] += 60
    assert http.post("/v1/organizations/1/agent/run", json={"prompt": "later"}).status_code == 200


def test_lowercase_status_style_and_time_based_progress(
    http: httpx.Client, state: CodegenState
) -> None:
    now = [0.0]
    state.clock = lambda: now[0]
    state.advance, state.status_case, state.seconds_per_step = "time", "lower", 5.0
    run = http.post("/v1/organizations/1/agent/run", json={"prompt": "x"}).json()
    listed = lambda: http.get("/v1/organizations/1/agent/runs").json()["items"][0]["status"]  # noqa: E731
    assert run["status"] == "pending" and listed() == "pending"
    now[0] = 5.0
    assert listed() == "running"
    now[0] = 12.0
    assert listed() == "completed"


def test_bad_token_is_refused(server: SandboxServer) -> None:
    with httpx.Client(
        base_url=server.codegen_url, headers={"Authorization": "Bearer nope"}
    ) as client:
        answer = client.get("/v1/organizations/1/agent/runs")
    assert answer.status_code == 403 and answer.json()["status_code"] == 403
