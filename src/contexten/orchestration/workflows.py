"""The workflow types, their parameters and limits: `contexten.catalog`, under the name the
API documents."""

from __future__ import annotations

from contexten.catalog import (
    REGISTRY,
    AlertManagementParameters,
    AutonomousWorkflowType,
    CodegenTaskParameters,
    DependencyManagementParameters,
    FailureAnalysisParameters,
    GithubAutomationParameters,
    HealthCheckParameters,
    LinearSyncParameters,
    PerformanceMonitoringParameters,
    ReleaseManagementParameters,
    Schedule,
    SecurityAuditParameters,
    SystemRecoveryParameters,
    TestOptimizationParameters,
    WorkflowOptimizationParameters,
    WorkflowParameterError,
    WorkflowParameters,
    WorkflowSpec,
    parse_workflow_type,
    validate_parameters,
)

__all__ = [
    "REGISTRY",
    "AlertManagementParameters",
    "AutonomousWorkflowType",
    "CodegenTaskParameters",
    "DependencyManagementParameters",
    "FailureAnalysisParameters",
    "GithubAutomationParameters",
    "HealthCheckParameters",
    "LinearSyncParameters",
    "PerformanceMonitoringParameters",
    "ReleaseManagementParameters",
    "Schedule",
    "SecurityAuditParameters",
    "SystemRecoveryParameters",
    "TestOptimizationParameters",
    "WorkflowOptimizationParameters",
    "WorkflowParameterError",
    "WorkflowParameters",
    "WorkflowSpec",
    "parse_workflow_type",
    "validate_parameters",
]
