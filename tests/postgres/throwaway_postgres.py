"""A throw-away PostgreSQL server in a temp dir, on 127.0.0.1 (tests and benchmarks).

    server = ThrowawayPostgres.start()      # PostgresUnavailable when it cannot
    url = server.create_database("store")   # postgresql+psycopg://postgres@127.0.0.1:P/store
    server.stop()

`initdb` refuses to run as root, so as root the server runs as the `postgres` OS user
(created by the distribution's package) over a temp dir chowned to it. Authentication is
`trust` on loopback only: the server never listens beyond 127.0.0.1 and its unix socket
lives in the temp dir. fsync is off: the data is thrown away.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_START_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be started here; the message says why (for a skip)."""


def find_binaries() -> tuple[Path, Path] | None:
    """(initdb, pg_ctl) of the newest installed PostgreSQL, or None."""
    candidates: list[Path] = []
    for found in (shutil.which("initdb"), shutil.which("pg_ctl")):
        if found:
            candidates.append(Path(found).resolve().parent)
    # Debian/Ubuntu keep the server binaries off PATH, one directory per major version.
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(Path(p) for p in debian)
    candidates.extend(Path(p) for p in sorted(glob.glob("/usr/pgsql-*/bin"), reverse=True))
    for directory in candidates:
        initdb, pg_ctl = directory / "initdb", directory / "pg_ctl"
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as_prefix(base: Path) -> list[str]:
    """The command prefix to run the server as a non-root user ([] when not root)."""
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresUnavailable(
            "running as root and there is no 'postgres' OS user to run PostgreSQL as"
        ) from None
    os.chown(base, user.pw_uid, user.pw_gid)
    os.chmod(base, 0o700)
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SUPERUSER, "--"]
    su = shutil.which("su")
    if su is None:
        raise PostgresUnavailable("running as root and neither runuser nor su is available")
    return [su, SUPERUSER, "-s", "/bin/sh", "-c", '"$0" "$@"']


def _server_env() -> dict[str, str]:
    # A small, predictable environment: no PG* variables from the caller leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _tail(path: Path, chars: int = 600) -> str:
    try:
        return path.read_text(errors="replace")[-chars:].strip()
    except OSError:
        return ""


@dataclass
class ThrowawayPostgres:
    """A running server; `stop()` ends it and removes its directory."""

    base: Path
    port: int
    pg_ctl: Path
    prefix: list[str]
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        return self.base / "postgres.log"

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        """A SQLAlchemy URL: driver `psycopg` for our store, `asyncpg` for Prefect."""
        return f"postgresql+{driver}://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @classmethod
    def start(cls, *, max_connections: int = 200, timeout: float = 60.0) -> ThrowawayPostgres:
        binaries = find_binaries()
        if binaries is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found; install the "
                "distribution's package, e.g. `apt-get install postgresql`"
            )
        initdb, pg_ctl = binaries
        # Not "contexten-…": resource cleanup removes such entries of the system temp dir.
        base = Path(tempfile.mkdtemp(prefix="throwaway-pg-"))
        try:
            prefix = _run_as_prefix(base)
            env = _server_env()
            result = subprocess.run(
                [
                    *prefix,
                    str(initdb),
                    "-D",
                    str(base / "data"),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=base,
            )
            if result.returncode != 0:
                detail = (result.stderr or result.stdout).strip().splitlines()[-1:]
                raise PostgresUnavailable(f"initdb failed: {' '.join(detail) or 'no output'}")
            server = cls(base=base, port=0, pg_ctl=pg_ctl, prefix=prefix)
            server._start_on_free_port(max_connections, timeout, env)
            return server
        except PostgresUnavailable:
            shutil.rmtree(base, ignore_errors=True)
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(base, ignore_errors=True)
            raise PostgresUnavailable(f"cannot start PostgreSQL: {exc}") from exc

    def _start_on_free_port(
        self, max_connections: int, timeout: float, env: dict[str, str]
    ) -> None:
        problem = ""
        for _ in range(_START_ATTEMPTS):
            self.port = _free_port()
            options = (
                f"-h {self.host} -p {self.port} -k {self.base} "
                f"-c max_connections={max_connections} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            result = subprocess.run(
                [
                    *self.prefix,
                    str(self.pg_ctl),
                    "-D",
                    str(self.data_dir),
                    "-o",
                    options,
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "start",
                ],
                capture_output=True,
                text=True,
                timeout=timeout + 10,
                env=env,
                cwd=self.base,
            )
            if result.returncode == 0:
                return
            problem = _tail(self.log_path) or (result.stderr or result.stdout).strip()
        raise PostgresUnavailable(f"pg_ctl start failed: {problem[-400:]}")

    def create_database(self, name: str) -> str:
        """Create database `name` (lower-case identifier); return its psycopg URL."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown: disconnects clients) and remove its files."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [
                    *self.prefix,
                    str(self.pg_ctl),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                timeout=60,
                env=_server_env(),
                cwd=self.base,
            )
        shutil.rmtree(self.base, ignore_errors=True)
