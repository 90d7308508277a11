"""Internal events: what a workflow run found, as deliveries in the same inbox as webhooks.

A workflow's outcome emits events (`diagnosis.created`, `diagnosis.auto_fix`,
`health.unhealthy`, `regression.detected`; the alert manager emits `alert.firing` and
`alert.resolved`). Each is recorded in the durable inbox under a delivery id derived from
its idempotency key, so the same outcome recorded twice (a retried run, a re-delivered
webhook) is one delivery, and the dispatcher routes it with the same rules as a GitHub
webhook (`contexten webhook routes` lists them; ROUTING_RULES_FILE changes them).

The payloads look like GitHub's where they can (`repository.full_name`, `workflow_run.id`),
so rules read them the same way. The builders are pure; `emit` writes through the
inbox repository. Which events a finished run asks for (reading the store for the
recovery budget and the circuits) is `contexten.orchestration.outcome_events`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contexten.store.db import Store
from contexten.store.inbox import Inbox, NewDelivery

logger = logging.getLogger("contexten.monitoring.internal_events")

DIAGNOSIS_CREATED = "diagnosis.created"
DIAGNOSIS_AUTO_FIX = "diagnosis.auto_fix"
ALERT_FIRING = "alert.firing"
ALERT_RESOLVED = "alert.resolved"
HEALTH_UNHEALTHY = "health.unhealthy"
REGRESSION_DETECTED = "regression.detected"
INTERNAL_EVENTS = (
    DIAGNOSIS_CREATED,
    DIAGNOSIS_AUTO_FIX,
    ALERT_FIRING,
    ALERT_RESOLVED,
    HEALTH_UNHEALTHY,
    REGRESSION_DETECTED,
)
DELIVERY_PREFIX = "internal:"
# Components a recovery can act on (see recovery.manager.failures_from_health).
RESOURCE_COMPONENTS = frozenset({"cpu", "memory", "disk"})
NOT_RECOVERABLE = frozenset({"workers", "error_rate"})


@dataclass(frozen=True, slots=True)
class InternalEvent:
    """One event to record: its name, idempotency key and GitHub-like payload."""

    name: str
    key: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    repository: str | None = None
    action: str | None = None

    @property
    def delivery_id(self) -> str:
        """Stable for a key, short enough for the inbox column (100 characters)."""
        digest = hashlib.sha256(f"{self.name}\0{self.key}".encode()).hexdigest()[:32]
        return f"{DELIVERY_PREFIX}{self.name}:{digest}"


def is_internal(delivery_id: str) -> bool:
    return delivery_id.startswith(DELIVERY_PREFIX)


def _source(workflow_type: str, run_id: str) -> dict[str, str]:
    return {"workflow_type": workflow_type, "run_id": run_id}


def _repo(name: str | None) -> dict[str, Any]:
    return {"full_name": name} if name else {}


def diagnosis_events(
    run_id: str, parameters: Mapping[str, Any], data: Mapping[str, Any], *, auto_fix: bool
) -> list[InternalEvent]:
    """failure_analysis: `diagnosis.created` when it escalated (a person should look: the
    Linear issue, the PR comment), `diagnosis.auto_fix` when code fixes go to the agent."""
    decision = str(data.get("decision") or "")
    run = data.get("run") or {}
    jobs = [j for j in data.get("jobs") or [] if isinstance(j, Mapping)]
    if "escalated" not in decision or not isinstance(run, Mapping) or not jobs:
        return []
    repository = run.get("repository")
    run_key = f"{repository}:{run.get('run_id')}:{run.get('run_attempt')}"
    payload: dict[str, Any] = {
        "action": "created",
        "repository": _repo(repository),
        "workflow_run": {
            "id": run.get("run_id"),
            "run_attempt": run.get("run_attempt"),
            "name": run.get("workflow_name"),
            "head_sha": run.get("head_sha"),
            "head_branch": run.get("head_branch"),
            "pull_requests": list(run.get("pull_requests") or []),
        },
        "decision": decision,
        "diagnoses": [
            {
                "job": j.get("job"),
                "job_id": j.get("job_id"),
                "signature": j.get("signature"),
                "category": j.get("category"),
                "transient": bool(j.get("transient")),
            }
            for j in jobs
        ],
        "source": _source("failure_analysis", run_id),
    }
    events = [InternalEvent(DIAGNOSIS_CREATED, run_key, payload, repository, "created")]
    wants_fix = auto_fix or bool(parameters.get("auto_fix_enabled"))
    if wants_fix and any(not j.get("transient") for j in jobs):
        fix = {**payload, "action": "auto_fix"}
        events.append(InternalEvent(DIAGNOSIS_AUTO_FIX, run_key, fix, repository, "auto_fix"))
    return events


def recoverable_components(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Components of a health report a recovery can act on (as failures_from_health)."""
    found = []
    for component in data.get("components") or []:
        if not isinstance(component, Mapping):
            continue
        name, status = component.get("name"), component.get("status")
        if name in NOT_RECOVERABLE or "disabled since" in str(component.get("detail") or ""):
            continue
        if status == "unhealthy" or (status == "degraded" and name in RESOURCE_COMPONENTS):
            found.append(component)
    return found


def health_events(
    run_id: str,
    data: Mapping[str, Any],
    *,
    budget: int,
    open_circuits: frozenset[str] = frozenset(),
) -> list[InternalEvent]:
    """health_check: one `health.unhealthy` per recoverable component, at most `budget`
    (the recoveries that may still start), skipping integrations whose circuit is open."""
    events: list[InternalEvent] = []
    for component in recoverable_components(data):
        if len(events) >= budget:
            break
        name = str(component.get("name"))
        if name in open_circuits:
            continue
        payload = {
            "action": "unhealthy",
            "component": {
                "name": name,
                "status": component.get("status"),
                "detail": component.get("detail"),
            },
            "health": {"status": data.get("status"), "score": data.get("score")},
            "source": _source("health_check", run_id),
        }
        events.append(InternalEvent(HEALTH_UNHEALTHY, f"{name}:{run_id}", payload))
    return events


def regression_events(
    run_id: str, parameters: Mapping[str, Any], data: Mapping[str, Any]
) -> list[InternalEvent]:
    """performance_monitoring: `regression.detected` when a workflow regressed."""
    regressed = [
        w for w in data.get("workflows") or [] if isinstance(w, Mapping) and w.get("regressed")
    ]
    if not regressed:
        return []
    repository = data.get("repository")
    head_sha = parameters.get("head_sha")
    payload = {
        "action": "detected",
        "repository": _repo(repository),
        "baseline_branch": data.get("baseline_branch"),
        "head_branch": data.get("head_branch"),
        "head_sha": head_sha,
        "workflows": [w.get("workflow") for w in regressed],
        "source": _source("performance_monitoring", run_id),
    }
    key = f"{repository}:{data.get('head_branch')}:{head_sha or run_id}"
    return [InternalEvent(REGRESSION_DETECTED, key, payload, repository, "detected")]


def alert_event(name: str, alert: Mapping[str, Any]) -> InternalEvent:
    """`alert.firing` / `alert.resolved` for an alert record (as AlertView.to_dict)."""
    key = f"{alert.get('id')}:{alert.get('first_seen')}"
    action = name.split(".", 1)[1]
    return InternalEvent(name, key, {"action": action, "alert": dict(alert)}, None, action)


def delivery_of(event: InternalEvent) -> NewDelivery:
    return NewDelivery(
        delivery_id=event.delivery_id,
        event=event.name,
        payload=json.dumps(
            {**event.payload, "idempotency_key": f"{event.name}:{event.key}"}, default=str
        ),
        action=event.action,
        repository=event.repository,
    )


def emit(store: Store, events: Sequence[InternalEvent]) -> list[bool]:
    """Record events in the inbox; True for each that is new (False: already recorded)."""
    if not events:
        return []
    recorded = Inbox(store).insert_many([delivery_of(e) for e in events])
    for event, new in zip(events, recorded, strict=True):
        logger.info("event %s (%s): %s", event.name, event.key, "recorded" if new else "duplicate")
    return recorded
