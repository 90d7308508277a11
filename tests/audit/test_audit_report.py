"""Rendering: SARIF valid against the schema, one run per tool; no secret in any format."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import jsonschema
import pytest

from contexten.analysis.sarif import FINGERPRINT_KEY
from contexten.audit.model import AuditReport
from contexten.audit.report import to_json_dict, to_markdown, to_sarif_dict, to_text
from contexten.audit.runner import AuditOptions, run_audit

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json"
PLANTED = [
    "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",
    "ghs_3sjC6VUep2G6pk5VRPb2X30jxIJAdv3gRFwt",
    "AKIAMJCQ36IQPMBHJMPX",
    "3ZtFotr59CcPIBZRaASClUl3+tQLNwWVBDr4xlUG",
    "TokUf2RZakm1dtc5JlcVucAU",
    "U206e5q6cPHDNZ7YPMsh",
    "g8EGNN6m0taoU22j4UotdJEw",
    "6609f1443f1fbe5e3deae611c509f503d6e270aa",
    "MHcCAQEEIPOHNsAAriTKmUHexjr",
    "ghp_JcLufQex3Qnk8xfwWgSNhlUVbMWZc7bs6xkO",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, osv_url: str) -> AuditReport:
    import shutil

    repo = tmp_path_factory.mktemp("report") / "repo"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "audit" / "repo", repo)
    (repo / ".contexten-audit.toml").write_text(
        '[[ignore]]\nid = "B506"\nreason = "trusted input"\nexpires = 2999-01-01\n'
        '[[ignore]]\nid = "B324"\nreason = "old"\nexpires = 2001-01-01\n'
    )
    return run_audit(AuditOptions(repo, osv_url, today=date(2025, 1, 1)))


def test_sarif_validates_with_one_run_per_tool(report: AuditReport) -> None:
    schema = json.loads(SCHEMA.read_text())
    log = to_sarif_dict(report)
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    assert [e.message for e in validator.iter_errors(log)] == []
    drivers = [run["tool"]["driver"]["name"] for run in log["runs"]]
    assert drivers == ["pip-audit", "bandit", "contexten-secrets"]
    for run in log["runs"]:
        rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
        assert len(rules) == len(set(rules))
        for result in run["results"]:
            assert rules[result["ruleIndex"]] == result["ruleId"]
            assert result["partialFingerprints"][FINGERPRINT_KEY]
            uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            assert not uri.startswith("/") and "\\" not in uri
    secrets_run = log["runs"][2]
    assert {r["ruleId"] for r in secrets_run["results"]} >= {"github-token", "private-key"}


def test_no_format_holds_a_secret(report: AuditReport) -> None:
    outputs = [
        to_text(report),
        to_markdown(report),
        json.dumps(to_json_dict(report, "high")),
        json.dumps(to_sarif_dict(report)),
    ]
    for output in outputs:
        for secret in PLANTED:
            assert secret not in output
            assert secret[-10:] not in output


def test_text_and_markdown_show_ignores_and_expiry(report: AuditReport) -> None:
    text = to_text(report)
    assert "ignore of B324" in text and "expired on 2001-01-01" in text
    assert "1 ignored" in text
    markdown = to_markdown(report)
    assert "| B506 | `app/runner.py:14` | trusted input | 2999-01-01 |" in markdown
    assert "### Expired ignores" in markdown


def test_json_carries_counts_and_failure(report: AuditReport) -> None:
    data = to_json_dict(report, "critical")
    assert data["failed"] is True
    assert data["counts"]["critical"] == sum(1 for f in report.findings if f.severity == "critical")
    assert [t["tool"] for t in data["tools"]] == ["pip-audit", "bandit", "secrets"]
    first = data["findings"][0]
    assert set(first) >= {"tool", "rule", "severity", "path", "line", "message", "fix"}
    assert first["severity"] == "critical"
