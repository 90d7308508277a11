"""Health: component checks, machine resources and a 0-100 score.

Score = 100 × Σ(weight × credit) / Σ(weight) over the checks that are not disabled, where
credit is 1 for healthy, 0.5 for degraded and 0 for unhealthy. Weights (sum 100):

    store 20 · prefect 15 · workers 10 · webhook 5 · github 5 · linear 5 · slack 5 ·
    codegen 5 · cpu 5 · memory 10 · disk 10 · error_rate 5

An unconfigured integration (or no Prefect server, or no webhook receiver running) is
"disabled": it is left out of the sum rather than counted as a failure.

Bands: **unhealthy** when the score is below ALERT_HEALTH_SCORE (70) or the store (the one
critical component) is unhealthy; **degraded** when anything else is not healthy;
**healthy** otherwise. Resource thresholds: CPU above ALERT_CPU_PERCENT (80) is degraded,
above 95 unhealthy; memory above ALERT_MEMORY_PERCENT (85) degraded, above 95 unhealthy;
disk of the data directory above 90 % degraded, above 97 % unhealthy; workflow error rate
above ALERT_ERROR_RATE_PERCENT (10) degraded, above three times that unhealthy; a
component answering slower than ALERT_RESPONSE_TIME_MS (5000) is degraded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from contexten.config import AlertThresholds, Settings
from contexten.store.db import Store

ComponentStatus = Literal["healthy", "degraded", "unhealthy", "disabled"]
OverallStatus = Literal["healthy", "degraded", "unhealthy"]

WEIGHTS: dict[str, float] = {
    "store": 20,
    "prefect": 15,
    "workers": 10,
    "webhook": 5,
    "github": 5,
    "linear": 5,
    "slack": 5,
    "codegen": 5,
    "cpu": 5,
    "memory": 10,
    "disk": 10,
    "error_rate": 5,
}
CRITICAL_COMPONENTS = frozenset({"store"})
CREDIT: dict[str, float] = {"healthy": 1.0, "degraded": 0.5, "unhealthy": 0.0}
INTEGRATIONS = ("github", "linear", "slack", "codegen")

UNHEALTHY_CPU_PERCENT = 95.0
UNHEALTHY_MEMORY_PERCENT = 95.0
DEGRADED_DISK_PERCENT = 90.0
UNHEALTHY_DISK_PERCENT = 97.0
WEBHOOK_HEALTH_PATH = "/healthz"


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    name: str
    status: ComponentStatus
    detail: str = ""
    latency_ms: float | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "weight": WEIGHTS.get(self.name, 0),
            "data": dict(self.data),
        }


@dataclass(frozen=True, slots=True)
class Resources:
    cpu_percent: float
    memory_percent: float
    disk_percent: float
    disk_free_bytes: int
    disk_path: str
    open_connections: int | None  # this process's inet sockets; None when not permitted
    process_rss_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_percent": round(self.cpu_percent, 1),
            "memory_percent": round(self.memory_percent, 1),
            "disk_percent": round(self.disk_percent, 1),
            "disk_free_bytes": self.disk_free_bytes,
            "disk_path": self.disk_path,
            "open_connections": self.open_connections,
            "process_rss_bytes": self.process_rss_bytes,
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: OverallStatus
    score: float
    components: tuple[ComponentHealth, ...]
    resources: Resources | None
    problems: tuple[str, ...]
    checked_at: datetime

    @property
    def ok(self) -> bool:
        return self.status != "unhealthy"

    def component(self, name: str) -> ComponentHealth | None:
        return next((c for c in self.components if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "score": round(self.score, 1),
            "checked_at": self.checked_at.isoformat(),
            "problems": list(self.problems),
            "components": [c.to_dict() for c in self.components],
            "resources": self.resources.to_dict() if self.resources else None,
        }

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(component, status, latency, weight, detail) rows for a table."""
        return [
            (
                c.name,
                c.status,
                "" if c.latency_ms is None else f"{c.latency_ms:.0f} ms",
                f"{WEIGHTS.get(c.name, 0):g}",
                c.detail,
            )
            for c in self.components
        ]


# ----------------------------------------------------------------------------- pure scoring


def resource_components(resources: Resources, thresholds: AlertThresholds) -> list[ComponentHealth]:
    """CPU, memory and disk as scored components."""

    def grade(value: float, degraded: float, unhealthy: float) -> ComponentStatus:
        if value > unhealthy:
            return "unhealthy"
        if value > degraded:
            return "degraded"
        return "healthy"

    free_gb = resources.disk_free_bytes / 1e9
    return [
        ComponentHealth(
            "cpu",
            grade(resources.cpu_percent, thresholds.cpu_percent, UNHEALTHY_CPU_PERCENT),
            f"{resources.cpu_percent:.0f}% (threshold {thresholds.cpu_percent:g}%)",
            data={"percent": resources.cpu_percent},
        ),
        ComponentHealth(
            "memory",
            grade(resources.memory_percent, thresholds.memory_percent, UNHEALTHY_MEMORY_PERCENT),
            f"{resources.memory_percent:.0f}% (threshold {thresholds.memory_percent:g}%)",
            data={"percent": resources.memory_percent},
        ),
        ComponentHealth(
            "disk",
            grade(resources.disk_percent, DEGRADED_DISK_PERCENT, UNHEALTHY_DISK_PERCENT),
            f"{resources.disk_percent:.0f}% used, {free_gb:.1f} GB free at {resources.disk_path}",
            data={"percent": resources.disk_percent, "free_bytes": resources.disk_free_bytes},
        ),
    ]


def error_rate_component(
    error_rate_percent: float, finished_runs: int, rising: bool, thresholds: AlertThresholds
) -> ComponentHealth:
    if finished_runs == 0:
        return ComponentHealth("error_rate", "disabled", "no finished workflow runs yet")
    limit = thresholds.error_rate_percent
    status: ComponentStatus = "healthy"
    if error_rate_percent > min(100.0, 3 * limit):
        status = "unhealthy"
    elif error_rate_percent > limit or rising:
        status = "degraded"
    trend = ", rising" if rising else ""
    return ComponentHealth(
        "error_rate",
        status,
        f"{error_rate_percent:.1f}% of the last {finished_runs} runs failed{trend} "
        f"(threshold {limit:g}%)",
        data={"percent": error_rate_percent, "runs": finished_runs, "rising": rising},
    )


def apply_response_time(component: ComponentHealth, limit_ms: float) -> ComponentHealth:
    """A healthy component that answered slower than the threshold is degraded."""
    slow = component.latency_ms is not None and component.latency_ms > limit_ms
    if component.status != "healthy" or not slow:
        return component
    return replace(
        component,
        status="degraded",
        detail=f"{component.detail}; slow: {component.latency_ms:.0f} ms "
        f"(threshold {limit_ms:g} ms)".lstrip("; "),
    )


def score_components(components: Iterable[ComponentHealth]) -> float:
    total = 0.0
    earned = 0.0
    for c in components:
        if c.status == "disabled":
            continue
        weight = WEIGHTS.get(c.name, 0.0)
        total += weight
        earned += weight * CREDIT[c.status]
    return 100.0 * earned / total if total else 100.0


def evaluate(
    components: Sequence[ComponentHealth],
    resources: Resources | None,
    thresholds: AlertThresholds,
    *,
    checked_at: datetime,
) -> HealthReport:
    """The report for a set of component results: score, band and problems. Pure."""
    checks = [apply_response_time(c, thresholds.response_time_ms) for c in components]
    score = score_components(checks)
    problems = tuple(
        f"{c.name} {c.status}: {c.detail}" for c in checks if c.status in ("degraded", "unhealthy")
    )
    critical_down = any(c.name in CRITICAL_COMPONENTS and c.status == "unhealthy" for c in checks)
    status: OverallStatus
    if critical_down or score < thresholds.health_score:
        status = "unhealthy"
    elif problems:
        status = "degraded"
    else:
        status = "healthy"
    return HealthReport(status, score, tuple(checks), resources, problems, checked_at)


# ----------------------------------------------------------------------------- measuring


def measure_resources(data_dir: Path, *, cpu_interval: float = 0.2) -> Resources:
    """CPU over `cpu_interval` seconds, memory, disk of the data directory, our sockets."""
    import psutil

    path = data_dir
    while not path.exists() and path != path.parent:
        path = path.parent
    disk = psutil.disk_usage(str(path))
    process = psutil.Process()
    try:
        connections: int | None = len(process.net_connections(kind="inet"))
    except (psutil.AccessDenied, OSError):
        connections = None
    return Resources(
        cpu_percent=float(psutil.cpu_percent(interval=cpu_interval)),
        memory_percent=float(psutil.virtual_memory().percent),
        disk_percent=float(disk.percent),
        disk_free_bytes=int(disk.free),
        disk_path=str(path),
        open_connections=connections,
        process_rss_bytes=int(process.memory_info().rss),
    )


def check_store(store: Store) -> ComponentHealth:
    """Write a probe row and read it back."""
    from contexten.store.state import StateKind, read_state, write_state

    nonce = uuid.uuid4().hex
    start = time.perf_counter()
    try:
        value = {"nonce": nonce, "at": datetime.now(UTC).isoformat()}
        write_state(store, StateKind.HEALTH, "probe", value)
        read = (read_state(store, StateKind.HEALTH, "probe") or {}).get("nonce")
    except Exception as exc:
        return ComponentHealth(
            "store", "unhealthy", f"{store.safe_url}: {type(exc).__name__}: {exc}"[:300]
        )
    latency = (time.perf_counter() - start) * 1000
    if read != nonce:
        return ComponentHealth("store", "unhealthy", "wrote a probe but read back another value")
    return ComponentHealth("store", "healthy", f"read+write ok ({store.safe_url})", latency)


async def check_http(
    name: str, url: str, *, timeout: float, headers: Mapping[str, str] | None = None
) -> ComponentHealth:
    """GET a health URL: 200 is healthy; anything else, or no answer, is unhealthy."""
    from contexten.integrations.probe import probe

    result = await probe(url, timeout=timeout, headers=headers)
    if result.status_code is None:
        return ComponentHealth(name, "unhealthy", f"{url}: {result.error}"[:300])
    if result.status_code != 200:
        return ComponentHealth(name, "unhealthy", f"{url} answered HTTP {result.status_code}")
    return ComponentHealth(name, "healthy", f"{url} ok", result.latency_ms)


def prefect_api_url(settings: Settings) -> str | None:
    """PREFECT_API_URL, else the URL a `contexten server` recorded (even if it is down now)."""
    if settings.prefect_api_url:
        return settings.prefect_api_url
    from contexten.store.server_record import read_server_record

    record = read_server_record(settings)
    return str(record["api_url"]) if record else None


def server_components(settings: Settings) -> dict[str, str]:
    """Components of a running `contexten server` and their state ("running"/"dead"), from
    the components.json it keeps; empty when no server runs."""
    import json

    from contexten.store.server_record import read_server_record

    record = read_server_record(settings)
    if record is None:
        return {}
    try:
        import psutil

        if not psutil.pid_exists(int(record.get("pid", 0))):
            return {}
        data = json.loads((settings.data_dir / "components.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}


async def check_prefect(settings: Settings, *, timeout: float) -> ComponentHealth:
    url = prefect_api_url(settings)
    if url is None:
        return ComponentHealth(
            "prefect", "disabled", "no Prefect server configured; workflows run in-process"
        )
    headers = {}
    if settings.prefect_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.prefect_api_key.get_secret_value()}"
    result = await check_http(
        "prefect", f"{url.rstrip('/')}/health", timeout=timeout, headers=headers
    )
    return replace(result, data={"api_url": url})


async def check_webhook(settings: Settings, *, timeout: float, expected: bool) -> ComponentHealth:
    """The webhook receiver; not running is "disabled" unless a server says it should be."""
    from contexten.integrations.probe import probe

    # a receiver bound to every interface answers on loopback
    wildcard = settings.webhook_host in ("0.0.0.0", "::", "")  # noqa: S104
    host = "127.0.0.1" if wildcard else settings.webhook_host
    url = f"http://{host}:{settings.webhook_port}{WEBHOOK_HEALTH_PATH}"
    result = await probe(url, timeout=timeout)
    if result.refused:
        if not expected:
            return ComponentHealth("webhook", "disabled", f"not running ({url})")
        detail = result.error.split(": ", 1)[-1]
        return ComponentHealth("webhook", "unhealthy", f"{url}: not running ({detail})"[:300])
    if result.status_code is None:
        return ComponentHealth("webhook", "unhealthy", f"{url}: {result.error}"[:300])
    if result.status_code != 200:
        return ComponentHealth("webhook", "unhealthy", f"{url} answered HTTP {result.status_code}")
    return ComponentHealth("webhook", "healthy", f"{url} ok", result.latency_ms)


async def check_workers(
    control: Any, settings: Settings, *, now: datetime | None = None
) -> ComponentHealth:
    """Late scheduled runs and runs stuck in Running (or Cancelling, where a dead worker
    leaves them) past their timeout."""
    from contexten.monitoring.flow_runs import find_late, find_stuck

    moment = now or datetime.now(UTC)
    start = time.perf_counter()
    try:
        running = await control.list_runs(["RUNNING", "CANCELLING"])
        waiting = await control.list_runs(["SCHEDULED", "PENDING"])
    except Exception as exc:
        return ComponentHealth("workers", "unhealthy", f"cannot list flow runs: {exc}"[:300])
    latency = (time.perf_counter() - start) * 1000
    stuck = find_stuck(running, moment, default_timeout_seconds=settings.workflow_default_timeout)
    late = find_late(waiting, moment)
    data = {
        "running": len(running),
        "stuck": [r.id for r in stuck],
        "late": [r.id for r in late],
    }
    if not stuck and not late:
        return ComponentHealth(
            "workers", "healthy", f"{len(running)} running, none late or stuck", latency, data
        )
    parts = []
    if stuck:
        parts.append(f"{len(stuck)} stuck in Running past their timeout")
    if late:
        parts.append(f"{len(late)} scheduled runs late (is a runner serving the deployments?)")
    return ComponentHealth("workers", "degraded", "; ".join(parts), latency, data)


Checkable = Any  # an integration client with `async check() -> CheckResult`
ClientFactory = Callable[[str], Awaitable[Checkable | None]]

_CHECK_STATUS: dict[str, ComponentStatus] = {
    "ok": "healthy",
    "degraded": "degraded",
    "down": "unhealthy",
    "disabled": "disabled",
}


async def check_integration(name: str, client: Checkable) -> ComponentHealth:
    """Map a client's CheckResult (reachable, authenticated, rate limit left)."""
    start = time.perf_counter()
    try:
        result = await client.check()
    except Exception as exc:
        return ComponentHealth(name, "unhealthy", f"{type(exc).__name__}: {exc}"[:300])
    latency = result.latency_ms
    if latency is None:
        latency = (time.perf_counter() - start) * 1000
    data: dict[str, Any] = {}
    if result.rate_limit_remaining is not None:
        data["rate_limit_remaining"] = result.rate_limit_remaining
    if result.rate_limit_reset_at is not None:
        data["rate_limit_reset_at"] = result.rate_limit_reset_at
    status = _CHECK_STATUS.get(result.status, "unhealthy")
    return ComponentHealth(name, status, result.detail, latency, data)


# ----------------------------------------------------------------------------- the checker


@dataclass
class HealthChecker:
    """Runs every check concurrently, each bounded by a timeout, and scores the result.

    `clients` builds an integration client by name (None when unconfigured); `flow_runs`
    is a FlowRunControl (default: Prefect's API when a server is configured). Integrations
    disabled by the recovery manager, or behind an open circuit, are reported without a call.
    """

    settings: Settings
    store: Store
    clients: ClientFactory | None = None
    flow_runs: Any = None
    check_integrations: bool = True
    expect_webhook: bool = False
    cpu_interval: float = 0.2
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    clock: Callable[[], float] = time.time  # for the circuit breakers
    _server: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    @property
    def timeout(self) -> float:
        return max(1.0, min(15.0, self.settings.http_timeout_seconds))

    async def run(self) -> HealthReport:
        self._server = await asyncio.to_thread(server_components, self.settings)
        expect_webhook = self.expect_webhook or "webhook" in self._server
        checks: list[Awaitable[ComponentHealth | list[ComponentHealth]]] = [
            asyncio.to_thread(check_store, self.store),
            self._prefect_and_workers(),
            check_webhook(self.settings, timeout=self.timeout, expected=expect_webhook),
            self._error_rate(),
        ]
        if self.check_integrations:
            checks.extend(self._integration(name) for name in INTEGRATIONS)
        resources_task = asyncio.to_thread(
            measure_resources, self.settings.data_dir, cpu_interval=self.cpu_interval
        )
        results = await asyncio.gather(
            *(self._bounded(c) for c in checks), resources_task, return_exceptions=True
        )
        components: list[ComponentHealth] = []
        for item in results[:-1]:
            if isinstance(item, list):
                components.extend(item)
            elif isinstance(item, ComponentHealth):
                components.append(item)
            elif isinstance(item, BaseException):
                components.append(ComponentHealth("unknown", "unhealthy", repr(item)[:300]))
        measured = results[-1]
        resources = measured if isinstance(measured, Resources) else None
        if resources is not None:
            components.extend(resource_components(resources, self.settings.alert_thresholds))
        order = {name: i for i, name in enumerate(WEIGHTS)}
        components.sort(key=lambda c: order.get(c.name, len(order)))
        return evaluate(
            components, resources, self.settings.alert_thresholds, checked_at=self.now()
        )

    async def _bounded(
        self, check: Awaitable[ComponentHealth | list[ComponentHealth]]
    ) -> ComponentHealth | list[ComponentHealth]:
        try:
            return await asyncio.wait_for(check, timeout=self.timeout * 2)
        except TimeoutError:
            return ComponentHealth("unknown", "unhealthy", "check timed out")

    async def _prefect_and_workers(self) -> list[ComponentHealth]:
        prefect = await check_prefect(self.settings, timeout=self.timeout)
        if prefect.status != "healthy" and prefect.status != "degraded":
            detail = (
                "Prefect server not configured"
                if prefect.status == "disabled"
                else ("Prefect API unreachable")
            )
            status: ComponentStatus = "disabled"
            return [prefect, ComponentHealth("workers", status, detail)]
        if self._server.get("runner") == "dead":
            return [
                prefect,
                ComponentHealth(
                    "workers", "unhealthy", "the runner serving the deployments is dead"
                ),
            ]
        control = self.flow_runs
        if control is None:
            from contexten.monitoring.flow_runs import PrefectFlowRunControl

            key = self.settings.prefect_api_key
            control = PrefectFlowRunControl(
                str(prefect.data["api_url"]), key.get_secret_value() if key else None
            )
        workers = await check_workers(control, self.settings, now=self.now())
        return [prefect, workers]

    async def _error_rate(self) -> ComponentHealth:
        from contexten.monitoring.metrics import compute_metrics

        metrics = await asyncio.to_thread(compute_metrics, self.store, self.settings)
        return error_rate_component(
            metrics.error_rate_percent,
            metrics.total_workflows,
            metrics.error_rate_trend.rising,
            self.settings.alert_thresholds,
        )

    async def _integration(self, name: str) -> ComponentHealth:
        from contexten.integrations.circuits import integration_gate

        if not self.settings.enabled_integrations().get(name, False):
            return ComponentHealth(name, "disabled", "not configured")
        blocked = await asyncio.to_thread(
            integration_gate, self.store, self.settings, name, now=self.clock()
        )
        if blocked is not None:
            return ComponentHealth(name, "unhealthy", blocked)
        owned = self.clients is None  # a client we built ourselves is ours to close
        client = None
        try:
            client = await self._client(name)
            if client is None:
                return ComponentHealth(name, "disabled", "not configured")
            result = await check_integration(name, client)
        except Exception as exc:
            result = ComponentHealth(name, "unhealthy", f"{type(exc).__name__}: {exc}"[:300])
        finally:
            if client is not None and owned:
                await _close(client)
        from contexten.integrations.circuits import record_integration_result

        await asyncio.to_thread(
            record_integration_result,
            self.store,
            name,
            result.status != "unhealthy",
            result.detail,
            now=self.clock(),
        )
        return result

    async def _client(self, name: str) -> Checkable | None:
        if self.clients is not None:
            return await self.clients(name)
        from contexten.monitoring.clients import build_client

        return build_client(name, self.settings, self.store)


async def _close(client: Any) -> None:
    close = getattr(client, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):  # closing must not fail the health check
            await close()
