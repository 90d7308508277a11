"""Diagnoses of the labelled corpus and of edge cases: category, status, signature, JSON."""

# ruff: noqa: E501  (patterns and log lines read best unbroken)

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from contexten.analysis.logs import DiagnosisStatus, diagnose
from contexten.analysis.taxonomy import FailureCategory, RecoveryStrategy

CORPUS = Path(__file__).resolve().parents[2] / "data" / "logs" / "corpus"
LABELS = json.loads((CORPUS / "labels.json").read_text(encoding="utf-8"))
sys.path.insert(0, str(CORPUS.parent))

import make_corpus  # noqa: E402


@pytest.mark.parametrize("name", sorted(LABELS))
def test_corpus_log(name: str) -> None:
    label = LABELS[name]
    diagnosis = diagnose((CORPUS / name).read_bytes())
    assert diagnosis.category.value == label["category"]
    assert diagnosis.failed
    assert 0 < len(diagnosis.evidence) <= 30
    if label["evidence"]:
        assert {e.line for e in diagnosis.evidence} & set(label["evidence"])
    assert list(diagnosis.failing_tests) == label["failing_tests"]


@pytest.mark.parametrize("name", sorted(LABELS))
def test_passing_run_is_not_a_confident_failure(name: str) -> None:
    diagnosis = diagnose((CORPUS / LABELS[name]["passing_log"]).read_bytes())
    assert not (diagnosis.failed and diagnosis.confidence >= 0.5)


def test_signature_is_stable_across_runs_and_differs_between_causes() -> None:
    by_name = {sc.name: sc for sc in make_corpus.SCENARIOS}
    signatures = {}
    for name in ("test-pytest", "net-dns", "compile-javac", "lint-ruff", "oom-killed"):
        run_a, _ = make_corpus.render(by_name[name], True, seed=random.randrange(10**6))
        run_b, _ = make_corpus.render(by_name[name], True, seed=random.randrange(10**6))
        first, second = diagnose(run_a), diagnose(run_b)
        assert first.signature == second.signature, name
        signatures[name] = first.signature
    assert len(set(signatures.values())) == len(signatures)


def test_empty_and_blank_logs_are_not_unmatched() -> None:
    for log in ("", "\n\n   \n"):
        diagnosis = diagnose(log)
        assert diagnosis.status is DiagnosisStatus.EMPTY
        assert diagnosis.category is FailureCategory.UNKNOWN and diagnosis.confidence == 0
        assert diagnosis.evidence == () and not diagnosis.failed


def test_failed_job_without_a_matching_rule_is_unmatched() -> None:
    log = [
        "##[group]Run ./check.sh",
        "checking",
        "3 things are off",
        "##[error]Process completed with exit code 1.",
    ]
    diagnosis = diagnose(log)
    assert diagnosis.status is DiagnosisStatus.UNMATCHED
    assert diagnosis.category is FailureCategory.UNKNOWN
    assert diagnosis.recommended_strategies == (RecoveryStrategy.HUMAN_ESCALATION,)
    assert 3 in {e.line for e in diagnosis.evidence}
    assert diagnosis.step == "./check.sh"


def test_passing_log_with_error_words_is_no_failure() -> None:
    log = [
        "##[group]Run pytest",
        "tests/test_a.py::test_error_handling PASSED",
        "Connection refused (expected by test) ok",
        "Cleaning up orphan processes",
    ]
    diagnosis = diagnose(log)
    assert diagnosis.status is DiagnosisStatus.NO_FAILURE or diagnosis.confidence <= 0.3
    assert not diagnosis.transient or diagnosis.confidence <= 0.3


def test_only_the_failing_step_decides() -> None:
    log = [
        "##[group]Run pip install -r requirements.txt",
        "WARNING: Retrying after connection broken by 'ReadTimeoutError(\"Read timed out.\")'",
        "Successfully installed requests-2.31.0",
        "##[group]Run pytest",
        "FAILED tests/test_a.py::test_x - assert 1 == 2",
        "##[error]Process completed with exit code 1.",
    ]
    diagnosis = diagnose(log)
    assert diagnosis.category is FailureCategory.TEST and diagnosis.step == "pytest"
    assert diagnosis.transient is False
    assert [e.line for e in diagnosis.evidence] == [5]


def test_test_failure_caused_by_the_network_is_a_network_failure() -> None:
    # Issue 14: the root cause is the refused connection, not the test.
    log = [
        "##[group]Run pytest",
        "FAILED tests/test_api.py::test_fetch - requests.exceptions.ConnectionError: "
        "Connection refused",
        "##[error]Process completed with exit code 1.",
    ]
    diagnosis = diagnose(log)
    assert diagnosis.category is FailureCategory.NETWORK and diagnosis.transient


def test_a_503_under_the_assertion_is_the_service_not_the_test() -> None:
    log = [
        "##[group]Run ./gradlew test",
        "com.acme.ClientTest > fetchesOrders FAILED",
        "    java.lang.AssertionError: request failed",
        "        at com.acme.ClientTest.fetchesOrders(ClientTest.java:41)",
        "    Caused by: java.io.IOException: Server returned HTTP response code: 503 for URL: https://api.acme.test/orders",
        "##[error]Process completed with exit code 1.",
    ]
    diagnosis = diagnose(log)
    assert diagnosis.category is FailureCategory.INTEGRATION and diagnosis.transient


def test_a_test_that_expects_a_503_stays_a_test_failure() -> None:
    log = [
        "##[group]Run pytest",
        "FAILED tests/test_api.py::test_maintenance - AssertionError: expected status 200, got 503",
        "##[error]Process completed with exit code 1.",
    ]
    diagnosis = diagnose(log)
    assert diagnosis.category is FailureCategory.TEST and not diagnosis.transient


def test_a_generated_file_that_differs_is_a_lint_failure() -> None:
    log = [
        "##[group]Run go mod tidy && git diff --exit-code",
        "go: finding module for package golang.org/x/sync/errgroup",
        "diff --git a/go.sum b/go.sum",
        "+golang.org/x/sync v0.6.0 h1:5BMeUDZ7vkXGfEr1x9B4bRcTH4lpkTkpdh0T/J+qjbQ=",
        "go.sum is not tidy, run go mod tidy and commit",
        "##[error]Process completed with exit code 1.",
    ]
    diagnosis = diagnose(log)
    assert diagnosis.category is FailureCategory.LINT and not diagnosis.transient


def test_a_dependency_built_for_a_newer_jdk_is_a_dependency_failure() -> None:
    log = [
        "##[group]Run mvn -B verify",
        "[ERROR] COMPILATION ERROR :",
        "[ERROR] /home/runner/work/app/src/main/java/App.java:[3,20] cannot access org.acme.Lib",
        "  bad class file: /home/runner/.m2/repository/org/acme/lib/2.0/lib-2.0.jar(org/acme/Lib.class)",
        "    class file has wrong version 61.0, should be 55.0",
        "[ERROR] BUILD FAILURE",
        "##[error]Process completed with exit code 1.",
    ]
    diagnosis = diagnose(log)
    assert diagnosis.category is FailureCategory.DEPENDENCY and not diagnosis.transient


def test_to_dict_has_the_documented_keys_and_is_json() -> None:
    diagnosis = diagnose((CORPUS / "test-pytest.log").read_bytes())
    data = json.loads(json.dumps(diagnosis.to_dict()))
    for key in (
        "category",
        "confidence",
        "evidence",
        "failing_tests",
        "step",
        "signature",
        "transient",
        "recommended_strategies",
    ):
        assert key in data
    assert all(set(e) >= {"line", "text"} for e in data["evidence"])
    assert "baseline" not in data and all("status" not in e for e in data["evidence"])
    assert 0.0 <= data["confidence"] <= 1.0


def test_evidence_is_bounded() -> None:
    lines = [f"FAILED tests/test_{i}.py::test_x - assert False" for i in range(500)]
    diagnosis = diagnose([*lines, "##[error]Process completed with exit code 1."])
    assert len(diagnosis.evidence) <= 30
    assert len(diagnosis.failing_tests) == 500
