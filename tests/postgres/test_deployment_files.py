"""docker-compose.yml and scripts/distributed-local.sh agree with the code they start
(no PostgreSQL needed): probes hit endpoints that exist, commands and URLs fit together,
no credential is written into the file."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from contexten.config import Settings
from contexten.events.receiver import create_app
from contexten.store.db import Store

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
SCRIPT = REPO / "scripts" / "distributed-local.sh"
CONTEXTEN_SERVICES = ("contexten-init", "worker", "receiver")
CREDENTIALS = (
    "GITHUB_TOKEN",
    "GITHUB_WEBHOOK_SECRET",
    "LINEAR_API_KEY",
    "SLACK_WEBHOOK_URL",
    "CODEGEN_TOKEN",
)


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _command(service: dict[str, Any]) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_compose_wires_every_component_to_postgres_and_prefect() -> None:
    services = _compose()["services"]
    assert {"postgres", "prefect-migrate", "prefect-server", *CONTEXTEN_SERVICES} <= set(services)
    for name in ("prefect-migrate", "prefect-server"):
        url = services[name]["environment"]["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
        assert url.startswith("postgresql+asyncpg://") and url.endswith("@postgres:5432/prefect")
    for name in CONTEXTEN_SERVICES:
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["DATABASE_URL"].endswith("@postgres:5432/contexten")
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        for credential in CREDENTIALS:  # passed through from the shell, never written here
            assert env.get(credential) is None, credential
    assert "prefect server database upgrade -y" in _command(services["prefect-migrate"])
    assert "initialize --work-pool" in _command(services["contexten-init"])
    worker = _command(services["worker"])
    assert re.search(r"prefect worker start --pool \S+ --type process --limit", worker)
    assert services["worker"]["depends_on"]["contexten-init"] == {
        "condition": "service_completed_successfully"
    }
    assert services["contexten-init"]["depends_on"]["prefect-server"] == {
        "condition": "service_healthy"
    }


def test_compose_probes_hit_endpoints_the_receiver_serves(tmp_path: Path) -> None:
    services = _compose()["services"]
    probe = " ".join(services["receiver"]["healthcheck"]["test"])
    assert "/readyz" in probe
    store = Store(f"sqlite:///{tmp_path / 'probe.db'}")
    try:
        settings = Settings(github_webhook_secret=SecretStr("s"), contexten_home=tmp_path)
        app = create_app(settings, store)
        paths = {getattr(route, "path", "") for route in app.router.routes}
    finally:
        store.dispose()
    assert {"/webhook", "/healthz", "/readyz"} <= paths
    assert "/api/health" in " ".join(services["prefect-server"]["healthcheck"]["test"])


def test_local_script_is_valid_bash_and_rejects_unknown_arguments() -> None:
    assert os.access(SCRIPT, os.X_OK)
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    result = subprocess.run(
        ["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "unknown argument '--bogus'" in result.stderr
