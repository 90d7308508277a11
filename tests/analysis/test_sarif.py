"""The SARIF writer: output validates against the OASIS SARIF 2.1.0 schema."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from contexten.analysis.sarif import (
    FINGERPRINT_KEY,
    SarifError,
    SarifResult,
    SarifRule,
    SarifRun,
    parse_severity,
    relative_uri,
    severity_rank,
    to_sarif,
)
from contexten.analysis.workflow_lint import lint_workflow
from contexten.audit.report import workflow_lint_sarif_run

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _errors(validator: jsonschema.protocols.Validator, log: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]


RULE_A = SarifRule("rule-a", "RuleA", "first rule", "high", "fix it", "https://example.org/a")
RULE_B = SarifRule("rule-b", "RuleB", "second rule", "low")


def _run() -> SarifRun:
    return SarifRun(
        "tool",
        "1.2.3",
        (RULE_A, RULE_B),
        (
            SarifResult("rule-b", "b here", "src/b.py", 3, 1, fingerprint="fp-b"),
            SarifResult("rule-a", "a here", "src\\a.py", 10, 4, "critical", "fp-a", end_line=12),
        ),
    )


def test_log_validates_against_the_schema(validator: jsonschema.protocols.Validator) -> None:
    log = to_sarif([_run(), SarifRun("other", "0", (), (), notifications=("skipped: offline",))])
    assert _errors(validator, log) == []
    assert log["version"] == "2.1.0" and len(log["runs"]) == 2


def test_the_schema_rejects_a_broken_log(validator: jsonschema.protocols.Validator) -> None:
    # Proves the validation above can fail.
    log = to_sarif([_run()])
    del log["runs"][0]["tool"]["driver"]["name"]
    log["runs"][0]["results"][0]["level"] = "fatal"
    assert len(_errors(validator, log)) == 2


def test_results_point_at_their_rules_and_carry_fingerprints() -> None:
    run = to_sarif([_run()])["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rule_ids == ["rule-a", "rule-b"]
    first, second = run["results"]
    assert (first["ruleId"], first["ruleIndex"], first["level"]) == ("rule-b", 1, "note")
    assert (second["ruleId"], second["ruleIndex"], second["level"]) == ("rule-a", 0, "error")
    location = second["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "src/a.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 10, "startColumn": 4, "endLine": 12}
    assert second["partialFingerprints"] == {FINGERPRINT_KEY: "fp-a"}
    assert run["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == "7.5"


def test_skipped_tool_is_an_unsuccessful_invocation_with_the_reason() -> None:
    run = to_sarif([SarifRun("t", "1", (), (), notifications=("skipped: offline",))])["runs"][0]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["message"]["text"] == "skipped: offline"


@pytest.mark.parametrize("path", ["/etc/passwd", "C:/x.py", "../outside.py", "a/../../b"])
def test_paths_must_be_repository_relative(path: str) -> None:
    with pytest.raises(SarifError):
        relative_uri(path)


def test_relative_uri_normalises() -> None:
    assert relative_uri("./src//a.py") == "src/a.py"


def test_unknown_rule_and_duplicate_rules_are_errors() -> None:
    with pytest.raises(SarifError, match="not a rule"):
        to_sarif([SarifRun("t", "1", (RULE_A,), (SarifResult("nope", "m", "a.py"),))])
    with pytest.raises(SarifError, match="duplicate"):
        to_sarif([SarifRun("t", "1", (RULE_A, RULE_A), ())])


def test_too_many_runs_for_github() -> None:
    with pytest.raises(SarifError, match="at most 20"):
        to_sarif([SarifRun(f"t{i}", "1", (), ()) for i in range(21)])


def test_severity_helpers() -> None:
    assert severity_rank("low") < severity_rank("critical")
    assert parse_severity(" HIGH ") == "high"
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        parse_severity("urgent")


def test_workflow_lint_sarif_validates(validator: jsonschema.protocols.Validator) -> None:
    text = textwrap.dedent(
        """\
        on: pull_request_target
        jobs:
          a:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - run: echo "${{ github.event.pull_request.title }}"
        """
    )
    findings = lint_workflow(text, ".github/workflows/a.yml")
    log = to_sarif([workflow_lint_sarif_run(findings)])
    assert _errors(validator, log) == []
    results = log["runs"][0]["results"]
    assert len(results) == len(findings) >= 5
    fingerprints = {r["partialFingerprints"][FINGERPRINT_KEY] for r in results}
    assert len(fingerprints) == len(results)
    # The same input gives the same fingerprints: GitHub tracks alerts by them.
    again = to_sarif([workflow_lint_sarif_run(lint_workflow(text, ".github/workflows/a.yml"))])
    assert again == log
