"""Evidence blocks (issue 14): each anchor grows into its whole explanation, sized to it."""

# ruff: noqa: E501  (patterns and log lines read best unbroken)

from __future__ import annotations

import json

from contexten.analysis.logs import diagnose
from contexten.analysis.logs.model import BlockKind, DiagnosisStatus


def _lines(log: list[str]) -> set[int]:
    return {e.line for e in diagnose(log).evidence}


def test_python_traceback_with_its_chain_is_one_block() -> None:
    log = [
        "##[group]Run python -m app",  # 1
        "Traceback (most recent call last):",  # 2
        '  File "app/db.py", line 10, in connect',  # 3
        "    return driver.open(url)",  # 4
        "KeyError: 'url'",  # 5
        "",  # 6
        "During handling of the above exception, another exception occurred:",  # 7
        "",  # 8
        "Traceback (most recent call last):",  # 9
        '  File "app/main.py", line 3, in <module>',  # 10
        "    connect()",  # 11
        "RuntimeError: no database configured",  # 12
        "##[error]Process completed with exit code 1.",  # 13
    ]
    diagnosis = diagnose(log)
    assert {2, 3, 4, 5, 7, 9, 10, 11, 12} <= {e.line for e in diagnosis.evidence}
    assert all(e.text.strip() for e in diagnosis.evidence)  # blank lines are not shown
    assert diagnosis.blocks[0].kind is BlockKind.TRACE


def test_java_exception_keeps_caused_by_and_project_frames_first() -> None:
    frames = [f"\tat org.junit.internal.Runner{i}.run(Runner{i}.java:{i})" for i in range(40)]
    log = [
        "##[group]Run mvn -B test",  # 1
        "[ERROR] Tests run: 3, Failures: 0, Errors: 1, Skipped: 0 <<< FAILURE! - in com.acme.AppTest",  # 2
        "[ERROR] com.acme.AppTest.loads  Time elapsed: 0.1 s  <<< ERROR!",  # 3
        "java.lang.IllegalStateException: context failed",  # 4
        *frames,  # 5-44
        "\tat com.acme.AppTest.loads(AppTest.java:12)",  # 45
        "Caused by: java.io.FileNotFoundException: app.yml",  # 46
        "\tat com.acme.Config.read(Config.java:31)",  # 47
        "\t... 42 more",  # 48
        "##[error]Process completed with exit code 1.",  # 49
    ]
    diagnosis = diagnose(log)
    got = {e.line for e in diagnosis.evidence}
    assert len(diagnosis.evidence) <= 30
    assert {4, 45, 46, 47} <= got  # message, project frames, the Caused by: link
    assert not {30, 31, 32} & got  # library frames are the first to go


def test_compiler_error_with_excerpt_and_caret_grouped_per_error() -> None:
    log = [
        "##[group]Run cargo build",  # 1
        "   Compiling app v0.1.0 (/home/runner/work/app)",  # 2
        "error[E0425]: cannot find value `x` in this scope",  # 3
        " --> src/main.rs:4:13",  # 4
        "  |",  # 5
        "4 |     let y = x + 1;",  # 6
        "  |             ^ not found in this scope",  # 7
        "",  # 8
        "error: could not compile `app` due to previous error",  # 9
        "##[error]Process completed with exit code 101.",  # 10
    ]
    diagnosis = diagnose(log)
    got = {e.line for e in diagnosis.evidence}
    assert {3, 4, 5, 6, 7} <= got and 2 not in got
    first = diagnosis.blocks[0]
    assert (first.start, first.end) == (3, 7) and first.kind is BlockKind.COMPILER


def test_a_two_line_error_stays_two_lines() -> None:
    log = [
        "##[group]Run ./deploy.sh",  # 1
        "uploading artifacts",  # 2
        "uploaded 3 files",  # 3
        "",  # 4
        "Error: bucket acme-releases does not exist",  # 5
        "  (create it with `make bucket` first)",  # 6
        "",  # 7
        "##[error]Process completed with exit code 1.",  # 8
    ]
    diagnosis = diagnose(log)
    assert [(b.start, b.end) for b in diagnosis.blocks] == [(5, 6)]
    assert [e.line for e in diagnosis.evidence] == [5, 6]


def test_no_rule_match_gives_the_end_of_the_failing_step_never_nothing() -> None:
    log = [
        "##[group]Run ./smoke.sh",  # 1
        "smoke: starting",  # 2
        "smoke: check 1 returned 0",  # 3
        "smoke: check 2 returned 3",  # 4
        "##[error]Process completed with exit code 3.",  # 5
        "##[group]Run actions/upload-artifact@v4",  # 6
        "uploaded report",  # 7
    ]
    diagnosis = diagnose(log)
    assert diagnosis.status is DiagnosisStatus.UNMATCHED
    assert diagnosis.evidence and {e.line for e in diagnosis.evidence} <= {2, 3, 4}
    assert 4 in {e.line for e in diagnosis.evidence}
    assert diagnosis.blocks[0].kind is BlockKind.COMMAND


def test_travis_failing_command_tail_before_its_status_line() -> None:
    log = [
        "$ bundle exec rake",  # 1
        "rake aborted!",  # 2
        "No Rakefile found (looking for: rakefile, Rakefile)",  # 3
        "(See full trace by running task with --trace)",  # 4
        "",  # 5
        'The command "bundle exec rake" exited with 1.',  # 6
        "",  # 7
        "Done. Your build exited with 1.",  # 8
    ]
    got = _lines(log)
    assert {2, 3} <= got and not {6, 8} & got


def test_every_failing_travis_command_gets_a_block_first_one_first() -> None:
    # Travis runs every script command even after one failed: the job's real failure
    # may be the later command's.
    log = [
        "$ make lint",  # 1
        "src/a.c:3:1: warning: unused variable 'x'",  # 2
        "make: *** [lint] Error 1",  # 3
        'The command "make lint" exited with 2.',  # 4
        "$ make test",  # 5
        "running 12 tests",  # 6
        "t/t0001-init.sh: ok",  # 7
        "not ok 3 - init in a subdirectory",  # 8
        "#\texpected 'sub', got ''",  # 9
        "make: *** [test] Error 1",  # 10
        'The command "make test" exited with 2.',  # 11
        "Done. Your build exited with 1.",  # 12
    ]
    d = diagnose(log)
    got = {e.line for e in d.evidence}
    assert 2 in got and 8 in got
    assert not {4, 7, 11, 12} & got
    assert d.blocks[0].start <= 2 <= d.blocks[0].end
    assert any(b.start <= 8 <= b.end for b in d.blocks[1:])


def test_warnings_that_fail_the_build_under_werror_are_the_evidence() -> None:
    log = [
        "$ stack build --pedantic",  # 1
        "[ 1 of 3] Compiling Text.A ( src/Text/A.hs, dist/build/Text/A.o )",  # 2
        "",  # 3
        "src/Text/A.hs:94:10: Warning:",  # 4
        "    No explicit implementation for",  # 5
        "      \u2018mappend\u2019",  # 6
        "",  # 7
        "<no location info>:",  # 8
        "Failing due to -Werror.",  # 9
        "[ 2 of 3] Compiling Text.B ( src/Text/B.hs, dist/build/Text/B.o )",  # 10
        "[ 3 of 3] Compiling Text.C ( src/Text/C.hs, dist/build/Text/C.o )",  # 11
        'The command "stack build --pedantic" exited with 1.',  # 12
    ]
    got = _lines(log)
    assert {4, 5, 6} <= got
    assert not {2, 10, 11, 12} & got


def test_stray_nl_artefact_of_macos_workers_is_read_through() -> None:
    log = [
        "$ pod lib lint Kit.podspec",  # 1
        "nl -> Kit (10.0.0)",  # 2
        "    - ERROR | [OSX] unknown: Encountered an unknown error (no spec for pod):",  # 3
        "nl",  # 4
        "nl",  # 5
        "nl[!] Kit did not pass validation, due to 1 error.",  # 6
        'The command "pod lib lint Kit.podspec" exited with 1.',  # 7
    ]
    got = _lines(log)
    assert 3 in got
    assert not {4, 5, 7} & got
    # Alone, the tail is the explanation: read through its `nl` too.
    assert 3 in _lines([log[0], "nl", "nl[!] Kit did not pass validation.", log[6]])


def test_the_command_s_last_lines_stay_out_when_an_error_block_explains_it() -> None:
    log = [
        "$ make check",  # 1
        "src/a.c:3:1: error: expected ';' before '}' token",  # 2
        "   3 | }",  # 3
        "     | ^",  # 4
    ]
    log += [f"checking module {n}" for n in range(5, 40)]
    log += ["Build finished with errors.", 'The command "make check" exited with 2.']  # 40, 41
    got = _lines(log)
    assert {2, 3, 4} <= got
    assert not set(range(30, 42)) & got


def test_a_long_output_s_first_test_failure_is_found_far_from_its_end() -> None:
    log = ["$ rebar ct"]  # 1
    log += [f"{n:05d} [info] session {n} closed" for n in range(2, 6000)]
    log[999] = "suite:recv_message failed on line 535"  # 1000
    log[1000] = "Reason: timetrap_timeout"  # 1001
    log += [
        "Testing ejabberd: TEST COMPLETE, 1 failed of 1470 test cases",  # 6000
        "ERROR: One or more tests failed",  # 6001
        'The command "rebar ct" exited with 1.',  # 6002
    ]
    d = diagnose(log)
    got = {e.line for e in d.evidence}
    assert {1000, 1001} <= got
    assert not got & set(range(1002, 5990))


def test_pester_failure_in_double_spaced_output_keeps_expected_actual_and_frames() -> None:
    log = [
        "$ pwsh -c ./test.ps1",  # 1
        "Describing Invoke-Pester",  # 2
        "",  # 3
        "[-] - Running without params runs all files -> Expected and actual values differ!",  # 4
        "",  # 5
        "Expected: '/tmp/dir/file1.Tests.ps1'",  # 6
        "",  # 7
        "Actual  : 'file1.Tests.ps1'",  # 8
        "",  # 9
        "at Verify-Equal, /build/Pester/Verify-Equal.ps1:16",  # 10
        "",  # 11
        "at <ScriptBlock>, /build/Pester/Pester.RSpec.ts.ps1:184",  # 12
        "",  # 13
    ]
    log += [f"[+] case {n} runs 5ms" for n in range(14, 34)]  # 14..33
    log += [
        "Tests completed in 181ms",  # 34
        "Tests Passed: 20, Failed: 1, Skipped: 0",  # 35
        'The command "pwsh -c ./test.ps1" exited with 1.',  # 36
    ]
    got = _lines(log)
    assert {4, 6, 8, 10, 12} <= got
    assert not {2, 36} & got


def test_a_cut_log_s_pytest_failure_is_found_far_above_its_summary() -> None:
    # The log ends with pytest's summary (no exit-status line): the failure's E line is
    # hundreds of lines above, after the test's long source excerpt.
    log = ["$ pytest sklearn", "." * 60 + " [100%]", ""]  # 1-3
    log += ["=" * 20 + " FAILURES " + "=" * 20]  # 4
    log += ["_" * 10 + " test_unsorted_indices " + "_" * 10]  # 5
    log += [f"    x{n} = load({n})" for n in range(6, 106)]  # 6-105: the test's source
    log += ["E           TypeError: could not interpret data type"]  # 106
    log += ["sklearn/svm/tests/test_svm.py:42: TypeError"]  # 107
    log += [f"SKIPPED [1] sklearn/x{n}.py: needs pandas" for n in range(108, 600)]
    log += ["= 1 failed, 10071 passed, 378 skipped in 506.01 seconds ="]  # 600
    got = _lines(log)
    assert 106 in got


def test_qunit_module_failure_with_its_assertions_far_from_the_end() -> None:
    log = ["$ bundle exec rake qunit:test"]  # 1
    log += ["."] * 98  # 2-99
    log += [
        "Module Failed: date-time-input-range",  # 100
        "  Test Failed: prevents toDate to be before fromDate",  # 101
        "    Assertion Failed: failed, expected argument to be falsy, was: true",  # 102
        "      Expected: true, Actual: false",  # 103
        "",  # 104
    ]
    log += [f"Acceptance: Composer test {n}: {n}ms" for n in range(105, 160)]
    log += ['The command "bundle exec rake qunit:test" exited with 1.']  # 160
    got = _lines(log)
    assert {100, 101, 102, 103} <= got


def test_tasty_failure_with_its_diff_far_from_the_end() -> None:
    log = ["$ stack test"]  # 1
    log += [f"      case{n}:{' ' * 40}OK (0.04s)" for n in range(2, 30)]  # 2-29
    log += [
        "      tables:                                        FAIL (0.06s)",  # 30
        "",  # 31
        "        --- tables.custom",  # 32
        "        +  29 </table>",  # 33
        "        -  29 </table",  # 34
    ]
    log += [f"      later{n}:{' ' * 40}OK (0.04s)" for n in range(35, 200)]  # 35-199
    log += [
        "1 out of 2041 tests failed (45.46s)",  # 200
        'The command "stack test" exited with 1.',  # 201
    ]
    got = _lines(log)
    assert {30, 33, 34} <= got
    assert not got & set(range(2, 30))


def test_a_passing_test_line_never_anchors_a_block() -> None:
    from contexten.analysis.logs.blocks import passed

    assert passed("        unknown option fallback:                         OK")
    assert passed("      tables:                                   OK (0.04s)")
    assert passed("--- PASS: TestX (0.01s)")
    assert not passed("      tables:                                 FAIL (0.06s)")
    assert not passed("error: unknown option fallback")


def test_a_later_failing_command_with_a_multi_line_echo_gets_its_block() -> None:
    log = [
        "$ make",  # 1
        "fatal: unable to access 'https://github.com/x/stun/': Connection timed out",  # 2
        'The command "make" exited with 2.',  # 3
        "$ for f in t/*.lua; do",  # 4
        "    lua $f",  # 5
        "  done",  # 6
        "t/a.lua ok",  # 7
        "lua: t/b.lua:12: attempt to index a nil value (field 'buf')",  # 8
        'The command "for f in t/*.lua; do',  # 9
        "    lua $f",  # 10
        '  done" exited with 1.',  # 11
        "Done. Your build exited with 1.",  # 12
    ]
    d = diagnose(log)
    got = {e.line for e in d.evidence}
    assert {2, 8} <= got
    assert not {9, 10, 11, 12} & got


def test_prove_s_dubious_test_far_from_the_end() -> None:
    log = ["$ make test"]  # 1
    log += [f"[12:45:0{n % 10}] t{n:04d}-x.sh .. ok" for n in range(2, 100)]  # 2-99
    log += [
        "[12:45:05] t9502-gitweb-parse-output.sh ....... Dubious, test returned 1 (wstat 256, 0x100)",  # 100
        "Failed 1/13 subtests",  # 101
    ]
    log += [f"===( {n};3 0/? 4/? )===" for n in range(102, 150)]  # 102-149
    log += ["make: *** [test] Error 1", 'The command "make test" exited with 2.']  # 150-151
    got = _lines(log)
    assert {100, 101} <= got


def test_failure_list_under_its_header() -> None:
    log = [
        "$ vendor/bin/phpunit",  # 1
        "Time: 32.81 seconds, Memory: 98.25MB",  # 2
        "",  # 3
        "There was 1 failure:",  # 4
        "",  # 5
        "1) Form_validation_test::test_rule_valid_date",  # 6
        "Failed asserting that false is true.",  # 7
        "",  # 8
        "/home/travis/build/app/tests/Form_validation_test.php:318",  # 9
        "",  # 10
        "FAILURES!",  # 11
        "Tests: 401, Assertions: 1341, Failures: 1.",  # 12
        'The command "vendor/bin/phpunit" exited with 1.',  # 13
    ]
    got = _lines(log)
    assert {6, 7, 9} <= got and 4 not in got


def test_blocks_in_json() -> None:
    log = [
        "##[group]Run make",
        "gcc -c main.c",
        "main.c:3:5: error: unknown type name 'strng'",
        "##[error]Process completed with exit code 2.",
    ]
    data = json.loads(json.dumps(diagnose(log).to_dict()))
    assert data["blocks"] and {"start", "end", "kind"} <= set(data["blocks"][0])
    assert all(set(e) >= {"line", "text"} for e in data["evidence"])


def test_the_passing_log_leaves_out_lines_it_also_has_and_keeps_new_ones() -> None:
    common = [f"step {chr(97 + i)}: wrote the records" for i in range(20)]
    failing = [
        "##[group]Run ./check.sh",
        *common,
        "check: schema version is now v3",
        "##[error]Process completed with exit code 1.",
    ]
    passing = ["##[group]Run ./check.sh", *common, "check: all good"]
    single = diagnose(failing)
    based = diagnose(failing, baseline_logs=[passing])
    assert 22 in {e.line for e in based.evidence}
    assert not {e.line for e in based.evidence} & set(range(2, 22))
    assert {e.line for e in single.evidence} & set(range(2, 22))  # without it: the plain tail


def test_new_lines_next_to_a_rule_block_join_it() -> None:
    common = [f"step {chr(97 + i)}: wrote the records" for i in range(20)]
    failing = [
        "##[group]Run make",  # 1
        *common,  # 2-21
        "linking against libfoo 2.0 from /opt/foo",  # 22 (new)
        "main.c:3:5: error: unknown type name 'strng'",  # 23
        "##[error]Process completed with exit code 2.",  # 24
    ]
    passing = ["##[group]Run make", *common, "build finished"]
    based = diagnose(failing, baseline_logs=[passing])
    first = based.blocks[0]
    assert first.rule == "c-compile-error" and (first.start, first.end) == (22, 23)
    statuses = {e.line: e.status for e in based.evidence}
    assert statuses[22] is not None and statuses[22].value == "new"
    assert not set(statuses) & set(range(2, 22))


def test_a_short_preview_shows_a_block_s_message_before_its_context() -> None:
    from contexten.analysis.logs.report import preview

    code = [f"        value_{i} = compute({i})" for i in range(12)]
    log = [
        "##[group]Run pytest",  # 1
        "=================================== FAILURES ===================================",  # 2
        "__________________________________ test_sum __________________________________",  # 3
        "    def test_sum():",  # 4
        *code,  # 5-16
        ">       assert total == 3",  # 17
        "E       assert 4 == 3",  # 18
        "tests/test_sum.py:18: AssertionError",  # 19
        "=========================== short test summary info ============================",  # 20
        "FAILED tests/test_sum.py::test_sum - assert 4 == 3",  # 21
        "##[error]Process completed with exit code 1.",  # 22
    ]
    diagnosis = diagnose(log)
    assert {3, 17, 18, 19} <= {e.line for e in diagnosis.evidence}
    shown = [e.line for e in preview(diagnosis, 5)]
    assert len(shown) == 5 and {3, 17, 18, 19} <= set(shown)
    assert max(shown) <= 19  # all from the failure itself, the first block; 12 code lines cut


def test_a_rule_word_inside_a_name_is_not_a_cause() -> None:
    log = [
        "$ make test",  # 1
        "Selecting previously unselected package libsigsegv2:amd64.",  # 2
        "    { name = 'test-net-connect-handle-econnrefused.lua', type = 'file' }",  # 3
        "tests/test_x.py::test_match[rate limit exceeded] PASSED",  # 4
        "# Starting Test: tls-client-econnreset - tls client econnreset",  # 5
        "src/a.c:3:1: error: expected ';' before '}' token",  # 6
        'The command "make test" exited with 2.',  # 7
    ]
    diagnosis = diagnose(log)
    assert diagnosis.category.value == "compile"
    assert 6 in {e.line for e in diagnosis.evidence}
    fired = {match.rule_id for match in diagnosis.rules}
    assert not fired & {"crash", "connection-refused", "connection-reset", "api-rate-limit"}


def test_rate_limited_as_a_description_is_not_a_rate_limit() -> None:
    log = [
        "$ mix run check.exs",  # 1
        "'ratekeeper' https://github.com/x/ratekeeper 'Rate limiter and rate-limited actions'",
        '** (throw) "Words not in order \\"exos\\" and \\"ex_lttb\\""',  # 3
        "    check.exs:9: Awesome.Order.check_string_list_in_order/1",  # 4
        'The command "mix run check.exs" exited with 1.',  # 5
    ]
    diagnosis = diagnose(log)
    assert diagnosis.category.value != "rate_limit"
    assert {3, 4} <= {e.line for e in diagnosis.evidence}
    limited = ["$ gh api x", "You have been rate limited.", 'The command "gh api x" exited with 1.']
    assert diagnose(limited).category.value == "rate_limit"


def test_a_go_failure_s_parts_across_two_blank_lines_are_one_block() -> None:
    log = [
        "$ go test ./...",  # 1
        "--- FAIL: TestPreferChained (2.62s)",  # 2
        "    <autogenerated>:31:",  # 3
        "        Error Trace:  proxied_test.go:126",  # 4
        "        Error:        Should be true",  # 5
        "",  # 6
        "",  # 7
        "    <autogenerated>:31:",  # 8
        "        Error Trace:  proxied_test.go:142",  # 9
        "        Error:        Should be true",  # 10
        "FAIL",  # 11
        'The command "go test ./..." exited with 1.',  # 12
    ]
    assert {2, 3, 4, 5, 8, 9, 10} <= _lines(log)


def test_a_command_stopped_by_timeout_shows_its_status() -> None:
    log = [
        "$ timeout 35m ci/build.sh",  # 1
        "Building library for purescript-0.13.0..",  # 2
        "[ 12 of 140] Compiling Language.PureScript.AST",  # 3
        'The command "timeout 35m ci/build.sh" exited with 124.',  # 4
    ]
    assert 4 in _lines(log)


def test_a_failure_printed_again_by_a_later_run_is_shown_at_the_later_run() -> None:
    log = ["$ rebar ct"]  # 1
    for attempt in (1, 2):
        log += [
            f"Testing attempt {attempt}",
            "suite:send_recv failed on line 593",
            "Reason: timetrap_timeout",
            "",
        ]
    log += ['The command "rebar ct" exited with 1.']
    got = _lines(log)
    assert {7, 8} <= got  # the second run's copy
    assert not {3, 4} & got


def test_a_short_failing_command_is_shown_with_its_command_line() -> None:
    log = [
        "travis_time:start:04e6a1a3",  # 1
        "$ ./check_integrity.sh bin/*",  # 2
        "Run 'make docs' to create man/git-rename-remote.1",  # 3
        'The command "./check_integrity.sh bin/*" exited with 1.',  # 4
    ]
    assert {2, 3} <= _lines(log)


def test_prove_s_dubious_on_its_own_line_comes_with_the_test_name_above_it() -> None:
    log = ["$ make prove"]  # 1
    log += [f"[22:25:4{n % 10}] t{n:04d}-x.sh .......... ok    12 ms" for n in range(2, 60)]  # 2-59
    log += [
        "[22:25:48] t9806-git-p4-options.sh ............................",  # 60
        "Dubious, test returned 1 (wstat 256, 0x100)",  # 61
        "Failed 1/5 subtests",  # 62
    ]
    log += [
        f"[22:26:0{n % 10}] t{n:04d}-y.sh .......... ok    9 ms" for n in range(63, 120)
    ]  # 63-119
    log += ["make: *** [prove] Error 1", 'The command "make prove" exited with 2.']  # 120-121
    got = _lines(log)
    assert {60, 61, 62} <= got
    assert not set(range(100, 120)) & got  # the passing tests at the end are not evidence


def test_an_address_sanitizer_report_is_one_block_with_its_frames() -> None:
    log = [
        "$ test/functional/test_runner.py",  # 1
        "node2 stderr =================================================================",  # 2
        "==30799==ERROR: AddressSanitizer: heap-use-after-free on address 0x61b000080607 at pc 0x5558 bp 0x7f38 sp 0x7f38",  # 3
        "READ of size 1 at 0x61b000080607 thread T2 (bitcoin-schedul)",  # 4
        "    #0 0x555888669d4b in CConnman::GetExtraOutboundCount() src/net.cpp:1636:25",  # 5
        "    #1 0x555888745612 in PeerLogicValidation::EvictExtraOutboundPeers(long) src/net_processing.cpp:3504:24",  # 6
        "",  # 7
        "SUMMARY: AddressSanitizer: heap-use-after-free src/net.cpp:1636:25 in CConnman::GetExtraOutboundCount()",  # 8
        "==30799==ABORTING",  # 9
        "wallet_address_types.py                | ✖ Failed  | 94 s",  # 10
    ]
    diagnosis = diagnose(log)
    assert {3, 4, 5, 6} <= {e.line for e in diagnosis.evidence}
    assert diagnosis.category.value == "test"
    assert diagnosis.blocks[0].start == 3


def test_php_run_tests_expected_failures_are_not_evidence() -> None:
    log = ["$ sapi/cli/php run-tests.php"]  # 1
    for number, result in (
        (2, "XFAIL Inconsistencies [Zend/tests/access_modifiers_008.phpt]"),
        (8, "FAIL FPM: bug77934 - php-fpm kill -USR2 not working [sapi/fpm/tests/bug77934.phpt]"),
    ):
        log += [
            "========DIFF========",  # 2, 8
            f"001+ bool(false) {number}",  # 3, 9
            "",  # 4, 10
            f"001- bool(true) {number}",  # 5, 11
            "========DONE========",  # 6, 12
            result,  # 7, 13
        ]
    log += ["SKIP testing binary literals [Zend/tests/binary-32bit.phpt] reason: 32bit only"]  # 14
    log += ['The command "sapi/cli/php run-tests.php" exited with 1.']  # 15
    got = _lines(log)
    assert {9, 11, 12, 13} <= got
    assert not {3, 5, 7} & got


def test_sbt_s_count_summaries_come_after_the_scalatest_failures() -> None:
    log = ["$ ./sbt finagle-exp/test"]  # 1
    log += [f"[info] - passing case {n}" for n in range(2, 40)]  # 2-39
    log += [
        "[info] - Requests exceeding limit should increase dropped_request count *** FAILED ***",  # 40
        "[info]   10.0 was not greater than 10 (ConcurrencyEndToEndTest.scala:73)",  # 41
    ]
    log += [f"[info] - passing case {n}" for n in range(42, 80)]  # 42-79
    log += [
        "[info] *** 1 TEST FAILED ***",  # 80
        "[error] Failed: Total 16, Failed 1, Errors 0, Passed 15",  # 81
        "[error] Failed tests:",  # 82
        "[error] \tcom.twitter.finagle.exp.ConcurrencyEndToEndTest",  # 83
        "[error] (finagle-exp / Test / test) sbt.TestsFailedException: Tests unsuccessful",  # 84
        'The command "./sbt finagle-exp/test" exited with 1.',  # 85
    ]
    assert {40, 41} <= _lines(log)


def test_a_compiler_warning_or_a_test_name_is_not_a_cause() -> None:
    log = [
        "$ ./travis.sh",  # 1
        "DefaultStaticContentProvider.cs(11,18): warning CS1574: XML comment on `Nancy.X' has cref attribute `Y' that could not be resolved",  # 2
        "admin-report::rate limited",  # 3
        "Config file /root/.cabal/config not found.",  # 4
        "Nancy.Tests.Unit.RouteFixture.Should_invoke [FAIL]",  # 5
        "Assert.Equal() Failure",  # 6
        "Expected: 1",  # 7
        "Actual:   0",  # 8
        'The command "./travis.sh" exited with 1.',  # 9
    ]
    diagnosis = diagnose(log)
    fired = {match.rule_id for match in diagnosis.rules}
    assert not fired & {"maven-resolution", "api-rate-limit", "invalid-config"}
    assert diagnosis.category.value not in ("dependency", "rate_limit", "config")
    assert {5, 6, 7, 8} <= {e.line for e in diagnosis.evidence}


def test_what_a_wrapper_s_long_backtrace_relays_is_shown() -> None:
    frames = [
        f"/home/travis/.rvm/gems/ruby-2.2.10/gems/bundler-1.17.3/lib/bundler/cli{n}.rb:{n}:in `run'"
        for n in range(20)
    ]
    log = [
        "$ bundle exec rake",  # 1
        "/home/travis/.rvm/rubies/ruby-2.2.10/bin/ruby tests/yaml.rb",  # 2
        "(./tr-tr/clojure-tr.html.markdown): did not find expected ',' or ']' while parsing a flow sequence at line 6 column 7",  # 3
        "FAILURE!!! 1 files were unable to be parsed!",  # 4
        "Command failed with status (1): [/home/travis/.rvm/rubies/ruby-2.2.10/bin/r...]",  # 5
        "rake aborted!",  # 6
        "Failed 1 tests!!",  # 7
        *frames,  # 8-27
        "Tasks: TOP => default => return_code",  # 28
        'The command "bundle exec rake" exited with 1.',  # 29
    ]
    assert {3, 4} <= _lines(log)


def test_one_long_block_leaves_room_for_the_blocks_after_it() -> None:
    log = ["$ sapi/cli/php run-tests.php", "========DIFF========"]  # 1-2
    log += [f"{n:03d}+ Wrong result for Africa/Zone{n}!" for n in range(3, 63)]  # 3-62
    log += ["========DONE========", "FAIL Timezones [ext/date/tests/zones.phpt]", ""]  # 63-65
    log += [
        "========DIFF========",  # 66
        "001+ ERROR: No terminating lines",  # 67
        "========DONE========",  # 68
        "FAIL FPM: bug77934 - php-fpm kill -USR2 not working [sapi/fpm/tests/bug77934.phpt]",  # 69
        'The command "sapi/cli/php run-tests.php" exited with 1.',  # 70
    ]
    diagnosis = diagnose(log)
    got = {e.line for e in diagnosis.evidence}
    assert 3 in got and 67 in got
    assert len(diagnosis.evidence) <= 30


def test_a_usage_error_above_the_usage_text_is_shown() -> None:
    log = [
        "$ ./sapi/cli/php run-tests.php -j2",  # 1
        "Illegal switch 'j' specified!",  # 2
        "Synopsis:",  # 3
        "php run-tests.php [options] [files] [directories]",  # 4
        "",  # 5
        "Options:",  # 6
    ]
    log += [f"-{chr(97 + n)} <value>   an option that does thing {n}" for n in range(25)]  # 7-31
    log += ['The command "./sapi/cli/php run-tests.php -j2" exited with 1.']  # 32
    assert 2 in _lines(log)


def test_a_unittest_failure_is_its_traceback_and_captured_output() -> None:
    rule = "-" * 70
    log = [
        "$ nosetests-2.7 -v",  # 1
        "tests.openface_batch_represent_tests.test_batch_represent ... FAIL",  # 2
        "",  # 3
        "=" * 70,  # 4
        "FAIL: tests.openface_batch_represent_tests.test_batch_represent",  # 5
        rule,  # 6
        "Traceback (most recent call last):",  # 7
        '  File "/usr/lib/python2.7/dist-packages/nose/case.py", line 197, in runTest',  # 8
        "    self.test(*self.arg)",  # 9
        '  File "/root/src/openface/tests/openface_batch_represent_tests.py", line 50, in test_batch_represent',  # 10
        "    assert p.returncode == 0",  # 11
        "AssertionError:",  # 12
        "-------------------- >> begin captured stdout << ---------------------",  # 13
        "",  # 14
        "Traceback (most recent call last):",  # 15
        '  File "/root/src/openface/util/align-dlib.py", line 18, in <module>',  # 16
        "    import cv2",  # 17
        "ImportError: No module named 'cv2'",  # 18
        "",  # 19
        "--------------------- >> end captured stdout << ----------------------",  # 20
        "",  # 21
        rule,  # 22
        "Ran 4 tests in 12.345s",  # 23
        "",  # 24
        "FAILED (failures=1)",  # 25
        'The command "nosetests-2.7 -v" exited with 1.',  # 26
    ]
    got = _lines(log)
    assert {5, 7, 11, 12, 15, 18} <= got
    assert not {6, 13, 20, 22} & got  # the rule lines and capture markers say nothing


def test_a_captured_debug_log_under_a_unittest_failure_is_left_out() -> None:
    log = [
        "$ python -m nose",  # 1
        "FAIL: test.rosdistro_verify_test.test_verify_files_identical",  # 2
        "-" * 70,  # 3
        "Traceback (most recent call last):",  # 4
        '  File "/home/runner/work/rosdistro/test/rosdistro_verify_test.py", line 45, in test_verify',  # 5
        "    assert verify_files_identical(index_url), fold.get_message()",  # 6
        "AssertionError:",  # 7
        "-------------------- >> begin captured logging << --------------------",  # 8
        'rosdistro: DEBUG: Load index from "file:///home/runner/work/rosdistro/index.yaml"',  # 9
        'rosdistro: DEBUG: Load file from "file:///home/runner/work/rosdistro/foxy/distribution.yaml"',  # 10
        "rosdistro: ERROR: foxy/distribution.yaml differs from its canonical form",  # 11
        "--------------------- >> end captured logging << ---------------------",  # 12
        "-" * 70,  # 13
        "Ran 7 tests in 3.1s",  # 14
        "##[error]Process completed with exit code 1.",  # 15
    ]
    got = _lines(log)
    assert {2, 4, 5, 6, 7, 11} <= got
    assert not {9, 10} & got


def test_a_pod_lint_error_comes_with_the_pod_it_is_about() -> None:
    log = [
        "$ pod lib lint ReactiveMapKit.podspec",  # 1
        " -> ReactiveMapKit (10.0.0)",  # 2
        "",  # 3
        "    - WARN  | file patterns: The `public_header_files` pattern did not match any file.",  # 4
        "",  # 5
        '    - ERROR | [OSX] unknown: Encountered an unknown error (CocoaPods could not find compatible versions for pod "ReactiveCocoa":',  # 6
        "",  # 7
        "[!] ReactiveMapKit did not pass validation, due to 1 error.",  # 8
        'The command "pod lib lint ReactiveMapKit.podspec" exited with 1.',  # 9
    ]
    assert {2, 6} <= _lines(log)


def test_an_exunit_failure_keeps_its_parts_across_blank_lines() -> None:
    log = [
        "$ mix test",  # 1
        "..........",  # 2
        "",  # 3
        "  1) test adapters serves requests (Phoenix.Integration.EndpointTest)",  # 4
        "     test/phoenix/integration/endpoint_test.exs:153",  # 5
        "     ** (ExUnit.TimeoutError) test timed out after 60000ms. You can change the timeout:",  # 6
        "     ",  # 7
        '       1. per test by setting "@tag timeout: x"',  # 8
        "          (useful when using IEx.pry)",  # 9
        "     ",  # 10
        "     Timeouts are given as integers in milliseconds.",  # 11
        "     ",  # 12
        "     code: capture_log fn ->",  # 13
        "     stacktrace:",  # 14
        "       (inets) httpc.erl:623: :httpc.handle_answer/3",  # 15
        "       test/phoenix/integration/endpoint_test.exs:158: (test)",  # 16
        "",  # 17
        "..........",  # 18
        "",  # 19
        "Finished in 65.2 seconds",  # 20
        "400 tests, 1 failure",  # 21
        'The command "mix test" exited with 2.',  # 22
    ]
    assert {4, 5, 6, 8, 11, 13, 14, 15, 16} <= _lines(log)


def test_a_compiler_error_reaches_its_caret_across_stray_nl_lines() -> None:
    log = [
        "$ set -o pipefail && xcodebuild test | xcpretty",  # 1
        "▸ Compiling SwiftyJSON.swift",  # 2
        "nl",  # 3
        "nl",  # 4
        "nl❌  /Users/travis/build/SwiftyJSON/Source/SwiftyJSON.swift:97:2: unknown attribute 'dynamicMemberLookup'",  # 5
        "nl",  # 6
        "nl",  # 7
        "nl",  # 8
        "nl@dynamicMemberLookup",  # 9
        "",  # 10
        " ^",  # 11
        "nl",  # 12
        "** TEST FAILED **",  # 13
        'The command "set -o pipefail && xcodebuild test | xcpretty" exited with 65.',  # 14
    ]
    assert {5, 9, 11} <= _lines(log)


def test_an_eslint_run_with_warnings_only_is_not_the_failure() -> None:
    log = [
        "$ npm test",  # 1
        "/home/travis/build/twbs/bootstrap/js/src/button/button.js",  # 2
        "  85:13  warning  Blocks are nested too deeply (5). Maximum allowed is 4  max-depth",  # 3
        "",  # 4
        "✖ 1 problem (0 errors, 1 warning)",  # 5
        "",  # 6
    ]
    log += [f"> step {n}" for n in range(7, 40)]  # 7-39
    log += [
        "ERROR: Detected 1 broken links. Scanned 1 links in 0.06 seconds.",  # 40
        "npm ERR! code ELIFECYCLE",  # 41
        'The command "npm test" exited with 1.',  # 42
    ]
    diagnosis = diagnose(log)
    assert 5 not in {e.line for e in diagnosis.evidence}
    assert 40 in {e.line for e in diagnosis.evidence}
    assert diagnosis.category.value != "lint"
