"""A local GitHub REST API (version 2022-11-28) for the subset contexten uses.

State (`GitHubState`) holds repositories with branches, files, workflows, workflow runs with
attempts, jobs, steps and logs, artifacts, issues and comments, check runs, pull requests,
Actions caches, releases, and GitHub App installations. Tests seed it (`add_repo`,
`add_run`, `add_artifact`, ...) and inspect it (`received` counts every world-changing
request that took effect).

The app (`create_app(state, faults)`) answers like api.github.com: bearer/token auth (401
"Bad credentials"), `x-ratelimit-*` headers on every response and 403 when the primary limit
is used up, pagination with `Link` headers, 302 redirects for logs and artifacts to
loopback URLs that expire after `faults.log_url_ttl` seconds, error bodies
`{message, documentation_url, status}` and 422 `validation-error`s. Re-runs create a new
attempt whose outcome a test scripts with `rerun_outcomes` (e.g. "pass on re-run").
"""

from __future__ import annotations

from contexten.sandbox.github.app import (
    create_app,
)
from contexten.sandbox.github.records import (
    API_VERSIONS,
    CONCLUSIONS,
    DEFAULT_PER_PAGE,
    DOCS,
    MAX_PER_PAGE,
    RATE_LIMIT,
    STATUSES,
    ArtifactRecord,
    AttemptRecord,
    CacheRecord,
    CheckRunRecord,
    CommentRecord,
    Installation,
    IssueRecord,
    JobRecord,
    JobSpec,
    PullRecord,
    ReleaseRecord,
    RepoRecord,
    RunRecord,
    StepRecord,
    WorkflowRecord,
    fake_sha,
    git_blob_sha,
    infer_conclusion,
    iso,
    utc,
)
from contexten.sandbox.github.responses import (
    created,
    error,
    not_found,
    page_params,
    paginate,
    read_json,
    validation_failed,
)
from contexten.sandbox.github.seed import (
    DEMO_LOG,
    seed_demo,
)
from contexten.sandbox.github.shapes import (
    Shapes,
)
from contexten.sandbox.github.state import (
    GitHubState,
    synthetic_log,
)

__all__ = [
    "API_VERSIONS",
    "CONCLUSIONS",
    "DEFAULT_PER_PAGE",
    "DEMO_LOG",
    "DOCS",
    "MAX_PER_PAGE",
    "RATE_LIMIT",
    "STATUSES",
    "ArtifactRecord",
    "AttemptRecord",
    "CacheRecord",
    "CheckRunRecord",
    "CommentRecord",
    "GitHubState",
    "Installation",
    "IssueRecord",
    "JobRecord",
    "JobSpec",
    "PullRecord",
    "ReleaseRecord",
    "RepoRecord",
    "RunRecord",
    "Shapes",
    "StepRecord",
    "WorkflowRecord",
    "create_app",
    "created",
    "error",
    "fake_sha",
    "git_blob_sha",
    "infer_conclusion",
    "iso",
    "not_found",
    "page_params",
    "paginate",
    "read_json",
    "seed_demo",
    "synthetic_log",
    "utc",
    "validation_failed",
]
