"""Helpers shared by the event-intake tests (imported by name; tests/events is on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contexten.events.signature import sign

SECRET = "test-webhook-secret"


def load_example(examples: Path, relative: str) -> dict[str, Any]:
    data = json.loads((examples / relative).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def signed_headers(
    body: bytes,
    *,
    event: str,
    delivery: str,
    secret: str = SECRET,
    content_type: str = "application/json",
) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(secret, body),
        "User-Agent": "GitHub-Hookshot/test",
    }
