"""Failing-test names from each runner's report lines."""

from __future__ import annotations

import pytest

from contexten.analysis.logs import diagnose

CASES = {
    "pytest": (
        [
            "FAILED tests/test_a.py::TestX::test_y[1-2] - assert 1 == 2",
            "ERROR tests/test_b.py - ImportError",
        ],
        ["tests/test_a.py::TestX::test_y[1-2]", "tests/test_b.py"],
    ),
    "pytest-headers": (
        [
            "_____________ TestCubic.test_apply _____________",
            "____ ERROR collecting tests/io/test_sets.py ____",
        ],
        ["TestCubic.test_apply", "tests/io/test_sets.py"],
    ),
    "unittest": (
        [
            "FAIL: test_sum (tests.test_math.MathTest)",
            "ERROR: test_x (pkg.mod.Case.test_x)",
            "ERROR: tests.test_layer (unittest.loader._FailedTest)",
        ],
        ["tests.test_math.MathTest.test_sum", "pkg.mod.Case.test_x", "tests.test_layer"],
    ),
    "surefire": (
        [
            "[ERROR] test_UUID(com.a.JSONTest)  Time elapsed: 0.006 s  <<< FAILURE!",
            "[ERROR] com.a.ValidatorTest.noAssert -- Time elapsed: 0.012 s <<< FAILURE!",
        ],
        ["com.a.JSONTest.test_UUID", "com.a.ValidatorTest.noAssert"],
    ),
    "surefire-summary": (
        [
            "Failed tests: ",
            "  SiftingTest.zeroNesting:129",
            "  SiftingTest.multipleNesting:143",
            "",
            "Tests run: 4, Failures: 2",
        ],
        ["SiftingTest.zeroNesting", "SiftingTest.multipleNesting"],
    ),
    "gradle": (
        [
            "CalculatorTest > divides() FAILED",
            "UserTest > GetUser > notFound() FAILED",
            "a.b.CTest > run(int) > a.b.CTest.run(int)[3] FAILED",
        ],
        ["CalculatorTest.divides()", "UserTest$GetUser.notFound()", "a.b.CTest.run(int)[3]"],
    ),
    "ant": (
        [
            "    [junit] Testsuite: com.a.FooTest",
            "    [junit] Testcase: testNext took 1.4 sec",
            "    [junit] \tCaused an ERROR",
            "    [junit] Testcase: testB(com.a.BarTest):\tFAILED",
        ],
        ["com.a.FooTest.testNext", "com.a.BarTest.testB"],
    ),
    "jest": (
        ["  ● Cart › adds an item", "  ● Console", "  ● Test suite failed to run"],
        ["Cart › adds an item", "Test suite failed to run"],
    ),
    "mocha": (
        [
            "  3 passing (2s)",
            "  2 failing",
            "",
            "  1) Lookup",
            "       should lookup seed:",
            "     Error: boom",
            "  2) Worker",
            "       can kill #0:",
            "     AssertionError",
        ],
        ["Lookup should lookup seed", "Worker can kill #0"],
    ),
    "go": (
        ["--- FAIL: TestParse (0.00s)", "    --- FAIL: TestParse/empty (0.00s)"],
        ["TestParse", "TestParse/empty"],
    ),
    "rust": (["test parser::tests::parses ... FAILED"], ["parser::tests::parses"]),
    "sbt": (
        ["[error] Test basic.FooTest.failingTest failed: java.lang.AssertionError"],
        ["basic.FooTest.failingTest"],
    ),
}


@pytest.mark.parametrize("framework", sorted(CASES))
def test_failing_test_names(framework: str) -> None:
    lines, expected = CASES[framework]
    diagnosis = diagnose([*lines, "##[error]Process completed with exit code 1."])
    assert list(diagnosis.failing_tests) == expected


def test_same_test_reported_twice_is_listed_once_by_its_fullest_name() -> None:
    lines = [
        "[ERROR] com.a.CalcTest.adds  Time elapsed: 0.1 s  <<< FAILURE!",
        "[ERROR] Failures: ",
        "[ERROR]   CalcTest.adds:27 expected: <1> but was: <2>",
        "[INFO]",
    ]
    assert diagnose(lines).failing_tests == ("com.a.CalcTest.adds",)


def test_passing_lines_name_no_tests() -> None:
    lines = [
        "tests/test_a.py::test_fails_gracefully PASSED",
        "--- PASS: TestX (0.00s)",
        "  ● Console",
        "  12 passing",
    ]
    assert diagnose(lines).failing_tests == ()
