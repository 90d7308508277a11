"""Components die with `contexten server`: the tether in each child, and the next server
killing what a killed one left running (children.json)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from contexten.orchestration.supervisor import CHILDREN_FILE, reap_orphans, record_children

# A component with a descendant in a session of its own (as the runner's flow runs, or
# Prefect's services): it writes both PIDs, then sleeps.
COMPONENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    grandchild = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    with open(os.environ["PIDS_FILE"] + ".tmp", "w") as out:
        out.write(f"{os.getpid()} {grandchild.pid}")
    os.replace(os.environ["PIDS_FILE"] + ".tmp", os.environ["PIDS_FILE"])
    time.sleep(120)
    """
)

# The parent: starts the component through the tether (as the supervisor does), then sleeps.
PARENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    env = {**os.environ, "CONTEXTEN_TETHER_PID": str(os.getpid())}
    subprocess.Popen(
        [sys.executable, "-m", "contexten.tether", "component_tree"],
        env=env,
        start_new_session=True,
    )
    time.sleep(120)
    """
)


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not after {timeout:.0f} s")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _component_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "component_tree.py").write_text(COMPONENT)
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), src]),
        "PIDS_FILE": str(tmp_path / "pids"),
    }


def _pids(tmp_path: Path) -> list[int]:
    _wait_for((tmp_path / "pids").exists, 60, "the component started")
    return [int(p) for p in (tmp_path / "pids").read_text().split()]


def test_a_tethered_component_and_its_descendants_die_with_a_killed_parent(
    tmp_path: Path,
) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], env=_component_env(tmp_path))
    try:
        component, grandchild = _pids(tmp_path)
        assert not _gone(component) and not _gone(grandchild)
        parent.send_signal(signal.SIGKILL)  # kill -9: no handler runs in the parent
        parent.wait(timeout=10)
        _wait_for(lambda: _gone(component) and _gone(grandchild), 30, "the tree died")
    finally:
        parent.kill()
        parent.wait(timeout=10)
        for pid in _pids(tmp_path):
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_without_a_parent_pid_the_module_just_runs(tmp_path: Path) -> None:
    (tmp_path / "says_hello.py").write_text("import sys\nprint('hello', sys.argv[1:])\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("CONTEXTEN_TETHER_PID", None)
    done = subprocess.run(
        [sys.executable, "-m", "contexten.tether", "says_hello", "a", "--b"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello ['a', '--b']"


def test_the_next_server_kills_what_a_killed_one_left_and_nothing_else(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # An orphan component (its parent died before its tether noticed) with a descendant.
    orphan = subprocess.Popen(
        [sys.executable, "-c", COMPONENT], env=_component_env(tmp_path), start_new_session=True
    )
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        component, grandchild = _pids(tmp_path)
        record_children(home, {"runner": component, "webhook": bystander.pid})
        records = json.loads((home / CHILDREN_FILE).read_text())
        # The bystander's PID was reused by an unrelated process: another start time.
        records["webhook"]["started"] -= 1000.0
        (home / CHILDREN_FILE).write_text(json.dumps(records))

        killed = reap_orphans(home)

        assert sorted(killed) == sorted([component, grandchild])
        orphan.wait(timeout=10)
        _wait_for(lambda: _gone(grandchild), 30, "the descendant died")
        assert bystander.poll() is None  # not ours: untouched
        assert not (home / CHILDREN_FILE).exists()
        assert reap_orphans(home) == []  # nothing recorded any more
    finally:
        for process in (orphan, bystander):
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize("content", ["", "not json", '{"runner": {"pid": "x"}}'])
def test_a_damaged_record_kills_nothing(tmp_path: Path, content: str) -> None:
    (tmp_path / CHILDREN_FILE).write_text(content)
    assert reap_orphans(tmp_path) == []
