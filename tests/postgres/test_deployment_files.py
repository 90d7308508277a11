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
        env = services[name]["environment"]
        assert "PREFECT_SERVER_DATABASE_CONNECTION_URL" not in env  # Prefect builds it
        assert env["PREFECT_SERVER_DATABASE_DRIVER"] == "postgresql+asyncpg"
        assert (env["PREFECT_SERVER_DATABASE_HOST"], env["PREFECT_SERVER_DATABASE_NAME"]) == (
            "postgres",
            "prefect",
        )
        assert _required(env["PREFECT_SERVER_DATABASE_PASSWORD"])
    for name in CONTEXTEN_SERVICES:
        env = services[name]["environment"]
        assert env["DATABASE_URL"] == "postgresql+psycopg://contexten@postgres:5432/contexten"
        assert _required(env["DATABASE_PASSWORD"])  # escaped into the URL by contexten
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


def _required(value: str) -> bool:
    """`${POSTGRES_PASSWORD:?…}`: compose refuses to start without it (no known default)."""
    return value.startswith("${POSTGRES_PASSWORD:?") and value.endswith("}")


def test_compose_requires_the_postgres_password_and_never_writes_one() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "POSTGRES_PASSWORD:-" not in text  # no fallback password
    assert not re.search(r"://[^@/\s]+:[^@/\s]+@", text)  # no password inside a URL
    assert _required(_compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"])


def test_compose_workers_outlast_the_longest_workflow_and_send_heartbeats() -> None:
    from contexten.orchestration.workflows import REGISTRY

    worker = _compose()["services"]["worker"]
    grace = worker["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > max(
        s.timeout_seconds for s in REGISTRY.values()
    )
    assert int(worker["environment"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]) >= 30


def test_local_script_gives_each_worker_its_own_health_port() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    assert "PREFECT_WORKER_WEBSERVER_PORT=$((WORKER_HEALTH_PORT + i - 1))" in text
    assert "--with-healthcheck" in text


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
