"""Where a running `contexten server` is: the `server.json` it keeps in CONTEXTEN_HOME.

Written by the supervisor (`orchestration.supervisor`), read by later commands to find the
Prefect API and by the health check. A file, not a table: it describes this machine's
processes, and must be readable before any database is.
"""

from __future__ import annotations

import json
from pathlib import Path

from contexten.config import Settings

SERVER_FILE = "server.json"


def write_server_record(settings: Settings, api_url: str, ui_url: str, pid: int) -> Path:
    path = settings.data_dir / SERVER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"api_url": api_url, "ui_url": ui_url, "pid": pid}))
    tmp.replace(path)
    return path


def read_server_record(settings: Settings) -> dict[str, str] | None:
    path = settings.data_dir / SERVER_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "api_url" in data else None


def clear_server_record(settings: Settings) -> None:
    (settings.data_dir / SERVER_FILE).unlink(missing_ok=True)
