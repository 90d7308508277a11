"""A local Linear GraphQL API: `POST /graphql` executed against Linear's real schema.

Requests are parsed, validated and executed by graphql-core against `data/linear-schema.graphql`
(Linear's published schema), so every response has the shape the schema promises. Resolvers
exist for what contexten uses: `issues`/`issue`, `issueLabels`, `workflowStates`, `team(s)`,
`viewer`, `organization`, `rateLimitStatus`, and the mutations `issueCreate`, `issueUpdate`,
`commentCreate`, `issueLabelCreate`. Any other root field answers a clear GraphQL error.

Behaviour copied from Linear's public API documentation:
- auth: `Authorization: lin_api_…` (personal key, as-is) or `Bearer <oauth token>`;
- errors: `{"errors": [{"message", "path", "locations", "extensions": {"type", "code",
  "statusCode", "userError", "userPresentableMessage"}}], "data": …}` with HTTP 400;
- rate limits: `x-ratelimit-requests-limit|remaining|reset` (reset in epoch milliseconds) and
  `x-ratelimit-complexity-*` on every answer; when exhausted either HTTP 400 with
  `extensions.code == "RATELIMITED"` or HTTP 429, both seen in the wild.
"""

from __future__ import annotations

from contexten.sandbox.linear.app import (
    create_app,
)
from contexten.sandbox.linear.state import (
    DEFAULT_PAGE_SIZE,
    MAX_BODY_BYTES,
    MAX_PAGE_SIZE,
    MAX_QUERY_COMPLEXITY,
    PRIORITY_LABELS,
    SANDBOX_TEAM_ID,
    SCHEMA_PATH,
    SCRIPTED_RESET_SECONDS,
    STATE_TYPES,
    LinearComment,
    LinearIssue,
    LinearLabel,
    LinearState,
    LinearTeam,
    LinearUser,
    LinearWorkflowState,
    RateLimitStyle,
    linear_schema,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_BODY_BYTES",
    "MAX_PAGE_SIZE",
    "MAX_QUERY_COMPLEXITY",
    "PRIORITY_LABELS",
    "SANDBOX_TEAM_ID",
    "SCHEMA_PATH",
    "SCRIPTED_RESET_SECONDS",
    "STATE_TYPES",
    "LinearComment",
    "LinearIssue",
    "LinearLabel",
    "LinearState",
    "LinearTeam",
    "LinearUser",
    "LinearWorkflowState",
    "RateLimitStyle",
    "create_app",
    "linear_schema",
]
