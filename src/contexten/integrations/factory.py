"""Build the configured clients from Settings and the Store.

Each builder returns None when the service is not configured, so callers write
`client = github_client(settings, store)` and skip the step when it is None. Every client
gets the shared RetryPolicy and an ActionLedger over the store (idempotent actions), and
registers the configured secrets for redaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contexten.integrations.http import RetryPolicy
from contexten.integrations.idempotency import ActionLedger
from contexten.integrations.redaction import install_log_redaction

if TYPE_CHECKING:
    from contexten.config import Settings
    from contexten.integrations.codegen import CodegenClient
    from contexten.integrations.github import GitHubClient
    from contexten.integrations.linear import LinearClient
    from contexten.integrations.slack import SlackNotifier
    from contexten.store.db import Store


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy.from_settings(settings)


def action_ledger(settings: Settings, store: Store | None) -> ActionLedger | None:
    if store is None:
        return None
    return ActionLedger(store, policy=retry_policy(settings))


def github_client(
    settings: Settings, store: Store | None = None, *, policy: RetryPolicy | None = None
) -> GitHubClient | None:
    """The GitHub client (token, or GitHub App installation), or None if not configured."""
    if not settings.enabled_integrations()["github"]:
        return None
    from contexten.integrations.github import GitHubClient

    install_log_redaction(settings.secret_values())
    policy = policy or retry_policy(settings)
    ledger = None if store is None else ActionLedger(store, policy=policy)
    token = settings.github_token.get_secret_value() if settings.github_token else None
    key = (
        settings.github_app_private_key.get_secret_value()
        if settings.github_app_private_key
        else None
    )
    return GitHubClient(
        base_url=settings.github_api_url,
        token=token,
        app_id=settings.github_app_id,
        app_private_key=key,
        installation_id=settings.github_app_installation_id,
        policy=policy,
        ledger=ledger,
    )


def linear_client(
    settings: Settings, store: Store | None = None, *, policy: RetryPolicy | None = None
) -> LinearClient | None:
    """The Linear client for LINEAR_TEAM_ID, or None if not configured."""
    if not settings.enabled_integrations()["linear"] or settings.linear_api_key is None:
        return None
    from contexten.integrations.linear import LinearClient

    install_log_redaction(settings.secret_values())
    policy = policy or retry_policy(settings)
    return LinearClient(
        api_key=settings.linear_api_key,
        team_id=str(settings.linear_team_id),
        ledger=None if store is None else ActionLedger(store, policy=policy),
        api_url=settings.linear_api_url,
        policy=policy,
    )


def slack_notifier(
    settings: Settings, store: Store | None = None, *, policy: RetryPolicy | None = None
) -> SlackNotifier | None:
    """The Slack notifier (chat.postMessage with a bot token and channel, else the incoming
    webhook), or None if not configured."""
    if not settings.enabled_integrations()["slack"]:
        return None
    from contexten.integrations.slack import SlackNotifier

    install_log_redaction(settings.secret_values())
    policy = policy or retry_policy(settings)
    return SlackNotifier(
        ledger=None if store is None else ActionLedger(store, policy=policy),
        webhook_url=settings.slack_webhook_url,
        bot_token=settings.slack_bot_token if settings.slack_channel else None,
        channel=settings.slack_channel,
        api_url=settings.slack_api_url,
        policy=policy,
    )


def codegen_agent(
    settings: Settings, store: Store | None = None, *, policy: RetryPolicy | None = None
) -> CodegenClient | None:
    """The Codegen agent client for CODEGEN_ORG_ID, or None if not configured."""
    if not settings.enabled_integrations()["codegen"] or settings.codegen_token is None:
        return None
    from contexten.integrations.codegen import CodegenClient

    install_log_redaction(settings.secret_values())
    policy = policy or retry_policy(settings)
    return CodegenClient(
        token=settings.codegen_token,
        org_id=str(settings.codegen_org_id),
        ledger=None if store is None else ActionLedger(store, policy=policy),
        api_url=settings.codegen_api_url,
        policy=policy,
    )
