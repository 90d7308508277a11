"""The settings of a healthy moment, kept for the configuration-reset strategy: the health
check saves the non-secret settings; a reset puts back those a validate() problem names."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from contexten.config import Settings
from contexten.store.db import Store
from contexten.store.state import StateKind, read_state, write_state

LAST_KNOWN_GOOD = "last-known-good"  # StateKind.SETTINGS


def save_last_known_good(store: Store, settings: Settings) -> None:
    """Remember the non-secret settings of a healthy moment (for configuration reset)."""
    values = {
        name: value
        for name, value in settings.model_dump(mode="json").items()
        if name in type(settings).model_fields
        and not _is_secret_field(settings, name)
        and isinstance(value, str | int | float | bool)
    }
    payload = {"values": values, "at": datetime.now(UTC).isoformat()}
    write_state(store, StateKind.SETTINGS, LAST_KNOWN_GOOD, payload)


def _is_secret_field(settings: Settings, name: str) -> bool:
    from pydantic import SecretStr

    annotation = str(type(settings).model_fields[name].annotation)
    return "SecretStr" in annotation or isinstance(getattr(settings, name, None), SecretStr)


def restore_last_known_good(store: Store, settings: Settings) -> list[str]:
    """For each setting named in a validate() problem, put its last-known-good value back
    into this process's environment. Returns the variables restored."""
    saved = dict((read_state(store, StateKind.SETTINGS, LAST_KNOWN_GOOD) or {}).get("values", {}))
    if not saved:
        return []
    problems = " ".join(settings.validate())
    restored = []
    for name, value in saved.items():
        env_name = name.upper()
        if env_name not in problems or value == getattr(settings, name, None):
            continue
        os.environ[env_name] = str(value)
        restored.append(env_name)
    return restored
