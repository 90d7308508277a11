"""One Prefect flow per workflow type: thin wrappers over `execution.execute_workflow`.

Flows are async: sync flows pay about a second of heartbeat per run in Prefect 3.9. Each
flow takes one slot of the global concurrency limit while it runs, publishes its reports
as artifacts, and keeps secrets out of its result (the result is the recorded outcome).
"""

from __future__ import annotations

from typing import Any

from prefect import Flow, flow
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.concurrency.asyncio import concurrency
from prefect.runtime import flow_run

from contexten.config import get_settings
from contexten.orchestration.execution import ExecutionResult, execute_workflow
from contexten.orchestration.workflows import REGISTRY, AutonomousWorkflowType, WorkflowSpec
from contexten.store.db import open_store
from contexten.workflows.base import ReportArtifact

CONCURRENCY_LIMIT_NAME = "contexten-workflows"


class WorkflowRunFailed(Exception):
    """The workflow could not do its job; raised so Prefect marks the run Failed."""


async def publish_artifacts(artifacts: tuple[ReportArtifact, ...], description: str) -> None:
    import json

    for artifact in artifacts:
        if artifact.kind == "table":
            payload = json.loads(artifact.content)
            rows = [dict(zip(payload["columns"], row, strict=False)) for row in payload["rows"]]
            await acreate_table_artifact(table=rows, key=artifact.key, description=description)
        else:
            await acreate_markdown_artifact(
                markdown=artifact.content, key=artifact.key, description=description
            )


async def run_flow_body(
    workflow_type: AutonomousWorkflowType,
    parameters: dict[str, Any] | None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The flow's body. `run_id` is given when the caller reserved one (a local flow run);
    a deployment run is known by its Prefect flow run id."""
    settings = get_settings()
    store = open_store(settings.effective_database_url)
    local = run_id is not None
    run_id = run_id or str(flow_run.get_id() or "")
    async with concurrency(CONCURRENCY_LIMIT_NAME, occupy=1, strict=False):
        result: ExecutionResult = await execute_workflow(
            workflow_type,
            parameters,
            settings=settings,
            store=store,
            run_id=run_id or None,
            mode="prefect-local" if local else "prefect",
        )
    await publish_artifacts(result.artifacts, f"{workflow_type.value} run {result.run_id}")
    if result.status in ("failed", "timed_out"):
        raise WorkflowRunFailed(result.error or result.summary)
    return result.to_dict()


# Prefect's own flow timeout is a backstop a little past the one `execute_workflow`
# enforces, so the run is recorded as timed out (and alerted) before Prefect stops it.
FLOW_TIMEOUT_GRACE_SECONDS = 60


def flow_timeout_seconds(spec: WorkflowSpec, default_timeout: int) -> int:
    return spec.effective_timeout(default_timeout) + FLOW_TIMEOUT_GRACE_SECONDS


def _default_timeout() -> int:
    try:
        return get_settings().workflow_default_timeout
    except Exception:  # invalid settings are reported by the command, not at import
        return 3600


def _make_flow(spec: WorkflowSpec) -> Flow[..., Any]:
    workflow_type = spec.type

    async def body(
        parameters: dict[str, Any] | None = None, run_id: str | None = None
    ) -> dict[str, Any]:
        return await run_flow_body(workflow_type, parameters, run_id)

    body.__name__ = spec.type.value
    body.__qualname__ = spec.type.value
    body.__doc__ = spec.description
    return flow(
        name=spec.flow_name,
        description=spec.description,
        timeout_seconds=flow_timeout_seconds(spec, _default_timeout()),
        persist_result=False,
        validate_parameters=False,  # our pydantic models validate, with clearer messages
    )(body)


FLOWS: dict[AutonomousWorkflowType, Flow[..., Any]] = {
    t: _make_flow(s) for t, s in REGISTRY.items()
}

# Module attributes so deployments can name flows by module path (installed package).
failure_analysis = FLOWS[AutonomousWorkflowType.FAILURE_ANALYSIS]
performance_monitoring = FLOWS[AutonomousWorkflowType.PERFORMANCE_MONITORING]
dependency_management = FLOWS[AutonomousWorkflowType.DEPENDENCY_MANAGEMENT]
security_audit = FLOWS[AutonomousWorkflowType.SECURITY_AUDIT]
test_optimization = FLOWS[AutonomousWorkflowType.TEST_OPTIMIZATION]
health_check = FLOWS[AutonomousWorkflowType.HEALTH_CHECK]
system_recovery = FLOWS[AutonomousWorkflowType.SYSTEM_RECOVERY]
alert_management = FLOWS[AutonomousWorkflowType.ALERT_MANAGEMENT]
linear_sync = FLOWS[AutonomousWorkflowType.LINEAR_SYNC]
github_automation = FLOWS[AutonomousWorkflowType.GITHUB_AUTOMATION]
codegen_task_execution = FLOWS[AutonomousWorkflowType.CODEGEN_TASK_EXECUTION]
release_management = FLOWS[AutonomousWorkflowType.RELEASE_MANAGEMENT]
workflow_optimization = FLOWS[AutonomousWorkflowType.WORKFLOW_OPTIMIZATION]
