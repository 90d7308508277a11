"""The recovery manager's strategies with in-memory fakes (sandbox tests are separate)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from contexten.config import Settings
from contexten.integrations.circuits import disabled_entry
from contexten.integrations.interface import CIProviderError, ErrorReason
from contexten.monitoring.alerts import AlertManager, AlertView
from contexten.monitoring.flow_runs import FlowRunInfo
from contexten.monitoring.health import ComponentHealth
from contexten.monitoring.metrics import compute_metrics
from contexten.recovery.cleanup import clean_temp_files
from contexten.recovery.failures import Failure
from contexten.recovery.last_known_good import save_last_known_good
from contexten.recovery.manager import RecoveryClients, RecoveryManager, confirm_recovered
from contexten.recovery.policy import FailureCategory, RecoveryStrategy
from contexten.store.db import Store
from contexten.store.models import RecoveryRecord
from contexten.store.recoveries import failed_recoveries

C = FailureCategory
S = RecoveryStrategy


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make(store: Store, settings: Settings, **kwargs: Any) -> tuple[RecoveryManager, Sleeps]:
    sleeps = Sleeps()
    kwargs.setdefault("clock", lambda: 1_000_000.0)
    return RecoveryManager(settings, store, sleep=sleeps, **kwargs), sleeps


def flaky(failures: list[BaseException]) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    calls = [0]

    async def op() -> str:
        calls[0] += 1
        if failures:
            raise failures.pop(0)
        return "ok"

    return op, calls


def records(store: Store) -> list[RecoveryRecord]:
    with store.session() as s:
        return list(s.scalars(select(RecoveryRecord).order_by(RecoveryRecord.id)).all())


async def test_retry_with_backoff_until_the_operation_works(
    store: Store, settings: Settings
) -> None:
    op, calls = flaky([httpx.ConnectError("refused"), httpx.ConnectError("refused")])
    manager, sleeps = make(store, settings)
    failure = Failure.from_exception(httpx.ConnectError("refused"), key="net", operation=op)
    assert failure.category is C.NETWORK
    report = await manager.recover(failure)
    assert report.outcome == "succeeded"
    assert calls[0] == 3
    assert sleeps.calls == [2.0, 4.0, 8.0]
    [row] = records(store)
    assert row.outcome == "succeeded" and row.strategy == "retry_with_backoff"
    assert row.finished_at is not None and row.failure_seen_at is not None
    assert row.detail["attempts"][0]["detail"] == "attempt 3 worked"


async def test_auth_error_is_not_retried(store: Store, settings: Settings) -> None:
    revoked = CIProviderError("bad credentials", reason=ErrorReason.AUTH, service="github")
    op, calls = flaky([revoked] * 5)
    manager, _ = make(store, settings)
    failure = Failure(key="op", category=C.NETWORK, operation=op)
    report = await manager.recover(failure)
    assert report.outcome == "failed"
    assert calls[0] == 1
    assert "auth, not retried" in report.attempts[0].detail


async def test_long_rate_limit_is_deferred_not_slept(store: Store, settings: Settings) -> None:
    op, calls = flaky([])
    manager, sleeps = make(store, settings, max_wait_seconds=60)
    failure = Failure(
        key="gh",
        category=C.RATE_LIMIT,
        component="github",
        retry_at=1_000_000.0 + 3600,
        operation=op,
    )
    report = await manager.recover(failure)
    assert report.outcome == "skipped"
    assert calls[0] == 0 and sleeps.calls == []
    # a short one is waited for
    short = Failure(key="gh2", category=C.RATE_LIMIT, retry_at=1_000_000.0 + 30, operation=op)
    assert (await manager.recover(short)).outcome == "succeeded"
    assert sleeps.calls == [30.0]


async def test_escalation_after_threshold(store: Store, tmp_path: Path) -> None:
    settings = Settings(contexten_home=tmp_path / "h", escalation_threshold=2)
    sink_events: list[tuple[str, str]] = []

    class Sink:
        async def send(self, alert: AlertView, event: str) -> str:
            sink_events.append((alert.key, event))
            return "ok"

    alerts = AlertManager(store, settings, sinks={"slack": Sink(), "linear": Sink()})
    op, _ = flaky([httpx.ConnectError("x")] * 100)
    manager, _ = make(store, settings, alerts=alerts, retry_attempts=1)
    failure = Failure(key="sig-1", category=C.NETWORK, operation=op)
    outcomes = [(await manager.recover(failure)).outcome for _ in range(4)]
    assert outcomes == ["failed", "failed", "escalated", "escalated"]
    assert failed_recoveries(store, "sig-1") == 4
    # escalated once to each channel; the fourth is counted on the firing alert
    assert sink_events == [("recovery:sig-1", "escalation")] * 2
    last = records(store)[-1]
    assert last.strategy == "human_escalation"


async def test_human_escalation_without_channels_is_a_failure(
    store: Store, settings: Settings
) -> None:
    manager, _ = make(store, settings)
    report = await manager.recover(Failure(key="mystery", category=C.UNKNOWN, detail="??"))
    assert report.outcome == "failed"
    assert "no human reached" in report.attempts[0].detail


async def test_concurrency_is_bounded(store: Store, tmp_path: Path) -> None:
    settings = Settings(contexten_home=tmp_path / "h", max_concurrent_recoveries=2)
    gate = asyncio.Event()
    running = [0]
    peak = [0]

    async def slow() -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await gate.wait()
        running[0] -= 1

    manager, _ = make(store, settings)
    failures = [Failure(key=f"k{i}", category=C.NETWORK, operation=slow) for i in range(6)]
    task = asyncio.ensure_future(manager.recover_many(failures))
    for _ in range(20):
        await asyncio.sleep(0)
    assert running[0] == 2
    gate.set()
    reports = await task
    assert [r.outcome for r in reports] == ["succeeded"] * 6
    assert peak[0] == 2 and manager.peak_concurrency == 2


async def test_same_key_is_not_recovered_twice_at_once(store: Store, settings: Settings) -> None:
    gate = asyncio.Event()

    async def slow() -> None:
        await gate.wait()

    manager, _ = make(store, settings)
    first = asyncio.ensure_future(
        manager.recover(Failure(key="k", category=C.NETWORK, operation=slow))
    )
    await asyncio.sleep(0)
    second = await manager.recover(Failure(key="k", category=C.NETWORK, operation=slow))
    assert second.outcome == "skipped" and "already recovering" in second.attempts[0].detail
    gate.set()
    assert (await first).outcome == "succeeded"


class FakeCI:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def rerun_failed_jobs(
        self, repo: str, run_id: int, *, run_attempt: int | None = None
    ) -> None:
        self.calls.append(("rerun_failed_jobs", (repo, run_id, run_attempt)))

    async def rerun_run(self, repo: str, run_id: int, *, run_attempt: int | None = None) -> None:
        self.calls.append(("rerun_run", (repo, run_id, run_attempt)))

    async def delete_actions_caches(
        self, repo: str, *, key: str | None = None, cache_id: int | None = None
    ) -> int:
        self.calls.append(("delete_actions_caches", (repo, key)))
        return 2


async def test_ci_flaky_test_rerun_awaits_result_then_settles(
    store: Store, settings: Settings
) -> None:
    ci = FakeCI()
    manager, _ = make(store, settings, clients=RecoveryClients(ci=ci))
    seen = datetime.now(UTC) - timedelta(minutes=5)
    failure = Failure(
        key="sig-flaky",
        category=C.FLAKY_TEST,
        scope="ci",
        repository="o/r",
        run_id=7,
        run_attempt=1,
        seen_at=seen,
    )
    report = await manager.recover(failure)
    assert report.outcome == "awaiting_result"
    assert ci.calls == [("rerun_failed_jobs", ("o/r", 7, 1))]
    # the re-run passed
    assert confirm_recovered(store, "sig-flaky") == 1
    [row] = records(store)
    assert row.outcome == "succeeded"
    m = compute_metrics(store, settings)
    assert m.recoveries_succeeded == 1 and m.mttr_seconds is not None and m.mttr_seconds >= 300
    # the next failure of the same key while awaiting settles the earlier one as failed
    await manager.recover(failure)
    await manager.recover(failure)
    assert [r.outcome for r in records(store)] == ["succeeded", "failed", "awaiting_result"]


async def test_ci_rerun_limit(store: Store, settings: Settings) -> None:
    ci = FakeCI()
    manager, _ = make(store, settings, clients=RecoveryClients(ci=ci))
    failure = Failure(
        key="s", category=C.INFRASTRUCTURE, scope="ci", repository="o/r", run_id=7, run_attempt=4
    )
    report = await manager.recover(failure)
    assert report.outcome == "failed"
    assert ci.calls == []
    assert "MAX_RERUN_ATTEMPTS=3" in report.attempts[0].detail


async def test_ci_deterministic_test_failure_is_never_rerun(
    store: Store, settings: Settings
) -> None:
    ci = FakeCI()
    manager, _ = make(store, settings, clients=RecoveryClients(ci=ci))
    report = await manager.recover(
        Failure(key="t", category=C.TEST, scope="ci", repository="o/r", run_id=1)
    )
    assert [a.strategy for a in report.attempts] == [S.HUMAN_ESCALATION]
    assert report.plan.agent_fix_candidate
    assert ci.calls == []


async def test_ci_corrupt_cache_is_deleted_then_run_restarted(
    store: Store, settings: Settings
) -> None:
    ci = FakeCI()
    manager, _ = make(store, settings, clients=RecoveryClients(ci=ci))
    failure = Failure(
        key="dep",
        category=C.DEPENDENCY,
        scope="ci",
        repository="o/r",
        run_id=9,
        cache_key="pip-abc",
        hints=frozenset({"cache_corrupt"}),
    )
    report = await manager.recover(failure)
    assert [(a.strategy, a.outcome) for a in report.attempts] == [
        (S.RESOURCE_CLEANUP, "done"),
        (S.WORKFLOW_RESTART, "awaiting_result"),
    ]
    assert report.outcome == "awaiting_result"
    assert ci.calls == [
        ("delete_actions_caches", ("o/r", "pip-abc")),
        ("rerun_run", ("o/r", 9, None)),
    ]


class FakeFlowRuns:
    def __init__(self, deployment: bool = True) -> None:
        self.cancelled: list[str] = []
        self.restarted: list[str] = []
        self.deployment = deployment

    async def list_runs(self, state_types: Any, *, limit: int = 200) -> list[FlowRunInfo]:
        return []

    async def cancel(self, run_id: str) -> None:
        self.cancelled.append(run_id)

    async def restart(self, run: FlowRunInfo) -> str | None:
        if not self.deployment:
            return None
        self.restarted.append(run.id)
        return "new-run"


STUCK = FlowRunInfo(
    id="r1",
    name="stuck-fox",
    flow_name="health-check",
    state_type="RUNNING",
    state_name="Running",
    deployment_id="d1",
    start_time=datetime(2026, 1, 1, tzinfo=UTC),
    parameters={"check_all_integrations": True},
)


async def test_stuck_flow_run_is_cancelled_and_restarted(store: Store, settings: Settings) -> None:
    from contexten.recovery.failures import failures_from_stuck_runs

    runs = FakeFlowRuns()
    manager, _ = make(store, settings, flow_runs=runs)
    [failure] = failures_from_stuck_runs([STUCK])
    assert failure.key == "flow-stuck:health-check" and failure.category is C.TIMEOUT
    report = await manager.recover(failure)
    assert report.outcome == "succeeded"
    assert runs.cancelled == ["r1"] and runs.restarted == ["r1"]
    assert "started new-run" in report.attempts[0].detail


async def test_every_stuck_run_of_one_flow_is_restarted_in_one_call(
    store: Store, settings: Settings
) -> None:
    from dataclasses import replace

    from contexten.recovery.failures import failures_from_stuck_runs

    runs = FakeFlowRuns()
    manager, _ = make(store, settings, flow_runs=runs)
    stuck = [STUCK, replace(STUCK, id="r2", name="stuck-owl"), replace(STUCK, id="r3")]
    failures = failures_from_stuck_runs(stuck)
    assert {f.key for f in failures} == {"flow-stuck:health-check"}  # one key per flow
    reports = await manager.recover_many(failures)
    assert [r.outcome for r in reports] == ["succeeded"] * 3  # none skipped
    assert sorted(runs.cancelled) == ["r1", "r2", "r3"]
    assert sorted(runs.restarted) == ["r1", "r2", "r3"]


async def test_workers_component_has_a_check(store: Store, settings: Settings) -> None:
    from contexten.recovery.manager import RecoveryClients, default_component_check

    unconfigured = settings.model_copy(update={"prefect_api_url": None})
    result = await default_component_check(unconfigured, store, RecoveryClients(), "workers")
    assert result.name == "workers"
    assert "no check for component" not in result.detail
    assert result.status in ("disabled", "unhealthy")


async def test_stuck_ad_hoc_run_runs_in_process(store: Store, settings: Settings) -> None:
    ran: list[tuple[str, Any]] = []

    async def in_process(workflow_type: str, parameters: Any) -> bool:
        ran.append((workflow_type, dict(parameters)))
        return True

    runs = FakeFlowRuns(deployment=False)
    manager, _ = make(store, settings, flow_runs=runs, run_in_process=in_process)
    from contexten.recovery.failures import failures_from_stuck_runs

    report = await manager.recover(failures_from_stuck_runs([STUCK])[0])
    assert report.outcome == "succeeded"
    assert ran == [("health_check", {"check_all_integrations": True})]


def _fill(path: Path, size: int, age_seconds: float, now: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    os.utime(path, (now - age_seconds, now - age_seconds))


async def test_full_disk_is_freed_by_cleanup(tmp_path: Path) -> None:
    """A "disk" of 1 MB simulated over the temp home: usage = bytes of files in it."""
    home = tmp_path / "home"
    settings = Settings(contexten_home=home)
    store = Store(settings.effective_database_url)
    store.migrate()
    now = 2_000_000_000.0
    quota = 960_000
    _fill(home / "tmp" / "logs" / "job-1.log", 400_000, 7200, now)  # ours, old: goes
    _fill(home / "tmp" / "job-2.log", 300_000, 900, now)  # 15 min: goes when full
    _fill(home / "tmp" / "active.log", 50_000, 10, now)  # in use: stays
    _fill(home / "reports" / "run-old" / "r.md", 100_000, 3 * 86400, now)  # old report: goes
    _fill(home / "reports" / "run-new" / "r.md", 50_000, 60, now)
    _fill(home / "keep.json", 50_000, 10 * 86400, now)  # not a temp file: stays
    system_temp = tmp_path / "systmp"
    _fill(system_temp / "contexten-abc" / "x.bin", 20_000, 7200, now)
    _fill(system_temp / "someone-else" / "y.bin", 20_000, 7200, now)

    def used() -> int:
        return sum(
            p.stat().st_size
            for p in home.rglob("*")
            if p.is_file() and p.suffix != ".db" and "-wal" not in p.name and "-shm" not in p.name
        )

    async def disk_check(name: str) -> ComponentHealth:
        percent = 100.0 * used() / quota
        status = "unhealthy" if percent > 97 else "degraded" if percent > 90 else "healthy"
        return ComponentHealth("disk", status, f"{percent:.0f}% used")  # type: ignore[arg-type]

    assert (await disk_check("disk")).status == "unhealthy"
    manager, _ = make(
        store, settings, check_component=disk_check, clock=lambda: now, system_temp=system_temp
    )
    failure = Failure(
        key="disk", category=C.RESOURCE_EXHAUSTION, component="disk", hints=frozenset({"disk_full"})
    )
    report = await manager.recover(failure)
    assert report.outcome == "succeeded", report.attempts
    cleanup = report.attempts[0]
    assert cleanup.strategy is S.RESOURCE_CLEANUP
    assert cleanup.data["freed_bytes"] == 400_000 + 300_000 + 100_000 + 20_000
    assert (home / "tmp" / "active.log").exists()
    assert (home / "keep.json").exists()
    assert (home / "reports" / "run-new" / "r.md").exists()
    assert not (home / "reports" / "run-old").exists()
    assert not (system_temp / "contexten-abc").exists()
    assert (system_temp / "someone-else" / "y.bin").exists()
    assert "disk now healthy" in cleanup.detail
    store.dispose()


def test_cleanup_never_follows_symlinks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    outside = tmp_path / "precious"
    _fill(outside / "data.bin", 1000, 99999, 2_000_000_000.0)
    (home / "tmp").mkdir(parents=True)
    (home / "tmp" / "link").symlink_to(outside)
    result = clean_temp_files(
        home, now=2_000_000_000.0 + 10**6, max_age_seconds=0, system_temp=tmp_path / "none"
    )
    assert (outside / "data.bin").exists()
    assert result.files == 1  # the link itself


class FakeSupervisor:
    """The shape of orchestration.supervisor.Supervisor."""

    def __init__(self) -> None:
        self.restarts: list[str] = []

    def component_status(self) -> dict[str, str]:
        status = {"prefect-server": "dead", "runner": "dead", "webhook": "running"}
        status.update({name: "running" for name in self.restarts})
        return status

    def restart(self, component: str) -> bool:
        self.restarts.append(component)
        return True


async def test_system_restart_only_when_enabled(store: Store, tmp_path: Path) -> None:
    supervisor = FakeSupervisor()
    off = Settings(contexten_home=tmp_path / "h", auto_restart_enabled=False)
    manager, _ = make(store, off, supervisor=supervisor)
    result = await manager.system_restart(
        Failure(key="m", category=C.RESOURCE_EXHAUSTION, component="memory")
    )
    assert result.outcome == "skipped" and supervisor.restarts == []
    on = Settings(contexten_home=tmp_path / "h", auto_restart_enabled=True)
    manager, _ = make(store, on, supervisor=supervisor)
    result = await manager.system_restart(
        Failure(key="m", category=C.RESOURCE_EXHAUSTION, component="memory")
    )
    assert result.outcome == "succeeded" and supervisor.restarts == ["runner"]
    result = await manager.system_restart(
        Failure(key="p", category=C.INTEGRATION, component="prefect")
    )
    assert result.outcome == "succeeded" and supervisor.restarts == ["runner", "prefect-server"]
    result = await manager.system_restart(
        Failure(key="d", category=C.RESOURCE_EXHAUSTION, component="disk")
    )
    assert result.outcome == "skipped"


async def test_prefect_down_runs_the_workflow_in_process(store: Store, settings: Settings) -> None:
    ran: list[str] = []

    async def in_process(workflow_type: str, parameters: Any) -> bool:
        ran.append(workflow_type)
        return True

    async def prefect_down(name: str) -> ComponentHealth:
        return ComponentHealth(name, "unhealthy", "connection refused")

    manager, _ = make(
        store, settings, run_in_process=in_process, check_component=prefect_down, retry_attempts=2
    )
    failure = Failure(
        key="prefect",
        category=C.INTEGRATION,
        component="prefect",
        workflow_type="health_check",
        parameters={},
    )
    report = await manager.recover(failure)
    assert [a.strategy for a in report.attempts] == [S.RETRY_WITH_BACKOFF, S.FALLBACK_EXECUTION]
    assert report.outcome == "succeeded" and ran == ["health_check"]


async def test_configuration_reset_disables_rejected_credentials_without_calling(
    store: Store, tmp_path: Path
) -> None:
    settings = Settings(contexten_home=tmp_path / "h", github_token="ghp_" + "x" * 36)
    checks: list[str] = []

    async def check(name: str) -> ComponentHealth:
        checks.append(name)
        return ComponentHealth(name, "healthy", "ok")

    manager, _ = make(store, settings, check_component=check, reload=lambda: settings)
    report = await manager.recover(
        Failure(key="github", category=C.AUTH, component="github", detail="401 Bad credentials")
    )
    assert [a.strategy for a in report.attempts] == [S.CONFIGURATION_RESET, S.HUMAN_ESCALATION]
    assert checks == []  # the same rejected token is not tried again
    assert disabled_entry(store, "github") is not None
    # new credentials after reload: re-enabled and checked once
    rotated = Settings(contexten_home=tmp_path / "h", github_token="ghp_" + "y" * 36)
    manager2, _ = make(store, settings, check_component=check, reload=lambda: rotated)
    report = await manager2.recover(Failure(key="github", category=C.AUTH, component="github"))
    assert report.outcome == "succeeded"
    assert checks == ["github"]
    assert disabled_entry(store, "github") is None


async def test_configuration_reset_restores_last_known_good(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = Settings(contexten_home=tmp_path / "h", prefect_api_url="http://127.0.0.1:4200/api")
    save_last_known_good(store, good)
    monkeypatch.setenv("PREFECT_API_URL", "not a url")
    monkeypatch.setenv("CONTEXTEN_HOME", str(tmp_path / "h"))
    bad = Settings()
    assert any("PREFECT_API_URL" in p for p in bad.validate())
    manager, _ = make(store, bad, reload=lambda: Settings())
    report = await manager.recover(Failure(key="config", category=C.CONFIG, detail="invalid"))
    assert report.outcome == "succeeded", report.attempts
    assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
    assert manager.settings.prefect_api_url == "http://127.0.0.1:4200/api"


async def test_dry_run_plans_without_acting(store: Store, settings: Settings) -> None:
    op, calls = flaky([])
    manager, _ = make(store, settings)
    report = await manager.recover(Failure(key="k", category=C.TIMEOUT, operation=op), dry_run=True)
    assert report.dry_run and report.plan.strategies == (S.RETRY_WITH_BACKOFF, S.RESOURCE_CLEANUP)
    assert calls[0] == 0 and records(store) == []


async def test_recovery_records_are_redacted(store: Store, tmp_path: Path) -> None:
    token = "ghp_" + "q" * 36
    settings = Settings(contexten_home=tmp_path / "h", github_token=token)
    manager, _ = make(store, settings, retry_attempts=1)
    op, _ = flaky([httpx.ConnectError(f"refused for {token}")])
    await manager.recover(
        Failure(key="k", category=C.NETWORK, detail=f"token {token}", operation=op)
    )
    [row] = records(store)
    assert token not in str(row.detail)
