"""Routing of real GitHub payloads (octokit/webhooks examples) with the default rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from intake_helpers import load_example

from contexten.config import Settings
from contexten.events.routing import (
    DEFAULT_RULES,
    RoutingError,
    known_events,
    load_rules,
    load_rules_file,
    parse_rules,
    route,
)

# file -> expected workflow types, with baseline_branch "master" (the examples' branch).
EXPECTED: dict[str, list[str]] = {
    "workflow_job/completed.failure.with-organization.payload.json": ["failure_analysis"],
    "workflow_job/completed.success.with-organization.payload.json": [],
    "workflow_job/queued.payload.json": [],
    "workflow_job/in_progress.payload.json": [],
    "workflow_job/waiting.payload.json": [],
    "workflow_run/completed.payload.json": ["test_optimization"],
    "workflow_run/completed.with-pull-requests.payload.json": ["test_optimization"],
    "workflow_run/requested.payload.json": [],
    "workflow_run/requested.with-conclusion.payload.json": [],
    "check_suite/completed.payload.json": ["test_optimization"],
    "check_suite/requested.payload.json": [],
    "check_suite/rerequested.payload.json": [],
    "push/with-new-branch.payload.json": ["performance_monitoring", "security_audit"],
    "push/payload.json": [],  # a deleted tag
    "push/1.payload.json": [],
    "ping/payload.json": [],
    "pull_request/opened.payload.json": ["workflow_optimization"],
    "installation/created.payload.json": [],
    "check_run/completed.payload.json": [],
}


@pytest.fixture
def master() -> Settings:
    return Settings(baseline_branch="master")


def _types(event: str, payload: dict[str, Any], settings: Settings) -> list[str]:
    return [r.workflow_type for r in route(event, payload, DEFAULT_RULES, settings)]


@pytest.mark.parametrize(("relative", "expected"), sorted(EXPECTED.items()))
def test_real_payloads_route_as_documented(
    examples: Path, master: Settings, relative: str, expected: list[str]
) -> None:
    event = relative.split("/", 1)[0]
    assert _types(event, load_example(examples, relative), master) == expected


def test_every_example_routes_without_error(examples: Path, master: Settings) -> None:
    files = sorted(examples.glob("*/*.json"))
    assert len(files) >= 60
    for path in files:
        payload = json.loads(path.read_text(encoding="utf-8"))
        route(path.parent.name, payload, DEFAULT_RULES, master)  # must not raise


def test_failed_job_parameters_and_key(examples: Path, master: Settings) -> None:
    payload = load_example(
        examples, "workflow_job/completed.failure.with-organization.payload.json"
    )
    (selected,) = route("workflow_job", payload, DEFAULT_RULES, master)
    workflow_type, parameters = selected
    assert workflow_type == "failure_analysis"
    assert parameters == {"repository": "Codertocat/Hello-World", "workflow_run_id": 2202229078}
    assert selected.key == "failure_analysis:Codertocat/Hello-World:2202229078:1"


@pytest.mark.parametrize(
    ("conclusion", "expected"),
    [
        ("failure", ["failure_analysis"]),
        ("timed_out", ["failure_analysis"]),
        ("success", ["test_optimization"]),
        ("cancelled", []),
        ("skipped", []),
    ],
)
def test_workflow_run_conclusions(
    examples: Path, master: Settings, conclusion: str, expected: list[str]
) -> None:
    payload = load_example(examples, "workflow_run/completed.payload.json")
    payload["workflow_run"]["conclusion"] = conclusion
    assert _types("workflow_run", payload, master) == expected


def test_run_and_job_failures_of_one_run_share_a_key(examples: Path, master: Settings) -> None:
    job = load_example(examples, "workflow_job/completed.failure.with-organization.payload.json")
    run = load_example(examples, "workflow_run/completed.payload.json")
    run["workflow_run"].update(id=job["workflow_job"]["run_id"], conclusion="failure")
    run["repository"] = copy.deepcopy(job["repository"])
    (from_job,) = route("workflow_job", job, DEFAULT_RULES, master)
    (from_run,) = route("workflow_run", run, DEFAULT_RULES, master)
    assert from_job.key == from_run.key
    assert from_job.parameters == from_run.parameters
    run["workflow_run"]["run_attempt"] = 2  # a re-run is analysed again
    (second,) = route("workflow_run", run, DEFAULT_RULES, master)
    assert second.key != from_run.key


def test_push_to_baseline_depends_on_the_setting(examples: Path) -> None:
    payload = load_example(examples, "push/with-new-branch.payload.json")
    assert _types("push", payload, Settings(baseline_branch="develop")) == ["security_audit"]
    (selected, audit) = route("push", payload, DEFAULT_RULES, Settings(baseline_branch="master"))
    assert audit.workflow_type == "security_audit"
    assert audit.key == f"security_audit:Codertocat/Hello-World:{payload['after']}"
    assert selected.parameters == {
        "repository": "Codertocat/Hello-World",
        "baseline_branch": "master",
    }


def test_push_touching_workflows(examples: Path, master: Settings) -> None:
    payload = load_example(examples, "push/with-new-branch.payload.json")
    payload["ref"] = "refs/heads/feature"
    assert _types("push", payload, master) == ["security_audit"]
    payload["commits"][0]["modified"] = [".github/workflows/ci.yml"]
    assert _types("push", payload, master) == ["workflow_optimization", "security_audit"]
    payload["ref"] = "refs/heads/master"
    assert _types("push", payload, master) == [
        "performance_monitoring",
        "workflow_optimization",
        "security_audit",
    ]


def test_tag_push_and_release_share_a_key(examples: Path, master: Settings) -> None:
    deleted = load_example(examples, "push/payload.json")
    assert _types("push", deleted, master) == []
    created = dict(deleted, deleted=False, created=True)
    (tag,) = route("push", created, DEFAULT_RULES, master)
    assert tag.workflow_type == "release_management"
    release = {
        "action": "published",
        "release": {"tag_name": "simple-tag"},
        "repository": deleted["repository"],
    }
    (published,) = route("release", release, DEFAULT_RULES, master)
    assert published.key == tag.key == "release_management:Codertocat/Hello-World:simple-tag"


def test_matching_rule_with_unusable_payload_raises(master: Settings) -> None:
    payload = {
        "action": "completed",
        "workflow_run": {"conclusion": "failure"},  # no id
        "repository": {"full_name": "o/r"},
    }
    with pytest.raises(RoutingError, match="workflow_run_id"):
        route("workflow_run", payload, DEFAULT_RULES, master)


def test_known_events_include_ping_and_the_rule_events() -> None:
    events = known_events(DEFAULT_RULES)
    assert {"ping", "workflow_run", "workflow_job", "push", "check_suite", "release"} <= events
    assert {"pull_request", "issue_comment"} <= events  # workflow lint, PR commands
    assert {"diagnosis.created", "diagnosis.auto_fix", "alert.firing", "health.unhealthy"} <= events
    assert "installation" not in events


def test_rules_file_extends_and_disables_defaults(tmp_path: Path, master: Settings) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        """
mode: extend
rules:
  - name: successful-check-suite
    event: check_suite
    workflow: test_optimization
    enabled: false
  - name: labelled-pr
    event: pull_request
    when: {payload.action: labeled, payload.label.name: {prefix: "ci/"}}
    workflow: workflow_optimization
    parameters: {repository: "${payload.repository.full_name}"}
""",
        encoding="utf-8",
    )
    rules = load_rules({"ROUTING_RULES_FILE": str(rules_file)})
    assert [r.name for r in rules][-1] == "labelled-pr"
    assert len(rules) == len(DEFAULT_RULES) + 1
    suite = {
        "action": "completed",
        "check_suite": {"conclusion": "success", "id": 1},
        "repository": {"full_name": "o/r"},
    }
    assert route("check_suite", suite, rules, master) == []
    pr = {"action": "labeled", "label": {"name": "ci/lint"}, "repository": {"full_name": "o/r"}}
    assert [r.workflow_type for r in route("pull_request", pr, rules, master)] == [
        "workflow_optimization"
    ]
    pr["label"]["name"] = "bug"
    assert route("pull_request", pr, rules, master) == []
    assert "pull_request" in known_events(rules)


def test_rules_file_as_a_json_list_replaces_defaults(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(
        json.dumps([{"name": "only", "event": "push", "workflow": "security_audit"}]),
        encoding="utf-8",
    )
    rules = load_rules_file(rules_file)
    assert [r.name for r in rules] == ["only"]


BASE = {"name": "x", "event": "push", "workflow": "health_check"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"rules": [{"name": "x", "event": "push", "workflow": "nope"}]}, "unknown workflow"),
        ({"rules": [{"name": "x", "event": "push", "workflow": "health_check", "if": 1}]}, "if"),
        ({"rules": [{"event": "push", "workflow": "health_check"}]}, "no name"),
        ({"rules": [{"name": "x", "workflow": "health_check"}]}, "event"),
        ({"rules": [{**BASE, "when": {"a": 1}}]}, "condition path"),
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "event": "push",
                        "workflow": "health_check",
                        "when": {"payload.a": {"regex": "."}},
                    }
                ]
            },
            "prefix",
        ),
        ({"mode": "merge", "rules": []}, "mode"),
        (
            [
                {"name": "x", "event": "push", "workflow": "health_check"},
                {"name": "x", "event": "push", "workflow": "health_check"},
            ],
            "duplicate",
        ),
    ],
)
def test_invalid_rules_give_one_line_errors(document: Any, message: str) -> None:
    with pytest.raises(RoutingError, match=message) as caught:
        parse_rules(document)
    assert "\n" not in str(caught.value)


def test_unreadable_rules_file_is_a_routing_error(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yaml"
    broken.write_text("rules: [unclosed", encoding="utf-8")
    with pytest.raises(RoutingError, match="not valid"):
        load_rules_file(broken)
    with pytest.raises(RoutingError, match="cannot read"):
        load_rules_file(tmp_path / "absent.yaml")
    binary = tmp_path / "rules.json"
    binary.write_bytes(b"\xd2\xff\x00 not text")
    with pytest.raises(RoutingError, match="is not UTF-8 text"):
        load_rules_file(binary)


def test_a_passed_rerun_goes_back_to_failure_analysis_to_confirm_recovery() -> None:
    from contexten.config import Settings
    from contexten.events.routing import DEFAULT_RULES, route

    def payload(attempt: int) -> dict[str, object]:
        return {
            "action": "completed",
            "repository": {"full_name": "o/r"},
            "workflow_run": {"id": 77, "run_attempt": attempt, "conclusion": "success"},
        }

    rerun = route("workflow_run", payload(2), DEFAULT_RULES, Settings())
    confirm = [r for r in rerun if r.workflow_type == "failure_analysis"]
    assert len(confirm) == 1
    assert confirm[0].key == "failure_analysis:o/r:77:2"
    first = route("workflow_run", payload(1), DEFAULT_RULES, Settings())
    assert not [r for r in first if r.workflow_type == "failure_analysis"]
