"""The embedded Prefect server: a supervised `prefect server start` on loopback.

It keeps its own Prefect home under CONTEXTEN_HOME so it never touches a user's
~/.prefect, records its URL in `server.json` for later commands, and is found again by
`discover_api_url`. No Prefect import here: it runs as a child process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from contexten.config import Settings
from contexten.store.server_record import SERVER_FILE as SERVER_FILE
from contexten.store.server_record import clear_server_record as clear_server_record
from contexten.store.server_record import read_server_record as read_server_record
from contexten.store.server_record import write_server_record as write_server_record

TETHER_ENV = "CONTEXTEN_TETHER_PID"  # read by contexten.tether in the child


class PrefectServerError(Exception):
    """The Prefect server could not be started or reached."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers bind: a port left in TIME_WAIT by a stopped server counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def last_line(path: Path, start: int = 0, max_bytes: int = 8192) -> str:
    """The last non-empty line written to `path` after byte `start` (a crash's last words)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(start, handle.tell() - max_bytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def api_healthy(api_url: str, timeout: float = 2.0, *, api_key: str | None = None) -> bool:
    from contexten.integrations.probe import probe_sync

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return probe_sync(f"{api_url.rstrip('/')}/health", timeout=timeout, headers=headers).ok


def prefect_env(home: Path, *, database_url: str | None = None) -> dict[str, str]:
    """Environment for an embedded Prefect server process."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url
        or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    return env


@dataclass
class PrefectServerProcess:
    """A `prefect server start` child process."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 0
    database_url: str | None = None
    ui: bool = True
    extra_env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    # The PID of a parent this server must die with (`contexten server`; see contexten.tether)
    tether_to: int | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 90.0) -> str:
        if self.port == 0:
            self.port = free_port(self.host)
        elif not port_free(self.host, self.port):
            raise PrefectServerError(
                f"port {self.port} on {self.host} is in use (another Prefect or contexten "
                "server?): stop it, or choose another with --port (0 = any free port)"
            )
        env = {**os.environ, **prefect_env(self.home, database_url=self.database_url)}
        env.pop("PREFECT_API_URL", None)
        env["PREFECT_UI_ENABLED"] = "true" if self.ui else "false"
        env["PREFECT_SERVER_UI_ENABLED"] = env["PREFECT_UI_ENABLED"]
        if self.extra_env:
            env.update(self.extra_env)
        log_path = self.home / "server.log"
        log = log_path.open("ab")
        log_start = log.tell()  # the log is appended to: only this start's lines explain it
        command = ["prefect", "server", "start", "--host", self.host, "--port", str(self.port)]
        if self.tether_to is not None:
            env[TETHER_ENV] = str(self.tether_to)
            command = ["contexten.tether", *command]
        self.process = subprocess.Popen(
            [sys.executable, "-m", *command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrefectServerError(
                    f"prefect server exited with {self.process.returncode}: "
                    f"{last_line(log_path, log_start) or 'no output'} (log: {log_path})"
                )
            if api_healthy(self.api_url, timeout=1.0):
                return self.api_url
            time.sleep(0.25)
        self.stop()
        raise PrefectServerError(f"prefect server not healthy after {timeout:.0f}s ({log_path})")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def discover_api_url(settings: Settings) -> str | None:
    """The Prefect API to use: PREFECT_API_URL, else the Prefect Cloud workspace named by
    PREFECT_WORKSPACE (with PREFECT_API_KEY), else a running `contexten server`; or None."""
    if settings.prefect_api_url:
        return settings.prefect_api_url
    workspace = settings.prefect_workspace_api_url
    if workspace is not None and settings.prefect_api_key is not None:
        return workspace
    record = read_server_record(settings)
    if record and api_healthy(record["api_url"]):
        return record["api_url"]
    return None
