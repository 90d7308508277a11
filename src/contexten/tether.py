"""Run a module as `python -m MODULE ARGS...` would, dying with the process that started it.

    python -m contexten.tether MODULE [ARGS...]      (CONTEXTEN_TETHER_PID = the parent)

`contexten server` starts its components (the Prefect server, the runner, the receiver)
each in its own session, so that stopping one stops its whole process group; a session of
its own also means a kill -9 of the server would leave them running, holding the port and
the SQLite files. Through this wrapper a daemon thread in each component watches the
parent: once it is gone (however it died) the component kills its own descendants (also
those in sessions of their own, such as the runner's flow-run processes) and itself, as a
kill -9 of the whole tree would. Only the standard library and psutil: nothing else of
contexten is imported before MODULE runs.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

PARENT_ENV = "CONTEXTEN_TETHER_PID"
POLL_SECONDS = 0.5


def parent_gone(parent: int) -> bool:
    """True once `parent` is no longer this process's parent (it died; we were re-parented)."""
    return os.getppid() != parent


def kill_tree(pid: int, *, include_self: bool = True) -> list[int]:
    """SIGKILL the descendants of `pid` (deepest first), then `pid` itself; the PIDs hit."""
    import psutil

    try:
        root = psutil.Process(pid)
        descendants = root.children(recursive=True)
    except psutil.Error:
        return []
    hit = []
    for process in reversed(descendants):
        try:
            process.kill()
            hit.append(process.pid)
        except psutil.Error:
            continue
    if include_self:
        try:
            root.kill()
            hit.append(pid)
        except psutil.Error:
            pass
    return hit


def watch(parent: int, poll: float = POLL_SECONDS) -> None:
    """Block until `parent` is gone, then kill this process's tree (this process last)."""
    while not parent_gone(parent):
        time.sleep(poll)
    print(f"contexten: parent {parent} is gone; stopping with it", file=sys.stderr, flush=True)
    kill_tree(os.getpid(), include_self=False)
    os.kill(os.getpid(), signal.SIGKILL)


def start_watching(parent: int | None = None) -> threading.Thread | None:
    """Watch `parent` (default: CONTEXTEN_TETHER_PID) from a daemon thread; None if unset."""
    if parent is None:
        value = os.environ.get(PARENT_ENV, "")
        if not value.isdigit():
            return None
        parent = int(value)
    thread = threading.Thread(target=watch, args=(parent,), name="contexten-tether", daemon=True)
    thread.start()
    return thread


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m contexten.tether MODULE [ARGS...]", file=sys.stderr)
        return 2
    module, args = argv[0], argv[1:]
    start_watching()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
