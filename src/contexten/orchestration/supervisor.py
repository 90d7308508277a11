"""`contexten server`: start and supervise the embedded components as child processes.

Components: the Prefect server (loopback, its own home and SQLite under CONTEXTEN_HOME),
the runner serving all deployments, and the webhook receiver with its dispatcher. A dead
component is restarted only when AUTO_RESTART_ENABLED; otherwise it is reported and the
others keep running. SIGINT/SIGTERM stop everything in reverse order.

Each component runs in its own session (stopping it stops its process group) and through
`contexten.tether`, so it dies with the server even when the server is killed with -9.
Their PIDs are kept in CONTEXTEN_HOME/children.json: the next server, once it holds the
home's lock, kills whatever of them is still alive before it starts anything.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from contexten.config import Settings
from contexten.orchestration.prefect_server import (
    TETHER_ENV,
    PrefectServerProcess,
    api_healthy,
    clear_server_record,
    last_line,
    read_server_record,
    write_server_record,
)

logger = logging.getLogger("contexten.server")


class SupervisorError(Exception):
    """A component could not be started."""


class HomeLockedError(SupervisorError):
    """Another `contexten server` holds the lock on this CONTEXTEN_HOME."""

    def __init__(self, home: Path, pid: int | None) -> None:
        self.home = home
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "another process"
        super().__init__(
            f"a contexten server already runs for {home} ({holder} holds {home / LOCK_FILE}): "
            "use it, or stop it first"
        )


LOCK_FILE = "server.lock"
CHILDREN_FILE = "children.json"


def tethered(module: str, *args: str) -> list[str]:
    """The argv running `python -m module args` that dies with this process (see tether)."""
    return [sys.executable, "-m", "contexten.tether", module, *args]


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def record_children(home: Path, pids: dict[str, int]) -> None:
    """Remember the components' PIDs (with their start times, against PID reuse)."""
    records = {
        name: {"pid": pid, "started": started}
        for name, pid in pids.items()
        if (started := _process_started(pid)) is not None
    }
    path = home / CHILDREN_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(records))
    temporary.replace(path)


def reap_orphans(home: Path, timeout: float = 15.0) -> list[int]:
    """Kill the components (and their descendants) a previous server left running: it
    died without stopping them (kill -9) and they have not noticed yet. Only processes
    whose PID and start time match the record are touched. Returns the PIDs killed."""
    import psutil

    from contexten.tether import kill_tree

    path = home / CHILDREN_FILE
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        records = {}
    killed: list[int] = []
    for record in records.values() if isinstance(records, dict) else []:
        try:
            pid, started = int(record["pid"]), float(record["started"])
        except (KeyError, TypeError, ValueError):
            continue
        if pid == os.getpid() or _process_started(pid) != started:
            continue  # gone, or the PID now belongs to another process
        killed.extend(kill_tree(pid))
    alive = []
    for pid in killed:
        try:
            alive.append(psutil.Process(pid))
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=timeout)
    if killed:
        logger.warning("killed %d process(es) a killed server left running", len(killed))
    path.unlink(missing_ok=True)
    return killed


class HomeLock:
    """An exclusive OS lock (flock) on CONTEXTEN_HOME/server.lock, held for the server's life.

    The kernel drops the lock when the process dies however it dies, so a stale file never
    blocks a restart. The holder writes its PID into the file so a refused second server
    can name it. The descriptor is not inherited by the child components (close_fds).
    """

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        import fcntl

        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise HomeLockedError(self.path.parent, self.holder_pid()) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def holder_pid(self) -> int | None:
        """The PID written by the holder (None when unreadable or not yet written)."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        import fcntl

        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


@dataclass
class ChildComponent:
    """A supervised child process started from an argv."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def last_log_line(self) -> str:
        """The last non-empty line of the component's log: usually why it died."""
        return last_line(self.log_path)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@dataclass
class Supervisor:
    settings: Settings
    port: int = 4200
    with_webhook: bool = True
    webhook_insecure: bool = False
    prefect: PrefectServerProcess | None = None
    children: dict[str, ChildComponent] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    reported_dead: set[str] = field(default_factory=set)  # logged once, not every check
    lock: HomeLock | None = None

    @property
    def home(self) -> Path:
        return self.settings.data_dir

    def child_env(self, api_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                TETHER_ENV: str(os.getpid()),  # components die with this process
                "PREFECT_API_URL": api_url,
                "PREFECT_HOME": str(self.settings.prefect_home),
                "CONTEXTEN_HOME": str(self.home),
                # Event-driven latency: poll for scheduled runs every second, not every 10.
                "PREFECT_RUNNER_POLL_FREQUENCY": env.get("PREFECT_RUNNER_POLL_FREQUENCY", "1"),
                "PREFECT_LOGGING_LEVEL": env.get("PREFECT_LOGGING_LEVEL", "WARNING"),
            }
        )
        from contexten.orchestration.deploy import heartbeat_env

        for name, value in heartbeat_env().items():  # flow runs send heartbeats
            env.setdefault(name, value)
        return env

    def start(self) -> str:
        from contexten.store.db import open_store

        # The lock comes first: two servers on one home would share Prefect's SQLite file,
        # server.json and the deployments. Nothing is started or migrated without it.
        self.lock = HomeLock(self.home)
        self.lock.acquire()
        other = running_server(self.settings)
        if other is not None:
            # Two servers on one home would share Prefect's SQLite file and server.json.
            raise SupervisorError(
                f"a contexten server already runs for {self.home} (pid {other.get('pid')}, "
                f"{other.get('api_url')}): use it, or stop it first"
            )
        # A server killed with -9 held this lock; what it started may still be dying.
        reap_orphans(self.home)
        open_store(self.settings.effective_database_url)  # migrate before anything runs
        self.prefect = PrefectServerProcess(
            home=self.settings.prefect_home, port=self.port, tether_to=os.getpid()
        )
        api_url = self.prefect.start()
        self.record_children()
        env = self.child_env(api_url)
        logs = self.home / "logs"
        # Without the receiver no dispatcher takes over the runs of dead processes:
        # the runner does (the same sweep).
        runner_args = () if self.with_webhook else ("--sweep",)
        self.children["runner"] = ChildComponent(
            "runner",
            tethered("contexten.orchestration.runner", *runner_args),
            env,
            logs / "runner.log",
        )
        if self.with_webhook:
            argv = tethered("contexten.cli", "webhook", "serve")
            if self.webhook_insecure:
                argv.append("--insecure")
            # The dispatcher runs flows in its own warm process (tracked by the server):
            # no subprocess per run, so a failed run is acted on within a second or two.
            webhook_env = {**env, "DISPATCH_MODE": env.get("DISPATCH_MODE", "local")}
            self.children["webhook"] = ChildComponent(
                "webhook", argv, webhook_env, logs / "webhook.log"
            )
        for child in self.children.values():
            child.start()
        write_server_record(self.settings, api_url, self.prefect.ui_url, os.getpid())
        self.write_components()
        return api_url

    def component_status(self) -> dict[str, str]:
        status = {"prefect-server": "running" if self.prefect and self.prefect.alive() else "dead"}
        for name, child in self.children.items():
            status[name] = "running" if child.alive() else "dead"
        return status

    def write_components(self) -> None:
        path = self.home / "components.json"
        path.write_text(json.dumps(self.component_status()))
        self.record_children()

    def record_children(self) -> None:
        pids = {
            name: child.process.pid
            for name, child in self.children.items()
            if child.process is not None and child.alive()
        }
        if self.prefect is not None and self.prefect.process is not None and self.prefect.alive():
            pids["prefect-server"] = self.prefect.process.pid
        if self.lock is not None and self.lock.held:
            record_children(self.home, pids)

    def restart(self, component: str) -> bool:
        """Restart one component (the recovery manager's system-restart strategy)."""
        if component == "prefect-server" and self.prefect is not None:
            self.prefect.stop()
            self.prefect.start()
            return True
        child = self.children.get(component)
        if child is None:
            return False
        child.stop()
        child.start()
        child.restarts += 1
        return True

    def check_once(self) -> list[str]:
        """Find dead components; restart them when AUTO_RESTART_ENABLED. Returns the dead."""
        if self.settings.auto_restart_enabled:
            consume_restart_requests(self)
        dead = [name for name, state in self.component_status().items() if state == "dead"]
        for name in dead:
            if self.settings.auto_restart_enabled:
                logger.warning("component %s died; restarting", name)
                self.restart(name)
            elif name not in self.reported_dead:
                logger.error("component %s died (AUTO_RESTART_ENABLED is false)", name)
        self.reported_dead = set() if self.settings.auto_restart_enabled else set(dead)
        self.write_components()
        return dead

    def death_notice(self, name: str) -> str:
        """One line for the console: which component died, its last log line, its log."""
        child = self.children.get(name)
        if child is None:
            return f"contexten: component {name} is dead"
        last = child.last_log_line()
        reason = f": {last}" if last else ""
        return f"contexten: component {name} is dead{reason} (log: {child.log_path})"

    def run_forever(self, interval: float = 2.0) -> None:
        reported: set[str] = set()
        while not self.stopping.wait(interval):
            dead = set(self.check_once())
            for name in sorted(dead - reported):
                print(self.death_notice(name), file=sys.stderr)
            reported = dead if not self.settings.auto_restart_enabled else set()

    def stop(self) -> None:
        self.stopping.set()
        for child in reversed(list(self.children.values())):
            child.stop()
        if self.prefect is not None:
            self.prefect.stop()
        record = read_server_record(self.settings)
        refused = self.lock is not None and not self.lock.held  # another server holds it
        if not refused and (record is None or record.get("pid") in (None, os.getpid())):
            clear_server_record(self.settings)  # never another server's records
            (self.home / "components.json").unlink(missing_ok=True)
            if self.lock is not None and self.lock.held:
                (self.home / CHILDREN_FILE).unlink(missing_ok=True)
        if self.lock is not None:
            self.lock.release()


def running_server(settings: Settings) -> dict[str, str] | None:
    """The record of another live `contexten server` for this CONTEXTEN_HOME, or None."""
    record = read_server_record(settings)
    if record is None:
        return None
    try:
        pid = int(record.get("pid", 0))
        if pid <= 0 or pid == os.getpid():
            return None
        os.kill(pid, 0)  # raises when no such process: a stale record
    except (ValueError, TypeError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # alive, owned by another user
    return record if api_healthy(record["api_url"]) else None


CONTROL_DIR = "control"


def restart_request_path(home: Path, component: str) -> Path:
    return home / CONTROL_DIR / f"restart-{component}.request"


def consume_restart_requests(supervisor: Supervisor) -> list[str]:
    """Restart the components other processes asked for (flow runs live in child processes)."""
    control = supervisor.home / CONTROL_DIR
    done = []
    for request in sorted(control.glob("restart-*.request")) if control.is_dir() else []:
        component = request.name.removeprefix("restart-").removesuffix(".request")
        if supervisor.restart(component):
            done.append(component)
        request.unlink(missing_ok=True)
    if done:
        supervisor.write_components()
    return done


@dataclass
class RemoteSupervisor:
    """A ComponentRestarter (recovery.manager) for a process that is not `contexten server`.

    It reads the components.json the server keeps and asks for restarts through request
    files in CONTEXTEN_HOME/control, which the server's loop consumes.
    """

    home: Path
    timeout: float = 30.0

    @classmethod
    def discover(cls, settings: Settings) -> RemoteSupervisor | None:
        from contexten.orchestration.prefect_server import read_server_record

        record = read_server_record(settings)
        if record is None or not (settings.data_dir / "components.json").exists():
            return None
        return cls(settings.data_dir)

    def component_status(self) -> dict[str, str]:
        try:
            data = json.loads((self.home / "components.json").read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def restart(self, component: str) -> bool:
        path = restart_request_path(self.home, component)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(os.getpid()))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not path.exists():
                return self.component_status().get(component) == "running"
            time.sleep(0.2)
        path.unlink(missing_ok=True)
        return False
