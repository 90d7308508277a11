"""In a Prefect flow run, a failure analysis's steps are tasks, and the diagnosis of a job
id is cached: a second analysis of the same run reuses it (a real Prefect server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect_helpers import prefect_settings

from contexten.sandbox.github import JobSpec
from contexten.sandbox.testing import running_sandbox

pytestmark = pytest.mark.prefect_server

FIXTURES = Path(__file__).resolve().parents[2] / "src" / "contexten" / "demo" / "fixtures"
JOB = "test (ubuntu-latest, 3.12)"


async def test_steps_are_tasks_and_a_diagnosis_is_reused(
    prefect_server: str, contexten_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
    )

    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator

    with running_sandbox() as sandbox:
        gh = sandbox.state.github
        repo = "steps/app"
        gh.add_repo(repo, default_branch="main")
        gh.add_run(
            repo,
            workflow="Tests",
            jobs=[JobSpec(JOB, log=(FIXTURES / "pytest-pass.log").read_bytes())],
        )
        failing = gh.add_run(
            repo,
            workflow="Tests",
            jobs=[
                JobSpec(JOB, conclusion="failure", log=(FIXTURES / "pytest-fail.log").read_bytes())
            ],
        )
        for name, value in sandbox.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GITHUB_REPOSITORY", repo)
        monkeypatch.setenv("HTTP_MAX_ATTEMPTS", "2")
        settings = reload_settings().model_copy(update={"dispatch_mode": "local"})
        params = {"workflow_run_id": failing.id}
        with prefect_settings(prefect_server):
            orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
            first = await orchestrator.trigger_workflow(
                "failure_analysis", params, idempotency_key="st-1"
            )
            second = await orchestrator.trigger_workflow(
                "failure_analysis", params, idempotency_key="st-2"
            )
            statuses = [await orchestrator.get_workflow_status(r) for r in (first, second)]
            async with get_client() as client:
                flow_runs = await client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["failure-analysis"]))
                )
                by_run = {fr.parameters.get("run_id"): fr for fr in flow_runs}
                tasks = {
                    run_id: await client.read_task_runs(
                        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[by_run[run_id].id]))
                    )
                    for run_id in (first, second)
                }
    assert [s.status for s in statuses] == ["completed", "completed"], statuses
    names = {t.name: t for t in tasks[first]}
    assert {"fetch", f"diagnose {JOB}", "escalate", "report"} <= set(names), sorted(names)
    assert names[f"diagnose {JOB}"].state is not None
    assert names[f"diagnose {JOB}"].state.name == "Completed"
    again = {t.name: t for t in tasks[second]}
    assert again[f"diagnose {JOB}"].state is not None
    assert again[f"diagnose {JOB}"].state.name == "Cached"
    assert again["fetch"].state is not None and again["fetch"].state.name == "Completed"
    # the cached diagnosis is the same one: same signature recorded for both analyses
    signatures = [s.result["data"]["jobs"][0]["signature"] for s in statuses if s.result]
    assert len(signatures) == 2 and signatures[0] == signatures[1]


async def test_the_audit_of_a_clean_commit_is_reused(
    prefect_server: str, contexten_home: Path, tmp_path: Path
) -> None:
    import subprocess

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from contexten.config import reload_settings
    from contexten.orchestration import PrefectOrchestrator

    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "app.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    for args in (
        ["init", "-q"],
        ["add", "app.py"],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "app"],
    ):
        subprocess.run(["git", "-C", str(checkout), *args], check=True, capture_output=True)
    settings = reload_settings().model_copy(update={"dispatch_mode": "local"})
    params = {"path": str(checkout), "include_dependencies": False}
    with prefect_settings(prefect_server):
        orchestrator = PrefectOrchestrator(settings=settings, prefect_api_url=prefect_server)
        runs = [
            await orchestrator.trigger_workflow("security_audit", params, idempotency_key=key)
            for key in ("au-1", "au-2")
        ]
        (checkout / "new.py").write_text("x = 1\n")  # uncommitted: not a commit any more
        runs.append(
            await orchestrator.trigger_workflow("security_audit", params, idempotency_key="au-3")
        )
        async with get_client() as client:
            flow_runs = {
                fr.parameters.get("run_id"): fr
                for fr in await client.read_flow_runs()
                if fr.parameters.get("run_id") in runs
            }
            states = []
            for run_id in runs:
                tasks = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_runs[run_id].id]))
                )
                [audit] = [t for t in tasks if t.name == "audit"]
                states.append(audit.state.name if audit.state else None)
    assert states == ["Completed", "Cached", "Completed"]
