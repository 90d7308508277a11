"""Rules last in priority: details that explain a failure (never decide the category),
flaky signals, weak configuration signals, multi-line rules, failure markers (the job
failed; no category) and catch-alls. rules.py puts the tables in order."""

# ruff: noqa: E501  (patterns and log lines read best unbroken)

from __future__ import annotations

from contexten.analysis.logs.rules_base import Role, Rule, _r
from contexten.analysis.taxonomy import FailureCategory as C

SIGNAL_RULES: tuple[Rule, ...] = (
    # --- details that explain a failure (never decide the category) ------------------------
    _r(
        "pytest-assert-detail",
        C.TEST,
        r"(^|Z |m)E   ",
        "An assertion or exception line inside a pytest failure.",
        pattern=r"^E\s+(\w+(\.\w+)*(Error|Exception|Exit)\b|assert\b|AssertionError|Failed:)",
        role=Role.DETAIL,
        case_sensitive=True,
    ),
    _r(
        "assertion-detail",
        C.TEST,
        r"(AssertionError|AssertionFailedError|ComparisonFailure|expected:? ?<|Expected:|Received:|expected .* to (equal|be|have)|assert_eq|panicked at)",
        "An assertion failed.",
        pattern=r"\b(AssertionError|AssertionFailedError|ComparisonFailure)\b|expected:? ?<.*> but was:? ?<|^\s*(Expected|Received)( value)?:|expected .* to (equal|be|have)|assertion `left == right` failed|panicked at",
        role=Role.DETAIL,
    ),
    _r(
        "go-test-detail",
        C.TEST,
        r"(_test\.go:[0-9]+: |race detected during execution)",
        "A message printed by a failing Go test.",
        pattern=r"^\s+\w+_test\.go:\d+: |race detected during execution of test",
        role=Role.DETAIL,
        case_sensitive=True,
    ),
    _r(
        "rust-location-detail",
        C.COMPILE,
        r"--> [^ ]+\.rs:[0-9]+:[0-9]+",
        "Where rustc found the error.",
        pattern=r"^\s*--> \S+\.rs:\d+:\d+$",
        role=Role.DETAIL,
    ),
    _r(
        "npm-conflict-detail",
        C.DEPENDENCY,
        r"(Could not resolve dependency:|Conflicting peer dependency|npm ERR! peer |npm ERR! +peer )",
        "The packages in an npm dependency conflict.",
        pattern=r"^npm ERR! (Could not resolve dependency:|Conflicting peer dependency|\s*peer \S+@)",
        role=Role.DETAIL,
    ),
    _r(
        "pip-conflict-detail",
        C.DEPENDENCY,
        r" depends on ",
        "The packages in a pip dependency conflict.",
        pattern=r"^\s+\S+ [\w.]+ depends on \S+",
        role=Role.DETAIL,
    ),
    # --- flaky signals -----------------------------------------------------------------
    _r(
        "pytest-rerun",
        C.FLAKY_TEST,
        r"(RERUN|[0-9]+ rerun)",
        "A test was re-run after failing (pytest-rerunfailures).",
        "Quarantine the flaky test and fix its non-determinism.",
        pattern=r"^\S+::\S+ RERUN\b|\bRERUN\b|\b\d+ rerun\b",
        case_sensitive=True,
        role=Role.FLAKY,
    ),
    _r(
        "surefire-flake",
        C.FLAKY_TEST,
        r"(Flakes: [1-9]|Run [0-9]+: PASS|flakyFailure)",
        "Surefire reports a flaky test (failed, then passed on re-run).",
        "Quarantine the flaky test and fix its non-determinism.",
        role=Role.FLAKY,
    ),
    _r(
        "test-timeout",
        C.FLAKY_TEST,
        r"(Timeout of [0-9]+ ?ms exceeded|Exceeded timeout of [0-9]+ ?ms|Failed: Timeout >|test timed out after|TestTimedOutException|timed out after [0-9]+ (milliseconds|ms))",
        "A test hit its own time limit: often load- or timing-dependent.",
        "Check the test for races and slow external calls.",
        role=Role.FLAKY,
    ),
    _r(
        "test-race",
        C.FLAKY_TEST,
        r"(WARNING: DATA RACE|address already in use|StaleElementReferenceException|ElementClickInterceptedException|deadlock detected|ConcurrentModificationException)",
        "The failure shows a race or a shared-resource clash.",
        "Fix the race or isolate the shared resource.",
        role=Role.FLAKY,
    ),
    # --- configuration (weak signals) ------------------------------------------------------
    _r(
        "command-not-found",
        C.CONFIG,
        r"(command not found|exit code 127|is not recognized as an internal or external command)",
        "A command the job runs is not installed or not on PATH.",
        "Install the tool in an earlier step or fix its name.",
        pattern=r": command not found$|: not found$|exit code 127\b|is not recognized as an internal or external command",
        confidence=0.8,
    ),
    _r(
        "missing-script-or-task",
        C.CONFIG,
        r"(Missing script:|Task '.*' not found in|Unknown lifecycle phase|no POM in this directory|could not find or load main class|error: unrecognized arguments|no such option|unknown option)",
        "The job calls a script, task or option that does not exist.",
        "Fix the command in the workflow or add the script/task.",
        confidence=0.85,
    ),
    _r(
        "no-tests",
        C.CONFIG,
        r"(no tests ran|No tests found|file or directory not found:|no test files|No test suite found)",
        "The test command found nothing to run (wrong path or pattern).",
        "Fix the test path or pattern in the workflow.",
        pattern=r"no tests ran in|^No tests found|ERROR: file or directory not found:|No test suite found",
        confidence=0.8,
    ),
    _r(
        "invalid-config",
        C.CONFIG,
        r"(invalid configuration|configuration error|config(uration)? file .* (not found|invalid)|error parsing|YAMLException|yaml: line [0-9]+|is not valid under any of the given schemas)",
        "A configuration file is invalid.",
        "Fix the configuration file it names.",
        # cabal's first run says its config file is not found, then writes a default one.
        pattern=r"(?!.*cabal[/\\]config not found)(invalid configuration|configuration error|config(uration)? file .* (not found|invalid)|error parsing|YAMLException|yaml: line [0-9]+|is not valid under any of the given schemas)",
        confidence=0.7,
    ),
    _r(
        "crash",
        C.UNKNOWN,
        r"(Segmentation fault|core dumped|exit code 139|SIGSEGV|SIGABRT|Aborted \(core)",
        "A process crashed (segmentation fault or abort).",
        "Reproduce locally; a native dependency or a memory bug is the usual cause.",
        confidence=0.6,
    ),
    # --- multi-line rules --------------------------------------------------------------
    _r(
        "killed-then-137",
        C.RESOURCE_EXHAUSTION,
        r"exit code (137|143)",
        "A process was killed and the step then failed with 137/143.",
        "Reduce memory use or parallelism.",
        requires="killed-line",
        within=20,
        pattern=r"exit code (137|143)",
        confidence=0.9,
    ),
    # --- failure markers (the job failed; no category) ------------------------------------
    _r(
        "gha-exit-code",
        None,
        r"Process completed with exit code",
        "An Actions step exited with a non-zero code.",
        pattern=r"^(##\[error\])?Process completed with exit code ([1-9]\d*)",
        role=Role.FAILED,
    ),
    _r(
        "gha-error",
        None,
        r"##\[error\]",
        "An Actions error annotation.",
        pattern=r"^##\[error\]",
        role=Role.FAILED,
        case_sensitive=True,
    ),
    _r(
        "build-failure",
        None,
        r"(BUILD FAILURE|BUILD FAILED|FAILURE: Build failed|Finished: FAILURE|exited with [1-9]|\" failed [0-9]+ times\.|marked build as failure|npm ERR! code ELIFECYCLE|make(\[[0-9]+\])?: \*\*\*|Error: Process completed with exit code)",
        "The build tool reports that the build failed.",
        pattern=r"BUILD FAILURE|BUILD FAILED|FAILURE: Build failed|Finished: FAILURE|exited with [1-9]\d*\b|\" failed \d+ times\.|marked build as failure|npm ERR! code ELIFECYCLE|make(\[\d+\])?: \*\*\*",
        role=Role.FAILED,
    ),
    # --- catch-alls ------------------------------------------------------------------------
    _r(
        "error-line",
        C.UNKNOWN,
        r"((^|Z )(##\[error\]|\[ERROR\] |ERROR|Error|error|fatal|FATAL|panic: |Traceback \(most|npm ERR! |Exception in thread )|(Error|Exception): )",
        "A generic error line.",
        "Read the lines around it.",
        pattern=r"^(##\[error\]|\[ERROR\] |ERROR:? |Error:? |error:? |fatal:? |FATAL:? |panic: |Traceback \(most recent call last\)|npm ERR! |Exception in thread |\w+(\.\w+)*(Error|Exception): )",
        role=Role.CATCHALL,
        case_sensitive=True,
        confidence=0.3,
    ),
)
