"""The internal events a finished run's outcome asks for, and emitting them.

The events themselves (names, payloads, delivery ids) and `emit` are
`contexten.monitoring.internal_events`; this module reads what bounds them: the
recoveries already running and the integrations whose circuit is open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contexten.config import Settings
from contexten.monitoring.internal_events import (
    InternalEvent,
    diagnosis_events,
    emit,
    health_events,
    recoverable_components,
    regression_events,
)
from contexten.store.db import Store


def _open_circuits(store: Store) -> frozenset[str]:
    import time

    from contexten.integrations.circuits import load_breaker
    from contexten.monitoring.health import INTEGRATIONS
    from contexten.recovery.policy import breaker_allows

    now = time.time()
    return frozenset(n for n in INTEGRATIONS if not breaker_allows(load_breaker(store, n), now)[0])


def outcome_events(
    settings: Settings,
    store: Store,
    workflow_type: str,
    run_id: str,
    parameters: Mapping[str, Any],
    data: Mapping[str, Any],
) -> list[InternalEvent]:
    """The events a finished run's outcome asks for (reads the store for the bounds)."""
    if workflow_type == "failure_analysis":
        return diagnosis_events(run_id, parameters, data, auto_fix=settings.auto_fix_enabled)
    if workflow_type == "performance_monitoring":
        return regression_events(run_id, parameters, data)
    if workflow_type == "health_check":
        # With auto_recovery the check recovers by itself; otherwise (the schedule) it
        # starts system_recovery through health.unhealthy when RECOVERY_ENABLED.
        if parameters.get("auto_recovery") or not settings.recovery_enabled:
            return []
        if not recoverable_components(data):
            return []
        from contexten.store.loops import running_count

        running = running_count(store, "system_recovery")
        budget = max(0, settings.max_concurrent_recoveries - running)
        return health_events(run_id, data, budget=budget, open_circuits=_open_circuits(store))
    return []


def emit_for_outcome(
    settings: Settings,
    store: Store,
    workflow_type: str,
    run_id: str,
    parameters: Mapping[str, Any],
    data: Mapping[str, Any],
) -> list[str]:
    """Emit what the outcome asks for; the names of the events newly recorded."""
    events = outcome_events(settings, store, workflow_type, run_id, parameters, data)
    return [e.name for e, new in zip(events, emit(store, events), strict=True) if new]
