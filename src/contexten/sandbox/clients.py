"""HTTP for whoever plays GitHub against contexten (the demo): read the sandbox's API the way
GitHub builds its webhook bodies, and post the webhooks. Production code never uses this;
it reaches services through `contexten.integrations`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import httpx


class SandboxApiError(RuntimeError):
    """The sandbox's API answered with an error."""


class GitHubReader:
    """GET requests to the sandbox's GitHub API, answered as JSON objects."""

    def __init__(self, github_url: str, token: str, timeout: float = 10.0) -> None:
        self._client = httpx.Client(
            base_url=github_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
            timeout=timeout,
        )

    def get(self, path: str) -> dict[str, Any]:
        response = self._client.get(path)
        if response.is_error:
            raise SandboxApiError(f"GET {path}: HTTP {response.status_code}")
        data = response.json()
        if not isinstance(data, dict):
            raise SandboxApiError(f"GET {path}: expected a JSON object")
        return data

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True, slots=True)
class WebhookReply:
    status_code: int
    status: str  # the receiver's `status` field ("queued", "duplicate", ...), or ""


class WebhookPoster:
    """Posts signed webhook bodies to one receiver (a context manager)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> WebhookReply:
        response = self._client.post(path, content=body, headers=headers)
        status = ""
        with contextlib.suppress(ValueError, AttributeError):
            status = str(response.json().get("status", ""))
        return WebhookReply(response.status_code, status)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> WebhookPoster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
