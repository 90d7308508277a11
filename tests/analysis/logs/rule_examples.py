"""Positive and negative example lines for every rule (one list each, cleaned text)."""

# ruff: noqa: E501  (patterns and log lines read best unbroken)

from __future__ import annotations

EXAMPLES: dict[str, tuple[list[str], list[str]]] = {
    "gha-step": (["##[group]Run pytest -q"], ["##[group]Installed versions", "Run pytest -q"]),
    "jenkins-stage": (["[Pipeline] { (Build)"], ["[Pipeline] {", "[Pipeline] stage"]),
    "gha-job-timeout": (
        [
            "##[error]The job running on runner GitHub Actions 3 has exceeded the maximum execution time of 360 minutes."
        ],
        ["timeout-minutes: 360", "execution time: 3 minutes"],
    ),
    "gha-action-timeout": (
        ["##[error]The action 'Run tests' has timed out after 10 minutes."],
        ["tests timed out? no", "The action 'Run tests' completed after 10 minutes."],
    ),
    "ci-no-output-timeout": (
        [
            "No output has been received in the last 10m0s, this potentially indicates a stalled build",
            "Build timed out (after 60 minutes). Marking the build as aborted.",
        ],
        ["Output received", "Build finished after 60 minutes"],
    ),
    "gha-runner-lost": (
        ["##[error]The hosted runner: GitHub Actions 7 lost communication with the server."],
        ["communication with the server restored"],
    ),
    "gha-runner-shutdown": (
        ["##[error]The runner has received a shutdown signal."],
        ["Shutdown complete"],
    ),
    "gha-runner-disk": (
        [
            "You are running out of disk space. The runner will stop working when the machine runs out of disk space."
        ],
        ["Disk space: 14 GB free"],
    ),
    "gha-concurrency-cancel": (
        ["Canceling since a higher priority waiting request for 'ci-main' exists"],
        ["Waiting for a runner to pick up this job..."],
    ),
    "gha-provisioning": (
        ["##[error]No runner matching the specified labels was found: self-hosted, gpu."],
        ["Runner labels: self-hosted, gpu"],
    ),
    "gha-invalid-workflow": (
        [
            "Invalid workflow file: .github/workflows/ci.yml#L12",
            "##[error]Unable to resolve action `actions/chekout@v4`, repository not found",
        ],
        ["Validating workflow file", "Resolved action actions/checkout@v4"],
    ),
    "gha-input-required": (
        ["##[error]Input required and not supplied: token"],
        ["Input token supplied"],
    ),
    "node-heap-oom": (
        ["FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"],
        ["heap size: 4096 MB", "it('handles out of memory warnings')"],
    ),
    "jvm-oom": (
        ['Exception in thread "main" java.lang.OutOfMemoryError: Java heap space'],
        ["OutOfMemoryErrorHandlerTest > handles() PASSED"],
    ),
    "python-memoryerror": (
        ["MemoryError: Unable to allocate 10.5 TiB for an array", "E   MemoryError"],
        ["test_memoryerror_is_caught PASSED", "tests/test_memoryerror.py::test_x PASSED"],
    ),
    "go-oom": (["fatal error: runtime: out of memory", "std::bad_alloc"], ["memory: 7 GB"]),
    "exit-137": (
        ["##[error]Process completed with exit code 137.", "signal: killed"],
        ["##[error]Process completed with exit code 1.", "exit code 1370"],
    ),
    "disk-full": (
        ["OSError: [Errno 28] No space left on device", "npm ERR! code ENOSPC"],
        ["Disk space: 4 GB left on device"],
    ),
    "killed-line": (
        [
            "Killed",
            "/home/runner/work/_temp/a.sh: line 1:  2345 Killed                  python train.py",
        ],
        ["Killed 3 zombie processes? no: killed_count=3", "The process was not killed"],
    ),
    "javac-error": (
        [
            "[ERROR] /home/runner/work/a/src/main/java/A.java:[42,17] cannot find symbol",
            "A.java:12: error: ';' expected",
            "[ERROR] COMPILATION ERROR : ",
        ],
        [
            "[ERROR] src/main/java/A.java:[10,5] (whitespace) WhitespaceAround: '{' is not preceded",
            "[INFO] Compiling 42 source files",
        ],
    ),
    "kotlin-error": (
        [
            "e: /home/runner/work/a/src/main/kotlin/App.kt: (12, 5): Unresolved reference: foo",
            "e: file:///home/runner/work/a/App.kt:12:5 Unresolved reference",
        ],
        ["e: something else", "E: Unable to locate package foo"],
    ),
    "gradle-compile-task": (
        [
            "Execution failed for task ':app:compileKotlin'.",
            "Execution failed for task ':compileJava'.",
        ],
        ["Execution failed for task ':test'.", "> Task :compileJava"],
    ),
    "tsc-error": (
        ["src/a.ts(12,5): error TS2322: Type 'string' is not assignable to type 'number'."],
        ["Found 0 errors. Watching for file changes."],
    ),
    "rustc-error": (
        ["error[E0308]: mismatched types", "error: could not compile `app` due to previous error"],
        ["warning: unused variable: `x`", "   Compiling app v0.1.0"],
    ),
    "c-compile-error": (
        [
            "src/a.c:10:5: error: 'x' undeclared (first use in this function)",
            "main.cpp:(.text+0x1f): undefined reference to `foo()'",
        ],
        ["src/a.c:10:5: warning: unused variable 'x'"],
    ),
    "go-compile-error": (["./main.go:12:2: undefined: fooBar"], ["main.go:12: ok"]),
    "csharp-error": (
        ["Program.cs(12,5): error CS0103: The name 'x' does not exist in the current context"],
        ["Build succeeded. 0 Warning(s) 0 Error(s)"],
    ),
    "swift-error": (
        ["/src/App.swift:12:5: error: cannot find 'x' in scope"],
        ["/src/App.swift:12:5: warning: unused"],
    ),
    "js-bundler-error": (
        ["Module not found: Error: Can't resolve './missing' in '/app/src'", "Failed to compile."],
        ["Compiled successfully.", "webpack compiled with 0 errors"],
    ),
    "python-syntax-error": (
        ["SyntaxError: invalid syntax", "E   IndentationError: unexpected indent"],
        ["test_syntaxerror_reported PASSED", "handles SyntaxError: gracefully? (docs)"],
    ),
    "maven-compiler-plugin": (
        [
            "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin:3.11.0:compile (default-compile) on project app: Compilation failure"
        ],
        ["[INFO] --- maven-compiler-plugin:3.11.0:compile (default-compile) @ app ---"],
    ),
    "black-check": (
        [
            "would reformat src/app/cli.py",
            "Oh no! 💥 💔 💥",
            "1 file would be reformatted, 30 files would be left unchanged.",
        ],
        ["All done! ✨ 🍰 ✨", "31 files left unchanged."],
    ),
    "ruff-flake8": (
        [
            "app/models.py:12:8: F401 [*] `os` imported but unused",
            "app/a.py:1:1: E501 line too long",
        ],
        ["app/models.py:12: in test_x", "tests/test_a.py:12: AssertionError"],
    ),
    "ruff-summary": (
        ["Found 2 errors.", "Your code has been rated at 7.50/10"],
        ["Found 0 vulnerabilities", "All checks passed!"],
    ),
    "mypy-error": (
        [
            "src/app/core.py:33: error: Incompatible return value type  [return-value]",
            "Found 1 error in 1 file (checked 20 source files)",
        ],
        ["Success: no issues found in 20 source files"],
    ),
    "pyright-error": (
        ["3 errors, 0 warnings, 0 informations "],
        ["0 errors, 0 warnings, 0 informations "],
    ),
    "eslint": (
        [
            "✖ 1 problem (1 error, 0 warnings)",
            "  12:7  error  'x' is assigned a value but never used  no-unused-vars",
        ],
        ["  12:7  warning  Unexpected console statement  no-console"],
    ),
    "prettier": (
        ["[warn] Code style issues found in the above file. Run Prettier to fix."],
        ["All matched files use Prettier code style!"],
    ),
    "isort": (
        ["ERROR: /app/a.py Imports are incorrectly sorted and/or formatted."],
        ["Skipped 2 files"],
    ),
    "pre-commit-hook": (
        [
            "black....................................................................Failed",
            "- hook id: flake8",
        ],
        ["black....................................................................Passed"],
    ),
    "java-style": (
        [
            "[ERROR] You have 3 Checkstyle violations.",
            "> The following files had format violations:",
            "Execution failed for task ':spotlessJavaCheck'.",
        ],
        [
            "[INFO] You have 0 Checkstyle violations.",
            "[INFO] --- spotbugs-maven-plugin:4.2.0:spotbugs (spotbugs) @ app ---",
            "> Task :poi:spotbugsMain",
        ],
    ),
    "go-lint": (
        ["internal/a.go:12:2: Error return value is not checked (errcheck)"],
        ["internal/a.go:12:2: ok"],
    ),
    "clippy-rustfmt": (
        [
            "   = help: for further information visit https://rust-lang.github.io/rust-clippy/master/index.html#needless_return",
            "Diff in /home/runner/work/a/src/main.rs at line 12:",
        ],
        ["    Checking app v0.1.0"],
    ),
    "shellcheck": (
        [
            "In scripts/a.sh line 12:",
            "SC2086: Double quote to prevent globbing and word splitting.",
        ],
        ["shellcheck passed"],
    ),
    "pytest-failed": (
        [
            "FAILED tests/test_api.py::test_login - assert 401 == 200",
            "ERROR tests/test_db.py - ModuleNotFoundError: No module named 'psycopg'",
            "FAILED tests/test_api.py::test_login",
        ],
        [
            "tests/test_api.py::test_login FAILED [ 80%]",
            "ERROR: Could not find a version that satisfies the requirement x",
        ],
    ),
    "pytest-summary": (
        [
            "========================= 1 failed, 47 passed in 3.12s =========================",
            "1 failed, 164 passed, 13 skipped in 99.88s (0:01:39)",
            "!!!!!!! Interrupted: 12 errors during collection !!!!!!!",
        ],
        [
            "============================== 48 passed in 3.02s ==============================",
            "test_failed_login_is_logged PASSED",
        ],
    ),
    "unittest-fail": (
        [
            "FAIL: test_sum (tests.test_math.MathTest)",
            "ERROR: test.rosdistro_verify_test.test_verify",
        ],
        ["ERROR: Could not install packages due to an OSError"],
    ),
    "unittest-summary": (
        ["FAILED (failures=1)", "FAILED (errors=2, skipped=1)"],
        ["OK (skipped=1)"],
    ),
    "surefire-failure": (
        [
            "[ERROR] com.acme.AppTest.testX  Time elapsed: 0.006 s  <<< FAILURE!",
            "[ERROR] There are test failures.",
            "Failed tests: ",
        ],
        [
            "[INFO] Tests run: 3, Failures: 0, Errors: 0, Skipped: 0",
            "[INFO] Running com.acme.FailedTestsReportTest",
        ],
    ),
    "surefire-counts": (
        [
            "[ERROR] Tests run: 15, Failures: 1, Errors: 0, Skipped: 0",
            "Tests run: 4, Failures: 0, Errors: 2, Skipped: 0",
        ],
        ["[INFO] Tests run: 3, Failures: 0, Errors: 0, Skipped: 0"],
    ),
    "sbt-test": (
        [
            "[error] Failed: Total 3, Failed 1, Errors 0, Passed 2",
            "[error] Test basic.FooTest.failingTest failed: java.lang.AssertionError",
        ],
        ["[info] Passed: Total 3, Failed 0, Errors 0, Passed 3"],
    ),
    "gradle-test-failed": (
        [
            "CalculatorTest > divides() FAILED",
            "12 tests completed, 1 failed",
            "picard.sam.CollectTest.samMetricsProvider FAILED",
        ],
        ["> Task :test FAILED", "CalculatorTest > divides() PASSED"],
    ),
    "ant-junit": (
        [
            "    [junit] Test com.acme.AppTest FAILED",
            "    [junit] Testcase: testX(com.acme.AppTest):\tFAILED",
            "    [junit] [        14 tests failed          ]",
        ],
        [
            "    [junit] Tests run: 3, Failures: 0, Errors: 0",
            "    [junit] [         0 tests failed          ]",
        ],
    ),
    "jest-failed": (
        [
            "  ● Cart › adds an item",
            "Tests:       1 failed, 41 passed, 42 total",
            "FAIL src/cart/cart.test.ts",
        ],
        ["  ● Console", "Tests:       42 passed, 42 total", "PASS src/cart/cart.test.ts"],
    ),
    "mocha-failing": (
        ["  2 failing"],
        ["  12 passing (40ms)", "    ✓ should handle blockstore failing to write"],
    ),
    "go-test-fail": (
        ["--- FAIL: TestParse (0.00s)", "FAIL\tgithub.com/acme/app/internal/x\t0.012s"],
        ["--- PASS: TestParse (0.00s)", "ok  \tgithub.com/acme/app\t0.1s"],
    ),
    "rust-test-fail": (
        [
            "test parser::tests::parses ... FAILED",
            "test result: FAILED. 10 passed; 1 failed; 0 ignored",
        ],
        ["test parser::tests::parses ... ok", "test result: ok. 11 passed; 0 failed"],
    ),
    "ant-test-target": (
        [
            "/home/runner/work/a/build.xml:525: 'test-unit' failed",
            "/home/runner/work/a/build.xml:86: Test abstraction.FooTest failed",
        ],
        ["/home/runner/work/a/build.xml:86: compile done"],
    ),
    "rspec-phpunit": (
        [
            "12 examples, 1 failure",
            "FAILURES!",
            "rspec ./spec/models/user_spec.rb:12 # User validates email",
        ],
        ["12 examples, 0 failures", "OK (12 tests, 30 assertions)"],
    ),
    "dotnet-test": (
        ["Failed!  - Failed:     1, Passed:    41, Skipped:     0, Total:    42"],
        ["Passed!  - Failed:     0, Passed:    42, Skipped:     0, Total:    42"],
    ),
    "gha-canceled": (
        ["##[error]The operation was canceled."],
        ["The operation was completed.", "Canceling the operation is possible via the UI"],
    ),
    "api-rate-limit": (
        [
            "API rate limit exceeded for installation ID 48213.",
            "toomanyrequests: You have reached your pull rate limit.",
        ],
        ["X-RateLimit-Remaining: 4999"],
    ),
    "http-429": (
        ["Error: Request failed with status code 429", "429 Too Many Requests"],
        ["Downloaded 429 files", "2024-01-01T10:00:00.4291234Z done"],
    ),
    "bad-credentials": (
        [
            "HttpError: Bad credentials",
            "fatal: Authentication failed for 'https://github.com/acme/app.git/'",
        ],
        ["Using credentials from the environment"],
    ),
    "permission-denied-remote": (
        [
            "remote: Permission to acme/app.git denied to github-actions[bot].",
            "git@github.com: Permission denied (publickey).",
            "denied: requested access to the resource is denied",
        ],
        ["Permission granted"],
    ),
    "http-401": (
        [
            "npm ERR! code E401",
            "HTTP 401 Unauthorized",
            "Error: Request failed with status code 401",
        ],
        ["assert 401 == 200", "E       assert response.status_code == 401"],
    ),
    "http-403": (
        [
            "npm ERR! code E403",
            "HTTP 403: Forbidden (https://api.github.com/repos/a/b)",
            "403 Forbidden",
        ],
        ["tests/test_perm.py::test_returns_403 PASSED"],
    ),
    "cloud-credentials": (
        [
            "Error: Credentials could not be loaded, please check your action inputs",
            "The security token included in the request is invalid.",
        ],
        ["Credentials loaded from OIDC"],
    ),
    "http-5xx": (
        [
            "npm ERR! 503 Service Unavailable - GET https://registry.npmjs.org/x",
            "ERROR: HTTP error 502 while getting https://files.pythonhosted.org/x",
            "received unexpected HTTP status: 502 Bad Gateway",
        ],
        ["Downloaded 503 packages", "Processed 500 items"],
    ),
    "registry-unavailable": (
        ["dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: server misbehaving"],
        ["registry ok"],
    ),
    "dns-failure": (
        [
            "curl: (6) Could not resolve host: example.com",
            "getaddrinfo ENOTFOUND registry.npmjs.org",
            "Temporary failure in name resolution",
        ],
        [
            "Resolved host example.com",
            # case-insensitive "ENOTFOUND" inside Python/Java exception names
            "E   ModuleNotFoundError: No module named 'kenlm'",
            "FileNotFoundError: [Errno 2] No such file or directory: 'x'",
            "org.example.ResourceNotFoundException: missing",
        ],
    ),
    "connection-reset": (
        [
            "npm ERR! code ECONNRESET",
            "Caused by: java.net.SocketException: Connection reset",
            "ConnectionResetError: [Errno 104] Connection reset by peer",
        ],
        ["tests/test_reset.py::test_connection_resets_cleanly PASSED"],
    ),
    "connection-timeout": (
        [
            "pip._vendor.urllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool(host='x', port=443): Read timed out.",
            "dial tcp 1.2.3.4:443: i/o timeout",
        ],
        ["TimeoutTest > connectTimeout() PASSED", "read timeout set to 30s"],
    ),
    "connection-refused": (
        [
            "Error: connect ECONNREFUSED 127.0.0.1:5432",
            "Failed to establish a new connection: [Errno 111] Connection refused",
        ],
        ["Connection established"],
    ),
    "curl-network": (
        ["curl: (7) Failed to connect to example.com port 443", "curl: (28) Operation timed out"],
        ["curl: (22) The requested URL returned error: 404"],
    ),
    "max-retries": (
        [
            "Max retries exceeded with url: /simple/requests/",
            "npm ERR! network request to https://registry.npmjs.org failed",
        ],
        ["retries: 3"],
    ),
    "command-timeout": (
        [
            "Error: request timed out after 1 seconds.",
            "timeout: sending signal TERM to command 'pytest'",
        ],
        ["timeout set to 10 seconds"],
    ),
    "pip-resolution": (
        [
            "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io",
            "ERROR: No matching distribution found for foo==9.9",
        ],
        ["Successfully installed foo-1.0"],
    ),
    "npm-resolution": (
        ["npm ERR! code ERESOLVE", "npm ERR! ERESOLVE unable to resolve dependency tree"],
        ["added 812 packages in 12s"],
    ),
    "lockfile-outdated": (
        [
            "npm ERR! `npm ci` can only install packages when your package.json and package-lock.json are in sync.",
            "error Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`.",
        ],
        ["lockfile up to date"],
    ),
    "maven-resolution": (
        [
            "[ERROR] Failed to execute goal on project app: Could not resolve dependencies for project com.acme:app:jar:1.0"
        ],
        ["[INFO] Resolved dependencies"],
    ),
    "gradle-resolution": (
        [
            "> Could not resolve all files for configuration ':app:compileClasspath'.",
            "   > Could not find com.acme:lib:1.2.3.",
        ],
        ["Resolved configuration ':app:compileClasspath'"],
    ),
    "go-module": (
        [
            "internal/api/server.go:9:2: missing go.sum entry for module providing package github.com/gorilla/mux",
            "go: github.com/a/b@v1.2.3: invalid version: unknown revision v1.2.3",
        ],
        ["go: downloading github.com/gorilla/mux v1.8.1"],
    ),
    "cargo-resolution": (
        [
            'error: failed to select a version for the requirement `serde = "^9"`',
            "error: no matching package named `serdee` found",
        ],
        ["    Updating crates.io index"],
    ),
    "ruby-python-solver": (
        [
            "SolverProblemError",
            "Because app depends on foo (^2.0) which doesn't match any versions, version solving failed.",
            "E: Unable to locate package libfoo-dev",
        ],
        ["Resolving dependencies..."],
    ),
    "node-missing-module": (
        ["Error: Cannot find module '@hapi/wreck'"],
        ["Error: Cannot find module './local-file'", "found module '@hapi/wreck'"],
    ),
    "python-missing-module": (
        [
            "ModuleNotFoundError: No module named 'psycopg'",
            "E   ModuleNotFoundError: No module named 'yaml'",
        ],
        ["tests/test_modules.py::test_no_module_named_handling PASSED"],
    ),
    "native-build": (
        ["  Failed building wheel for lxml", "error: subprocess-exited-with-error"],
        ["  Building wheel for lxml (pyproject.toml): finished with status 'done'"],
    ),
    "pytest-assert-detail": (
        ["E       assert 401 == 200", "E   ValueError: bad input"],
        ["Everything fine", "E  (only two spaces)"],
    ),
    "assertion-detail": (
        [
            "AssertionError: 3 != 4",
            "org.opentest4j.AssertionFailedError: expected: <4> but was: <5>",
            "    Expected: 3",
        ],
        ["test_assertion_error_message PASSED"],
    ),
    "go-test-detail": (
        [
            "    duration_test.go:15: got 60, want 3600",
            "    testing.go:1398: race detected during execution of test",
        ],
        ["duration.go:15: fine"],
    ),
    "rust-location-detail": (["  --> src/parser.rs:41:18"], ["src/parser.rs:41:18"]),
    "npm-conflict-detail": (
        [
            "npm ERR! Could not resolve dependency:",
            'npm ERR! peer react@"^17.0.0" from react-router-dom@5.3.4',
        ],
        ["npm WARN peer dependencies satisfied"],
    ),
    "pip-conflict-detail": (
        ["    pandas 2.2.1 depends on numpy>=1.23.2"],
        ["pandas depends on numpy (docs)"],
    ),
    "pytest-rerun": (
        [
            "tests/test_ws.py::test_reconnect RERUN",
            "============== 1 failed, 47 passed, 2 rerun in 12.31s ==============",
        ],
        ["tests/test_ws.py::test_rerun_logic PASSED"],
    ),
    "surefire-flake": (
        [
            "[WARNING] Tests run: 12, Failures: 0, Errors: 0, Skipped: 0, Flakes: 1",
            "[ERROR]   Run 2: PASS",
        ],
        ["[INFO] Tests run: 12, Failures: 0, Errors: 0, Skipped: 0, Flakes: 0"],
    ),
    "test-timeout": (
        [
            'Error: Timeout of 2000ms exceeded. For async tests and hooks, ensure "done()" is called',
            'thrown: "Exceeded timeout of 5000 ms for a test.',
            "panic: test timed out after 10m0s",
        ],
        ["timeout: 2000ms"],
    ),
    "test-race": (
        ["WARNING: DATA RACE", "OSError: [Errno 98] Address already in use"],
        ["race-free since v2"],
    ),
    "command-not-found": (
        [
            "/home/runner/work/_temp/a.sh: line 1: poetry: command not found",
            "##[error]Process completed with exit code 127.",
        ],
        ["command found: poetry"],
    ),
    "missing-script-or-task": (
        [
            'npm ERR! Missing script: "test:ci"',
            "Task 'integrationTest' not found in root project 'app'.",
        ],
        ["Running script test:ci"],
    ),
    "no-tests": (
        [
            "ERROR: file or directory not found: tests/unit",
            "no tests ran in 0.01s",
            "No tests found, exiting with code 1",
        ],
        ["collected 48 items"],
    ),
    "invalid-config": (
        [
            "Error: Invalid configuration: missing key 'name'",
            "yaml: line 12: did not find expected key",
        ],
        ["configuration loaded"],
    ),
    "crash": (
        ["Segmentation fault (core dumped)", "##[error]Process completed with exit code 139."],
        ["segmentation of data complete"],
    ),
    "gha-exit-code": (
        ["##[error]Process completed with exit code 1."],
        ["Process completed with exit code 0."],
    ),
    "gha-error": (["##[error]Something failed"], ["##[warning]Something odd"]),
    "build-failure": (
        [
            "[INFO] BUILD FAILURE",
            "BUILD FAILED in 2m 29s",
            "make: *** [Makefile:14: all] Error 1",
            'The command "make test" exited with 1.',
        ],
        [
            "[INFO] BUILD SUCCESS",
            "BUILD SUCCESSFUL in 31s",
            'The command "make test" exited with 0.',
        ],
    ),
    "error-line": (
        [
            "Error: something went wrong",
            "Traceback (most recent call last):",
            "KeyError: 'DATABASE_URL'",
        ],
        ["no errors here", '  File "a.py", line 2'],
    ),
}

# Multi-line rules: (lines, index of the line the rule must fire on), and a negative.
MULTI_LINE: dict[str, tuple[list[str], int, list[str]]] = {
    "killed-then-137": (
        ["Killed", "##[error]Process completed with exit code 137."],
        1,
        ["all good", "##[error]Process completed with exit code 137."],
    ),
}
