"""The Linear sandbox speaks Linear's GraphQL API: real schema, real error and limit shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from contexten.sandbox.linear import LinearState
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import running_sandbox


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with running_sandbox(services=("linear",)) as running:
        yield running


@pytest.fixture
def state(server: SandboxServer) -> Iterator[LinearState]:
    fresh = LinearState()
    server.state.linear.__dict__.update(fresh.__dict__)  # same object the app holds, reset
    server.faults["linear"].clear()
    yield server.state.linear


@pytest.fixture
def http(server: SandboxServer, state: LinearState) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url("linear"), headers={"Authorization": state.api_key}
    ) as client:
        yield client


def gql(
    http: httpx.Client, query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> httpx.Response:
    return http.post("/graphql", json={"query": query, "variables": variables or {}}, **kw)


def test_issue_lifecycle_shapes(http: httpx.Client, state: LinearState) -> None:
    label = state.add_label("ci-failure", team_id=state.team_id)
    created = gql(
        http,
        """mutation($input: IssueCreateInput!) { issueCreate(input: $input) {
        success lastSyncId issue { id identifier number title description priority priorityLabel url
        createdAt state { id name type } team { id key } labels { nodes { id name } } } } }""",
        {
            "input": {
                "teamId": state.team_id,
                "title": "Build broken",
                "description": "# Why\n`make` failed",
                "priority": 1,
                "labelIds": [label],
            }
        },
    )
    assert created.status_code == 200
    payload = created.json()["data"]["issueCreate"]
    issue = payload["issue"]
    assert payload["success"] is True and isinstance(payload["lastSyncId"], float)
    assert issue["identifier"] == "ENG-1" and issue["number"] == 1.0 and issue["priority"] == 1.0
    assert issue["priorityLabel"] == "Urgent" and issue["state"]["type"] == "backlog"
    assert issue["labels"]["nodes"] == [{"id": label, "name": "ci-failure"}]
    assert issue["url"].endswith("/issue/ENG-1/build-broken") and issue["createdAt"].endswith("Z")

    done = gql(
        http,
        """query($team: ID!) {
          workflowStates(filter: {team: {id: {eq: $team}}, type: {eq: "completed"}}) {
            nodes { id name }
          }
        }""",
        {"team": state.team_id},
    ).json()
    [completed] = done["data"]["workflowStates"]["nodes"]
    updated = gql(
        http,
        """mutation($id: String!, $input: IssueUpdateInput!) {
          issueUpdate(id: $id, input: $input) { success issue { state { type } completedAt } }
        }""",
        {"id": "ENG-1", "input": {"stateId": completed["id"]}},
    ).json()
    assert updated["data"]["issueUpdate"]["issue"]["state"]["type"] == "completed"
    assert updated["data"]["issueUpdate"]["issue"]["completedAt"] is not None

    comment = gql(
        http,
        """mutation {
          commentCreate(input: {issueId: "ENG-1", body: "**again**"}) {
            success comment { id body url createdAt }
          }
        }""",
    ).json()
    assert comment["data"]["commentCreate"]["comment"]["body"] == "**again**"
    assert [c.body for c in state.comments()] == ["**again**"]


def test_dedupe_query_from_the_contract(http: httpx.Client, state: LinearState) -> None:
    state.add_issue(state.team_id, "flaky: test_a", state_type="started", labels=["flaky"])
    state.add_issue(state.team_id, "flaky: test_a", state_type="completed", labels=["flaky"])
    state.add_issue(state.add_team("OPS"), "flaky: test_a", state_type="unstarted")
    query = """query($team: ID!, $title: String!) {
      issues(first: 5, filter: { team: {id: {eq: $team}}, title: {eq: $title},
        state: {type: {nin: ["completed", "canceled", "duplicate"]}} }) {
        nodes { identifier state { type } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    body = gql(http, query, {"team": state.team_id, "title": "flaky: test_a"}).json()["data"][
        "issues"
    ]
    assert body["nodes"] == [{"identifier": "ENG-1", "state": {"type": "started"}}]
    assert body["pageInfo"]["hasNextPage"] is False
    by_label = gql(
        http,
        """{ issues(filter: {labels: {some: {name: {eqIgnoreCase: "FLAKY"}}},
             or: [{title: {containsIgnoreCase: "TEST_A"}}]}) { nodes { identifier } } }""",
    ).json()
    assert sorted(n["identifier"] for n in by_label["data"]["issues"]["nodes"]) == [
        "ENG-1",
        "ENG-2",
    ]


def test_pagination(http: httpx.Client, state: LinearState) -> None:
    for n in range(5):
        state.add_issue(state.team_id, f"issue {n}")
    first = gql(
        http, "{ issues(first: 2) { nodes { title } pageInfo { hasNextPage endCursor } } }"
    ).json()["data"]["issues"]
    assert [n["title"] for n in first["nodes"]] == ["issue 4", "issue 3"] and first["pageInfo"][
        "hasNextPage"
    ]
    rest = gql(
        http,
        """query($after: String) {
          issues(first: 10, after: $after) {
            nodes { title }
            pageInfo { hasNextPage hasPreviousPage }
          }
        }""",
        {"after": first["pageInfo"]["endCursor"]},
    ).json()["data"]["issues"]
    assert [n["title"] for n in rest["nodes"]] == ["issue 2", "issue 1", "issue 0"]
    assert rest["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True}


def test_errors_have_linears_shape(
    http: httpx.Client, state: LinearState, server: SandboxServer
) -> None:
    invalid = gql(http, "{ viewer { nope } }")
    assert invalid.status_code == 400
    [error] = invalid.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and error["locations"]
    missing = gql(
        http, 'mutation { commentCreate(input: {issueId: "ENG-404", body: "x"}) { success } }'
    ).json()
    assert missing["errors"][0]["message"] == "Entity not found: Issue"
    assert missing["errors"][0]["extensions"]["type"] == "invalid input" and missing["errors"][0][
        "path"
    ] == ["commentCreate"]
    enum_literal = gql(
        http, "{ issues(filter: {state: {type: {nin: [completed]}}}) { nodes { id } } }"
    )
    assert enum_literal.status_code == 400  # state types are strings, not enum literals
    unauth = httpx.post(
        server.linear_url,
        json={"query": "{ viewer { id } }"},
        headers={"Authorization": "lin_api_wrong000000000000"},
    )
    assert unauth.status_code == 400
    assert unauth.json()["errors"][0]["extensions"]["type"] == "authentication error"
    oauth = httpx.post(
        server.linear_url,
        json={"query": "{ viewer { id } }"},
        headers={"Authorization": f"Bearer {state.api_key}"},
    )
    assert oauth.status_code == 400  # a personal key must not be sent as Bearer
    state.oauth_tokens.add("lin_oauth_token0000000000")
    ok = httpx.post(
        server.linear_url,
        json={"query": "{ viewer { id isMe } }"},
        headers={"Authorization": "Bearer lin_oauth_token0000000000"},
    )
    assert ok.json()["data"]["viewer"]["isMe"] is True
    unsupported = gql(http, "{ cycles { nodes { id } } }").json()
    assert "not implemented by the contexten sandbox" in unsupported["errors"][0]["message"]


@pytest.mark.parametrize(("style", "status"), [("400", 400), ("429", 429)])
def test_rate_limit_forms_and_headers(
    style: str, status: int, http: httpx.Client, state: LinearState
) -> None:
    ok = gql(http, "{ viewer { id } }")
    assert (
        ok.headers["x-ratelimit-requests-remaining"] == "4999"
        and ok.headers["x-ratelimit-requests-limit"] == "5000"
    )
    assert int(ok.headers["x-ratelimit-requests-reset"]) > 1e12  # epoch milliseconds
    assert "x-complexity" in ok.headers and "x-ratelimit-complexity-remaining" in ok.headers
    state.rate_limit_next(1, style=style, retry_after=2)  # type: ignore[arg-type]
    limited = gql(http, "{ viewer { id } }")
    assert limited.status_code == status and limited.headers["retry-after"] == "2"
    assert limited.headers["x-ratelimit-requests-remaining"] == "0"
    extensions = limited.json()["errors"][0]["extensions"]
    assert extensions["code"] == "RATELIMITED" and extensions["type"] == "ratelimited"
    assert gql(http, "{ viewer { id } }").status_code == 200


def test_request_budget_runs_out(http: httpx.Client, state: LinearState) -> None:
    state.requests_limit = 2
    assert [gql(http, "{ viewer { id } }").status_code for _ in range(3)] == [200, 200, 400]
    status = gql(http, "{ viewer { id } }")
    assert status.json()["errors"][0]["extensions"]["code"] == "RATELIMITED"


def test_rate_limit_status_query(http: httpx.Client) -> None:
    body = gql(
        http, "{ rateLimitStatus { kind limits { type allowedAmount remainingAmount period } } }"
    ).json()
    limits = {item["type"]: item for item in body["data"]["rateLimitStatus"]["limits"]}
    assert (
        limits["requestLimit"]["allowedAmount"] == 5000
        and limits["requestLimit"]["period"] == 3_600_000
    )
