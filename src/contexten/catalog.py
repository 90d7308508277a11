"""The catalog of the 13 autonomous workflow types: parameters, triggers, limits.

Pure data, no Prefect: read by the workflow bodies (their parameters), orchestration (flows,
deployments, validation), events (routing) and monitoring. `contexten.orchestration` and
`contexten.orchestration.workflows` re-export it (the documented API).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contexten.analysis.backoff import exponential_backoff

COMMIT_SHA_PATTERN = r"^[0-9a-fA-F]{7,64}$"  # a full or abbreviated commit sha


class AutonomousWorkflowType(StrEnum):
    FAILURE_ANALYSIS = "failure_analysis"
    PERFORMANCE_MONITORING = "performance_monitoring"
    DEPENDENCY_MANAGEMENT = "dependency_management"
    SECURITY_AUDIT = "security_audit"
    TEST_OPTIMIZATION = "test_optimization"
    HEALTH_CHECK = "health_check"
    SYSTEM_RECOVERY = "system_recovery"
    ALERT_MANAGEMENT = "alert_management"
    LINEAR_SYNC = "linear_sync"
    GITHUB_AUTOMATION = "github_automation"
    CODEGEN_TASK_EXECUTION = "codegen_task_execution"
    RELEASE_MANAGEMENT = "release_management"
    WORKFLOW_OPTIMIZATION = "workflow_optimization"


class WorkflowParameters(BaseModel):
    """Base of every parameters model: unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str | None = Field(
        default=None,
        description="owner/name; default GITHUB_REPOSITORY",
        pattern=r"^[^/\s]+/[^/\s]+$",
    )


class FailureAnalysisParameters(WorkflowParameters):
    workflow_run_id: int = Field(description="GitHub Actions run id", gt=0)
    auto_fix_enabled: bool = Field(default=False, description="hand fixes to the Codegen agent")
    create_pr_for_fixes: bool = Field(default=True, description="let the agent open a PR")
    auto_recovery: bool = Field(default=True, description="re-run transient failures")
    use_baseline: bool = Field(default=True, description="diff against the last passing run")


class PerformanceMonitoringParameters(WorkflowParameters):
    baseline_branch: str = Field(default="develop", min_length=1)
    head_branch: str | None = Field(default=None, description="default: the repository default")
    workflow_name: str | None = None
    alert_threshold_percent: float = Field(default=20.0, gt=0, le=1000)
    window_runs: int = Field(default=30, ge=2, le=1000)
    auto_optimize: bool = False
    head_sha: str | None = Field(
        default=None,
        description="commit sha; with a regression, a check run goes on this commit",
        pattern=COMMIT_SHA_PATTERN,
    )


class DependencyManagementParameters(WorkflowParameters):
    update_strategy: Literal["conservative", "smart", "aggressive"] = "smart"
    test_before_merge: bool = True
    security_priority: bool = True
    path: str = Field(default=".", description="project directory to read dependencies from")
    test_command: str | None = None
    create_pr: bool = False
    cooldown_days: int = Field(default=3, ge=0, le=365, description="wait after a release")
    base_branch: str | None = Field(default=None, description="PR base; default: checkout's")


class SecurityAuditParameters(WorkflowParameters):
    path: str = "."
    fail_on: Literal["low", "medium", "high", "critical"] = "high"
    include_dependencies: bool = True
    include_code: bool = True
    include_secrets: bool = True


class TestOptimizationParameters(WorkflowParameters):
    workflow_run_id: int | None = Field(default=None, gt=0)
    report_paths: list[str] = Field(default_factory=list)
    shards: int = Field(default=0, ge=0, le=256)
    window_days: int = Field(default=14, ge=1, le=365)
    auto_quarantine: bool = False


class HealthCheckParameters(WorkflowParameters):
    check_all_integrations: bool = True
    auto_recovery: bool = False
    alert_on_degradation: bool = True


class SystemRecoveryParameters(WorkflowParameters):
    component: str | None = Field(
        default=None, description="component to recover; default all unhealthy"
    )
    failure_type: str | None = None
    dry_run: bool = False


class AlertManagementParameters(WorkflowParameters):
    resolve_stale_minutes: int = Field(default=60, ge=1)


class LinearSyncParameters(WorkflowParameters):
    close_fixed: bool = True
    since_hours: int = Field(default=24, ge=1)


class GithubAutomationParameters(WorkflowParameters):
    workflow_run_id: int | None = Field(
        default=None, gt=0, description="a diagnosed run: its PR comment and check run"
    )
    comment_on_pr: bool = True
    create_check_run: bool = True
    # A `/contexten ...` command commented on a pull request (an issue_comment event).
    issue_number: int | None = Field(default=None, gt=0, description="the pull request")
    comment_id: int | None = Field(default=None, gt=0)
    comment_body: str | None = Field(default=None, max_length=65536)
    comment_author: str | None = Field(default=None, max_length=100)
    author_association: str | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _one_job(self) -> GithubAutomationParameters:
        command = (self.issue_number, self.comment_id, self.comment_body)
        if self.workflow_run_id is None and any(v is None for v in command):
            raise ValueError(
                "give workflow_run_id, or issue_number, comment_id and comment_body "
                "(a /contexten command)"
            )
        return self


class CodegenTaskParameters(WorkflowParameters):
    prompt: str | None = Field(default=None, description="free prompt; or a diagnosis below")
    workflow_run_id: int | None = Field(default=None, gt=0)
    timeout_seconds: int = Field(default=1800, ge=1)


class ReleaseManagementParameters(WorkflowParameters):
    path: str = "."
    draft: bool = True
    tag_prefix: str = "v"


class WorkflowOptimizationParameters(WorkflowParameters):
    path: str = "."
    auto_optimize: bool = False
    pull_request: int | None = Field(
        default=None, gt=0, description="lint the workflow files this pull request changes"
    )
    head_sha: str | None = Field(
        default=None,
        description="the pull request's head commit (default: read from GitHub)",
        pattern=COMMIT_SHA_PATTERN,
    )


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str | None = None
    interval_seconds: int | None = None

    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron}"
        if self.interval_seconds:
            return f"every {self.interval_seconds}s"
        return "-"


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    type: AutonomousWorkflowType
    name: str
    description: str
    parameters: builtins.type[WorkflowParameters]
    events: tuple[str, ...] = ()
    schedule: Schedule | None = None
    timeout_seconds: int = 3600
    # True: the type's timeout IS WORKFLOW_DEFAULT_TIMEOUT (long audits and updates follow
    # it up and down); False: timeout_seconds, capped by WORKFLOW_DEFAULT_TIMEOUT.
    follows_default_timeout: bool = False
    retries: int = 2
    retry_delay_seconds: int = 60  # doubled on each retry
    priority: int = 5  # 1 = most urgent
    tags: tuple[str, ...] = ()

    @property
    def deployment_name(self) -> str:
        return self.type.value.replace("_", "-")

    @property
    def flow_name(self) -> str:
        return self.type.value.replace("_", "-")

    def effective_timeout(self, default_seconds: int) -> int:
        """Seconds a run of this type may take, given WORKFLOW_DEFAULT_TIMEOUT.

        Types that follow the default take it as is; the others keep their own
        (shorter) timeout, capped by the default.
        """
        default_seconds = max(1, int(default_seconds))
        if self.follows_default_timeout:
            return default_seconds
        return min(self.timeout_seconds, default_seconds)

    def retry_delays(self, base: int | None = None) -> list[int]:
        first = self.retry_delay_seconds if base is None else base
        return [int(exponential_backoff(i + 1, first)) for i in range(self.retries)]


T = AutonomousWorkflowType
REGISTRY: dict[AutonomousWorkflowType, WorkflowSpec] = {
    spec.type: spec
    for spec in (
        WorkflowSpec(
            T.FAILURE_ANALYSIS,
            "Failure analysis",
            "Fetch failed job logs, diagnose, re-run transient failures, escalate the rest.",
            FailureAnalysisParameters,
            events=("workflow_run.completed:failure", "workflow_job.completed:failure"),
            timeout_seconds=1800,
            retries=2,
            retry_delay_seconds=30,
            priority=1,
            tags=("ci", "failure"),
        ),
        WorkflowSpec(
            T.PERFORMANCE_MONITORING,
            "Performance monitoring",
            "CI durations on a branch against the baseline; significant regressions alert.",
            PerformanceMonitoringParameters,
            events=("push:baseline",),
            schedule=Schedule(cron="0 6 * * *"),
            timeout_seconds=1800,
            priority=4,
            tags=("ci", "performance"),
        ),
        WorkflowSpec(
            T.DEPENDENCY_MANAGEMENT,
            "Dependency management",
            "Outdated and vulnerable dependencies; an update plan by strategy; one PR.",
            DependencyManagementParameters,
            schedule=Schedule(cron="0 5 * * 1"),
            timeout_seconds=3600,
            follows_default_timeout=True,
            priority=5,
            tags=("dependencies",),
        ),
        WorkflowSpec(
            T.SECURITY_AUDIT,
            "Security audit",
            "Vulnerable dependencies, code issues and committed secrets; SARIF report.",
            SecurityAuditParameters,
            events=("push",),
            schedule=Schedule(cron="0 4 * * *"),
            timeout_seconds=3600,
            follows_default_timeout=True,
            priority=3,
            tags=("security",),
        ),
        WorkflowSpec(
            T.TEST_OPTIMIZATION,
            "Test optimization",
            "Flaky and slow tests, quarantine list, balanced shards from JUnit history.",
            TestOptimizationParameters,
            events=("workflow_run.completed:artifacts",),
            schedule=Schedule(cron="30 6 * * *"),
            timeout_seconds=1800,
            priority=4,
            tags=("tests",),
        ),
        WorkflowSpec(
            T.HEALTH_CHECK,
            "Health check",
            "Components and resources to a 0-100 score; alerts and recovery below thresholds.",
            HealthCheckParameters,
            schedule=Schedule(interval_seconds=300),
            timeout_seconds=300,
            retries=0,
            priority=2,
            tags=("monitoring",),
        ),
        WorkflowSpec(
            T.SYSTEM_RECOVERY,
            "System recovery",
            "Restart or clean up our own components, cancel stuck runs, reset configuration.",
            SystemRecoveryParameters,
            events=("health.unhealthy",),
            timeout_seconds=900,
            retries=1,
            priority=1,
            tags=("monitoring", "recovery"),
        ),
        WorkflowSpec(
            T.ALERT_MANAGEMENT,
            "Alert management",
            "Dedupe, group, route, escalate and resolve alerts.",
            AlertManagementParameters,
            events=("alert.firing",),
            schedule=Schedule(interval_seconds=300),
            timeout_seconds=300,
            priority=2,
            tags=("monitoring", "alerts"),
        ),
        WorkflowSpec(
            T.LINEAR_SYNC,
            "Linear sync",
            "One Linear issue per distinct failure signature; update; close when fixed.",
            LinearSyncParameters,
            events=("diagnosis.created",),
            schedule=Schedule(cron="0 * * * *"),
            timeout_seconds=900,
            priority=4,
            tags=("linear",),
        ),
        WorkflowSpec(
            T.GITHUB_AUTOMATION,
            "GitHub automation",
            "PR comments, check runs with annotations and job summary for a diagnosed run.",
            GithubAutomationParameters,
            events=("diagnosis.created",),
            timeout_seconds=600,
            priority=3,
            tags=("github",),
        ),
        WorkflowSpec(
            T.CODEGEN_TASK_EXECUTION,
            "Codegen task execution",
            "Send a fenced prompt to the Codegen agent and follow the run to its PR.",
            CodegenTaskParameters,
            events=("diagnosis.auto_fix",),
            timeout_seconds=3600,
            follows_default_timeout=True,
            retries=1,
            priority=3,
            tags=("codegen", "ai"),
        ),
        WorkflowSpec(
            T.RELEASE_MANAGEMENT,
            "Release management",
            "Changelog since the last tag, semver bump from conventional commits, draft release.",
            ReleaseManagementParameters,
            events=("release", "push:tag"),
            timeout_seconds=900,
            priority=5,
            tags=("release",),
        ),
        WorkflowSpec(
            T.WORKFLOW_OPTIMIZATION,
            "Workflow optimization",
            "Lint .github/workflows: caching, timeouts, concurrency, pinned actions, permissions.",
            WorkflowOptimizationParameters,
            events=("push:workflows",),
            schedule=Schedule(cron="0 7 * * 1"),
            timeout_seconds=600,
            priority=5,
            tags=("ci", "lint"),
        ),
    )
}


class WorkflowParameterError(ValueError):
    """Parameters for a workflow type are invalid; the message is one line."""


def parse_workflow_type(value: str | AutonomousWorkflowType) -> AutonomousWorkflowType:
    try:
        return AutonomousWorkflowType(value)
    except ValueError:
        choices = ", ".join(t.value for t in AutonomousWorkflowType)
        raise WorkflowParameterError(
            f"unknown workflow type {value!r}; expected one of: {choices}"
        ) from None


def _message(spec: WorkflowSpec, error: Any) -> str:
    """Pydantic's message, but a pattern mismatch says what was expected, not the regex."""
    field = spec.parameters.model_fields.get(str(error["loc"][0])) if error["loc"] else None
    if error["type"] == "string_pattern_mismatch" and field is not None and field.description:
        return f"expected {field.description.split(';')[0]}, got {error['input']!r}"
    return str(error["msg"])


def validate_parameters(
    workflow_type: AutonomousWorkflowType | str, parameters: dict[str, Any] | None
) -> WorkflowParameters:
    """Parse parameters for a type, or raise WorkflowParameterError naming the bad field."""
    spec = REGISTRY[parse_workflow_type(workflow_type)]
    if parameters is not None and not isinstance(parameters, dict):
        raise WorkflowParameterError(
            f"parameters for {spec.type.value} must be a JSON object, "
            f"got {type(parameters).__name__}"
        )
    try:
        return spec.parameters.model_validate(parameters or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {_message(spec, err)}"
            for err in exc.errors()
        )
        raise WorkflowParameterError(
            f"invalid parameters for {spec.type.value}: {problems}"
        ) from None
