"""Through a real Prefect server: a schedule fires and its run completes; the global
concurrency limit holds; trigger/status work through deployments."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect_helpers import prefect_settings

pytestmark = pytest.mark.prefect_server


@contextlib.asynccontextmanager
async def serving(*deployments: Any, limit: int = 4) -> AsyncIterator[Any]:
    """An in-process Prefect Runner serving `deployments` (flow runs are subprocesses)."""
    from prefect.runner import Runner

    runner = Runner(query_seconds=1, limit=limit, pause_on_shutdown=False)
    for deployment in deployments:
        await runner.aadd_deployment(deployment)
    task = asyncio.create_task(runner.start())
    try:
        yield runner
    finally:
        await runner.astop()
        with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
            await asyncio.wait_for(task, timeout=20)


async def _runs_of(deployment_name: str) -> list[Any]:
    """Flow runs of a deployment ("flow/deployment"); empty until the runner registered it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(deployment_name)
        except ObjectNotFound:
            return []
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )


async def test_schedule_fires_and_run_completes(prefect_server: str, contexten_home: Path) -> None:
    from prefect.deployments.runner import EntrypointType

    from contexten.orchestration import flows

    with prefect_settings(prefect_server):
        deployment = await flows.health_check.ato_deployment(
            name="scheduled-test",
            interval=timedelta(seconds=2),
            entrypoint_type=EntrypointType.MODULE_PATH,
            parameters={"parameters": {"check_all_integrations": False}},
        )
        # One run at a time: every run is a Python subprocess, and one completed is enough.
        async with serving(deployment, limit=1):
            completed = None
            for _ in range(120):
                await asyncio.sleep(0.5)
                runs = await _runs_of("health-check/scheduled-test")
                completed = next((r for r in runs if r.state and r.state.is_completed()), None)
                if completed is not None:
                    break
        assert completed is not None, "no scheduled run completed within 60 s"
        assert completed.auto_scheduled is True or completed.state.name == "Completed"

    from contexten.orchestration.execution import load_execution
    from contexten.store.db import open_store

    row = load_execution(open_store(), str(completed.id))
    assert row is not None and row.status == "completed" and row.mode == "prefect"
    assert row.workflow_type == "health_check"


async def test_trigger_and_status_through_deployment(
    prefect_server: str, contexten_home: Path
) -> None:

    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator
    from contexten.orchestration.deploy import build_deployments

    settings = reload_settings()
    with prefect_settings(prefect_server):
        orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
        assert orchestrator.mode == "prefect"
        deployments = [
            d for d in await build_deployments(settings) if d.name == "workflow-optimization"
        ]
        async with serving(*deployments):
            run_id = await orchestrator.trigger_workflow(
                "workflow_optimization",
                {"path": str(contexten_home / "missing")},
                idempotency_key="delivery-1",
            )
            again = await orchestrator.trigger_workflow(
                "workflow_optimization",
                {"path": str(contexten_home / "missing")},
                idempotency_key="delivery-1",
            )
            assert again == run_id  # same key, same run: never dispatched twice
            status = await orchestrator.wait_for_run(run_id, timeout=90)
    assert status.mode == "prefect"
    assert status.is_final
    assert status.workflow_type == "workflow_optimization"


async def test_global_concurrency_limit_holds(prefect_server: str, contexten_home: Path) -> None:
    """With the limit at 1 and its only slot taken, a triggered run waits; freed, it runs."""
    from prefect.concurrency.asyncio import concurrency

    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator
    from contexten.orchestration.deploy import build_deployments, ensure_concurrency_limit
    from contexten.orchestration.execution import load_execution
    from contexten.orchestration.flows import CONCURRENCY_LIMIT_NAME

    settings = reload_settings()
    with prefect_settings(prefect_server):
        await ensure_concurrency_limit(1)
        orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
        deployments = [d for d in await build_deployments(settings) if d.name == "health-check"]
        try:
            async with serving(*deployments):
                async with concurrency(CONCURRENCY_LIMIT_NAME, occupy=1, strict=True):
                    run_id = await orchestrator.trigger_workflow(
                        "health_check", {"check_all_integrations": False}
                    )
                    # Long enough for the runner (it polls every second) to pick the run
                    # up and reach the limit.
                    for _ in range(8):
                        await asyncio.sleep(0.5)
                        row = load_execution(orchestrator.store, run_id)
                        assert row is not None and row.status == "scheduled", row.status
                status = await orchestrator.wait_for_run(run_id, timeout=90)
        finally:
            await ensure_concurrency_limit(settings.max_concurrent_workflows)
    assert status.status == "completed", status.error


async def test_local_dispatch_runs_the_flow_here_tracked_by_the_server(
    prefect_server: str, contexten_home: Path
) -> None:
    """DISPATCH_MODE=local (the webhook dispatcher of `contexten server`): no runner needed,
    one run per idempotency key, and the run shows up on the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator

    settings = reload_settings().model_copy(update={"dispatch_mode": "local"})
    with prefect_settings(prefect_server):
        orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
        params = {"check_all_integrations": False}
        run_id = await orchestrator.trigger_workflow("health_check", params, idempotency_key="d-9")
        again = await orchestrator.trigger_workflow("health_check", params, idempotency_key="d-9")
        status = await orchestrator.get_workflow_status(run_id)
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["health-check"]))
            )
    assert again == run_id
    assert status.mode == "prefect-local" and status.status == "completed", status.error
    assert any(r.parameters.get("run_id") == run_id for r in runs)


async def test_initialize_saves_secret_blocks_and_the_limit(
    prefect_server: str, contexten_home: Path
) -> None:
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client

    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator
    from contexten.orchestration.flows import CONCURRENCY_LIMIT_NAME

    settings = reload_settings()
    with prefect_settings(prefect_server):
        orchestrator = PrefectOrchestrator(
            settings=settings,
            prefect_api_url=prefect_server,
            github_token="ghp_initializeSecret0001",
            slack_webhook_url="https://hooks.slack.com/services/T0/B0/initSecret",
        )
        report = await orchestrator.initialize()
        token = await Secret.aload("contexten-github-token")
        async with get_client() as client:
            limit = await client.read_global_concurrency_limit_by_name(CONCURRENCY_LIMIT_NAME)
    assert report.prefect_api_url == prefect_server
    assert "contexten-github-token" in report.secret_blocks
    assert "contexten-slack-webhook-url" in report.secret_blocks
    assert token.get() == "ghp_initializeSecret0001"
    assert limit.limit == settings.max_concurrent_workflows
    assert "initializeSecret" not in repr(report.to_dict())
    assert len(report.deployments) == 13
