"""The webhook receiver: malformed deliveries get the exact status and dispatch nothing."""

from __future__ import annotations

import asyncio
import json
import sys
import types
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from intake_helpers import SECRET, load_example, signed_headers

from contexten.config import Settings
from contexten.events.dispatcher import Dispatcher
from contexten.events.inbox import DISPATCHED, IGNORED, Inbox
from contexten.events.receiver import ReceiverConfigError, create_app
from contexten.events.signature import sign
from contexten.store.db import Store

FORM = "application/x-www-form-urlencoded"
FAILED_JOB = "workflow_job/completed.failure.with-organization.payload.json"


@dataclass
class Recorder:
    calls: list[tuple[str, dict[str, Any], str]]

    async def __call__(self, workflow_type: str, parameters: dict[str, Any], key: str) -> str:
        self.calls.append((workflow_type, parameters, key))
        return f"run-{len(self.calls)}"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder([])


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store)) as test_client:
        yield test_client


def dispatch_all(store: Store, settings: Settings, recorder: Recorder) -> int:
    dispatcher = Dispatcher(Inbox(store), recorder, settings, poll_interval=0.01)
    return len(asyncio.run(dispatcher.run_once()))


@pytest.fixture
def failed_job(examples: Path) -> bytes:
    return json.dumps(load_example(examples, FAILED_JOB)).encode()


# (case id, body transform, header overrides, expected status)
MALFORMED: list[tuple[str, str, dict[str, Any], int]] = [
    ("bad signature", "same", {"X_Hub_Signature_256": "sha256=" + "0" * 64}, 401),
    ("signature of another secret", "same", {"X_Hub_Signature_256": "other-secret"}, 401),
    ("no signature", "same", {"X_Hub_Signature_256": None}, 401),
    ("sha1 signature", "same", {"X_Hub_Signature_256": "sha1=" + "0" * 40}, 401),
    ("truncated JSON", "truncate", {}, 400),
    ("JSON array", "array", {}, 400),
    ("wrong content type", "same", {"Content_Type": "text/plain"}, 400),
    ("no content type", "same", {"Content_Type": None}, 400),
    ("form without payload", "form-empty", {"Content_Type": FORM}, 400),
    ("oversized", "oversize", {}, 413),
    ("no event header", "same", {"X_GitHub_Event": None}, 400),
    ("no delivery header", "same", {"X_GitHub_Delivery": None}, 400),
    ("bad delivery header", "same", {"X_GitHub_Delivery": "../../etc/passwd"}, 400),
    ("bad content length", "same", {"Content_Length": "12abc"}, 400),
]


def _transform(body: bytes, how: str) -> bytes:
    if how == "truncate":
        return body[: len(body) // 2]
    if how == "array":
        return b"[1, 2, 3]"
    if how == "form-empty":
        return b"other=1"
    if how == "oversize":
        return body + b" " * (64 * 1024)
    return body


@pytest.mark.parametrize(
    ("body_how", "overrides", "status"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_delivery_is_rejected_and_nothing_dispatched(
    client: TestClient,
    store: Store,
    settings: Settings,
    recorder: Recorder,
    failed_job: bytes,
    body_how: str,
    overrides: dict[str, Any],
    status: int,
) -> None:
    body = _transform(failed_job, body_how)
    headers = signed_headers(body, event="workflow_job", delivery="case-delivery")
    for name, value in overrides.items():
        header = name.replace("_", "-")
        if value == "other-secret":
            value = sign("not the secret", body)
        if value is None:
            headers.pop(header, None)
        else:
            headers[header] = value
    response = client.post("/webhook", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["status"] == "rejected"
    assert dispatch_all(store, settings, recorder) == 0
    assert recorder.calls == []
    assert sum(Inbox(store).counts().values()) == 0  # nothing was even recorded


def test_chunked_body_over_the_limit_is_cut_off(
    client: TestClient, store: Store, failed_job: bytes
) -> None:
    body = failed_job + b" " * (64 * 1024)
    headers = signed_headers(body, event="workflow_job", delivery="chunked")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the receiver must count
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = client.post("/webhook", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert sum(Inbox(store).counts().values()) == 0


def test_valid_delivery_is_dispatched_once_and_a_replay_is_a_duplicate(
    client: TestClient, store: Store, settings: Settings, recorder: Recorder, failed_job: bytes
) -> None:
    headers = signed_headers(failed_job, event="workflow_job", delivery="replayed-1")
    first = client.post("/webhook", content=failed_job, headers=headers)
    assert first.status_code == 202
    assert first.json()["status"] == "accepted"
    assert dispatch_all(store, settings, recorder) == 1
    replay = client.post("/webhook", content=failed_job, headers=headers)
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert dispatch_all(store, settings, recorder) == 0
    assert recorder.calls == [
        (
            "failure_analysis",
            {"repository": "Codertocat/Hello-World", "workflow_run_id": 2202229078},
            "failure_analysis:Codertocat/Hello-World:2202229078:1",
        )
    ]
    row = Inbox(store).get("replayed-1")
    assert row is not None and row["status"] == DISPATCHED and row["flow_run_id"] == "run-1"


def test_unknown_event_is_recorded_as_ignored(
    client: TestClient, store: Store, settings: Settings, recorder: Recorder, examples: Path
) -> None:
    body = json.dumps(load_example(examples, "pull_request/opened.payload.json")).encode()
    response = client.post(
        "/webhook",
        content=body,
        # pull_request has rules now (workflow lint); no rule listens to "discussion"
        headers=signed_headers(body, event="discussion", delivery="pr-1"),
    )
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert dispatch_all(store, settings, recorder) == 0
    assert recorder.calls == []
    row = Inbox(store).get("pr-1")
    assert row is not None and row["status"] == IGNORED
    assert row["repository"] == "Codertocat/Hello-World" and row["action"] == "opened"


def test_known_event_that_matches_no_rule_ends_ignored(
    client: TestClient, store: Store, settings: Settings, recorder: Recorder, examples: Path
) -> None:
    body = json.dumps(load_example(examples, "workflow_job/queued.payload.json")).encode()
    response = client.post(
        "/webhook", content=body, headers=signed_headers(body, event="workflow_job", delivery="q")
    )
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    assert dispatch_all(store, settings, recorder) == 1
    assert recorder.calls == []
    row = Inbox(store).get("q")
    assert row is not None and row["status"] == IGNORED


def test_ping_is_answered(client: TestClient, examples: Path) -> None:
    body = json.dumps(load_example(examples, "ping/payload.json")).encode()
    response = client.post(
        "/webhook", content=body, headers=signed_headers(body, event="ping", delivery="p-1")
    )
    assert response.status_code == 200
    assert response.json()["status"] == "pong"
    assert response.json()["zen"]


def test_form_encoded_payload_is_accepted(
    client: TestClient, store: Store, settings: Settings, recorder: Recorder, failed_job: bytes
) -> None:
    body = urllib.parse.urlencode({"payload": failed_job.decode()}).encode()
    headers = signed_headers(
        body,
        event="workflow_job",
        delivery="form-1",
        content_type="application/x-www-form-urlencoded",
    )
    response = client.post("/webhook", content=body, headers=headers)
    assert response.status_code == 202
    assert dispatch_all(store, settings, recorder) == 1
    assert recorder.calls[0][0] == "failure_analysis"


def test_no_secret_refuses_to_start_unless_insecure(
    settings: Settings, store: Store, recorder: Recorder, failed_job: bytes
) -> None:
    open_settings = settings.model_copy(update={"github_webhook_secret": None})
    with pytest.raises(ReceiverConfigError, match="GITHUB_WEBHOOK_SECRET"):
        create_app(open_settings, store)
    with TestClient(create_app(open_settings, store, insecure=True)) as insecure_client:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": "unsigned-1",
        }
        response = insecure_client.post("/webhook", content=failed_job, headers=headers)
    assert response.status_code == 202


def test_secret_never_appears_in_answers(client: TestClient, failed_job: bytes) -> None:
    headers = signed_headers(failed_job, event="workflow_job", delivery="x", secret="wrong")
    response = client.post("/webhook", content=failed_job, headers=headers)
    assert response.status_code == 401
    assert SECRET not in response.text


def test_health_and_readiness(client: TestClient, store: Store, monkeypatch: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"

    def broken() -> None:
        raise OSError("database gone")

    monkeypatch.setattr(store, "ping", broken)
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert "store unreachable" in not_ready.json()["problems"][0]


def test_inbox_failure_answers_503(
    settings: Settings, store: Store, failed_job: bytes, monkeypatch: Any
) -> None:
    from contexten.events.inbox import InboxError

    inbox = Inbox(store)

    def fail(*_args: Any) -> Any:
        raise InboxError("disk full")

    monkeypatch.setattr(inbox, "write_batch", fail)  # the group commit
    monkeypatch.setattr(inbox, "insert_many", fail)  # and its one-by-one retry
    with TestClient(create_app(settings, store, inbox=inbox)) as failing:
        headers = signed_headers(failed_job, event="workflow_job", delivery="lost-1")
        response = failing.post("/webhook", content=failed_job, headers=headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"]


def test_metrics_route_is_mounted_only_when_provided(
    settings: Settings, store: Store, monkeypatch: Any
) -> None:
    import contexten.monitoring

    fake = types.ModuleType("contexten.monitoring.metrics")
    fake.render_prometheus = lambda _store, _settings: b"contexten_up 1\n"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "contexten.monitoring.metrics", fake)
    monkeypatch.setattr(contexten.monitoring, "metrics", fake, raising=False)
    with TestClient(create_app(settings, store)) as with_metrics:
        response = with_metrics.get("/metrics")
    assert response.status_code == 200
    assert response.text == "contexten_up 1\n"
    assert response.headers["content-type"].startswith("text/plain")

    bare = types.ModuleType("contexten.monitoring.metrics")
    monkeypatch.setitem(sys.modules, "contexten.monitoring.metrics", bare)
    monkeypatch.setattr(contexten.monitoring, "metrics", bare, raising=False)
    with TestClient(create_app(settings, store)) as without:
        assert without.get("/metrics").status_code == 404


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
        ("localhost.example.org", False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    from contexten.events.receiver import is_loopback_host

    assert is_loopback_host(host) is loopback


def test_insecure_bind_problem_only_for_unsigned_intake_beyond_loopback(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from contexten.events.receiver import insecure_bind_problem

    unsigned = Settings(contexten_home=tmp_path)
    signed = Settings(contexten_home=tmp_path, github_webhook_secret=SecretStr("s"))
    assert insecure_bind_problem(unsigned, "0.0.0.0", insecure=True) is not None
    assert insecure_bind_problem(unsigned, "127.0.0.1", insecure=True) is None
    assert insecure_bind_problem(unsigned, "0.0.0.0", insecure=False) is None  # refused later
    assert insecure_bind_problem(signed, "0.0.0.0", insecure=True) is None  # signed anyway
