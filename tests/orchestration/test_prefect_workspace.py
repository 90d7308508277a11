"""PREFECT_WORKSPACE (with PREFECT_API_KEY) points contexten at that Prefect Cloud workspace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from contexten.config import Settings
from contexten.orchestration import PrefectOrchestrator
from contexten.orchestration.prefect_server import discover_api_url

ACCOUNT = "0b6a2f3e-1111-4a5b-9c8d-000000000001"
WORKSPACE = "7d3e9c1a-2222-4f6e-8a9b-000000000002"
KEY = "pnu_test_key_for_the_fake_cloud"


@pytest.fixture
def cloud() -> Iterator[str]:
    """A stand-in for api.prefect.cloud: /health of the workspace answers with the key."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            wanted = f"/api/accounts/{ACCOUNT}/workspaces/{WORKSPACE}/health"
            authorized = self.headers.get("Authorization") == f"Bearer {KEY}"
            status = 200 if self.path == wanted and authorized else 401
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"true" if status == 200 else b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_workspace_becomes_the_api_url_and_is_used(cloud: str) -> None:
    settings = Settings(
        prefect_api_url=None,  # the suite's environment points elsewhere
        prefect_workspace=f"{ACCOUNT}/{WORKSPACE}",
        prefect_api_key=KEY,
        prefect_cloud_api_url=cloud,
    )
    expected = f"{cloud}/accounts/{ACCOUNT}/workspaces/{WORKSPACE}"
    assert settings.prefect_workspace_api_url == expected
    assert discover_api_url(settings) == expected
    assert settings.validate() == []
    orchestrator = PrefectOrchestrator(settings=settings)
    assert orchestrator.prefect_api_url(refresh=True) == expected  # healthy with the key
    wrong = settings.model_copy(
        update={"prefect_api_key": Settings(prefect_api_key="x").prefect_api_key}
    )
    assert PrefectOrchestrator(settings=wrong).prefect_api_url(refresh=True) is None


def test_explicit_api_url_wins_and_bad_workspaces_are_problems() -> None:
    both = Settings(
        prefect_api_url="http://127.0.0.1:4200/api",
        prefect_workspace=f"{ACCOUNT}/{WORKSPACE}",
        prefect_api_key=KEY,
    )
    assert discover_api_url(both) == "http://127.0.0.1:4200/api"
    bad = Settings(prefect_workspace="my-team/prod", prefect_api_key=KEY)
    assert bad.prefect_workspace_api_url is None
    assert any("PREFECT_WORKSPACE='my-team/prod' must be" in p for p in bad.validate())
    keyless = Settings(prefect_api_url=None, prefect_workspace=f"{ACCOUNT}/{WORKSPACE}")
    assert "PREFECT_WORKSPACE is set but PREFECT_API_KEY is missing" in keyless.validate()
    assert discover_api_url(keyless) != keyless.prefect_workspace_api_url
