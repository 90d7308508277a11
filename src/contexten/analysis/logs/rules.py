"""The ordered rule base: which lines of a CI log name which kind of failure.

Order is priority: single-line patterns that name a cause come first, then multi-line
rules, then catch-alls. Among the rules that fire in the failing step, the first in this
order wins. The runner's own messages (timeouts, lost runners) and resource exhaustion come
first; then what the code did (compile, lint, test failures); then the environment (rate
limits, auth, 5xx, network), because tests print such errors on purpose far more often than
they fail from them; dependency resolution after the network errors that often cause it.
A test failure whose report line itself names a network/service error is called flaky.

Each rule has two patterns:
- `prefilter`: a case-insensitive pattern in the subset shared by grep -E, RE2, Hyperscan
  and Python (literals, `[...]`, `( | )`, `?*+{m,n}`, `\\b`; no `\\d`, `\\s`, lookaround,
  nothing that can match a newline). The scanner runs all prefilters at once over the raw
  bytes; it must match every raw line (timestamps and ANSI included) that `pattern` matches.
- `pattern`: a Python regex checked on the cleaned line (no timestamp, no ANSI).
"""

# ruff: noqa: E501  (patterns and log lines read best unbroken)

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from contexten.analysis.taxonomy import FailureCategory as C


class Role(StrEnum):
    CAUSE = "cause"  # names the category of the failure
    DETAIL = "detail"  # explains a failure of its category (an assertion message); never decides
    FLAKY = "flaky"  # the failing test is probably non-deterministic
    FAILED = "failed"  # the job or a step failed (exit code, BUILD FAILURE): no category
    STEP = "step"  # a step starts here (its name is group 1)
    CATCHALL = "catchall"  # a generic error line: evidence when nothing else fired


@dataclass(frozen=True)
class Rule:
    id: str
    category: C | None
    prefilter: str
    description: str
    fix: str = ""
    pattern: str | None = None
    confidence: float = 0.8
    role: Role = Role.CAUSE
    case_sensitive: bool = False
    # Multi-line rules: the rule fires only if the rule `requires` fired within the
    # `within` lines before this one (or on this line).
    requires: str | None = None
    within: int = 0

    @cached_property
    def regex(self) -> re.Pattern[str]:
        flags = 0 if self.case_sensitive else re.IGNORECASE
        return re.compile(self.pattern if self.pattern is not None else self.prefilter, flags)


def _r(
    rule_id: str,
    category: C | None,
    prefilter: str,
    description: str,
    fix: str = "",
    *,
    pattern: str | None = None,
    confidence: float = 0.8,
    role: Role = Role.CAUSE,
    case_sensitive: bool = False,
    requires: str | None = None,
    within: int = 0,
) -> Rule:
    return Rule(
        rule_id,
        category,
        prefilter,
        description,
        fix,
        pattern,
        confidence,
        role,
        case_sensitive,
        requires,
        within,
    )


_RERUN = "Re-run the failed jobs; if it keeps happening, look at the service's status."
_JVM = r"(java|kotlin|scala|groovy)"

RULES: tuple[Rule, ...] = (
    # --- steps (structure, not causes) -------------------------------------------------
    _r(
        "gha-step",
        None,
        r"##\[group\]Run ",
        "An Actions step starts.",
        pattern=r"^##\[group\]Run (.+)$",
        role=Role.STEP,
        case_sensitive=True,
    ),
    _r(
        "jenkins-stage",
        None,
        r"\[Pipeline\] \{ \(",
        "A Jenkins pipeline stage starts.",
        pattern=r"^\[Pipeline\] \{ \((.+)\)$",
        role=Role.STEP,
        case_sensitive=True,
    ),
    # --- timeouts ----------------------------------------------------------------------
    _r(
        "gha-job-timeout",
        C.TIMEOUT,
        r"has exceeded the maximum execution time",
        "The job ran longer than its timeout-minutes.",
        "Find what hung or slowed down; raise timeout-minutes only if the work really grew.",
        confidence=0.97,
    ),
    _r(
        "gha-action-timeout",
        C.TIMEOUT,
        r"has timed out after [0-9]+ minutes",
        "A step ran longer than its timeout-minutes.",
        "Find what hung in the step; raise the step's timeout-minutes if the work grew.",
        confidence=0.95,
    ),
    _r(
        "ci-no-output-timeout",
        C.TIMEOUT,
        r"(no output has been received in the last|build timed out \(after|exceeded the maximum time limit for jobs)",
        "The CI system stopped a job that was silent or ran too long.",
        "Make long commands print progress; look for a hang.",
        confidence=0.95,
    ),
    # --- infrastructure ------------------------------------------------------------------
    _r(
        "gha-runner-lost",
        C.INFRASTRUCTURE,
        r"lost communication with the server",
        "The runner stopped answering (the machine died, was pre-empted or overloaded).",
        "Re-run the job; if it repeats, the job may be exhausting the runner.",
        confidence=0.97,
    ),
    _r(
        "gha-runner-shutdown",
        C.INFRASTRUCTURE,
        r"runner has received a shutdown signal",
        "The runner was shut down during the job.",
        "Re-run the job.",
        confidence=0.95,
    ),
    _r(
        "gha-runner-disk",
        C.INFRASTRUCTURE,
        r"running out of disk space",
        "The runner is out of disk space.",
        "Free space at the start of the job (remove unused toolchains, docker prune) or use a bigger runner.",
        confidence=0.9,
    ),
    _r(
        "gha-concurrency-cancel",
        C.INFRASTRUCTURE,
        r"(Canceling since a higher priority waiting request|cancell?ed by another run|was cancell?ed by)",
        "The run was cancelled by concurrency settings or by a person.",
        "Nothing to fix in the code; re-run if the result is still needed.",
        confidence=0.9,
    ),
    _r(
        "gha-provisioning",
        C.INFRASTRUCTURE,
        r"(error occurred while provisioning resources|no runner matching the specified labels|could not find any self-hosted runner)",
        "No runner could be provisioned for the job.",
        "Check the runner labels and the runner pool.",
        confidence=0.9,
    ),
    # --- configuration (strong signals) ---------------------------------------------------
    _r(
        "gha-invalid-workflow",
        C.CONFIG,
        r"(invalid workflow file|the workflow is not valid|Unrecognized named-value|Unexpected value '|Unable to resolve action|Can't find 'action\.ya?ml')",
        "The workflow file or an action reference is invalid.",
        "Fix the workflow YAML (actionlint finds most of these).",
        confidence=0.95,
    ),
    _r(
        "gha-input-required",
        C.CONFIG,
        r"Input required and not supplied",
        "An action is missing a required input (often a secret that is not set).",
        "Set the input; for a secret, check it exists in this repository/environment.",
        confidence=0.9,
    ),
    # --- resource exhaustion ---------------------------------------------------------------
    _r(
        "node-heap-oom",
        C.RESOURCE_EXHAUSTION,
        r"heap out of memory",
        "Node.js ran out of heap.",
        "Raise --max-old-space-size, or find the leak; split the work.",
        confidence=0.95,
    ),
    _r(
        "jvm-oom",
        C.RESOURCE_EXHAUSTION,
        r"OutOfMemoryError",
        "The JVM ran out of memory.",
        "Raise -Xmx / org.gradle.jvmargs / maxHeapSize, or find the leak.",
        pattern=r"\bjava\.lang\.OutOfMemoryError\b|\bOutOfMemoryError: (Java heap space|GC overhead|Metaspace)",
        confidence=0.95,
    ),
    _r(
        "python-memoryerror",
        C.RESOURCE_EXHAUSTION,
        r"MemoryError",
        "Python could not allocate memory.",
        "Reduce the data size or use a bigger runner.",
        pattern=r"(^|\s|:)MemoryError\b",
        case_sensitive=True,
        confidence=0.9,
    ),
    _r(
        "go-oom",
        C.RESOURCE_EXHAUSTION,
        r"(runtime: out of memory|cannot allocate memory|std::bad_alloc|out of memory: kill)",
        "A process could not allocate memory or the kernel OOM killer ran.",
        "Reduce parallelism or memory use; use a bigger runner.",
        confidence=0.9,
    ),
    _r(
        "exit-137",
        C.RESOURCE_EXHAUSTION,
        r"(exit code 137\b|exit status 137\b|exited with 137\b|signal: killed|OOMKilled|code 137\b)",
        "A process was killed with SIGKILL (exit 137), usually by the out-of-memory killer.",
        "Reduce parallelism or memory use; use a bigger runner.",
        confidence=0.85,
    ),
    _r(
        "disk-full",
        C.RESOURCE_EXHAUSTION,
        r"(no space left on device|ENOSPC|disk quota exceeded)",
        "A write failed because the disk is full.",
        "Free space early in the job (docker prune, remove unused toolchains).",
        confidence=0.9,
    ),
    _r(
        "killed-line",
        C.RESOURCE_EXHAUSTION,
        r"Killed",
        "The shell reports that a process was killed (usually the OOM killer).",
        "Reduce memory use or parallelism.",
        pattern=r"^(.*: line \d+: +\d+ +)?Killed(\s{2,}\S.*)?$",
        case_sensitive=True,
        confidence=0.75,
    ),
    # --- a dependency built for a newer JVM (before compile: javac reports it too) ------
    _r(
        "class-file-version",
        C.DEPENDENCY,
        r"(class file has wrong version|UnsupportedClassVersionError|compiled by a more recent version of the Java Runtime|Unsupported class file major version|class file major version [0-9]+)",
        "A class file (usually from a dependency) was compiled for a newer Java than the build runs.",
        "Pin the dependency to a release built for your Java version, or raise the JDK of the job.",
        confidence=0.9,
    ),
    # --- compile ------------------------------------------------------------------------
    _r(
        "javac-error",
        C.COMPILE,
        r"(\.java:\[?[0-9]+(,[0-9]+\])?:? ?(error|\[)|compilation error|cannot find symbol)",
        "javac reported a compile error.",
        "Fix the code at the reported file and line.",
        pattern=r"\.java:\[\d+,\d+\] (?!\()|\.java:\d+: error:|COMPILATION ERROR|error: cannot find symbol",
        confidence=0.95,
    ),
    _r(
        "kotlin-error",
        C.COMPILE,
        r"(^|Z )e: ",
        "kotlinc reported a compile error.",
        "Fix the code at the reported file and line.",
        pattern=r"^e: (file://)?\S+\.kts?:",
        case_sensitive=True,
        confidence=0.95,
    ),
    _r(
        "gradle-compile-task",
        C.COMPILE,
        r"Execution failed for task '[^']*:compile",
        "A Gradle compile task failed.",
        "Fix the compile errors above.",
        pattern=r"Execution failed for task '[^']*:compile\w*(Java|Kotlin|Groovy|Scala)'",
        confidence=0.9,
    ),
    _r(
        "tsc-error",
        C.COMPILE,
        r"error TS[0-9]+",
        "The TypeScript compiler reported a type error.",
        "Fix the code at the reported file and line.",
        pattern=r"\berror TS\d+:",
        confidence=0.95,
    ),
    _r(
        "rustc-error",
        C.COMPILE,
        r"(error\[E[0-9]+\]|could not compile `|aborting due to)",
        "rustc reported a compile error.",
        "Fix the code at the reported file and line.",
        pattern=r"^error\[E\d+\]|^error: could not compile `|^error: aborting due to",
        confidence=0.95,
    ),
    _r(
        "c-compile-error",
        C.COMPILE,
        r"(\.(c|cc|cpp|cxx|h|hpp|m|mm):[0-9]+:[0-9]+: (fatal )?error|undefined reference to|ld returned [0-9]+ exit status|error: linker)",
        "The C/C++ compiler or linker reported an error.",
        "Fix the code at the reported file and line.",
        confidence=0.95,
    ),
    _r(
        "go-compile-error",
        C.COMPILE,
        r"\.go:[0-9]+:[0-9]+: (undefined|cannot use|declared and not used|declared but not used|syntax error|too many|not enough|missing return|imported and not used|invalid operation|expected)",
        "The Go compiler reported an error.",
        "Fix the code at the reported file and line.",
        confidence=0.95,
    ),
    _r(
        "csharp-error",
        C.COMPILE,
        r"error (CS|FS|BC)[0-9]{4}",
        "The .NET compiler reported an error.",
        "Fix the code at the reported file and line.",
        confidence=0.95,
    ),
    _r(
        "swift-error",
        C.COMPILE,
        r"\.swift:[0-9]+:[0-9]+: error",
        "The Swift compiler reported an error.",
        "Fix the code at the reported file and line.",
        confidence=0.95,
    ),
    _r(
        "js-bundler-error",
        C.COMPILE,
        r"(Module not found: Error|Module build failed|Failed to compile|Build failed with [0-9]+ error|error during build)",
        "The JavaScript bundler failed.",
        "Fix the import or syntax error it names.",
        confidence=0.85,
    ),
    _r(
        "python-syntax-error",
        C.COMPILE,
        r"(SyntaxError|IndentationError|TabError)",
        "Python could not parse a file.",
        "Fix the syntax at the reported file and line.",
        pattern=r"^(E\s+)?(File .*, line \d+ )?(SyntaxError|IndentationError|TabError): ",
        case_sensitive=True,
        confidence=0.85,
    ),
    _r(
        "maven-compiler-plugin",
        C.COMPILE,
        r"maven-compiler-plugin",
        "The Maven compiler plugin failed.",
        "Fix the compile errors above.",
        pattern=r"Failed to execute goal org\.apache\.maven\.plugins:maven-compiler-plugin",
        confidence=0.9,
    ),
    # --- lint, format, type check --------------------------------------------------------
    _r(
        "black-check",
        C.LINT,
        r"(would reformat|would be reformatted|Oh no! )",
        "black (or a formatter in check mode) found files to reformat.",
        "Run the formatter locally and commit the result.",
        confidence=0.95,
    ),
    _r(
        "ruff-flake8",
        C.LINT,
        r"\.py:[0-9]+:[0-9]+: [A-Z]+[0-9]+",
        "ruff/flake8/pylint reported a violation.",
        "Fix it or run `ruff check --fix`.",
        pattern=r"\.py:\d+:\d+: [A-Z]{1,4}\d{2,4}\b",
        case_sensitive=True,
        confidence=0.9,
    ),
    _r(
        "ruff-summary",
        C.LINT,
        r"(Found [0-9]+ errors?\.|fixable with the `--fix` option|Your code has been rated at)",
        "A Python linter summary reports findings.",
        "Fix the reported violations.",
        pattern=r"^Found \d+ errors?\.|fixable with the `--fix` option|Your code has been rated at",
        confidence=0.85,
    ),
    _r(
        "mypy-error",
        C.LINT,
        r"(: error: |Found [0-9]+ errors? in [0-9]+ files?)",
        "mypy (or pyright) reported type errors.",
        "Fix the reported type errors.",
        pattern=r"\.pyi?:\d+(:\d+)?: error: |^Found \d+ errors? in \d+ files?",
        confidence=0.9,
    ),
    _r(
        "pyright-error",
        C.LINT,
        r"[0-9]+ errors?, [0-9]+ warnings?, [0-9]+ (infos|informations)",
        "pyright reported type errors.",
        "Fix the reported type errors.",
        pattern=r"^[1-9]\d* errors?, \d+ warnings?, \d+ info",
        confidence=0.9,
    ),
    _r(
        "eslint",
        C.LINT,
        r"([0-9]+ problems? \(|[0-9]+:[0-9]+ +error )",
        "ESLint reported problems.",
        "Fix them or run `eslint --fix`.",
        pattern=r"✖ \d+ problems? \(\d+ errors?|^\s+\d+:\d+\s+error\s+",
        confidence=0.9,
    ),
    _r(
        "prettier",
        C.LINT,
        r"(code style issues|forgot to run prettier)",
        "Prettier found unformatted files.",
        "Run prettier --write and commit.",
        confidence=0.9,
    ),
    _r(
        "isort",
        C.LINT,
        r"(imports are incorrectly sorted|would fix import)",
        "isort found unsorted imports.",
        "Run isort and commit.",
        confidence=0.9,
    ),
    _r(
        "pre-commit-hook",
        C.LINT,
        r"(\.\.\..{0,12}Failed|- hook id: )",
        "A pre-commit hook failed.",
        "Run `pre-commit run --all-files` locally and commit.",
        pattern=r"\.{3,}\s*Failed$|^- hook id: ",
        case_sensitive=True,
        confidence=0.85,
    ),
    _r(
        "java-style",
        C.LINT,
        r"(checkstyle|spotbugs|spotless|pmd|ktlint|detekt|format violations|javaformat|formatter-maven|\.java:\[?[0-9]+(,[0-9]+)?\]? \()",
        "A JVM style or static analysis check failed.",
        "Fix the violations or apply the formatter.",
        pattern=r"You have [1-9]\d* Checkstyle violations?|\.java:\[?\d+(,\d+)?\]? \((\w+)\) \w+:|"
        r"Failed to execute goal \S*(checkstyle|spotbugs|pmd|spotless|ktlint|detekt|formatter|javaformat|sortpom)\S*:|"
        r"Execution failed for task '[^']*:(checkstyle|spotbugs|pmd|spotless|ktlint|detekt)\w*'|"
        r"format violations|SpotBugs violations? (were )?found|PMD Failure|failed with [1-9]\d* bugs|"
        r"ktlint.*(violation|error)|detekt.*(issues? found|failed)",
        confidence=0.85,
    ),
    _r(
        "go-lint",
        C.LINT,
        r"(golangci-lint|level=error|\((errcheck|govet|staticcheck|gosimple|unused|ineffassign|revive|gofmt|goimports|stylecheck|gocritic)\))",
        "A Go linter reported problems.",
        "Fix them (gofmt -w, golangci-lint run).",
        pattern=r"^\S+\.go:\d+(:\d+)?: .*\((errcheck|govet|staticcheck|gosimple|unused|ineffassign|revive|gofmt|goimports|stylecheck|gocritic)\)$|^level=error msg=.*(lint|issues)",
        confidence=0.85,
    ),
    _r(
        "clippy-rustfmt",
        C.LINT,
        r"(clippy|Diff in /)",
        "clippy or rustfmt reported problems.",
        "Fix them (cargo fmt, cargo clippy --fix).",
        pattern=r"rust-clippy|\(clippy::|#\[deny\(clippy|^Diff in /",
        confidence=0.85,
    ),
    _r(
        "shellcheck",
        C.LINT,
        r"(SC[0-9]{4}|In [^ ]+ line [0-9]+:)",
        "shellcheck reported problems.",
        "Fix them.",
        pattern=r"\bSC\d{4}\b.*:|^In \S+ line \d+:",
        confidence=0.7,
    ),
    _r(
        "generated-diff",
        C.LINT,
        r"(not tidy|go mod tidy|please (run|commit)|generated (file|code|source)|out of date|not up.to.date|not (properly |correctly )?(gofmt|formatted)|improperly formatted|needs? formatting|clang-format|(license|copyright) header|missing header|without (a )?license|uncommitted changes|changes generated|differs? from (the )?(generated|expected)|git diff --exit-code)",
        "A generated, tidied or formatted file differs from what is committed (a check, not a build error).",
        "Run the generator / go mod tidy / the formatter (or add the license header) and commit the result.",
        pattern=r"go\.(mod|sum) (is|are|file is) not tidy|(run|ran) .?go mod tidy|please (run|commit) [^.]*(generat|tidy|format|fmt|lint)|please commit all changes|generated (files?|code|sources?) (is |are |were |)(out of date|not up.to.date|stale|outdated|differ|changed)|(files?|code) (is|are) out of date|(is|are) not (properly |correctly )?(gofmt(ed)?|formatted)|improperly formatted|needs? formatting|code should be clang-formatted|clang-format (violations|found)|(missing|invalid|wrong|no) (license|copyright) header|(license|copyright) header (check|is missing|missing)|missing header in|files? without (a )?license|uncommitted changes (after|were found)|changes generated by|differs? from (the )?(generated|expected) (file|output)|git diff --exit-code",
        confidence=0.8,
    ),
    # --- test failures ------------------------------------------------------------------
    _r(
        "pytest-failed",
        C.TEST,
        r"(FAILED|ERROR) ",
        "pytest reports a failed test.",
        "Reproduce with the test id shown; fix the code or the test.",
        pattern=r"^(FAILED|ERROR) \S+(::\S+| - |$)",
        case_sensitive=True,
        confidence=0.9,
    ),
    _r(
        "pytest-summary",
        C.TEST,
        r"([0-9]+ (failed|errors?)|Interrupted: [0-9]+ error)",
        "pytest's summary counts failed tests.",
        "Reproduce with the failing test ids.",
        pattern=r"^=*\s*(\d+ \w+, )*\d+ (failed|errors?)\b(, \d+ \w+)* in [\d.]+s|Interrupted: \d+ errors? during collection",
        confidence=0.85,
    ),
    _r(
        "unittest-fail",
        C.TEST,
        r"(FAIL|ERROR): ",
        "unittest reports a failed test.",
        "Reproduce with the test id shown.",
        pattern=r"^(FAIL|ERROR): \S+( \(|$)",
        case_sensitive=True,
        confidence=0.9,
    ),
    _r(
        "unittest-summary",
        C.TEST,
        r"FAILED \((failures|errors)=",
        "unittest's summary counts failures.",
        "Reproduce with the failing test ids.",
        case_sensitive=True,
        confidence=0.85,
    ),
    _r(
        "surefire-failure",
        C.TEST,
        r"(<<< (FAILURE|ERROR)!|There are test failures|Tests in error|Failed tests:|There was [0-9]+ (failure|error)|There were [0-9]+ (failures|errors))",
        "Maven Surefire reports failed tests.",
        "Run the failing test class locally.",
        pattern=r"<<< (FAILURE|ERROR)!|There are test failures|^(\[ERROR\] )?(Tests in error|Failed tests):|^There (was|were) \d+ (failures?|errors?):",
        confidence=0.9,
    ),
    _r(
        "surefire-counts",
        C.TEST,
        r"Tests run: [0-9]+, Failures: ([1-9]|0, Errors: [1-9])",
        "A test summary counts failures.",
        "Run the failing tests locally.",
        pattern=r"Tests run: \d+, Failures: ([1-9]\d*), Errors: \d+|Tests run: \d+, Failures: \d+, Errors: ([1-9]\d*)",
        confidence=0.85,
    ),
    _r(
        "sbt-test",
        C.TEST,
        r"(Failed: Total [0-9]+, Failed|Test [A-Za-z0-9_.$]+ failed: )",
        "sbt reports failed tests.",
        "Run the failing test locally (testOnly).",
        pattern=r"Failed: Total \d+, Failed [1-9]|\bTest [\w$]+(\.[\w$]+)+ failed: ",
        case_sensitive=True,
        confidence=0.9,
    ),
    _r(
        "gradle-test-failed",
        C.TEST,
        r"( FAILED|There were failing tests|tests completed, [0-9]+ failed)",
        "Gradle reports failed tests.",
        "Run the failing test locally (--tests).",
        pattern=r"^\S.* > .+ FAILED$|^([A-Za-z_][\w$]*\.)+[\w$]+(\(.*\))? FAILED$|There were failing tests|\d+ tests completed, \d+ failed",
        confidence=0.9,
    ),
    _r(
        "ant-junit",
        C.TEST,
        r"(\[junit\] Test .* FAILED|Testcase: .*(FAILED|Caused an ERROR)|tests failed +\])",
        "Ant/JUnit reports failed tests.",
        "Run the failing test locally.",
        pattern=r"\[junit\] Test \S+ FAILED|Testcase: \S+.*(FAILED|Caused an ERROR)|\[\s*[1-9]\d* tests failed\s*\]",
        confidence=0.85,
    ),
    _r(
        "jest-failed",
        C.TEST,
        r"(●|Tests: +[0-9]+ failed|Test Suites: [0-9]+ failed|FAIL )",
        "Jest reports failed tests.",
        "Run the failing test file locally.",
        pattern=r"^\s*● (?!Console)\S.*›|^Tests:\s+\d+ failed|^Test Suites: \d+ failed|^\s*FAIL\s+\S+\.(js|jsx|ts|tsx|mjs|cjs)\b|^\s*● (?!Console)\S",
        confidence=0.9,
    ),
    _r(
        "mocha-failing",
        C.TEST,
        r"[0-9]+ failing",
        "Mocha reports failing tests.",
        "Run the failing test locally.",
        pattern=r"^\s*\d+ failing\b",
        confidence=0.9,
    ),
    _r(
        "go-test-fail",
        C.TEST,
        "(--- FAIL: |FAIL[ \t])",
        "go test reports a failed test.",
        "Run `go test -run <name>` locally.",
        pattern=r"^\s*--- FAIL: \S+|^FAIL\s+\S+\s+[\d.]+s$",
        case_sensitive=True,
        confidence=0.9,
    ),
    _r(
        "rust-test-fail",
        C.TEST,
        r"(\.\.\. FAILED|test result: FAILED|test failed, to rerun)",
        "cargo test reports a failed test.",
        "Run `cargo test <name>` locally.",
        pattern=r"^test \S+ \.\.\. FAILED$|^test result: FAILED|error: test failed, to rerun",
        confidence=0.9,
    ),
    _r(
        "ant-test-target",
        C.TEST,
        r"build\.xml:[0-9]+: .*test.* failed",
        "An Ant test target failed.",
        "Run the failing tests locally.",
        pattern=r"build\.xml:\d+: (Test \S+ failed|'[\w.-]*test[\w.-]*' failed)",
        confidence=0.8,
    ),
    _r(
        "rspec-phpunit",
        C.TEST,
        r"(examples?, [0-9]+ failures?|FAILURES!|rspec \./)",
        "RSpec/PHPUnit reports failed examples.",
        "Run the failing examples locally.",
        pattern=r"\d+ examples?, [1-9]\d* failures?|^FAILURES!$|^rspec \./\S+:\d+",
        confidence=0.9,
    ),
    _r(
        "dotnet-test",
        C.TEST,
        r"(Failed! +- Failed:|Total tests: .* Failed:)",
        "dotnet test reports failed tests.",
        "Run the failing tests locally.",
        pattern=r"Failed!\s+-\s+Failed:\s+[1-9]",
        confidence=0.9,
    ),
    _r(
        "sanitizer",
        C.TEST,
        r"(Sanitizer|: runtime error: )",
        "A sanitizer (ASan, UBSan, TSan, MSan, LSan) found a memory or undefined-behaviour bug.",
        "Fix the bug at the report's first frame in the project's code.",
        pattern=r"==\d+==ERROR: \w+Sanitizer|WARNING: ThreadSanitizer|^\S+:\d+:\d+: runtime error: ",
        case_sensitive=True,
        confidence=0.9,
    ),
    # --- a cancelled step: weaker than the causes above, stronger than the environment ---
    _r(
        "gha-canceled",
        C.TIMEOUT,
        r"The operation was cancell?ed",
        "The runner cancelled the running step (a job timeout, or a cancel from outside).",
        "If the job hit timeout-minutes, find what hung; otherwise re-run.",
        pattern=r"^(##\[error\])?The operation was cancell?ed\.?$",
        confidence=0.6,
    ),
    # --- rate limits -----------------------------------------------------------------------
    _r(
        "api-rate-limit",
        C.RATE_LIMIT,
        r"(rate limit exceeded|secondary rate limit|pull rate limit|rate.limited|ratelimit)",
        "An API refused the request because of its rate limit.",
        "Wait for the reset (Retry-After / X-RateLimit-Reset), authenticate, or cache.",
        # "rate-limited" alone names things too ("Rate limiter and rate-limited actions").
        pattern=r"rate limit exceeded|secondary rate limit|pull rate limit|"
        r"\b(been|being|is|are|was|were|got|get|you're|we're) rate.limited\b|"
        r"\brate.limited (by|until|for|on)\b|\brate.limited[.!:]?\s*$",
        confidence=0.95,
    ),
    _r(
        "http-429",
        C.RATE_LIMIT,
        r"((HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?429\b|E429|too many requests)",
        "A server answered 429 Too Many Requests.",
        "Back off and retry after the reset; authenticate or cache to need fewer requests.",
        pattern=r"\b429 Too Many Requests\b|Too Many Requests|\b(HTTP|status|code|error|response)[ :/=]*(code[ :]*)?\(?429\b|\bE429\b",
        confidence=0.9,
    ),
    # --- auth -----------------------------------------------------------------------------
    _r(
        "bad-credentials",
        C.AUTH,
        r"(bad credentials|authentication failed|invalid username or password|could not read username|incorrect username or password|authentication required|unable to authenticate)",
        "A service rejected the credentials.",
        "Check that the secret exists, is passed to this job and has not expired or been revoked.",
        confidence=0.9,
    ),
    _r(
        "permission-denied-remote",
        C.AUTH,
        r"(permission to .* denied|Permission denied \(publickey|access to the resource is denied|Resource not accessible by integration|requested access to the resource is denied)",
        "The token or key lacks permission for the operation.",
        "Grant the permission (workflow `permissions:`, token scopes, deploy key).",
        confidence=0.9,
    ),
    _r(
        "http-401",
        C.AUTH,
        r"((HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?401\b|\b401 Unauthori|E401|unauthori[sz]ed)",
        "A server answered 401 Unauthorized.",
        "Check the token secret: missing, expired, or for the wrong registry.",
        pattern=r"\b401 Unauthori[sz]ed\b|\b(HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?401\b|\bE401\b|^(error|fatal|##\[error\]).*\bunauthori[sz]ed\b",
        confidence=0.85,
    ),
    _r(
        "http-403",
        C.AUTH,
        r"((HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?403\b|\b403 Forbidden|E403|forbidden)",
        "A server answered 403 Forbidden.",
        "Check the token's permissions and scopes.",
        pattern=r"\b403 Forbidden\b|\b(HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?403\b|\bE403\b",
        confidence=0.8,
    ),
    _r(
        "cloud-credentials",
        C.AUTH,
        r"(credentials could not be loaded|security token included in the request is invalid|ExpiredToken|could not load credentials|invalid_grant)",
        "Cloud credentials are missing, invalid or expired.",
        "Check the credentials secrets or the OIDC role trust.",
        confidence=0.9,
    ),
    # --- a service answered 5xx -------------------------------------------------------------
    _r(
        "http-5xx",
        C.INTEGRATION,
        r"((HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?5[0-9][0-9]\b|\b50[0-9] [a-z]|E50[0-9]|internal server error|bad gateway|service unavailable|gateway time-?out)",
        "A service answered with a server error (5xx).",
        _RERUN,
        pattern=r"\b50[0234] (Internal Server Error|Bad Gateway|Service (Temporarily )?Unavailable|Gateway Time-?out)\b"
        r"|\b(HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?5\d\d\b|\bE50[0-9]\b"
        r"|\b(Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out)\b",
        confidence=0.85,
    ),
    _r(
        "registry-unavailable",
        C.INTEGRATION,
        r"(server misbehaving|upstream connect error|received unexpected HTTP status: 5|The remote server returned an error: \(5)",
        "A registry or service failed on its side.",
        _RERUN,
        confidence=0.8,
    ),
    # --- network ----------------------------------------------------------------------------
    _r(
        "dns-failure",
        C.NETWORK,
        r"(could not resolve host|temporary failure in name resolution|name or service not known|\bENOTFOUND\b|\bEAI_AGAIN\b|UnknownHostException|no such host|nodename nor servname)",
        "A host name could not be resolved.",
        "Re-run; if it repeats, check the host name.",
        confidence=0.9,
    ),
    _r(
        "connection-reset",
        C.NETWORK,
        r"(ECONNRESET|connection reset|ConnectionResetError|socket hang up|RemoteDisconnected|unexpected eof|early EOF|Connection was reset)",
        "A connection was reset by the other side.",
        "Re-run the job.",
        pattern=r"ECONNRESET|connection reset by peer|SocketException: Connection reset|ConnectionResetError|socket hang up|RemoteDisconnected|unexpected eof|early EOF|Connection was reset",
        confidence=0.85,
    ),
    _r(
        "connection-timeout",
        C.NETWORK,
        r"(ETIMEDOUT|[Rr]ead timed out|[Cc]onnect(ion)? timed out|ConnectTimeout(Error|Exception)|SocketTimeoutException|i/o timeout|TLS handshake timeout|ERR_SOCKET_TIMEOUT)",
        "A network connection timed out.",
        "Re-run the job.",
        case_sensitive=True,
        confidence=0.85,
    ),
    _r(
        "connection-refused",
        C.NETWORK,
        r"(ECONNREFUSED|connection refused|ConnectException|Failed to establish a new connection|network is unreachable|no route to host)",
        "A connection was refused or the network was unreachable.",
        "Re-run; if it repeats, check that the service the job needs is started.",
        confidence=0.75,
    ),
    _r(
        "curl-network",
        C.NETWORK,
        r"curl: \((6|7|28|35|52|56)\)",
        "curl failed on the network.",
        "Re-run the job.",
        confidence=0.85,
    ),
    _r(
        "max-retries",
        C.NETWORK,
        r"(max retries exceeded with url|npm ERR! network)",
        "Repeated network requests failed.",
        "Re-run the job.",
        confidence=0.8,
    ),
    _r(
        "command-timeout",
        C.TIMEOUT,
        r"(timeout: sending signal|command timed out|timed out after [0-9]+ ?(s|seconds|minutes)\b)",
        "A command was stopped by a time limit.",
        "Find what hung; raise the limit only if the work grew.",
        pattern=r"(timeout: sending signal|\bcommand timed out\b|^(##\[error\])?.*\btimed out after \d+ ?(s|seconds|minutes)\b)",
        confidence=0.7,
    ),
    # --- dependency resolution ------------------------------------------------------------
    _r(
        "pip-resolution",
        C.DEPENDENCY,
        r"(ResolutionImpossible|conflicting dependencies|Could not find a version that satisfies the requirement|No matching distribution found for)",
        "pip could not find or reconcile the required package versions.",
        "Relax or fix the version constraints; check the package name and Python version.",
        confidence=0.95,
    ),
    _r(
        "npm-resolution",
        C.DEPENDENCY,
        r"(ERESOLVE|ETARGET|No matching version found for|code E404|404 Not Found - GET https://registry|Couldn't find any versions for|Couldn't find package|ERR_PNPM_[A-Z_]*(RESOLUTION|NO_MATCHING|PEER|OUTDATED_LOCKFILE|FETCH_404))",
        "npm/yarn/pnpm could not resolve the dependency tree.",
        "Fix the conflicting ranges (or use --legacy-peer-deps deliberately); update the lockfile.",
        confidence=0.95,
    ),
    _r(
        "lockfile-outdated",
        C.DEPENDENCY,
        r"(lockfile needs to be updated|lockfile would have been modified|can only install packages when your package\.json and package-lock\.json|frozen-lockfile|poetry\.lock is not consistent|lock file is not up to date|Cargo\.lock needs to be updated)",
        "The lockfile does not match the manifest.",
        "Regenerate and commit the lockfile.",
        confidence=0.9,
    ),
    _r(
        "maven-resolution",
        C.DEPENDENCY,
        r"(could not resolve dependencies|failed to collect dependencies|could not find artifact|non-resolvable parent pom|failed to read artifact descriptor|ExtensionResolutionException|could not be resolved)",
        "Maven could not resolve a dependency, plugin or extension.",
        "Check the coordinates and repositories; the artifact may not be published.",
        confidence=0.9,
    ),
    _r(
        "gradle-resolution",
        C.DEPENDENCY,
        r"(could not resolve all (files|dependencies|artifacts) for configuration|could not resolve [a-z0-9_.-]+:[a-z0-9_.-]+|could not find [a-z0-9_.-]+:[a-z0-9_.-]+:)",
        "Gradle could not resolve a dependency.",
        "Check the coordinates and repositories; the version may not exist.",
        pattern=r"(could not resolve all (files|dependencies|artifacts) for configuration|^\s*> could not (resolve|find) [\w.-]+:[\w.-]+)",
        confidence=0.9,
    ),
    _r(
        "go-module",
        C.DEPENDENCY,
        r"(missing go\.sum entry|unknown revision|checksum mismatch|cannot find module providing package|go: updates to go\.mod needed|invalid version: )",
        "Go could not resolve a module.",
        "Run `go mod tidy` and commit go.mod/go.sum; check the version exists.",
        confidence=0.9,
    ),
    _r(
        "cargo-resolution",
        C.DEPENDENCY,
        r"(failed to select a version for|no matching package named|failed to get `)",
        "Cargo could not resolve a dependency.",
        "Fix the version requirement.",
        confidence=0.9,
    ),
    _r(
        "ruby-python-solver",
        C.DEPENDENCY,
        r"(SolverProblemError|version solving failed|Could not find gem|Bundler could not find compatible versions|Unable to locate package|has no installation candidate)",
        "The package manager's solver found no solution, or a package does not exist.",
        "Fix the version constraints or the package name.",
        confidence=0.9,
    ),
    _r(
        "node-missing-module",
        C.DEPENDENCY,
        r"Cannot find module '",
        "A Node.js package is not installed.",
        "Add it to package.json (dependencies or devDependencies) and reinstall.",
        pattern=r"Error: Cannot find module '(?![./])",
        case_sensitive=True,
        confidence=0.8,
    ),
    _r(
        "python-missing-module",
        C.DEPENDENCY,
        r"(ModuleNotFoundError|No module named)",
        "A Python module is not installed.",
        "Add the package to the requirements of this job (or fix the import).",
        pattern=r"\bModuleNotFoundError: No module named\b|^(E\s+)?ImportError: No module named\b",
        confidence=0.6,
    ),
    _r(
        "native-build",
        C.DEPENDENCY,
        r"(Failed building wheel for|Failed to build installable wheels|subprocess-exited-with-error|node-gyp|gyp ERR!)",
        "A dependency with native code failed to build.",
        "Install the system headers/toolchain it needs, or pin a version with a wheel.",
        pattern=r"(Failed building wheel for|Failed to build installable wheels|^(error|ERROR): subprocess-exited-with-error|gyp ERR! (build|stack|configure) error)",
        confidence=0.8,
    ),
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

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}


def vocabulary() -> list[str]:
    """The prefilter patterns, in rule order (for the scanner and the grep comparison)."""
    return [rule.prefilter for rule in RULES]


# Rules whose lines come from the runner or the CI system itself: they count wherever they
# appear, not only inside the failing step, and they prove on their own that the job failed.
JOB_LEVEL_RULES: frozenset[str] = frozenset(
    {
        "gha-job-timeout",
        "gha-action-timeout",
        "ci-no-output-timeout",
        "gha-runner-lost",
        "gha-runner-shutdown",
        "gha-runner-disk",
        "gha-concurrency-cancel",
        "gha-provisioning",
        "gha-canceled",
    }
)
