"""Recovery and circuit breakers against the sandbox services, over real sockets.

- GitHub fails (503) then recovers: the breaker opens, refuses calls, lets one probe through
  half-open, closes; the recovery manager reports failed, then succeeded.
- GitHub's token is revoked: configuration reset disables GitHub, a human is told (Linear
  issue with priority urgent + Slack), and later health checks and recoveries send GitHub
  no further request (counted at the sandbox) and open no second issue.
- Slack's bot token is revoked: alerts go out through the incoming webhook.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexten.config import Settings
from contexten.integrations import factory
from contexten.integrations.circuits import disabled_entry, load_breaker
from contexten.integrations.http import RetryPolicy
from contexten.monitoring.alerts import Alert, Severity, alert_manager_for
from contexten.monitoring.clients import IntegrationClients, slack_webhook_notifier
from contexten.monitoring.health import HealthChecker
from contexten.recovery.failures import Failure, failures_from_health
from contexten.recovery.manager import RecoveryManager
from contexten.recovery.policy import BreakerConfig, FailureCategory
from contexten.sandbox.server import SandboxServer
from contexten.store.db import Store
from contexten.workflows.health_check import client_lookup


class CountingSandbox(SandboxServer):
    """Counts every request each service's app handles (faults injected before the app are
    in `faults[name].counts`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: Counter[tuple[str, str]] = Counter()

    def _build_app(self, name: str) -> Any | None:
        app = super()._build_app(name)
        if app is None:
            return None
        requests = self.requests

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                requests[(name, scope["path"])] += 1
            await app(scope, receive, send)

        return counting

    def count(self, service: str) -> int:
        return sum(n for (name, _), n in self.requests.items() if name == service)


@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's real load must not add failures to these tests."""
    from contexten.monitoring import health
    from contexten.monitoring.health import Resources

    def measure(data_dir: Path, *, cpu_interval: float = 0.2) -> Resources:
        return Resources(5.0, 5.0, 5.0, 10**11, str(data_dir), 1, 10**8)

    monkeypatch.setattr(health, "measure_resources", measure)


@pytest.fixture
def sandbox() -> Iterator[CountingSandbox]:
    with CountingSandbox(services=("github", "linear", "slack")) as server:
        yield server


async def _no_sleep(seconds: float) -> None:
    return None


FAST = RetryPolicy(max_attempts=2, base_delay=0.0, jitter=False, sleep=_no_sleep)


def settings_for(sandbox: SandboxServer, home: Path, **overrides: Any) -> Settings:
    env: dict[str, Any] = {k.lower(): v for k, v in sandbox.env().items()}
    env.pop("github_repository", None)
    env.update(contexten_home=home, prefect_api_url=None, webhook_port=9, **overrides)
    return Settings(**env)


def clients_for(settings: Settings, store: Store) -> IntegrationClients:
    return IntegrationClients(
        ci=factory.github_client(settings, store, policy=FAST),
        issues=factory.linear_client(settings, store, policy=FAST),
        notifier=factory.slack_notifier(settings, store, policy=FAST),
        slack_webhook=slack_webhook_notifier(settings, store),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path}/contexten.db")
    store.migrate()
    yield store
    store.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_integration_fails_then_recovers(
    sandbox: CountingSandbox, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path / "home")
    clients = clients_for(settings, store)
    clock = Clock()
    checker = HealthChecker(
        settings, store, clients=client_lookup(clients), cpu_interval=0.0, clock=clock
    )
    report = await checker.run()
    assert report.component("github").status == "healthy"  # type: ignore[union-attr]

    rule = sandbox.faults["github"].add(path="/rate_limit", error_rate=1.0, error_status=503)
    for _ in range(BreakerConfig().failure_threshold):
        clock.now += 1
        report = await checker.run()
        assert report.component("github").status == "unhealthy"  # type: ignore[union-attr]
    breaker = load_breaker(store, "github")
    assert breaker.state == "open" and breaker.trips == 1
    failed_calls = sandbox.faults["github"].counts["error"]
    assert failed_calls >= 3

    # open: the next check answers from the breaker without calling GitHub
    clock.now += 5
    report = await checker.run()
    assert "circuit open" in report.component("github").detail  # type: ignore[union-attr]
    assert sandbox.faults["github"].counts["error"] == failed_calls

    # a recovery while GitHub is still down waits for the cool-down, probes, and fails
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    manager = RecoveryManager(
        settings, store, clients=clients, clock=clock, sleep=sleep, retry_attempts=2
    )
    [failure] = failures_from_health(report)
    assert failure.category is FailureCategory.INTEGRATION
    down = await manager.recover(failure)
    assert down.outcome == "failed"
    assert sleeps and max(sleeps) >= 25  # waited for the open circuit, not hammering
    assert load_breaker(store, "github").state == "open"

    # GitHub comes back; after the cool-down the half-open probe closes the circuit
    sandbox.faults["github"].rules.remove(rule)
    clock.now = (load_breaker(store, "github").retry_at() or clock.now) + 1
    up = await manager.recover(failure)
    assert up.outcome == "succeeded"
    assert load_breaker(store, "github").state == "closed"
    report = await checker.run()
    assert report.component("github").status == "healthy"  # type: ignore[union-attr]
    await clients.aclose()


async def test_revoked_token_resets_config_escalates_and_stops_calling(
    sandbox: CountingSandbox, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path / "home")
    clients = clients_for(settings, store)
    token = settings.github_token.get_secret_value()  # type: ignore[union-attr]
    with sandbox.state.github.lock:
        del sandbox.state.github.tokens[token]
    checker = HealthChecker(settings, store, clients=client_lookup(clients), cpu_interval=0.0)
    report = await checker.run()
    github = report.component("github")
    assert github is not None and github.status == "unhealthy"
    assert "401" in github.detail or "credentials" in github.detail.lower()
    assert token not in github.detail
    calls_after_first_check = sandbox.count("github")
    assert 1 <= calls_after_first_check <= 2

    manager = RecoveryManager(
        settings,
        store,
        clients=clients,
        alerts=alert_manager_for(store, settings, clients),
        reload=lambda: settings,  # the environment still has the revoked token
    )
    [failure] = failures_from_health(report)
    assert failure.category is FailureCategory.AUTH
    result = await manager.recover(failure)
    assert [a.strategy.value for a in result.attempts] == [
        "configuration_reset",
        "human_escalation",
    ]
    assert result.outcome == "escalated"
    assert disabled_entry(store, "github") is not None
    [issue] = sandbox.state.linear.issues()
    assert issue.priority == 1  # urgent
    assert "recovery:github" in issue.title
    messages = sandbox.state.slack.messages()
    assert len(messages) == 1 and "ESCALATED" in messages[0].text

    # no retry storm: health checks and recoveries leave GitHub alone until the token changes
    for _ in range(5):
        report = await checker.run()
        assert "disabled since" in report.component("github").detail  # type: ignore[union-attr]
        assert failures_from_health(report) == []
        again = await manager.recover(
            Failure(key="github", category=FailureCategory.AUTH, component="github")
        )
        assert again.outcome == "escalated"  # counted on the open alert
    assert sandbox.count("github") == calls_after_first_check
    assert len(sandbox.state.linear.issues()) == 1
    assert len(sandbox.state.slack.messages()) == 1

    # a new token: the integration comes back by itself
    new_token = "ghp_" + "n" * 36
    with sandbox.state.github.lock:
        sandbox.state.github.tokens[new_token] = None
    rotated = settings_for(sandbox, tmp_path / "home", github_token=new_token)
    rotated_clients = clients_for(rotated, store)
    report = await HealthChecker(
        rotated, store, clients=client_lookup(rotated_clients), cpu_interval=0.0
    ).run()
    assert report.component("github").status == "healthy"  # type: ignore[union-attr]
    assert disabled_entry(store, "github") is None
    await clients.aclose()
    await rotated_clients.aclose()


async def test_slack_web_api_revoked_alerts_use_the_webhook(
    sandbox: CountingSandbox, store: Store, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path / "home")
    clients = clients_for(settings, store)
    assert clients.slack_webhook is not None
    with sandbox.state.slack.lock:
        del sandbox.state.slack.bots[settings.slack_bot_token.get_secret_value()]  # type: ignore[union-attr]
    alerts = alert_manager_for(store, settings, clients)
    decision = await alerts.fire(Alert("health:disk", Severity.WARNING, "disk 92%"))
    assert "slack" in decision.channels
    [message] = sandbox.state.slack.messages()
    assert message.via == "webhook"
    assert load_breaker(store, "slack").state == "open"  # invalid_auth opens it at once
    await clients.aclose()
