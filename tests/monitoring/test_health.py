"""Health: scoring bands, resource thresholds, component checks against local servers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from contexten.config import AlertThresholds, Settings
from contexten.integrations.circuits import disable_integration, load_breaker, save_breaker
from contexten.integrations.interface import CheckResult
from contexten.monitoring.flow_runs import FlowRunInfo, find_late, find_stuck
from contexten.monitoring.health import (
    WEIGHTS,
    ComponentHealth,
    HealthChecker,
    Resources,
    check_prefect,
    check_store,
    check_webhook,
    check_workers,
    error_rate_component,
    evaluate,
    measure_resources,
    resource_components,
)
from contexten.recovery.policy import CircuitBreaker
from contexten.store.db import Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = AlertThresholds()


def test_weights_sum_to_100() -> None:
    assert sum(WEIGHTS.values()) == 100


def comp(name: str, status: str, latency: float | None = None) -> ComponentHealth:
    return ComponentHealth(name, status, "x", latency)  # type: ignore[arg-type]


def test_disabled_components_are_left_out_of_the_score() -> None:
    checks = [comp("store", "healthy"), comp("github", "disabled"), comp("prefect", "disabled")]
    report = evaluate(checks, None, T, checked_at=NOW)
    assert report.score == 100.0
    assert report.status == "healthy"
    assert report.problems == ()


def test_bands() -> None:
    # prefect down (15 of 100): 85 -> degraded
    healthy = [comp(n, "healthy") for n in WEIGHTS]
    down = [c if c.name != "prefect" else comp("prefect", "unhealthy") for c in healthy]
    report = evaluate(down, None, T, checked_at=NOW)
    assert report.score == pytest.approx(85.0)
    assert report.status == "degraded" and report.ok
    assert report.problems == ("prefect unhealthy: x",)
    # prefect, workers and a degraded memory (15 + 10 + 5): 70 is not below 70
    worse = [comp(c.name, "unhealthy") if c.name in ("prefect", "workers") else c for c in healthy]
    worse = [comp("memory", "degraded") if c.name == "memory" else c for c in worse]
    assert evaluate(worse, None, T, checked_at=NOW).score == pytest.approx(70.0)
    assert evaluate(worse, None, T, checked_at=NOW).status == "degraded"
    worse = [comp("disk", "degraded") if c.name == "disk" else c for c in worse]
    assert evaluate(worse, None, T, checked_at=NOW).status == "unhealthy"
    # the store is critical: down is unhealthy whatever the score
    store_down = [comp("store", "unhealthy") if c.name == "store" else c for c in healthy]
    report = evaluate(store_down, None, T, checked_at=NOW)
    assert report.score == pytest.approx(80.0)
    assert report.status == "unhealthy" and not report.ok


def test_threshold_from_config_changes_the_band() -> None:
    checks = [comp(n, "healthy") for n in WEIGHTS]
    checks = [comp("prefect", "unhealthy") if c.name == "prefect" else c for c in checks]
    strict = AlertThresholds(health_score=90)
    assert evaluate(checks, None, strict, checked_at=NOW).status == "unhealthy"


def test_slow_component_is_degraded() -> None:
    report = evaluate([comp("github", "healthy", 6000.0)], None, T, checked_at=NOW)
    assert report.components[0].status == "degraded"
    assert "slow: 6000 ms" in report.components[0].detail
    fast = evaluate([comp("github", "healthy", 10.0)], None, T, checked_at=NOW)
    assert fast.components[0].status == "healthy"


def resources(cpu: float = 10, memory: float = 10, disk: float = 10) -> Resources:
    return Resources(cpu, memory, disk, 10**10, "/data", 3, 10**8)


def test_resource_thresholds() -> None:
    by_name = {c.name: c.status for c in resource_components(resources(), T)}
    assert by_name == {"cpu": "healthy", "memory": "healthy", "disk": "healthy"}
    by_name = {c.name: c.status for c in resource_components(resources(81, 86, 91), T)}
    assert by_name == {"cpu": "degraded", "memory": "degraded", "disk": "degraded"}
    by_name = {c.name: c.status for c in resource_components(resources(96, 96, 98), T)}
    assert by_name == {"cpu": "unhealthy", "memory": "unhealthy", "disk": "unhealthy"}
    lenient = AlertThresholds(cpu_percent=90)
    assert resource_components(resources(cpu=85), lenient)[0].status == "healthy"


def test_error_rate_component() -> None:
    assert error_rate_component(0, 0, False, T).status == "disabled"
    assert error_rate_component(5, 100, False, T).status == "healthy"
    assert error_rate_component(5, 100, True, T).status == "degraded"
    assert error_rate_component(12, 100, False, T).status == "degraded"
    assert error_rate_component(31, 100, False, T).status == "unhealthy"


def test_measure_resources_reads_the_machine(tmp_path: Path) -> None:
    found = measure_resources(tmp_path / "not" / "yet", cpu_interval=0.0)
    assert 0 <= found.cpu_percent <= 100
    assert 0 < found.memory_percent <= 100
    assert found.disk_free_bytes > 0
    assert found.disk_path == str(tmp_path)  # nearest existing parent
    assert found.process_rss_bytes > 0


def test_store_check_reads_and_writes(store: Store, tmp_path: Path) -> None:
    result = check_store(store)
    assert result.status == "healthy" and result.latency_ms is not None
    unmigrated = Store(f"sqlite:///{tmp_path}/empty.db")  # no tables
    assert check_store(unmigrated).status == "unhealthy"
    unmigrated.dispose()


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(True).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Handler]]]:
    handler = type("H", (_Handler,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


async def test_prefect_check(http_server: Any, tmp_path: Path) -> None:
    server, handler = http_server
    none = Settings(contexten_home=tmp_path, prefect_api_url=None)
    assert (await check_prefect(none, timeout=2)).status == "disabled"
    ok = Settings(contexten_home=tmp_path, prefect_api_url=f"{_url(server)}/api")
    assert (await check_prefect(ok, timeout=2)).status == "healthy"
    handler.status = 503
    assert (await check_prefect(ok, timeout=2)).status == "unhealthy"
    # a server recorded by `contexten server` that is gone now is unhealthy, not disabled
    (tmp_path / "server.json").write_text(json.dumps({"api_url": "http://127.0.0.1:9/api"}))
    recorded = await check_prefect(none, timeout=2)
    assert recorded.status == "unhealthy"


async def test_webhook_check(http_server: Any, tmp_path: Path) -> None:
    server, _ = http_server
    port = server.server_address[1]
    up = Settings(contexten_home=tmp_path, webhook_host="0.0.0.0", webhook_port=port)
    assert (await check_webhook(up, timeout=2, expected=False)).status == "healthy"
    down = Settings(contexten_home=tmp_path, webhook_port=9)
    assert (await check_webhook(down, timeout=2, expected=False)).status == "disabled"
    assert (await check_webhook(down, timeout=2, expected=True)).status == "unhealthy"


def run(
    rid: str,
    state: str,
    *,
    started: timedelta | None = None,
    expected: timedelta | None = None,
    flow: str = "health-check",
    name: str = "Running",
) -> FlowRunInfo:
    return FlowRunInfo(
        id=rid,
        name=rid,
        flow_name=flow,
        state_type=state,
        state_name=name,
        deployment_id="d1",
        start_time=NOW - started if started else None,
        expected_start_time=NOW - expected if expected else None,
    )


def test_find_stuck_uses_each_type_timeout() -> None:
    runs = [
        run("a", "RUNNING", started=timedelta(seconds=200)),  # health-check timeout 300
        run("b", "RUNNING", started=timedelta(seconds=400)),  # within grace (300 + 60)
        run("c", "RUNNING", started=timedelta(seconds=361)),
        run("d", "RUNNING", started=timedelta(hours=2), flow="failure-analysis"),  # 1800
        run("e", "RUNNING", started=timedelta(minutes=20), flow="failure-analysis"),
        run("f", "RUNNING", started=timedelta(minutes=59), flow="unknown-flow"),  # default
        run("g", "SCHEDULED", started=timedelta(hours=5)),
    ]
    stuck = find_stuck(runs, NOW, default_timeout_seconds=3600)
    assert [r.id for r in stuck] == ["b", "c", "d"]


def test_find_late() -> None:
    runs = [
        run("a", "SCHEDULED", expected=timedelta(minutes=10), name="Scheduled"),
        run("b", "SCHEDULED", expected=timedelta(minutes=1), name="Scheduled"),
        run("c", "SCHEDULED", expected=timedelta(seconds=1), name="Late"),
        run("d", "RUNNING", expected=timedelta(hours=1)),
    ]
    assert [r.id for r in find_late(runs, NOW)] == ["a", "c"]


class FakeFlowRuns:
    def __init__(self, runs: list[FlowRunInfo]) -> None:
        self.runs = runs

    async def list_runs(self, state_types: list[str], *, limit: int = 200) -> list[FlowRunInfo]:
        return [r for r in self.runs if r.state_type in state_types]


async def test_workers_check(settings: Settings) -> None:
    fine = FakeFlowRuns([run("a", "RUNNING", started=timedelta(seconds=10))])
    assert (await check_workers(fine, settings, now=NOW)).status == "healthy"
    stuck = FakeFlowRuns([run("b", "RUNNING", started=timedelta(hours=1))])
    result = await check_workers(stuck, settings, now=NOW)
    assert result.status == "degraded"
    assert result.data["stuck"] == ["b"]
    assert "stuck in Running" in result.detail


class FakeClient:
    def __init__(self, results: list[CheckResult]) -> None:
        self.results = results
        self.calls = 0

    async def check(self) -> CheckResult:
        self.calls += 1
        return self.results[min(self.calls - 1, len(self.results) - 1)]


async def test_checker_end_to_end_with_fake_integrations(store: Store, tmp_path: Path) -> None:
    settings = Settings(
        contexten_home=tmp_path / "home",
        github_token="ghp_" + "a" * 36,
        linear_api_key=None,
        slack_webhook_url=None,
        slack_bot_token=None,
        codegen_token=None,
        webhook_port=9,
        prefect_api_url=None,
    )
    github = FakeClient(
        [CheckResult("github", "ok", 12.0, "authenticated", rate_limit_remaining=4999)]
    )

    async def clients(name: str) -> Any:
        return {"github": github}.get(name)

    checker = HealthChecker(settings, store, clients=clients, cpu_interval=0.0, now=lambda: NOW)
    report = await checker.run()
    by_name = {c.name: c for c in report.components}
    assert by_name["github"].status == "healthy"
    assert by_name["github"].data["rate_limit_remaining"] == 4999
    assert by_name["linear"].status == "disabled"
    assert by_name["prefect"].status == "disabled"
    assert by_name["webhook"].status == "disabled"
    assert by_name["store"].status == "healthy"
    assert {"cpu", "memory", "disk"} <= set(by_name)
    assert report.resources is not None
    assert github.calls == 1
    data = report.to_dict()
    assert data["components"][0]["name"] == "store"
    assert json.loads(json.dumps(data))["status"] in ("healthy", "degraded", "unhealthy")


async def test_checker_respects_disabled_integration_and_breaker(
    store: Store, tmp_path: Path
) -> None:
    settings = Settings(contexten_home=tmp_path / "home", github_token="ghp_" + "b" * 36)
    github = FakeClient([CheckResult("github", "down", None, "HTTP 503")])

    async def clients(name: str) -> Any:
        return github if name == "github" else None

    checker = HealthChecker(settings, store, clients=clients, cpu_interval=0.0)
    for _ in range(3):
        report = await checker.run()
        assert report.component("github").status == "unhealthy"  # type: ignore[union-attr]
    assert github.calls == 3
    assert load_breaker(store, "github").state == "open"
    # the circuit is open: the next check does not call the service
    report = await checker.run()
    assert github.calls == 3
    assert "circuit open" in report.component("github").detail  # type: ignore[union-attr]
    # disabled by a configuration reset: reported unhealthy, not called
    disable_integration(store, settings, "github", "credentials rejected (401)")
    report = await checker.run()
    assert github.calls == 3
    assert "disabled since" in report.component("github").detail  # type: ignore[union-attr]
    # a new token re-enables it: the next check calls again
    github.results = [CheckResult("github", "ok", 5.0, "ok")]
    save_breaker(store, "github", CircuitBreaker())
    new_token = Settings(contexten_home=tmp_path / "home", github_token="ghp_" + "c" * 36)
    report = await HealthChecker(new_token, store, clients=clients, cpu_interval=0.0).run()
    assert report.component("github").status == "healthy"  # type: ignore[union-attr]
    assert github.calls == 4


async def test_components_of_a_running_server(http_server: Any, tmp_path: Path) -> None:
    """With `contexten server` running, its webhook is expected and a dead runner is a failure."""
    import os

    server, _ = http_server
    home = tmp_path / "home"
    home.mkdir()
    record = {"api_url": f"{_url(server)}/api", "ui_url": _url(server), "pid": os.getpid()}
    (home / "server.json").write_text(json.dumps(record))
    (home / "components.json").write_text(
        json.dumps({"prefect-server": "running", "runner": "dead", "webhook": "running"})
    )
    settings = Settings(contexten_home=home, prefect_api_url=None, webhook_port=9)
    store = Store(settings.effective_database_url)
    store.migrate()
    report = await HealthChecker(settings, store, check_integrations=False, cpu_interval=0.0).run()
    by_name = {c.name: c for c in report.components}
    assert by_name["prefect"].status == "healthy"
    assert by_name["workers"].status == "unhealthy"
    assert "runner" in by_name["workers"].detail
    assert by_name["webhook"].status == "unhealthy"  # expected, but nothing on port 9
    # the server process is gone: its leftover files mean nothing
    record["pid"] = 2**22 + 12345
    (home / "server.json").write_text(json.dumps(record))
    report = await HealthChecker(settings, store, check_integrations=False, cpu_interval=0.0).run()
    assert report.component("webhook").status == "disabled"  # type: ignore[union-attr]
    store.dispose()
