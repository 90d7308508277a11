"""Signed webhook deliveries, with bodies valid against GitHub's webhook payload schemas."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from contexten.sandbox.github import GitHubState, JobSpec
from contexten.sandbox.server import SandboxServer
from contexten.sandbox.testing import RecordingEndpoint
from contexten.sandbox.webhooks import WebhookSender, signature


def schema_validator(data_dir: Path, event: str, action: str) -> Draft7Validator:
    root = data_dir / "webhooks" / "payload-schemas"
    resources = []
    for path in root.rglob("*.schema.json"):
        document = json.loads(path.read_text())
        resource = Resource.from_contents(document, default_specification=DRAFT7)
        resources.append((document["$id"], resource))
    registry: Registry = Registry().with_resources(resources)
    schema = json.loads((root / event / f"{action}.schema.json").read_text())
    return Draft7Validator(schema, registry=registry)


def example(data_dir: Path, event: str, name: str) -> dict[str, Any]:
    path = data_dir / "webhooks" / "payload-examples" / event / name
    return dict(json.loads(path.read_text()))


def test_signature_matches_githubs_test_vector() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature("It's a Secret to Everybody", b"Hello, World!") == expected


@pytest.mark.parametrize("action", ["requested", "in_progress", "completed"])
async def test_workflow_run_delivery_is_signed_and_schema_valid(
    action: str,
    github_only: SandboxServer,
    github_state: GitHubState,
    repo_name: str,
    receiver: tuple[RecordingEndpoint, str],
    data_dir: Path,
) -> None:
    recorder, url = receiver
    run = github_state.add_run(
        repo_name, jobs=[JobSpec("test", conclusion="failure")], pull_requests=[]
    )
    sender = WebhookSender(github_state, url, secret="s3cret")
    delivery = await sender.workflow_run(run.id, action)
    assert delivery.ok and delivery.status_code == 202

    (got,) = recorder.requests
    headers, body = got["headers"], got["body"]
    assert headers["x-github-event"] == "workflow_run"
    assert str(uuid.UUID(headers["x-github-delivery"])) == headers["x-github-delivery"]
    assert headers["user-agent"].startswith("GitHub-Hookshot/")
    assert headers["x-github-hook-installation-target-type"] == "repository"
    digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-hub-signature-256"], f"sha256={digest}")

    payload = json.loads(body)
    validator = schema_validator(data_dir, "workflow_run", action)
    errors = list(validator.iter_errors(payload))
    assert errors == [], [e.message for e in errors[:5]]
    broken = {**payload, "workflow_run": {**payload["workflow_run"], "unknown": 1}}
    assert not validator.is_valid(broken)  # the schema is strict: the check has teeth
    assert payload["workflow_run"]["id"] == run.id
    assert payload["repository"]["full_name"] == repo_name
    assert payload["workflow_run"]["conclusion"] == ("failure" if action == "completed" else None)

    # The same shape as GitHub's own example: every key the example has, we have.
    sample = example(
        data_dir,
        "workflow_run",
        f"{action if action != 'in_progress' else 'requested'}.payload.json",
    )
    assert set(sample["workflow_run"]) <= set(payload["workflow_run"]) | {"referenced_workflows"}
    assert set(payload["workflow_run"]) <= set(sample["workflow_run"]) | {"referenced_workflows"}
    assert {"action", "repository", "sender", "workflow", "workflow_run"} <= set(payload)


@pytest.mark.parametrize("action", ["queued", "in_progress", "completed"])
async def test_workflow_job_delivery_is_schema_valid(
    action: str,
    github_state: GitHubState,
    repo_name: str,
    receiver: tuple[RecordingEndpoint, str],
    data_dir: Path,
) -> None:
    recorder, url = receiver
    run = github_state.add_run(repo_name, jobs=[JobSpec("build", conclusion="failure")])
    sender = WebhookSender(github_state, url)
    await sender.workflow_job(run.attempt.jobs[0].id, action)
    payload = json.loads(recorder.requests[0]["body"])
    errors = list(schema_validator(data_dir, "workflow_job", action).iter_errors(payload))
    assert errors == [], [e.message for e in errors[:5]]
    assert payload["workflow_job"]["run_id"] == run.id
    sample = example(data_dir, "workflow_job", "completed.failure.with-organization.payload.json")
    assert set(payload["workflow_job"]) == set(sample["workflow_job"])
    # Signed with the sandbox's webhook secret by default.
    body = recorder.requests[0]["body"]
    assert recorder.requests[0]["headers"]["x-hub-signature-256"] == signature(
        github_state.webhook_secret, body
    )


async def test_ping_is_schema_valid_and_installation_included(
    github_state: GitHubState,
    repo_name: str,
    receiver: tuple[RecordingEndpoint, str],
    data_dir: Path,
) -> None:
    recorder, url = receiver
    sender = WebhookSender(github_state, url)
    await sender.ping(repo_name)
    ping = json.loads(recorder.requests[0]["body"])
    errors = list(schema_validator(data_dir, "ping", "event").iter_errors(ping))
    assert errors == [], [e.message for e in errors[:5]]
    assert ping["hook"]["config"]["url"] == url


async def test_redelivery_repeats_the_same_guid_and_bytes(
    github_state: GitHubState, repo_name: str, receiver: tuple[RecordingEndpoint, str]
) -> None:
    recorder, url = receiver
    run = github_state.add_run(repo_name, jobs=[JobSpec("test", conclusion="failure")])
    sender = WebhookSender(github_state, url)
    first = await sender.workflow_run(run.id)
    recorder.status = 500  # the receiver is down now; GitHub records the failure
    again = await sender.redeliver(first.guid)
    assert again.redelivery and not again.ok and again.status_code == 500
    a, b = recorder.requests
    assert a["body"] == b["body"]
    assert a["headers"]["x-github-delivery"] == b["headers"]["x-github-delivery"] == first.guid
    assert a["headers"]["x-hub-signature-256"] == b["headers"]["x-hub-signature-256"]
    with pytest.raises(KeyError):
        await sender.redeliver("no-such-guid")


async def test_unreachable_receiver_is_recorded_not_raised(
    github_state: GitHubState, repo_name: str
) -> None:
    run = github_state.add_run(repo_name, jobs=[JobSpec("test")])
    sender = WebhookSender(github_state, "http://127.0.0.1:9/hook", timeout=2)
    delivery = await sender.workflow_run(run.id)
    assert not delivery.ok and delivery.status_code is None and delivery.error


async def test_deliveries_are_listed_and_redelivered_through_the_api(
    github_only: SandboxServer,
    github_state: GitHubState,
    repo_name: str,
    receiver: tuple[RecordingEndpoint, str],
    data_dir: Path,
) -> None:
    recorder, url = receiver
    run = github_state.add_run(repo_name, jobs=[JobSpec("test", conclusion="failure")])
    sender = WebhookSender(github_state, url, hook_id=77)
    first = await sender.workflow_run(run.id)
    headers = {"Authorization": f"Bearer {github_state.token}"}
    base = f"{github_only.github_url}/repos/{repo_name}/hooks/77/deliveries"
    spec = json.loads((data_dir / "contracts" / "github-rest-subset.openapi.json").read_text())
    async with httpx.AsyncClient(headers=headers) as client:
        listed = (await client.get(base)).json()
        assert [d["guid"] for d in listed] == [first.guid]
        assert listed[0]["status"] == "OK" and listed[0]["event"] == "workflow_run"
        schema = spec["components"]["schemas"]["hook-delivery-item"]
        missing = set(schema["required"]) - set(listed[0])
        assert missing == set()
        answer = await client.post(f"{base}/{listed[0]['id']}/attempts")
        assert answer.status_code == 202
        for _ in range(200):
            if len(recorder.requests) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(recorder.requests) == 2
        # The sandbox records the attempt after the receiver has answered it: poll.
        for _ in range(200):
            again = (await client.get(base)).json()
            if len(again) == 2:
                break
            await asyncio.sleep(0.02)
        assert [d["redelivery"] for d in again] == [True, False]
        assert again[0]["guid"] == first.guid
        assert (await client.post(f"{base}/999/attempts")).status_code == 404
