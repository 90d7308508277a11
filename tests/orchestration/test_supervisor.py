"""The `contexten server` supervisor: dead components, restarts, cross-process requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.config import Settings
from contexten.orchestration.prefect_server import write_server_record
from contexten.orchestration.supervisor import (
    ChildComponent,
    RemoteSupervisor,
    Supervisor,
    restart_request_path,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def make_supervisor(home: Path, *, auto_restart: bool) -> Supervisor:
    settings = Settings(contexten_home=home, auto_restart_enabled=auto_restart)
    supervisor = Supervisor(settings)
    supervisor.children["runner"] = ChildComponent(
        "runner", SLEEPER, dict(os.environ), home / "logs" / "runner.log"
    )
    supervisor.children["runner"].start()
    return supervisor


@pytest.fixture
def supervisors(tmp_path: Path) -> Iterator[list[Supervisor]]:
    made: list[Supervisor] = []
    yield made
    for supervisor in made:
        supervisor.stop()


def kill(child: ChildComponent) -> None:
    assert child.process is not None
    child.process.kill()
    child.process.wait(timeout=10)


def test_dead_component_restarted_when_enabled(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    supervisor = make_supervisor(tmp_path, auto_restart=True)
    supervisors.append(supervisor)
    kill(supervisor.children["runner"])
    assert supervisor.check_once() == ["prefect-server", "runner"]
    assert supervisor.children["runner"].alive()
    assert supervisor.children["runner"].restarts == 1


def test_dead_component_reported_not_restarted_when_disabled(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    supervisor = make_supervisor(tmp_path, auto_restart=False)
    supervisors.append(supervisor)
    kill(supervisor.children["runner"])
    assert "runner" in supervisor.check_once()
    assert not supervisor.children["runner"].alive()
    status = json.loads((tmp_path / "components.json").read_text())
    assert status["runner"] == "dead"


def test_dead_component_logged_once_and_announced_with_its_last_log_line(
    tmp_path: Path, supervisors: list[Supervisor], caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(contexten_home=tmp_path, auto_restart_enabled=False)
    supervisor = Supervisor(settings)
    supervisors.append(supervisor)
    log_path = tmp_path / "logs" / "webhook.log"
    crash = "import sys; print('starting'); print('contexten: error: bad config'); sys.exit(2)"
    child = ChildComponent("webhook", [sys.executable, "-c", crash], dict(os.environ), log_path)
    supervisor.children["webhook"] = child
    child.start()
    assert child.process is not None
    child.process.wait(timeout=30)
    with caplog.at_level("ERROR", logger="contexten.server"):
        for _ in range(3):
            assert "webhook" in supervisor.check_once()
    died = [r for r in caplog.records if "component webhook died" in r.getMessage()]
    assert len(died) == 1
    notice = supervisor.death_notice("webhook")
    assert notice == (
        f"contexten: component webhook is dead: contexten: error: bad config (log: {log_path})"
    )


def test_remote_restart_request_is_consumed(tmp_path: Path, supervisors: list[Supervisor]) -> None:
    supervisor = make_supervisor(tmp_path, auto_restart=True)
    supervisors.append(supervisor)
    write_server_record(supervisor.settings, "http://127.0.0.1:9/api", "", os.getpid())
    supervisor.write_components()
    remote = RemoteSupervisor.discover(supervisor.settings)
    assert remote is not None
    remote.timeout = 20
    old_pid = supervisor.children["runner"].process.pid  # type: ignore[union-attr]
    result: list[bool] = []
    asker = threading.Thread(target=lambda: result.append(remote.restart("runner")))
    asker.start()
    for _ in range(100):
        if restart_request_path(tmp_path, "runner").exists():
            break
        threading.Event().wait(0.05)
    supervisor.check_once()
    asker.join(timeout=30)
    assert result == [True]
    assert supervisor.children["runner"].process.pid != old_pid  # type: ignore[union-attr]
    assert not restart_request_path(tmp_path, "runner").exists()


def test_stop_clears_records(tmp_path: Path) -> None:
    supervisor = make_supervisor(tmp_path, auto_restart=False)
    write_server_record(supervisor.settings, "http://127.0.0.1:9/api", "", os.getpid())
    supervisor.write_components()
    supervisor.stop()
    assert not (tmp_path / "server.json").exists()
    assert not (tmp_path / "components.json").exists()
    assert not supervisor.children["runner"].alive()


def _healthy_api() -> tuple[str, object]:
    """A local HTTP server whose /api/health answers 200, like a running Prefect server."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/api", server


def test_second_server_for_the_same_home_is_refused(tmp_path: Path) -> None:
    from contexten.orchestration.supervisor import SupervisorError, running_server

    api_url, http = _healthy_api()
    other = subprocess.Popen(SLEEPER)  # the first server's process
    try:
        settings = Settings(contexten_home=tmp_path)
        write_server_record(settings, api_url, "", other.pid)
        assert running_server(settings) is not None
        second = Supervisor(settings)
        with pytest.raises(SupervisorError, match=f"already runs for .*pid {other.pid}"):
            second.start()
        second.stop()  # as `contexten server` does after a failed start
        assert (tmp_path / "server.json").exists()  # the first server's record is kept
    finally:
        other.kill()
        other.wait(10)
        http.shutdown()  # type: ignore[attr-defined]
    assert running_server(settings) is None  # a record of a dead process is stale


HOLD_LOCK = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from contexten.orchestration.supervisor import HomeLock\n"
    "HomeLock(Path(sys.argv[1])).acquire()\n"
    "print('locked', flush=True)\n"
    "time.sleep(120)\n"
)


def _hold_lock(home: Path) -> subprocess.Popen[str]:
    """Another process (a first server) holding the home's lock."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_home_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    from contexten.orchestration.supervisor import HomeLock, HomeLockedError

    holder = _hold_lock(tmp_path)
    try:
        with pytest.raises(HomeLockedError) as refused:
            HomeLock(tmp_path).acquire()
        assert refused.value.pid == holder.pid
        assert f"pid {holder.pid}" in str(refused.value)
    finally:
        holder.kill()
        holder.wait(10)
    # The kernel drops the lock with its holder, even killed: the file left behind is stale.
    lock = HomeLock(tmp_path)
    lock.acquire()
    assert lock.held and lock.holder_pid() == os.getpid()
    lock.release()
    assert not lock.held and lock.holder_pid() is None


def test_second_supervisor_starts_nothing_while_the_lock_is_held(tmp_path: Path) -> None:
    from contexten.orchestration.supervisor import HomeLockedError

    holder = _hold_lock(tmp_path)
    try:
        settings = Settings(contexten_home=tmp_path)
        write_server_record(settings, "http://127.0.0.1:9/api", "", holder.pid)
        (tmp_path / "components.json").write_text("{}")
        second = Supervisor(settings)
        with pytest.raises(HomeLockedError, match=f"pid {holder.pid}"):
            second.start()
        assert second.prefect is None and second.children == {}
        assert not (tmp_path / "contexten.db").exists()  # not even the store was migrated
        second.stop()
        # the first server's records are kept
        assert (tmp_path / "server.json").exists() and (tmp_path / "components.json").exists()
    finally:
        holder.kill()
        holder.wait(10)


def test_server_command_exits_2_naming_the_lock_holder(
    contexten_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import signal

    from contexten.cli import main

    holder = _hold_lock(contexten_home)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert main(["server", "--no-webhook", "--port", "0"]) == 2
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        holder.kill()
        holder.wait(10)
    err = capsys.readouterr().err
    assert err.startswith("contexten: error: a contexten server already runs for")
    assert f"pid {holder.pid}" in err
