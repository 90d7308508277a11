"""Orchestration: the 13 workflow types and the Prefect-backed orchestrator.

Importing this package does not import Prefect; flows and deployments load on demand.
"""

from __future__ import annotations

from contexten.orchestration import hooks
from contexten.orchestration.orchestrator import (
    InitializeReport,
    OrchestratorError,
    PrefectOrchestrator,
    WorkflowStatus,
)
from contexten.orchestration.workflows import (
    REGISTRY,
    AutonomousWorkflowType,
    WorkflowParameterError,
    WorkflowSpec,
    validate_parameters,
)

hooks.register()

__all__ = [
    "REGISTRY",
    "AutonomousWorkflowType",
    "InitializeReport",
    "OrchestratorError",
    "PrefectOrchestrator",
    "WorkflowParameterError",
    "WorkflowSpec",
    "WorkflowStatus",
    "validate_parameters",
]
