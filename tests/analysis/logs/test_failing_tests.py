"""Failing-test names from each runner's inline reports and end-of-run summaries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from contexten.analysis.logs import diagnose

REAL = Path(__file__).resolve().parents[2] / "data" / "logs" / "failing-tests"
EXPECTED = json.loads((REAL / "expected.json").read_text())

# (log lines, the names expected in order)
CASES: dict[str, tuple[list[str], list[str]]] = {
    # -- Python ------------------------------------------------------------------------------
    "pytest-short-summary": (
        [
            "FAILED tests/test_a.py::TestX::test_y[1-2] - assert 1 == 2",
            "FAILED tests/test_a.py::test_p[a b-c] - AssertionError: x - y",
            "ERROR tests/test_b.py - ImportError: no module named c",
            "[gw1] [ 50%] FAILED tests/test_c.py::test_w",
            "[gw0] FAILED tests/test_c.py::TestV::()::test_v",
        ],
        [
            "tests/test_a.py::TestX::test_y[1-2]",
            "tests/test_a.py::test_p[a b-c]",
            "tests/test_b.py",
            "tests/test_c.py::test_w",
            "tests/test_c.py::TestV::test_v",
        ],
    ),
    "pytest-progress": (
        [
            "tests/test_a.py::test_ok PASSED                          [ 33%]",
            "tests/test_a.py::test_y[x -iA y] FAILED                  [ 66%]",
            "tests/test_a.py::test_z ERROR                            [100%]",
        ],
        ["tests/test_a.py::test_y[x -iA y]", "tests/test_a.py::test_z"],
    ),
    "pytest-headers-in-failures-and-errors": (
        [
            "=================================== FAILURES ===================================",
            "_____________ TestCubic.test_apply _____________",
            "_____________ test_span[ok 2:30pm] _____________",
            "=================================== ERRORS =====================================",
            "____ ERROR collecting tests/io/test_sets.py ____",
            "____ ERROR at setup of test_db ____",
            "_____ [doctest] pkg.mod.func _____",
            "=========================== short test summary info ============================",
        ],
        [
            "TestCubic.test_apply",
            "test_span[ok 2:30pm]",
            "tests/io/test_sets.py",
            "test_db",
            "pkg.mod.func",
        ],
    ),
    "unittest": (
        [
            "FAIL: test_sum (tests.test_math.MathTest)",
            "ERROR: test_x (pkg.mod.Case.test_x)",
            "ERROR: tests.test_layer (unittest.loader._FailedTest)",
            "FAIL: test_sub (pkg.T) [case one]",
            "ERROR: setUpClass (pkg.Slow)",
        ],
        [
            "test_sum (tests.test_math.MathTest)",
            "test_x (pkg.mod.Case)",
            "tests.test_layer",
            "test_sub (pkg.T)",
            "setUpClass (pkg.Slow)",
        ],
    ),
    "unittest-verbose-then-summary": (
        [
            "test_a (pkg.TestY) ... ok",
            "test_b (pkg.TestY) ... FAIL",
            "test_c (pkg.TestY.test_c) ... ERROR",
            "======================================================================",
            "FAIL: test_b (pkg.TestY)",
            "ERROR: test_c (pkg.TestY.test_c)",
        ],
        ["test_b (pkg.TestY)", "test_c (pkg.TestY)"],
    ),
    "nose": (
        [
            "tests.openface_demo_tests.test_compare_demo ... FAIL",
            "FAIL: tests.openface_demo_tests.test_compare_demo",
            "ERROR: pkg.tests.test_gen(1, 2)",
            "FAIL: Doctest: pkg.mod.func",
        ],
        ["tests.openface_demo_tests.test_compare_demo", "pkg.tests.test_gen(1, 2)", "pkg.mod.func"],
    ),
    "doctest": (
        [
            "**********************************************************************",
            'File "/src/pkg/mod.py", line 12, in pkg.mod.parse',
            "Failed example:",
            "    parse('x')",
        ],
        ["pkg.mod.parse"],
    ),
    # -- JVM ---------------------------------------------------------------------------------
    "surefire-inline": (
        [
            "[ERROR] test_UUID(com.a.JSONTest)  Time elapsed: 0.006 s  <<< FAILURE!",
            "[ERROR] com.a.ValidatorTest.noAssert -- Time elapsed: 0.012 s <<< FAILURE!",
        ],
        ["com.a.JSONTest.test_UUID", "com.a.ValidatorTest.noAssert"],
    ),
    "surefire-class-on-the-tests-run-line": (
        [
            "[ERROR] Tests run: 4, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.1 s "
            "<<< FAILURE! - in com.a.SiftingTest",
            "[ERROR] zeroNesting{int}[1]  Time elapsed: 0.01 s  <<< FAILURE!",
        ],
        ["com.a.SiftingTest.zeroNesting{int}[1]"],
    ),
    "surefire-failed-tests-next-line": (
        [
            "Results :",
            "",
            "Failed tests: ",
            "  SiftingTest.zeroNesting:129 expected:<1> but was:<2>",
            "  SiftingTest.multipleNesting:143->check:20 null",
            "",
            "Tests in error: ",
            "  SiftingTest>AbstractTest.inherited:33 » NullPointer",
            "  SiftingTest.noLine » IllegalState boom",
            "",
            "Tests run: 4, Failures: 2, Errors: 2, Skipped: 0",
        ],
        [
            "SiftingTest.zeroNesting",
            "SiftingTest.multipleNesting",
            "SiftingTest.inherited",
            "SiftingTest.noLine",
        ],
    ),
    "surefire-failed-tests-same-line": (
        [
            "Failed tests:   testA(com.a.BarTest): expected:<1> but was:<2>",
            "  testB(com.a.BarTest)",
            "Tests in error: ",
            "  testC(com.a.BazTest): NullPointer",
            "  java.lang.NullPointerException",
            "",
            "Flaked tests: ",
            "  FlakyTest.sometimes",
            "  Run 1: FlakyTest.sometimes:12 expected",
            "  Run 2: PASS",
            "",
            "Tests run: 9, Failures: 2, Errors: 1, Skipped: 0",
        ],
        ["com.a.BarTest.testA", "com.a.BarTest.testB", "com.a.BazTest.testC"],
    ),
    "surefire-3-summary-with-reruns": (
        [
            "[ERROR] Failures: ",
            "[ERROR]   CalcTest.adds:27 expected: <1> but was: <2>",
            "a message that goes on",
            "on lines of its own",
            "[ERROR] Errors: ",
            "[ERROR] com.a.AppTest.lifecycle",
            "[ERROR]   Run 1: AppTest.setUp:68 » BeanCreation Error creating bean",
            "[ERROR]   Run 2: AppTest.setUp:68 » BeanCreation Error creating bean",
            "[INFO] ",
            "[WARNING] Flakes: ",
            "[WARNING]   FlakyTest.sometimes:12 expected",
        ],
        ["CalcTest.adds", "com.a.AppTest.lifecycle"],
    ),
    "gradle": (
        [
            "CalculatorTest > divides() FAILED",
            "UserTest > GetUser > notFound() FAILED",
            "a.b.CTest > run(int) > a.b.CTest.run(int)[3] FAILED",
            "MySpec > reproduce the null mapping case FAILED",
            "> Task :core:test FAILED",
        ],
        [
            "CalculatorTest.divides()",
            "UserTest$GetUser.notFound()",
            "a.b.CTest.run(int)[3]",
            "MySpec.reproduce the null mapping case",
        ],
    ),
    "testng": (
        [
            "Gradle suite > Gradle test > com.a.ng.PaymentTest.refunds FAILED",
            "FAILED: settles",
            'FAILED: charges("EUR", 3)',
            "FAILED CONFIGURATION: @BeforeMethod setUp",
        ],
        ["com.a.ng.PaymentTest.refunds", "settles", 'charges("EUR", 3)'],
    ),
    "ant": (
        [
            "    [junit] Testsuite: com.a.FooTest",
            "    [junit] Testcase: testNext took 1.4 sec",
            "    [junit] \tCaused an ERROR",
            "    [junit] Testcase: testOk took 0.1 sec",
            "    [junit] Testcase: testB(com.a.BarTest):\tFAILED",
            "    [junit] Test com.a.FooTest FAILED",
            "    [junit] Test com.a.QuietTest FAILED",
        ],
        ["com.a.FooTest.testNext", "com.a.BarTest.testB", "com.a.QuietTest"],
    ),
    "sbt-and-scalatest": (
        [
            "[error] Test basic.FooTest.failingTest failed: java.lang.AssertionError",
            "[info] - rejects a bad TLS handshake *** FAILED ***",
            "[info] - accepts a good one",
        ],
        ["basic.FooTest.failingTest", "rejects a bad TLS handshake"],
    ),
    # -- JavaScript --------------------------------------------------------------------------
    "jest": (
        [
            "FAIL src/cart.test.js",
            "  ● Cart › adds an item",
            "  ● Console",
            "FAIL src/broken.test.js",
            "  ● Test suite failed to run",
            '  ●  process.exit called with "0"',
        ],
        ["Cart › adds an item", "src/broken.test.js › Test suite failed to run"],
    ),
    "mocha": (
        [
            "  3 passing (2s)",
            "  3 failing",
            "",
            "  1) Lookup",
            "       should lookup seed:",
            "     Error: boom",
            "  2) Worker",
            '       "before each" hook for "can kill #0":',
            "     AssertionError",
            "  3) ",
            "       ",
            "         unittests:: Program",
            "           fails on imports:",
        ],
        [
            "Lookup should lookup seed",
            'Worker "before each" hook for "can kill #0"',
            "unittests:: Program fails on imports",
        ],
    ),
    # -- other languages ---------------------------------------------------------------------
    "go": (
        [
            "--- FAIL: TestParse (0.00s)",
            "    --- FAIL: TestParse/empty (0.00s)",
            "--- FAIL: TestLex (0.01s)",
            "FAIL\tgithub.com/a/b\t0.012s",
            "=== FAIL: internal/x TestGo (0.00s)",
        ],
        ["TestParse/empty", "TestLex", "internal/x.TestGo"],
    ),
    "cargo": (
        [
            "test parser::tests::parses ... FAILED",
            "test src/lib.rs - add (line 5) ... FAILED",
            "",
            "failures:",
            "",
            "---- parser::tests::parses stdout ----",
            "thread 'parser::tests::parses' panicked at 'boom'",
            "---- parser::tests::lexes stdout ----",
            "",
            "failures:",
            "    parser::tests::lexes",
            "    parser::tests::parses",
            "",
            "test result: FAILED. 3 passed; 3 failed",
        ],
        ["parser::tests::parses", "src/lib.rs - add (line 5)", "parser::tests::lexes"],
    ),
    "rspec": (
        [
            "Pending: (Failures listed here are expected and do not affect your suite's status)",
            "  1) Theme #transform_ids works with nil values",
            "Failures:",
            "  1) DistributedMutex allows one lock",
            "rspec ./spec/components/mutex_spec.rb:13 # DistributedMutex allows one lock",
            "rspec './spec/models/a_spec.rb[1:2:1]' # A behaves like B works",
        ],
        [
            "spec/components/mutex_spec.rb:13 # DistributedMutex allows one lock",
            "spec/models/a_spec.rb[1:2:1] # A behaves like B works",
        ],
    ),
    "minitest": (
        [
            "Failure:",
            "TestKramdown#test_highlighter [/build/test/test_kramdown.rb:106]",
            "Minitest::Assertion: Expected true to not be truthy.",
            "  1) Error:",
            "TestSite#test_render [test/test_site.rb:12]:",
            "Skipped:",
            "TestLSI#test_index [test/test_lsi.rb:26]:",
        ],
        ["TestKramdown#test_highlighter", "TestSite#test_render"],
    ),
    "phpunit": (
        [
            "There were 2 failures:",
            "",
            "1) Symfony\\Tests\\ClockMockTest::testTime",
            "Failed asserting that two strings are equal.",
            "2) App\\Tests\\MathTest::testAdd with data set #1 (1, 2, 4)",
            "/build/tests/MathTest.php:43",
            "",
            "There was 1 risky test:",
            "1) App\\Tests\\MathTest::testNothing",
            "FAILURES!",
        ],
        [
            "Symfony\\Tests\\ClockMockTest::testTime",
            "App\\Tests\\MathTest::testAdd with data set #1",
        ],
    ),
    "exunit": (
        [
            "  1) test reloads on every request (Phoenix.CodeReloaderTest)",
            "  2) doctest Foo.bar/2 (1) (FooTest)",
        ],
        [
            "test reloads on every request (Phoenix.CodeReloaderTest)",
            "doctest Foo.bar/2 (1) (FooTest)",
        ],
    ),
    "dotnet": (
        [
            "  Failed Shop.Tests.CartTests.AddsItem [12 ms]",
            "  Failed Shop.Tests.CartTests.Removes(id: 3) [< 1 ms]",
            "Nancy.Tests.RouteFixture.Should_invoke [FAIL]",
            "1) Failed : Shop.Tests.PriceTests.Rounds",
            "Failed!  - Failed:     3, Passed:    10, Skipped:     0, Total:    13",
        ],
        [
            "Shop.Tests.CartTests.AddsItem",
            "Shop.Tests.CartTests.Removes(id: 3)",
            "Nancy.Tests.RouteFixture.Should_invoke",
            "Shop.Tests.PriceTests.Rounds",
        ],
    ),
    "karma": (
        [
            "HeadlessChrome 80.0.3987 (Linux 0.0.0) Cart adds an item FAILED",
            "HeadlessChrome 80.0.3987 (Linux 0.0.0): Executed 9 of 9 (1 FAILED) (0.2 secs)",
        ],
        ["Cart adds an item"],
    ),
    "tap": (
        [
            "ok 1 parses",
            "not ok 2 - snapshot has expected content",
            "not ok 3 no errors",
            "not ok 4 - flaky network # TODO fix upstream",
            "not ok 5 - on windows # SKIP not here",
        ],
        ["snapshot has expected content", "no errors"],
    ),
    "xctest": (
        [
            "Test Case '-[SwiftyJSONTests.BaseTests testInit]' failed (0.004 seconds).",
            "Test Case 'PrintableTests.testArray' failed (0.001 seconds)",
            "Test Case '-[SwiftyJSONTests.BaseTests testOk]' passed (0.001 seconds).",
        ],
        ["SwiftyJSONTests.BaseTests.testInit", "PrintableTests.testArray"],
    ),
    "php-run-tests": (
        [
            "EXPECTED FAILED TEST SUMMARY",
            "---------------------------------------------------------------------",
            "Test open_basedir [tests/security/open_basedir_linkinfo.phpt]  XFAIL REASON: bug",
            "=====================================================================",
            "FAILED TEST SUMMARY",
            "---------------------------------------------------------------------",
            "Bug #60120 (proc_open hangs) [ext/standard/tests/file/bug60120.phpt]",
            "=====================================================================",
        ],
        ["Bug #60120 (proc_open hangs) [ext/standard/tests/file/bug60120.phpt]"],
    ),
}

# Lines that look like test reports but name no failing test.
NOT_TESTS = [
    "tests/test_a.py::test_fails_gracefully PASSED",
    "--- PASS: TestX (0.00s)",
    "  12 passing",
    "ERROR: Could not find a version that satisfies the requirement foo",
    "ERROR: sh(git clone -n https://github.com/processone/stun stun)",
    "ERROR: Failure: ImportError (No module named foo)",
    "  'FAILED: utimeSync foobarbaz nil ENOENT'",
    "---- end stdout ----",
    "Running test ./errors/pipe-in with sam ... FAIL",
    "> Task :compileJava FAILED",
    "BUILD FAILED",
    "FAILED tests",
    "=================================== XFAILURES ===================================",
    "_____________________ test_background_plotting_plots[ssaa] _____________________",
    "FAIL src/never.test.js",
    "  ● Console",
    "FAIL\tgithub.com/a/b\t0.012s",
    "● docker.service - Docker Application Container Engine",
    "Test Suites: 1 failed, 1 total",
    "  ● nginx.service - A high performance web server",
    "Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin",
    "There was 1 skipped test:",
    "1) App\\Tests\\SkipTest::testLater",
]


@pytest.mark.parametrize("form", sorted(CASES))
def test_failing_test_names(form: str) -> None:
    lines, expected = CASES[form]
    diagnosis = diagnose([*lines, "##[error]Process completed with exit code 1."])
    assert list(diagnosis.failing_tests) == expected


def test_lines_that_are_not_test_failures_name_nothing() -> None:
    assert diagnose(NOT_TESTS).failing_tests == ()


def test_pytest_headers_outside_failures_and_errors_are_not_failures() -> None:
    lines = [
        "==================================== PASSES ====================================",
        "_____________ test_passes _____________",
        "================================== XFAILURES ===================================",
        "_____________ test_expected_to_fail _____________",
        "=================================== FAILURES ===================================",
        "_____________ test_breaks _____________",
    ]
    assert diagnose(lines).failing_tests == ("test_breaks",)


def test_same_test_reported_twice_is_listed_once_by_its_fullest_name() -> None:
    lines = [
        "[ERROR] com.a.CalcTest.adds  Time elapsed: 0.1 s  <<< FAILURE!",
        "[ERROR] Failures: ",
        "[ERROR]   CalcTest.adds:27 expected: <1> but was: <2>",
        "[INFO]",
    ]
    assert diagnose(lines).failing_tests == ("com.a.CalcTest.adds",)


def test_a_short_name_is_replaced_by_a_later_fuller_one() -> None:
    lines = [
        "=================================== FAILURES ===================================",
        "_____________ TestY.test_z[p] _____________",
        "=========================== short test summary info ============================",
        "FAILED tests/test_x.py::TestY::test_z[p] - AssertionError",
    ]
    assert diagnose(lines).failing_tests == ("tests/test_x.py::TestY::test_z[p]",)


def test_a_go_test_is_named_by_its_failing_subtests() -> None:
    lines = [
        "--- FAIL: TestAlpha (0.00s)",
        "    --- FAIL: TestAlpha/Meetups (0.00s)",
        "        --- FAIL: TestAlpha/Meetups/b (0.00s)",
    ]
    assert diagnose(lines).failing_tests == ("TestAlpha/Meetups/b",)


def test_colour_codes_do_not_hide_a_failure() -> None:
    lines = [
        "test parser::tests::parses ... \x1b[31mFAILED\x1b[0m",
        "tests.mod.test_a ... \x1b[31mFAIL\x1b[0m",
        "\x1b[0K\x1b[1m\x1b[31mFAIL\x1b[39m\x1b[22m src/a.test.js",
        "  \x1b[1m\x1b[31m\x1b[1m● \x1b[22m\x1b[1mA › works\x1b[39m\x1b[22m",
        "\x1b[31mFAILED\x1b[0m tests/test_b.py::test_b - assert 0",
    ]
    assert diagnose(lines).failing_tests == (
        "parser::tests::parses",
        "tests.mod.test_a",
        "A › works",
        "tests/test_b.py::test_b",
    )


def test_parametrised_runs_are_not_repeated_by_the_summary() -> None:
    lines = [
        "[ERROR] Tests run: 9, Failures: 0, Errors: 2, Skipped: 0, Time elapsed: 1 s <<< FAILURE! "
        "- in org.a.MonitorServiceTest",
        "[ERROR] validateHost{ArgumentsAccessor}[1]  Time elapsed: 0.003 s  <<< ERROR!",
        "[ERROR] validateHost{ArgumentsAccessor}[2]  Time elapsed: 0.003 s  <<< ERROR!",
        "[ERROR] Errors: ",
        "[ERROR]   MonitorServiceTest.validateHost » InjectMocks ",
        "[ERROR]   MonitorServiceTest.validateHost » InjectMocks ",
        "[INFO] ",
    ]
    assert diagnose(lines).failing_tests == (
        "org.a.MonitorServiceTest.validateHost{ArgumentsAccessor}[1]",
        "org.a.MonitorServiceTest.validateHost{ArgumentsAccessor}[2]",
    )


def test_junit4_parameters_with_spaces() -> None:
    lines = ["testFib[0: fib(0)=0](com.a.FibTest)  Time elapsed: 0.01 sec  <<< FAILURE!"]
    assert diagnose(lines).failing_tests == ("com.a.FibTest.testFib[0: fib(0)=0]",)


def test_a_pytest_header_takes_the_file_of_its_first_frame() -> None:
    lines = [
        "=================================== FAILURES ===================================",
        "_____________ TestY.test_z[a] _____________",
        "",
        "    def test_z(self, a):",
        ">       assert helper(a)",
        "",
        "/home/runner/work/repo/repo/tests/test_x.py:12: ",
        "tests/helpers.py:3: AssertionError",
        "_____________ test_db _____________",
        "conftest.py:8: in db",
        "_____________ test_lib _____________",
        "/usr/lib/python3/site-packages/lib/test_thing.py:8: ValueError",
    ]
    assert diagnose(lines).failing_tests == (
        "tests/test_x.py::TestY::test_z[a]",
        "test_db",
        "test_lib",
    )


def test_old_pytest_short_summary_says_fail() -> None:
    lines = ["=== short test summary info ===", "FAIL tests/test_x.py::test_y"]
    assert diagnose(lines).failing_tests == ("tests/test_x.py::test_y",)


def test_a_long_mocha_list_is_read_to_its_end() -> None:
    lines = ["  300 failing", ""]
    for number in range(1, 301):
        lines += [f"  {number}) Suite", f"       case {number}:", "     Error: boom"]
        lines += [f"      at frame{i} (test/x.js:{i}:1)" for i in range(12)]
        lines.append("")
    names = diagnose(lines).failing_tests
    assert len(names) == 300
    assert names[-1] == "Suite case 300"


def test_a_mocha_title_may_span_lines_inside_brackets() -> None:
    lines = [
        "  1 failing",
        "",
        "  1) BuildSystem",
        "       should build with: {",
        "  runtime: 'node',",
        "  arch: undefined",
        "}:",
        "     Error: Failed to generate def",
    ]
    assert diagnose(lines).failing_tests == (
        "BuildSystem should build with: { runtime: 'node', arch: undefined }",
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_log_excerpt(name: str) -> None:
    """Excerpts of real CI logs (see tests/data/logs/failing-tests/README.md)."""
    data = (REAL / name).read_bytes()
    assert list(diagnose(data).failing_tests) == EXPECTED[name]["failing_tests"]
    # Python's `re` engine (always there) finds the same lines as the fast engines.
    assert list(diagnose(data, engine="re").failing_tests) == EXPECTED[name]["failing_tests"]


def _tokens(name: str) -> set[str]:
    return {t.lower() for t in re.findall(r"[^\W_](?:[\w\-]*[^\W_])?|_\w+", name)} - {"py"}


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e.get("bugswarm_label")))
def test_expected_names_cover_bugswarms_labels(name: str) -> None:
    """Each name BugSwarm labelled is among the expected ones, in our naming."""
    label = EXPECTED[name]["bugswarm_label"]
    parts = label.split(":#") if label.endswith(":") else label.split("#")
    expected = [_tokens(n) for n in EXPECTED[name]["failing_tests"]]
    for part in parts:
        wanted = _tokens(part.replace(" (unittest.loader._FailedTest)", ""))
        assert any(wanted <= have for have in expected), part
