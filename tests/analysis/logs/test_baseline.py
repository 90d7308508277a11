"""Diagnosis against passing runs: new / changed / present lines, another job, no baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from contexten.analysis.logs import LineStatus, diagnose, diagnose_stream
from contexten.analysis.taxonomy import FailureCategory

CORPUS = Path(__file__).resolve().parents[2] / "data" / "logs" / "corpus"
LABELS = json.loads((CORPUS / "labels.json").read_text(encoding="utf-8"))
sys.path.insert(0, str(CORPUS.parent))

import make_corpus  # noqa: E402

STEP = ["##[group]Run ./ci.sh", "##[endgroup]"]


def _stamp(lines: list[str], second: int) -> list[str]:
    return [f"2024-04-13T10:00:{second:02d}.{i:07d}Z {line}" for i, line in enumerate(lines)]


def test_present_changed_and_new_lines() -> None:
    passing = _stamp(
        [
            *STEP,
            "WARNING: deprecated option --foo",
            "Error: cache miss for key deps-1a2b3c4d5e",
            "Tests run: 15, Failures: 0",
            "done",
        ],
        1,
    )
    failing = _stamp(
        [
            *STEP,
            "WARNING: deprecated option --foo",
            "Error: cache miss for key deps-9f8e7d6c5b",
            "Tests run: 15, Failures: 1",
            "Error: database schema mismatch",
            "##[error]Process completed with exit code 1.",
        ],
        7,
    )
    diagnosis = diagnose(failing, baseline_logs=[passing])
    status = {e.line: e.status for e in diagnosis.evidence}
    assert status.get(6) is LineStatus.NEW
    assert diagnosis.baseline is not None and diagnosis.baseline.used == 1
    log = diagnosis.baseline.logs[0]
    assert log.used and log.lines == 6 and log.matched >= 3
    # The cache-miss line differs only in a hash: it is in the passing run, so not evidence.
    assert 4 not in status


def test_rule_hit_present_in_passing_run_does_not_decide() -> None:
    common = ["Connection refused while warming the cache (will retry)"]
    passing = [*STEP, *common, "all good"]
    failing = [
        *STEP,
        *common,
        "FAILED tests/test_a.py::test_x - assert 1 == 2",
        "##[error]Process completed with exit code 1.",
    ]
    single = diagnose(failing)
    based = diagnose(failing, baseline_logs=[passing])
    assert based.category is FailureCategory.TEST
    assert based.baseline is not None
    removed = {r.line for r in based.baseline.removed}
    assert 3 not in {e.line for e in based.evidence}
    assert single.category in (FailureCategory.TEST, FailureCategory.FLAKY_TEST)
    assert removed <= {e.line for e in single.evidence} | {3}


def test_another_job_is_ignored_with_a_warning() -> None:
    failing = (CORPUS / "test-pytest.log").read_bytes()
    other = (CORPUS / "compile-rustc.pass.log").read_bytes()
    based = diagnose(failing, baseline_logs=[other])
    assert based.baseline is not None and based.baseline.used == 0
    assert "another job" in based.baseline.warnings[0]
    single = diagnose(failing)
    assert [e.line for e in based.evidence] == [e.line for e in single.evidence]
    assert based.category == single.category


def test_without_baseline_the_output_is_unchanged() -> None:
    log = (CORPUS / "unknown-script.log").read_bytes()
    assert diagnose(log).to_dict() == diagnose_stream([log]).to_dict()
    assert "baseline" not in diagnose(log).to_dict()


def test_new_lines_explain_an_unmatched_failure() -> None:
    by_name = {sc.name: sc for sc in make_corpus.SCENARIOS}
    scenario = by_name["unknown-script"]
    failing, labelled = make_corpus.render(scenario, True, seed=11)
    passing, _ = make_corpus.render(scenario, False, seed=12)
    based = diagnose(failing, baseline_logs=[passing])
    assert set(labelled) <= {e.line for e in based.evidence}
    assert all(e.status is not None for e in based.evidence)


def test_at_most_three_baselines() -> None:
    with pytest.raises(ValueError, match="at most 3"):
        diagnose("x", baseline_logs=["a", "b", "c", "d"])


@pytest.mark.parametrize("name", sorted(LABELS))
def test_corpus_category_with_baseline(name: str) -> None:
    label = LABELS[name]
    passing = (CORPUS / label["passing_log"]).read_bytes()
    based = diagnose((CORPUS / name).read_bytes(), baseline_logs=[passing])
    assert based.category.value == label["category"]
    assert based.baseline is not None and based.baseline.used == 1
