"""Parsing and permission of `/contexten` pull request commands (pure parts)."""

from __future__ import annotations

import pytest

from contexten.integrations.interface import ChangedFile
from contexten.orchestration.workflows import WorkflowParameterError, validate_parameters
from contexten.workflows.pr_commands import Command, allowed, parse_command, refusal
from contexten.workflows.pr_workflow_lint import changed_workflow_files


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/contexten rerun", Command("rerun", "/contexten rerun")),
        ("\n  /contexten EXPLAIN please\nmore", Command("explain", "/contexten EXPLAIN please")),
        ("/contexten", Command("help", "/contexten")),
        ("/contexten dance", Command("help", "/contexten dance")),
        ("please /contexten rerun", None),
        ("/contextenrerun", None),
        ("", None),
    ],
)
def test_parse_command(body: str, expected: Command | None) -> None:
    assert parse_command(body) == expected


def test_associations_allowed_by_setting() -> None:
    default = "OWNER,MEMBER,COLLABORATOR"
    assert allowed("MEMBER", default) and allowed("owner", default)
    assert not allowed("CONTRIBUTOR", default) and not allowed(None, default)
    assert allowed("CONTRIBUTOR", "OWNER, contributor")
    assert "@bob" in refusal("bob", "FIRST_TIME_CONTRIBUTOR")
    assert "first_time_contributor" in refusal("bob", "FIRST_TIME_CONTRIBUTOR")


def test_github_automation_needs_a_run_or_a_command() -> None:
    with pytest.raises(WorkflowParameterError, match="workflow_run_id, or issue_number"):
        validate_parameters("github_automation", {"issue_number": 3})
    params = validate_parameters(
        "github_automation", {"issue_number": 3, "comment_id": 9, "comment_body": "/contexten"}
    )
    assert params.model_dump()["workflow_run_id"] is None


def test_only_changed_workflow_files_are_linted() -> None:
    files = [
        ChangedFile(".github/workflows/ci.yml", "modified"),
        ChangedFile(".github/workflows/old.yaml", "removed"),
        ChangedFile(".github/workflows/README.md", "added"),
        ChangedFile("src/app.py", "modified"),
        ChangedFile(".github/workflows/new.yaml", "renamed", ".github/workflows/x.yaml"),
    ]
    assert changed_workflow_files(files) == [
        ".github/workflows/ci.yml",
        ".github/workflows/new.yaml",
    ]
