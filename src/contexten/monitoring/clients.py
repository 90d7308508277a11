"""The integration clients monitoring and recovery use, built from Settings and the Store.

Builders come from `contexten.integrations.factory` (None when a service is not
configured). The Slack webhook fallback is a second, webhook-only notifier, built only when
both the Web API (bot token + channel) and an incoming webhook are configured.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from contexten.config import Settings
from contexten.store.db import Store

logger = logging.getLogger("contexten.monitoring")

FACTORY_BUILDERS: dict[str, str] = {
    "github": "github_client",
    "linear": "linear_client",
    "slack": "slack_notifier",
    "codegen": "codegen_agent",
}


class ClientUnavailable(Exception):
    """A configured integration's client cannot be built (its builder is missing)."""


def build_client(name: str, settings: Settings, store: Store | None) -> Any | None:
    """The configured client for an integration, or None when it is not configured."""
    if not settings.enabled_integrations().get(name, False):
        return None
    factory = importlib.import_module("contexten.integrations.factory")
    builder = getattr(factory, FACTORY_BUILDERS[name], None)
    if builder is None:
        raise ClientUnavailable(
            f"contexten.integrations.factory has no {FACTORY_BUILDERS[name]}() for {name}"
        )
    return builder(settings, store)


def slack_webhook_notifier(settings: Settings, store: Store) -> Any | None:
    """A webhook-only Slack notifier, when it differs from the primary (Web API) one."""
    if settings.slack_webhook_url is None:
        return None
    if settings.slack_bot_token is None or not settings.slack_channel:
        return None  # the primary notifier already is the webhook
    from contexten.integrations.factory import retry_policy
    from contexten.integrations.idempotency import ActionLedger
    from contexten.integrations.slack import SlackNotifier

    policy = retry_policy(settings)
    ledger = ActionLedger(store, policy=policy)
    return SlackNotifier(
        ledger=ledger,
        webhook_url=settings.slack_webhook_url,
        api_url=settings.slack_api_url,
        policy=policy,
    )


@dataclass
class IntegrationClients:
    """Integration clients; None when not configured."""

    ci: Any = None  # CIProvider
    issues: Any = None  # IssueTracker
    notifier: Any = None  # Notifier (Slack, Web API or webhook)
    slack_webhook: Any = None  # Notifier over the incoming webhook only (the fallback)
    agent: Any = None  # CodingAgent
    errors: dict[str, str] = field(default_factory=dict)  # name -> why it could not be built

    def client(self, name: str) -> Any:
        return {
            "github": self.ci,
            "linear": self.issues,
            "slack": self.notifier,
            "codegen": self.agent,
        }.get(name)

    async def aclose(self) -> None:
        seen: set[int] = set()
        for client in (self.ci, self.issues, self.notifier, self.slack_webhook, self.agent):
            if client is None or id(client) in seen:
                continue
            seen.add(id(client))
            close = getattr(client, "aclose", None)
            if close is None:
                continue
            try:
                await close()
            except Exception as exc:  # closing must not fail the caller
                logger.debug("closing %s failed: %s", type(client).__name__, exc)


def build_clients(settings: Settings, store: Store) -> IntegrationClients:
    """Every configured client; a client that cannot be built is reported in `errors`."""
    clients = IntegrationClients()
    built: dict[str, Any] = {}
    for name in FACTORY_BUILDERS:
        try:
            built[name] = build_client(name, settings, store)
        except Exception as exc:
            clients.errors[name] = f"{type(exc).__name__}: {exc}"[:300]
    clients.ci = built.get("github")
    clients.issues = built.get("linear")
    clients.notifier = built.get("slack")
    clients.agent = built.get("codegen")
    try:
        clients.slack_webhook = slack_webhook_notifier(settings, store)
    except Exception as exc:
        clients.errors["slack_webhook"] = f"{type(exc).__name__}: {exc}"[:300]
    return clients
