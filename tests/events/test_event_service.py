"""The intake service: the orchestrator trigger (in-process fallback) and build_app."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from intake_helpers import load_example, signed_headers

from contexten.config import Settings
from contexten.events.inbox import DISPATCHED, Inbox
from contexten.events.routing import DEFAULT_RULES
from contexten.events.service import build_app, load_trigger_factory, orchestrator_trigger
from contexten.store.db import Store
from contexten.workflows.base import WorkflowOutcome


@pytest.fixture
def lint_body(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replace the workflow_optimization body; the list records each run's parameters."""
    seen: list[Any] = []

    async def body(params: Any, ctx: Any) -> WorkflowOutcome:
        seen.append((params.repository, ctx.run_id))
        return WorkflowOutcome(ok=True, summary="no findings")

    monkeypatch.setattr("contexten.workflows.workflow_optimization.run", body)
    return seen


def test_orchestrator_trigger_runs_in_process_once_per_key(
    settings: Settings, store: Store, lint_body: list[Any]
) -> None:
    """No Prefect server reachable: the orchestrator runs the body, and dedupes by key."""
    trigger = orchestrator_trigger(settings, store)

    async def twice() -> tuple[str, str]:
        params = {"repository": "octo/repo"}
        first = await trigger("workflow_optimization", params, "key-1")
        second = await trigger("workflow_optimization", params, "key-1")
        return first, second

    first, second = asyncio.run(twice())
    assert first == second
    assert lint_body == [("octo/repo", first)]


def test_build_app_dispatches_in_its_lifespan(
    settings: Settings, store: Store, examples: Path, lint_body: list[Any]
) -> None:
    payload = load_example(examples, "push/with-new-branch.payload.json")
    payload["ref"] = "refs/heads/feature"
    payload["commits"][0]["modified"] = [".github/workflows/ci.yml"]
    body = json.dumps(payload).encode()
    # the push's security audit (a default rule) would audit this checkout: not this test's job
    rules = [r for r in DEFAULT_RULES if r.name != "push-security-audit"]
    app = build_app(settings, store, rules=rules, poll_interval=0.05)
    with TestClient(app) as client:
        response = client.post(
            "/webhook", content=body, headers=signed_headers(body, event="push", delivery="p-1")
        )
        assert response.status_code == 202
        for _ in range(200):  # the dispatcher in the lifespan picks it up
            row = Inbox(store).get("p-1")
            if row is not None and row["status"] == DISPATCHED:
                break
            time.sleep(0.05)
        assert client.get("/readyz").json()["status"] == "ready"
    assert row is not None and row["status"] == DISPATCHED
    assert row["workflow_type"] == "workflow_optimization"
    assert lint_body and lint_body[0][0] == "Codertocat/Hello-World"


def test_load_trigger_factory_errors() -> None:
    from contexten.events.service import TriggerLoadError

    with pytest.raises(TriggerLoadError, match="must look like"):
        load_trigger_factory("no_colon")
    with pytest.raises(TriggerLoadError, match="has no callable"):
        load_trigger_factory("contexten.events.service:nothing_here")
    assert load_trigger_factory("contexten.events.service:orchestrator_trigger") is (
        orchestrator_trigger
    )
