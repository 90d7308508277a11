from __future__ import annotations

import pytest

from contexten.orchestration.workflows import (
    REGISTRY,
    AutonomousWorkflowType,
    WorkflowParameterError,
    parse_workflow_type,
    validate_parameters,
)

SEED_PARAMETERS = {
    "failure_analysis": {
        "workflow_run_id": 12345,
        "auto_fix_enabled": True,
        "create_pr_for_fixes": False,
    },
    "performance_monitoring": {
        "baseline_branch": "develop",
        "alert_threshold_percent": 15,
        "auto_optimize": True,
    },
    "dependency_management": {
        "update_strategy": "conservative",
        "test_before_merge": False,
        "security_priority": True,
    },
    "health_check": {
        "check_all_integrations": False,
        "auto_recovery": True,
        "alert_on_degradation": False,
    },
}


def test_thirteen_types_each_with_a_spec() -> None:
    assert len(AutonomousWorkflowType) == 13
    assert set(REGISTRY) == set(AutonomousWorkflowType)
    for spec in REGISTRY.values():
        assert spec.description and spec.timeout_seconds > 0
        assert spec.events or spec.schedule, f"{spec.type} has no trigger"


@pytest.mark.parametrize(("kind", "params"), SEED_PARAMETERS.items())
def test_seed_parameters_validate(kind: str, params: dict[str, object]) -> None:
    parsed = validate_parameters(kind, params)
    for key, value in params.items():
        assert getattr(parsed, key) == value


@pytest.mark.parametrize(
    ("kind", "params", "fragment"),
    [
        ("failure_analysis", {}, "workflow_run_id: Field required"),
        ("failure_analysis", {"workflow_run_id": -1}, "workflow_run_id"),
        ("dependency_management", {"update_strategy": "yolo"}, "update_strategy"),
        ("health_check", {"check_all_integration": True}, "Extra inputs are not permitted"),
        ("performance_monitoring", {"alert_threshold_percent": 0}, "alert_threshold_percent"),
        ("security_audit", {"repository": "not a repo"}, "repository"),
        ("health_check", {"repository": "x"}, "repository: expected owner/name, got 'x'"),
    ],
)
def test_bad_parameters_name_the_field(kind: str, params: dict[str, object], fragment: str) -> None:
    with pytest.raises(WorkflowParameterError) as info:
        validate_parameters(kind, params)
    message = str(info.value)
    assert fragment in message and kind in message
    assert "\n" not in message


def test_unknown_type_lists_choices() -> None:
    with pytest.raises(WorkflowParameterError, match="expected one of: failure_analysis"):
        parse_workflow_type("nope")


def test_parameters_must_be_an_object() -> None:
    with pytest.raises(WorkflowParameterError, match="must be a JSON object"):
        validate_parameters("health_check", [1, 2])  # type: ignore[arg-type]


def test_retry_delays_double() -> None:
    spec = REGISTRY[AutonomousWorkflowType.FAILURE_ANALYSIS]
    assert spec.retry_delays(10) == [10 * 2**i for i in range(spec.retries)]
