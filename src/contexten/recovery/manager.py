"""The recovery manager: runs the policy's strategies as real actions, and records each one.

`RecoveryManager.recover(failure)` plans (recovery.policy), then tries the strategies in
order until one works:

- retry with back-off: call the failing operation again, re-check the failing component,
  re-run a CI run's failed jobs, or cancel and restart a stuck flow run; rate limits wait
  for their reset (or defer when that is far off); auth errors are never retried;
- resource cleanup: our temp files under CONTEXTEN_HOME (and `contexten-*` in the system
  temp directory), old reports, connection pools, a corrupt GitHub Actions cache;
- workflow restart: re-run the whole CI run, or cancel and restart a stuck flow run;
- fallback execution: run the workflow in-process when the Prefect server is down; post
  through the Slack incoming webhook when the Web API fails;
- configuration reset: reload settings, restore last-known-good values for settings that
  no longer validate, disable an integration whose credentials are rejected (until they
  change: no retry storm);
- system restart: ask the supervisor of `contexten server` (a `ComponentRestarter`) to
  restart a dead component, only when AUTO_RESTART_ENABLED;
- human escalation: a critical alert escalated at once (Linear issue priority urgent +
  Slack) through the AlertManager, deduplicated while it keeps firing.

At most MAX_CONCURRENT_RECOVERIES run at once, one per key. Every recovery is one
RecoveryRecord row: outcome, the deciding strategy, every attempt in `detail`, and the
time the failure was seen and the time it ended (MTTR). A CI re-run ends as
`awaiting_result` until `confirm_recovered` (the re-run passed) or the next failure of the
same key (it did not) settles it.

The failures are `recovery.failures` (with finding them in health reports and stuck runs),
the results `recovery.results`; what `contexten server` and orchestration lend the manager
is registered in `recovery.hooks`, and the settings of a healthy moment live in
`recovery.last_known_good`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contexten.config import Settings
from contexten.integrations import circuits
from contexten.monitoring.clients import IntegrationClients
from contexten.monitoring.flow_runs import FlowRunControl
from contexten.monitoring.health import INTEGRATIONS, ComponentHealth
from contexten.recovery import hooks
from contexten.recovery.cleanup import clean_temp_files
from contexten.recovery.failures import Failure
from contexten.recovery.hooks import ComponentRestarter, current_supervisor
from contexten.recovery.last_known_good import restore_last_known_good
from contexten.recovery.policy import (
    HINT_DISK_FULL,
    BreakerConfig,
    CircuitBreaker,
    FailureCategory,
    RecoveryPlan,
    RecoveryStrategy,
    backoff_delay,
    classify_exception,
    plan_recovery,
)
from contexten.recovery.results import Outcome, RecoveryReport, StrategyResult, overall_outcome
from contexten.store.db import Store
from contexten.store.recoveries import (
    failed_recoveries,
    finish_recovery,
    settle_awaiting,
    start_recovery,
)

logger = logging.getLogger("contexten.recovery")

S = RecoveryStrategy
# the supervisor's component for each health component
SUPERVISED: dict[str, str] = {
    "prefect": "prefect-server",
    "workers": "runner",
    "webhook": "webhook",
    "memory": "runner",
}

RecoveryClients = IntegrationClients  # the clients the strategies use


def _now() -> datetime:
    return datetime.now(UTC)


def confirm_recovered(store: Store, key: str, *, at: datetime | None = None) -> int:
    """The CI run re-run by a recovery of `key` passed: those recoveries succeeded."""
    return settle_awaiting(store, key, "succeeded", at or _now())


# ----------------------------------------------------------------------------- manager

Reloader = Callable[[], Settings]
Sleep = Callable[[float], Awaitable[None]]
WorkflowRunner = Callable[[str, Mapping[str, Any]], Awaitable[bool]]
ComponentChecker = Callable[[str], Awaitable[ComponentHealth]]


class RecoveryManager:
    """Executes recovery plans. Everything external is injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clients: RecoveryClients | None = None,
        supervisor: ComponentRestarter | None = None,
        flow_runs: FlowRunControl | None = None,
        alerts: Any = None,
        check_component: ComponentChecker | None = None,
        run_in_process: WorkflowRunner | None = None,
        reload: Reloader | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        max_wait_seconds: float = 300.0,
        retry_attempts: int = 3,
        retry_base_seconds: float = 2.0,
        breaker_config: BreakerConfig = BreakerConfig(),
        system_temp: Path | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clients = clients or RecoveryClients()
        self.supervisor = supervisor
        self.flow_runs = flow_runs
        self.alerts = alerts
        self._check_component = check_component
        self._run_in_process = run_in_process
        self._reload = reload
        self.clock = clock
        self.sleep = sleep
        self.max_wait_seconds = max_wait_seconds
        self.retry_attempts = max(1, retry_attempts)
        self.retry_base_seconds = retry_base_seconds
        self.breaker_config = breaker_config
        self.system_temp = system_temp
        self._semaphore = asyncio.Semaphore(max(1, settings.max_concurrent_recoveries))
        self._in_flight: set[str] = set()
        self.peak_concurrency = 0
        self._running = 0

    # --- planning ---
    def plan(self, failure: Failure) -> RecoveryPlan:
        return plan_recovery(
            failure.category,
            scope=failure.scope,
            failed_recoveries=failed_recoveries(self.store, failure.key),
            escalation_threshold=self.settings.escalation_threshold,
            hints=failure.hints,
        )

    # --- running ---
    async def recover(self, failure: Failure, *, dry_run: bool = False) -> RecoveryReport:
        if dry_run:
            return RecoveryReport(
                failure.key, failure.category, self.plan(failure), "skipped", (), None, True
            )
        if failure.key in self._in_flight:
            plan = self.plan(failure)
            skipped = StrategyResult(plan.strategies[0], "skipped", "already recovering this key")
            return RecoveryReport(failure.key, failure.category, plan, "skipped", (skipped,))
        self._in_flight.add(failure.key)
        try:
            async with self._semaphore:
                self._running += 1
                self.peak_concurrency = max(self.peak_concurrency, self._running)
                try:
                    return await self._recover(failure)
                finally:
                    self._running -= 1
        finally:
            self._in_flight.discard(failure.key)

    async def recover_many(self, failures: Sequence[Failure]) -> list[RecoveryReport]:
        """Recover several failures concurrently (bounded by MAX_CONCURRENT_RECOVERIES).

        Failures sharing a key (several stuck runs of one flow) are recovered one after
        the other, so each gets its recovery; concurrently all but one would be skipped.
        """
        reports: list[RecoveryReport | None] = [None] * len(failures)
        by_key: dict[str, list[int]] = {}
        for index, failure in enumerate(failures):
            by_key.setdefault(failure.key, []).append(index)

        async def in_turn(indices: list[int]) -> None:
            for index in indices:
                reports[index] = await self.recover(failures[index])

        await asyncio.gather(*(in_turn(indices) for indices in by_key.values()))
        return [report for report in reports if report is not None]

    async def _recover(self, failure: Failure) -> RecoveryReport:
        now = _now()
        # the same key failing again means an earlier re-run did not fix it
        settle_awaiting(self.store, failure.key, "failed", now, run_id=failure.run_id)
        plan = self.plan(failure)
        record_id = start_recovery(
            self.store,
            key=failure.key,
            failure_type=failure.category.value,
            strategy=plan.strategies[0].value,
            detail={
                "plan": [s.value for s in plan.strategies],
                "reason": plan.reason,
                "run_id": failure.run_id,
            },
            failure_seen_at=failure.seen_at or now,
            started_at=now,
        )
        attempts: list[StrategyResult] = []
        for strategy in plan.strategies:
            try:
                result = await self._run_strategy(strategy, failure, plan, attempts)
            except Exception as exc:
                logger.exception("recovery %s: %s raised", failure.key, strategy.value)
                result = StrategyResult(strategy, "failed", f"{type(exc).__name__}: {exc}"[:300])
            attempts.append(result)
            logger.info(
                "recovery %s (%s): %s -> %s: %s",
                failure.key,
                failure.category.value,
                strategy.value,
                result.outcome,
                result.detail,
            )
            if result.outcome in ("succeeded", "awaiting_result", "escalated"):
                break
        outcome = overall_outcome(attempts)
        deciding = next(
            (a for a in reversed(attempts) if a.outcome not in ("skipped",)),
            attempts[-1],
        )
        finish_recovery(
            self.store,
            record_id,
            outcome=outcome,
            strategy=deciding.strategy.value,
            finished_at=None if outcome == "awaiting_result" else _now(),
            detail=lambda saved: _redacted(
                {
                    **saved,
                    "attempts": [a.to_dict() for a in attempts],
                    "failure": failure.detail[:500],
                    "component": failure.component,
                },
                self.settings,
            ),
        )
        return RecoveryReport(
            failure.key, failure.category, plan, outcome, tuple(attempts), record_id
        )

    async def _run_strategy(
        self,
        strategy: RecoveryStrategy,
        failure: Failure,
        plan: RecoveryPlan,
        attempts: Sequence[StrategyResult],
    ) -> StrategyResult:
        handlers = {
            S.RETRY_WITH_BACKOFF: self.retry_with_backoff,
            S.RESOURCE_CLEANUP: self.resource_cleanup,
            S.WORKFLOW_RESTART: self.workflow_restart,
            S.FALLBACK_EXECUTION: self.fallback_execution,
            S.CONFIGURATION_RESET: self.configuration_reset,
            S.SYSTEM_RESTART: self.system_restart,
        }
        if strategy is S.HUMAN_ESCALATION:
            return await self.human_escalation(failure, plan, attempts)
        return await handlers[strategy](failure)

    # --- strategies ---
    async def retry_with_backoff(self, failure: Failure) -> StrategyResult:
        if failure.operation is not None:
            return await self._retry_operation(failure)
        if failure.flow_run is not None:
            return await self._restart_flow_run(S.RETRY_WITH_BACKOFF, failure)
        if failure.scope == "ci":
            return await self._rerun_ci(failure, whole_run=False)
        if failure.component:
            return await self._retry_component(failure)
        return StrategyResult(S.RETRY_WITH_BACKOFF, "skipped", "nothing to retry")

    def _wait_for(self, failure: Failure, attempt: int) -> float:
        retry_after = None
        if failure.retry_at is not None:
            retry_after = max(0.0, failure.retry_at - self.clock())
        return backoff_delay(
            attempt,
            base_seconds=self.retry_base_seconds,
            cap_seconds=self.max_wait_seconds,
            retry_after=retry_after,
        )

    async def _retry_operation(self, failure: Failure) -> StrategyResult:
        assert failure.operation is not None
        service = failure.component if failure.component in INTEGRATIONS else None
        last = failure.detail
        current = failure
        for attempt in range(1, self.retry_attempts + 1):
            delay = self._wait_for(current, attempt)
            if delay > self.max_wait_seconds:
                return StrategyResult(
                    S.RETRY_WITH_BACKOFF, "skipped", f"rate limited for {delay:.0f}s; deferred"
                )
            if service is not None:
                blocked = circuits.integration_gate(
                    self.store,
                    self.settings,
                    service,
                    now=self.clock() + delay,
                    config=self.breaker_config,
                )
                if blocked is not None:
                    return StrategyResult(S.RETRY_WITH_BACKOFF, "skipped", blocked)
            await self.sleep(delay)
            try:
                await failure.operation()
            except Exception as exc:
                found = classify_exception(exc)
                last = found.detail
                if service is not None:
                    circuits.record_exception(self.store, service, exc, now=self.clock())
                if found.category in (FailureCategory.AUTH, FailureCategory.UNKNOWN):
                    return StrategyResult(
                        S.RETRY_WITH_BACKOFF,
                        "failed",
                        f"attempt {attempt}: {found.category.value}, not retried: {last}",
                    )
                current = replace(current, retry_at=found.retry_at)
                continue
            if service is not None:
                circuits.record_integration_result(self.store, service, True, now=self.clock())
            return StrategyResult(S.RETRY_WITH_BACKOFF, "succeeded", f"attempt {attempt} worked")
        return StrategyResult(
            S.RETRY_WITH_BACKOFF, "failed", f"{self.retry_attempts} attempts failed; last: {last}"
        )

    async def _retry_component(self, failure: Failure) -> StrategyResult:
        name = failure.component or ""
        last = ""
        for attempt in range(1, self.retry_attempts + 1):
            delay = self._wait_for(failure, attempt)
            if delay > self.max_wait_seconds:
                return StrategyResult(
                    S.RETRY_WITH_BACKOFF, "skipped", f"{name}: wait of {delay:.0f}s deferred"
                )
            if name in INTEGRATIONS:
                breaker = circuits.load_breaker(self.store, name)
                retry_at = breaker.retry_at()
                if retry_at is not None:
                    delay = max(delay, retry_at - self.clock())
                    if delay > self.max_wait_seconds:
                        return StrategyResult(
                            S.RETRY_WITH_BACKOFF,
                            "skipped",
                            f"{name}: circuit open for {delay:.0f}s more; deferred",
                        )
            await self.sleep(delay)
            health = await self.check(name)
            if health.status in ("healthy", "degraded"):
                return StrategyResult(
                    S.RETRY_WITH_BACKOFF,
                    "succeeded",
                    f"{name} {health.status} on attempt {attempt}",
                )
            last = health.detail
            if name in INTEGRATIONS and circuits.disabled_entry(self.store, name) is not None:
                break
        return StrategyResult(
            S.RETRY_WITH_BACKOFF, "failed", f"{name} still unhealthy: {last}"[:300]
        )

    async def _rerun_ci(self, failure: Failure, *, whole_run: bool) -> StrategyResult:
        strategy = S.WORKFLOW_RESTART if whole_run else S.RETRY_WITH_BACKOFF
        ci = self.clients.ci
        if ci is None or not failure.repository or not failure.run_id:
            return StrategyResult(strategy, "skipped", "no GitHub client or run to re-run")
        attempt = failure.run_attempt or 1
        if attempt > self.settings.max_rerun_attempts:
            return StrategyResult(
                strategy,
                "failed",
                f"run {failure.run_id} already ran {attempt} times "
                f"(MAX_RERUN_ATTEMPTS={self.settings.max_rerun_attempts})",
            )
        # the first re-run goes at once; later ones back off
        delay = 0.0 if attempt <= 1 else self._wait_for(failure, attempt - 1)
        if delay > self.max_wait_seconds:
            return StrategyResult(strategy, "skipped", f"wait of {delay:.0f}s deferred")
        await self.sleep(delay)
        repo, run_id = failure.repository, failure.run_id

        async def call() -> Any:
            if whole_run:
                return await ci.rerun_run(repo, run_id, run_attempt=failure.run_attempt)
            return await ci.rerun_failed_jobs(repo, run_id, run_attempt=failure.run_attempt)

        try:
            await circuits.call_guarded(self.store, self.settings, "github", call, clock=self.clock)
        except circuits.CircuitOpen as exc:
            return StrategyResult(strategy, "skipped", str(exc))
        what = "the whole run" if whole_run else "the failed jobs"
        return StrategyResult(
            strategy,
            "awaiting_result",
            f"re-ran {what} of {repo} run {run_id} (attempt {attempt}); waiting for the result",
            {"repository": repo, "run_id": run_id},
        )

    async def _restart_flow_run(
        self, strategy: RecoveryStrategy, failure: Failure
    ) -> StrategyResult:
        run = failure.flow_run
        if run is None or self.flow_runs is None:
            return StrategyResult(strategy, "skipped", "no flow run or no Prefect API")
        await self.flow_runs.cancel(run.id)
        new_id = await self.flow_runs.restart(run)
        if new_id is None:
            if self._run_in_process is not None and run.flow_name:
                ok = await self._run_in_process(run.flow_name.replace("-", "_"), run.parameters)
                return StrategyResult(
                    strategy,
                    "succeeded" if ok else "failed",
                    f"cancelled {run.id}; it had no deployment, so ran it in-process: "
                    f"{'ok' if ok else 'failed'}",
                )
            return StrategyResult(
                strategy, "failed", f"cancelled {run.id} but it has no deployment to restart"
            )
        return StrategyResult(
            strategy,
            "succeeded",
            f"cancelled stuck run {run.id} ({run.flow_name}) and started {new_id}",
            {"cancelled": run.id, "restarted_as": new_id},
        )

    async def resource_cleanup(self, failure: Failure) -> StrategyResult:
        disk_full = HINT_DISK_FULL in failure.hints or failure.component == "disk"
        done: list[str] = []
        data: dict[str, Any] = {}
        cleaned = await asyncio.to_thread(
            clean_temp_files,
            self.settings.data_dir,
            now=self.clock(),
            # when the disk is full, anything not touched for ten minutes goes
            max_age_seconds=600.0 if disk_full else 3600.0,
            report_max_age_seconds=86400.0 if disk_full else 7 * 86400.0,
            system_temp=self.system_temp,
        )
        data["freed_bytes"] = cleaned.bytes
        data["files"] = cleaned.files
        if cleaned.files:
            done.append(f"removed {cleaned.files} temp files ({cleaned.bytes} bytes)")
        if failure.scope == "system":
            # the store's connection pool; the engine reconnects on next use
            await asyncio.to_thread(self.store.dispose)
            done.append("reset the store's connection pool")
        cache_related = failure.cache_key is not None or disk_full
        if failure.scope == "ci" and cache_related and failure.repository and self.clients.ci:
            ci = self.clients.ci
            repo = failure.repository
            key = failure.cache_key
            if key is not None:

                async def delete() -> Any:
                    return await ci.delete_actions_caches(repo, key=key)

                try:
                    deleted = await circuits.call_guarded(
                        self.store, self.settings, "github", delete, clock=self.clock
                    )
                except circuits.CircuitOpen as exc:
                    done.append(f"caches not deleted: {exc}")
                else:
                    data["caches_deleted"] = deleted
                    done.append(f"deleted {deleted} Actions caches with key {key}")
        if failure.component in ("disk", "memory", "cpu"):
            health = await self.check(failure.component)
            data["after"] = health.detail
            ok = health.status == "healthy"
            return StrategyResult(
                S.RESOURCE_CLEANUP,
                "succeeded" if ok else "failed",
                f"{'; '.join(done) or 'nothing to clean'}; {failure.component} now "
                f"{health.status}: {health.detail}",
                data,
            )
        if failure.scope == "ci" and not data.get("caches_deleted"):
            return StrategyResult(
                S.RESOURCE_CLEANUP, "skipped", "; ".join(done) or "no cache to delete", data
            )
        # nothing to verify against: cleaning up is done, but not a fix by itself
        outcome: Outcome = "done" if done else "skipped"
        return StrategyResult(
            S.RESOURCE_CLEANUP, outcome, "; ".join(done) or "nothing to clean", data
        )

    async def workflow_restart(self, failure: Failure) -> StrategyResult:
        if failure.flow_run is not None:
            return await self._restart_flow_run(S.WORKFLOW_RESTART, failure)
        if failure.scope == "ci":
            return await self._rerun_ci(failure, whole_run=True)
        return StrategyResult(S.WORKFLOW_RESTART, "skipped", "no run to restart")

    async def fallback_execution(self, failure: Failure) -> StrategyResult:
        name = failure.component
        if name == "slack":
            return await self._slack_fallback(failure)
        if name == "prefect" or failure.workflow_type:
            if not failure.workflow_type:
                return StrategyResult(
                    S.FALLBACK_EXECUTION,
                    "skipped",
                    "no workflow waiting; commands run in-process while Prefect is down",
                )
            runner = self._run_in_process or self._default_in_process
            ok = await runner(failure.workflow_type, failure.parameters or {})
            return StrategyResult(
                S.FALLBACK_EXECUTION,
                "succeeded" if ok else "failed",
                f"ran {failure.workflow_type} in-process: {'ok' if ok else 'failed'}",
            )
        return StrategyResult(S.FALLBACK_EXECUTION, "skipped", f"no fallback for {name or 'this'}")

    async def _slack_fallback(self, failure: Failure) -> StrategyResult:
        """Send Slack messages through the incoming webhook while the Web API fails."""
        webhook = self.clients.slack_webhook
        if webhook is None or self.settings.slack_bot_token is None:
            return StrategyResult(
                S.FALLBACK_EXECUTION, "skipped", "no separate Slack webhook to fall back to"
            )
        result = await webhook.check()
        if result.status not in ("ok", "degraded"):
            return StrategyResult(
                S.FALLBACK_EXECUTION, "failed", f"Slack webhook also failing: {result.detail}"
            )
        # An open circuit routes every sender (AlertManager's Slack sink) to the webhook
        # until a half-open probe finds the Web API working again.
        circuits.record_integration_result(
            self.store,
            "slack",
            False,
            f"Web API failing: {failure.detail}",
            now=self.clock(),
            open_now=True,
            config=self.breaker_config,
        )
        return StrategyResult(
            S.FALLBACK_EXECUTION,
            "succeeded",
            "Slack Web API circuit opened; messages go through the incoming webhook",
        )

    async def _default_in_process(self, workflow_type: str, parameters: Mapping[str, Any]) -> bool:
        runner = hooks.in_process_runner()
        if runner is None:
            raise RuntimeError("no workflow runner: contexten.orchestration is not loaded")
        return await runner(workflow_type, parameters, self.settings, self.store)

    async def configuration_reset(self, failure: Failure) -> StrategyResult:
        from contexten.config import reload_settings

        before = self.settings
        self.settings = (self._reload or reload_settings)()
        done: list[str] = []
        restored = restore_last_known_good(self.store, self.settings)
        if restored:
            self.settings = (self._reload or reload_settings)()
            done.append(f"restored last-known-good {', '.join(restored)}")
        name = failure.component if failure.component in INTEGRATIONS else None
        if name is None:
            problems = self.settings.validate()
            if restored and not problems:
                return StrategyResult(S.CONFIGURATION_RESET, "succeeded", "; ".join(done))
            detail = "; ".join([*done, *problems[:3]]) or "settings reloaded; nothing to reset"
            return StrategyResult(S.CONFIGURATION_RESET, "failed", detail)
        changed = circuits.credentials_fingerprint(
            before, name
        ) != circuits.credentials_fingerprint(self.settings, name)
        if failure.category is FailureCategory.AUTH and not changed:
            # calling again with the same rejected credentials would only fail again
            circuits.disable_integration(
                self.store, self.settings, name, f"credentials rejected: {failure.detail}"
            )
            return StrategyResult(
                S.CONFIGURATION_RESET,
                "failed",
                f"{name} credentials rejected and unchanged after reload; {name} disabled "
                "until they change",
            )
        circuits.enable_integration(self.store, name)
        circuits.save_breaker(self.store, name, CircuitBreaker())
        health = await self.check(name)
        if health.status in ("healthy", "degraded"):
            return StrategyResult(
                S.CONFIGURATION_RESET,
                "succeeded",
                f"settings reloaded ({'new' if changed else 'same'} credentials); {name} "
                f"{health.status}",
            )
        circuits.disable_integration(self.store, self.settings, name, health.detail)
        return StrategyResult(
            S.CONFIGURATION_RESET,
            "failed",
            f"{name} still failing after reload ({health.detail}); disabled until its "
            "credentials change",
        )

    async def system_restart(self, failure: Failure) -> StrategyResult:
        if not self.settings.auto_restart_enabled:
            return StrategyResult(S.SYSTEM_RESTART, "skipped", "AUTO_RESTART_ENABLED is false")
        supervisor = self.supervisor or current_supervisor()
        finder = hooks.supervisor_finder()
        if supervisor is None and finder is not None:
            supervisor = finder(self.settings)
        if supervisor is None:
            return StrategyResult(
                S.SYSTEM_RESTART, "skipped", "no `contexten server` is running on this machine"
            )
        component = SUPERVISED.get(failure.component or "")
        status = supervisor.component_status()
        if component is None or component not in status:
            return StrategyResult(
                S.SYSTEM_RESTART, "skipped", f"{failure.component} is not a supervised component"
            )
        restarted = await asyncio.to_thread(supervisor.restart, component)
        alive = restarted and supervisor.component_status().get(component) == "running"
        return StrategyResult(
            S.SYSTEM_RESTART,
            "succeeded" if alive else "failed",
            f"restarted {component}: {'running' if alive else 'still down'}",
        )

    async def human_escalation(
        self, failure: Failure, plan: RecoveryPlan, attempts: Sequence[StrategyResult]
    ) -> StrategyResult:
        from contexten.monitoring.alerts import Alert, AlertManager, Severity

        tried = "; ".join(f"{a.strategy.value}: {a.outcome} ({a.detail})" for a in attempts)
        message = (
            f"{failure.category.value} on {failure.component or failure.key}: "
            f"{failure.detail or 'no detail'}. {plan.reason}."
            + (f" Tried: {tried}." if tried else "")
        )
        alerts = self.alerts or AlertManager(self.store, self.settings)
        alert = Alert(
            key=f"recovery:{failure.key}"[:200],
            severity=Severity.CRITICAL,
            message=message[:3900],
            data={"category": failure.category.value, "component": failure.component},
            repository=failure.repository,
        )
        decision = await alerts.escalate(alert)
        if decision.action == "deduped":
            return StrategyResult(
                S.HUMAN_ESCALATION, "escalated", "already escalated and still firing; counted"
            )
        humans = [c for c in decision.channels if c != "log"]
        if humans:
            return StrategyResult(
                S.HUMAN_ESCALATION, "escalated", f"escalated via {', '.join(humans)}"
            )
        failures = "; ".join(decision.failures) or "no Linear or Slack configured"
        return StrategyResult(
            S.HUMAN_ESCALATION, "failed", f"no human reached ({failures}); logged only"
        )

    # --- component checks ---
    async def check(self, name: str) -> ComponentHealth:
        """Check one component now (injectable)."""
        if self._check_component is not None:
            return await self._check_component(name)
        return await default_component_check(self.settings, self.store, self.clients, name)


async def default_component_check(
    settings: Settings, store: Store, clients: RecoveryClients, name: str
) -> ComponentHealth:
    from contexten.monitoring import health

    timeout = max(1.0, min(15.0, settings.http_timeout_seconds))
    if name == "store":
        return await asyncio.to_thread(health.check_store, store)
    if name == "prefect":
        return await health.check_prefect(settings, timeout=timeout)
    if name == "webhook":
        return await health.check_webhook(settings, timeout=timeout, expected=True)
    if name == "workers":
        prefect = await health.check_prefect(settings, timeout=timeout)
        if prefect.status not in ("healthy", "degraded"):
            if prefect.status == "disabled":
                return ComponentHealth("workers", "disabled", "Prefect server not configured")
            return ComponentHealth("workers", "unhealthy", "Prefect API unreachable")
        from contexten.monitoring.flow_runs import PrefectFlowRunControl

        key = settings.prefect_api_key
        control = PrefectFlowRunControl(
            str(prefect.data["api_url"]), key.get_secret_value() if key else None
        )
        return await health.check_workers(control, settings)
    if name in ("cpu", "memory", "disk"):
        resources = await asyncio.to_thread(health.measure_resources, settings.data_dir)
        found = health.resource_components(resources, settings.alert_thresholds)
        return next(c for c in found if c.name == name)
    if name in INTEGRATIONS:
        client = clients.client(name)
        if client is None:
            return ComponentHealth(name, "disabled", "not configured")
        result = await health.check_integration(name, client)
        circuits.record_integration_result(store, name, result.status != "unhealthy", result.detail)
        return result
    return ComponentHealth(name, "unhealthy", f"no check for component {name!r}")


def _redacted(value: Any, settings: Settings) -> Any:
    """`value` (JSON-like) with every configured secret masked, before it is stored."""
    import json

    from contexten.integrations.redaction import redact

    return json.loads(redact(json.dumps(value, default=str), settings.secret_values()))
