"""Seed-compatible configuration entry point: `get_default_config().validate()`."""

from __future__ import annotations

from contexten.config import AlertThresholds, Settings, get_settings, reload_settings

OrchestrationConfig = Settings


def get_default_config() -> Settings:
    """The configuration read from the environment (see the README's reference)."""
    return get_settings()


__all__ = [
    "AlertThresholds",
    "OrchestrationConfig",
    "Settings",
    "get_default_config",
    "reload_settings",
]
