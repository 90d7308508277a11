"""JUnit parsing against the shared fixtures (index.csv and EnricoMi's expected results)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from contexten.analysis.junit import (
    JUnitError,
    Outcome,
    aggregate_retries,
    normalize_path,
    parse_duration,
    parse_junit,
    test_id,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "junit"
INDEX = list(csv.DictReader((DATA / "index.csv").open(encoding="utf-8")))
JUNIT_OK = [r for r in INDEX if r["parse"] == "ok" and r["root"] in ("testsuite", "testsuites")]
NOT_JUNIT = [r for r in INDEX if r not in JUNIT_OK]


def test_fixture_index_covers_every_xml_file() -> None:
    files = {p.relative_to(DATA).as_posix() for p in DATA.rglob("*.xml")}
    assert files == {r["file"] for r in INDEX}
    assert len(files) == 90


@pytest.mark.parametrize("row", JUNIT_OK, ids=lambda r: r["file"])
def test_counts_match_index(row: dict[str, str]) -> None:
    report = parse_junit((DATA / row["file"]).read_bytes(), row["file"])
    e = report.elements
    assert (e.testcases, e.failures, e.errors, e.skipped, e.flaky_or_rerun) == (
        int(row["testcases"]),
        int(row["failure"]),
        int(row["error"]),
        int(row["skipped"]),
        int(row["flaky_or_rerun_elems"]),
    )
    assert len(report.cases) == int(row["testcases"])
    assert report.root == row["root"]


@pytest.mark.parametrize("row", NOT_JUNIT, ids=lambda r: r["file"])
def test_corrupt_or_non_junit_gives_one_line_error_naming_the_file(row: dict[str, str]) -> None:
    with pytest.raises(JUnitError) as info:
        parse_junit((DATA / row["file"]).read_bytes(), row["file"])
    message = str(info.value)
    assert message.startswith(row["file"] + ": ")
    assert "\n" not in message


ENRICOMI = sorted((DATA / "enricomi-publish-unit-test-result-action").rglob("*.results.json"))


@pytest.mark.parametrize("expected_file", ENRICOMI, ids=lambda p: p.name)
def test_counts_match_enricomi_expected_results(expected_file: Path) -> None:
    stats = json.loads(expected_file.read_text(encoding="utf-8"))["stats"]
    xml = expected_file.with_name(expected_file.name.removesuffix(".results.json") + ".xml")
    if stats["errors"]:
        with pytest.raises(JUnitError):
            parse_junit(xml.read_bytes(), xml.name)
        return
    report = parse_junit(xml.read_bytes(), xml.name)
    t, r = report.test_summary(), report.run_summary()
    assert (t.tests, t.passed, t.skipped, t.failed, t.errors) == (
        stats["tests"],
        stats["tests_succ"],
        stats["tests_skip"],
        stats["tests_fail"],
        stats["tests_error"],
    )
    assert (r.tests, r.passed, r.skipped, r.failed, r.errors) == (
        stats["runs"],
        stats["runs_succ"],
        stats["runs_skip"],
        stats["runs_fail"],
        stats["runs_error"],
    )
    assert report.suites == stats["suites"]


def test_surefire_flaky_failure_is_a_flaky_pass() -> None:
    path = DATA / "mikepenz-action-junit-report/maven_surefire_flaky/surefire-report.xml"
    (case,) = parse_junit(path.read_bytes(), path.name).cases
    assert case.outcome is Outcome.FLAKY
    assert case.flaky_failures == 1
    assert case.message == "Expected: <false>"
    assert case.duration_seconds == pytest.approx(0.683)


def test_repeated_testcases_in_one_report_aggregate_to_flaky() -> None:
    path = DATA / "mikepenz-action-junit-report/flaky_retries/flaky_success_first.xml"
    report = parse_junit(path.read_bytes(), path.name)
    assert [c.outcome for c in report.cases] == [Outcome.PASSED, Outcome.FAILED, Outcome.ERROR]
    (aggregated,) = aggregate_retries(report.cases)
    assert aggregated.outcome is Outcome.FLAKY
    assert aggregated.attempts == 3
    # The runner's checkout root is not part of the test's identity.
    assert aggregated.case.file == "/home/runner/work/tests/test_order.py"


def test_jest_suites_keep_same_named_tests_apart() -> None:
    path = DATA / "dorny-test-reporter/external/jest/jest-test-results.xml"
    report = parse_junit(path.read_bytes(), path.name)
    ids = {c.test_id("o/r") for c in report.cases}
    names = {(c.classname, c.name) for c in report.cases}
    assert len(ids) > len(names)
    assert report.cases[0].file == "packages/jest-config/src/__tests__/normalize.test.js"


def test_status_disabled_is_skipped() -> None:
    path = DATA / "enricomi-publish-unit-test-result-action/tst/disabled.xml"
    cases = parse_junit(path.read_bytes(), path.name).cases
    disabled = [c for c in cases if c.name == "disabled_test"]
    assert disabled[0].outcome is Outcome.SKIPPED


def test_entities_are_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<testsuite><testcase classname="c" name="n"><failure>&b;</failure>'
        b"</testcase></testsuite>"
    )
    (case,) = parse_junit(bomb, "bomb.xml").cases
    assert case.outcome is Outcome.FAILED
    assert "aaaa" not in (case.message or "")


def test_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xml = (
        f'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<testsuite><testcase name="n"><failure>&x;</failure></testcase></testsuite>'
    ).encode()
    (case,) = parse_junit(xml, "xxe.xml").cases
    assert "TOPSECRET" not in (case.message or "")


def test_size_limit_and_empty_input() -> None:
    with pytest.raises(JUnitError, match=r"big\.xml: report is 100 bytes, over the limit of 10"):
        parse_junit(b"x" * 100, "big.xml", max_bytes=10)
    with pytest.raises(JUnitError, match=r"empty\.xml: file is empty"):
        parse_junit(b"  \n", "empty.xml")


def test_namespaced_tags_and_direct_testcases_under_testsuites() -> None:
    xml = (
        b'<testsuites xmlns="urn:x" name="all"><testcase classname="a.B" name="t1" time="1,5"/>'
        b'<testsuite name="s"><testcase classname="a.B" name="t2" time="1,234.5">'
        b"<skipped/></testcase></testsuite></testsuites>"
    )
    report = parse_junit(xml, "ns.xml")
    assert [(c.name, c.outcome, c.duration_seconds) for c in report.cases] == [
        ("t1", Outcome.PASSED, 1.5),
        ("t2", Outcome.SKIPPED, 1234.5),
    ]


def test_rerun_failure_counts_as_failed() -> None:
    xml = (
        b'<testsuite name="S"><testcase classname="C" name="t">'
        b'<failure message="boom"/><rerunFailure message="boom again"/></testcase></testsuite>'
    )
    (case,) = parse_junit(xml, "rerun.xml").cases
    assert case.outcome is Outcome.FAILED
    assert case.rerun_failures == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.5", 0.5),
        ("1,234.5", 1234.5),
        ("1,234", 1234.0),
        ("0,25", 0.25),
        ("<<computed>>", None),
        ("-1", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_duration(raw: str | None, expected: float | None) -> None:
    assert parse_duration(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/home/runner/work/proj/proj/tests/test_a.py", "tests/test_a.py"),
        ("D:\\a\\proj\\proj\\tests\\test_a.py", "tests/test_a.py"),
        ("/__w/proj/proj/src/x.rs", "src/x.rs"),
        ("./tests/test_a.py", "tests/test_a.py"),
        ("/home/runner/work/tests/test_order.py", "/home/runner/work/tests/test_order.py"),
        ("", None),
    ],
)
def test_normalize_path(raw: str, expected: str | None) -> None:
    assert normalize_path(raw) == expected


def test_test_id_is_stable_and_keeps_parameters() -> None:
    a = test_id("o/r", "tests/test_a.py", "tests.test_a", "test_x[1-2]")
    assert a == test_id("o/r", "tests/test_a.py", "tests.test_a", "test_x[1-2]")
    assert a != test_id("o/r", "tests/test_a.py", "tests.test_a", "test_x[1-3]")
    assert a != test_id("o/other", "tests/test_a.py", "tests.test_a", "test_x[1-2]")
    assert len(a) == 64
    # The same test on two runners with different checkout roots has one id.
    xml = '<testsuite><testcase file="{}" classname="t" name="n"/></testsuite>'
    one = parse_junit(xml.format("/home/runner/work/p/p/t.py").encode(), "a").cases[0]
    two = parse_junit(xml.format("D:\\a\\p\\p\\t.py").encode(), "b").cases[0]
    assert one.test_id("o/r") == two.test_id("o/r")


_RANK = {Outcome.SKIPPED: 0, Outcome.PASSED: 1, Outcome.FLAKY: 1, Outcome.FAILED: 2}


@pytest.mark.parametrize("row", JUNIT_OK, ids=lambda r: r["file"])
def test_test_summary_is_each_distinct_tests_worst_state(row: dict[str, str]) -> None:
    """Reports with and without repeated test cases: one state per (file, class, name),
    error > failure > success > skipped."""
    report = parse_junit((DATA / row["file"]).read_bytes(), row["file"])
    if not report.cases:
        return
    states: dict[tuple[str | None, str | None, str], int] = {}
    for case in report.cases:
        key = (case.file, case.classname, case.name)
        states[key] = max(states.get(key, -1), _RANK.get(case.outcome, 3))
    ranks = list(states.values())
    t = report.test_summary()
    assert (t.tests, t.skipped, t.passed, t.failed, t.errors) == (
        len(ranks),
        *(ranks.count(rank) for rank in range(4)),
    )


def test_test_summary_of_a_repeated_test_takes_its_worst_outcome() -> None:
    path = DATA / "mikepenz-action-junit-report/flaky_retries/flaky_success_first.xml"
    t = parse_junit(path.read_bytes(), path.name).test_summary()
    assert (t.tests, t.passed, t.failed, t.errors) == (1, 0, 0, 1)
