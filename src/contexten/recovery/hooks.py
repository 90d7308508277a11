"""What the layers above lend recovery, registered at run time so recovery never imports
them: `contexten server` registers itself as the supervisor that can restart components;
`contexten.orchestration` registers how to run a workflow in this process and how to find a
`contexten server` running elsewhere on this machine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from contexten.config import Settings
from contexten.store.db import Store


@runtime_checkable
class ComponentRestarter(Protocol):
    """What `contexten server` (orchestration.supervisor.Supervisor) offers the manager.

    Components: "prefect-server", "runner" (serves the deployments), "webhook" (the
    receiver). The manager calls `restart` only when AUTO_RESTART_ENABLED is true, then
    reads `component_status` ("running" or "dead").
    """

    def component_status(self) -> dict[str, str]: ...

    def restart(self, component: str) -> bool: ...


_supervisor: ComponentRestarter | None = None


def register_supervisor(supervisor: ComponentRestarter | None) -> None:
    """`contexten server` registers itself so recoveries in its process can restart parts."""
    global _supervisor
    _supervisor = supervisor


def current_supervisor() -> ComponentRestarter | None:
    return _supervisor


InProcessRunner = Callable[[str, Mapping[str, Any], Settings, Store], Awaitable[bool]]
SupervisorFinder = Callable[[Settings], "ComponentRestarter | None"]
_in_process_runner: InProcessRunner | None = None
_supervisor_finder: SupervisorFinder | None = None


def register_orchestration(runner: InProcessRunner, finder: SupervisorFinder) -> None:
    global _in_process_runner, _supervisor_finder
    _in_process_runner, _supervisor_finder = runner, finder


def in_process_runner() -> InProcessRunner | None:
    """How to run a workflow in this process (None until orchestration is imported)."""
    return _in_process_runner


def supervisor_finder() -> SupervisorFinder | None:
    """How to find a `contexten server` on this machine (None until orchestration is imported)."""
    return _supervisor_finder
