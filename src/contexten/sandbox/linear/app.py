"""Query complexity and the FastAPI app: auth, rate limits, one GraphQL endpoint."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    execute,
    parse,
    validate,
)
from graphql.language import DocumentNode, IntValueNode, SelectionSetNode, VariableNode

from contexten.sandbox.linear.query import _error, _error_body
from contexten.sandbox.linear.resolvers import _Resolvers, _RootValue
from contexten.sandbox.linear.state import (
    DEFAULT_PAGE_SIZE,
    MAX_BODY_BYTES,
    MAX_QUERY_COMPLEXITY,
    LinearState,
    _ScriptedLimit,
    linear_schema,
)

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
