"""Names of failing tests, from the inline reports and end-of-run summaries of test runners.

Each test is named the way its runner identifies it, keeping the module, class or suite the
log gives:

- pytest `tests/test_x.py::TestY::test_z[p]` (collection errors by file, `tests/test_x.py`);
- unittest `test_z (pkg.TestY)`, nose and doctest the dotted id (`pkg.mod.test_z`), a module
  that failed to import by its name;
- JUnit through Maven Surefire, Gradle, Ant or TestNG `pkg.Class.method` (nested classes
  `Outer$Inner`, Gradle keeps `method()` and parameter indices);
- Jest `Suite › test` (a suite that failed to run by its file), Mocha and Karma
  `suite test` (hooks `suite "before each" hook for "test"`);
- Go `TestX/sub`, cargo `module::test`, RSpec `spec/x_spec.rb:12 # description`, minitest
  `TestX#test_y`, PHPUnit `Class::method`, php's run-tests `description [path.phpt]`,
  ExUnit `test name (Module)`, .NET `Namespace.Class.Method`, XCTest `Module.Class.test`,
  ScalaTest and TAP by their description.

A pytest header (`___ TestY.test_z ___`) takes the file of the first frame below it when that
file is a test module in the checkout, so it reads `tests/test_x.py::TestY::test_z`.

The same test reported twice (a progress line and a summary, a header and a short summary) is
listed once, by its most qualified name. A Go test whose subtests failed is named by them.

Only the lines the scanner hands over are read: `on_trigger` for lines that match a
trigger's prefilter, `on_context` for the `capture` lines that follow a trigger that asked.
Prefilters run over raw bytes (Actions timestamps, ANSI colours): `_LINE_START` and `_C`
allow for both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_TESTS = 500
MAX_NAME_CHARS = 500

# Prefilters are grep -E syntax (the speed benchmark greps with them): plain groups, no
# escapes such as \x1b or \w. Terminal codes (colours, `ESC[0K`, `ESC(B`) a raw line may
# hold between two words:
_C = "(\x1b\\[[0-9;?]*[A-Za-z]|\x1b\\(B)*"
# The start of a raw line's text: after the Actions timestamp if any, and colour codes.
_LINE_START = rf"(^|[0-9]Z ){_C}"


@dataclass(frozen=True, slots=True)
class Trigger:
    """A line that can name a failing test; `capture` following lines are passed on too."""

    id: str
    prefilter: str
    pattern: re.Pattern[str]
    case_sensitive: bool = True
    capture: int = 0


def _t(
    trigger_id: str, prefilter: str, pattern: str, *, case_sensitive: bool = True, capture: int = 0
) -> Trigger:
    flags = 0 if case_sensitive else re.IGNORECASE
    return Trigger(trigger_id, prefilter, re.compile(pattern, flags), case_sensitive, capture)


# A pytest node id: a path ending in .py, `::` parts, a parameter id that may hold spaces.
_PYTEST_ID = r"[^\s\[]+?\.py(?:::[^\s:\[]+)*(?:\[.*\])?"
# A Java-like identifier path (`pkg.Class$Inner`).
_JAVA = r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*"

TRIGGERS: tuple[Trigger, ...] = (
    # -- Python --------------------------------------------------------------------------
    _t(
        "pytest",
        rf"(FAILED|FAIL|ERROR){_C} {_C}[^ ]*\.py",
        rf"^(?:\[gw\d+\] (?:\[\s*\d+%\] )?)?(?:FAILED|FAIL|ERROR) ({_PYTEST_ID}?)(?: - .*)?$",
    ),
    _t(
        "pytest-progress",
        rf"\.py::.* {_C}(FAILED|ERROR)",
        rf"^({_PYTEST_ID}) (?:FAILED|ERROR)(?:\s+\[\s*\d+%\])?$",
    ),
    _t("pytest-banner", rf"=== {_C}[A-Za-z0-9]", r"^={3,} (\S.*?) ={3,}$"),
    _t(
        "pytest-header",
        rf"___ {_C}[^ _]",
        r"^_{3,} (?:(?:ERROR|FAILURE) at (?:setup|teardown) of |ERROR collecting |\[doctest\] )?"
        r"([^\s\[]+(?:\[.*\])?) _{3,}$",
    ),
    _t("pytest-location", rf"{_LINE_START}[^ ]+\.py{_C}:[0-9]+:", r"^(\S+\.py):\d+:(?: |$)"),
    _t(
        "unittest",
        "(FAIL|ERROR): [A-Za-z_]",
        r"^(?:FAIL|ERROR): (?:Doctest: )?(?:"
        # `test_z (pkg.TestY)` (a subtest's parameters may follow)
        r"([A-Za-z_][^\s()\[\]:]*) \(([\w.]+)\)(?: \[.*\]| \(.*\))?"
        # nose and doctest: a dotted id, a generator's arguments
        r"|([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?:\[[^\]]*\]|\([^)]*\))?))$",
    ),
    _t(
        "unittest-progress",
        rf"\.\.\. {_C}(FAIL|ERROR)",
        r"^([A-Za-z_][^\s()\[\]:]*(?: \([\w.]+\)|(?:\.[A-Za-z_]\w*)+)) \.\.\. (?:FAIL|ERROR)$",
    ),
    _t(
        "doctest",
        'File "[^"]+", line [0-9]+, in ',
        r'^File ".+", line \d+, in ([\w.]+)$',
        capture=1,
    ),
    # -- JVM -----------------------------------------------------------------------------
    _t(
        "surefire-test",
        "<<< (FAILURE|ERROR)!",
        r"^(?:\[ERROR\] )?(?!Tests run:)(\S.*?)\s+(?:--\s+)?(?:Time elapsed:.*)?"
        r"<<< (?:FAILURE|ERROR)!",
    ),
    _t(
        "surefire-class",
        "<<< (FAILURE|ERROR)!",
        rf"<<< (?:FAILURE|ERROR)!\s*-+ in ({_JAVA})",
    ),
    _t(
        "surefire-section",
        rf"Failed tests:|Tests in error:|(Failures|Errors): *{_C} *$",
        r"^(?:\[ERROR\] )?(?:Failed tests:|Tests in error:|Failures:|Errors:)(?:\s+(\S.*))?$",
        capture=2000,
    ),
    _t("gradle", " FAILED", r"^(\S.* > .+|(?:[A-Za-z_][\w$]*\.)+[\w$]+(?:\(.*\))?) FAILED$"),
    _t(
        "ant-testcase",
        "Testcase: ",
        r"Testcase: (\w+)(?:\(([\w.$]+)\))?(:?\s*(FAILED|Caused an ERROR)| took)",
        capture=1,
    ),
    _t("ant-testsuite", "Testsuite: ", r"Testsuite: ([\w.$]+)"),
    _t("ant-test", r"Test [A-Za-z0-9_.$]+ FAILED", r"\[junit\] Test ([\w.$]+) FAILED$"),
    _t("testng", "FAILED: ", r"^FAILED: (\w+(?:\(.*\))?)$"),
    _t(
        "junit-platform",
        "MethodSource \\[className",
        r"MethodSource \[className = '([\w.$]+)', methodName = '(\w+)'",
    ),
    _t("sbt", " failed: ", r"\bTest ([\w$]+(?:\.[\w$]+)+) failed: "),
    _t("scalatest", r"\*\*\* FAILED \*\*\*", r"^(?:\[info\] )?\s*- (.+?) \*\*\* FAILED \*\*\*$"),
    # -- JavaScript ----------------------------------------------------------------------
    _t(
        "jest-file",
        rf"FAIL{_C} ",
        r"^\s*FAIL\s+(?:\S+\s+)??(\S+\.(?:[cm]?[jt]sx?|coffee|vue|svelte))(?:\s+\(.*\))?$",
    ),
    _t("jest", "●", r"^\s+● (.+?)\s*$"),  # indented under its `FAIL path` line
    _t("jest-summary", "Test Suites: ", r"^Test Suites: "),
    _t("mocha", "[0-9]+ failing", r"^\s*\d+ failing\b", capture=3000),
    # Each numbered entry of a Mocha or PHPUnit list asks for more lines: lists can be long.
    _t("numbered-entry", rf"{_LINE_START} *[0-9]+\)( |$)", r"^\s*\d+\)(?: |$)", capture=3000),
    _t(
        "karma",
        " FAILED",
        r"^(?:[A-Z][\w]*(?: [A-Z][\w]*)* )[\d.]+ \([^)]*\) (.+?) FAILED$",
    ),
    # -- others --------------------------------------------------------------------------
    _t("go", "--- FAIL: ", r"^\s*--- FAIL: (\S+)"),
    _t("gotestsum", "=== FAIL: ", r"^=== FAIL: (\S+) (\S+)"),
    _t("rust", rf"\.\.\. {_C}FAILED", r"^test (.+?) \.\.\. FAILED$"),
    _t("rust-stdout", "---- .* stdout ----", r"^---- (.+?) stdout ----$"),
    _t("rust-list", "failures:", r"^failures:$", capture=200),
    _t("rspec", "rspec '?\\./", r"^rspec '?\./(\S+?)'? # (.+)$"),
    _t("minitest", rf"(Failure|Error):{_C}$", r"^\s*(?:\d+\) )?(?:Failure|Error):$", capture=1),
    _t(
        "phpunit-section",
        "There (was|were) ",
        r"^There (?:was|were) \d+ (?:failures?|errors?):$",
        capture=2000,
    ),
    _t("phpt-section", "FAILED TEST SUMMARY", r"^FAILED TEST SUMMARY$", capture=1000),
    _t("tap", "not ok ", r"^not ok \d+(?: -)? (.+?)\s*(#\s*(?:TODO|SKIP)\b.*)?$"),
    _t(
        "xctest",
        "Test Case '",
        r"Test Case '(?:-\[)?([\w.]+)[ .](\w+)\]?' failed",
    ),
    _t(
        "exunit",
        r"[0-9]\) (test|doctest|property) ",
        r"^\s+\d+\) ((?:test|doctest|property) .+ \([A-Z][\w.]*\))$",
    ),
    _t(
        "dotnet",
        r"Failed +[A-Za-z0-9_.]+\.[A-Za-z_]",
        r"^\s*Failed\s+(\S+?(?:\(.*\))?)(?: \[[\d.<> ]+m?s\])?$",
    ),
    _t("xunit", r"\[FAIL\]", r"([A-Za-z_][\w.+`]*\.\w+(?:\(.*\))?) \[FAIL\]$"),
    _t(
        "nunit",
        r"\) (Failed|Error|Test Failure|Test Error) : ",
        r"^\s*\d+\) (?:Failed|Error|Test Failure|Test Error) : (\S+)",
    ),
)

# `● ...` blocks Jest prints that are not tests.
_JEST_NOT_TESTS = re.compile(
    r"^(Console|Deprecation|Validation|Cannot log after tests are done|process\.exit called"
    r"|Multiple configurations found|Invalid|Unknown option|Test suite failed to run$)"
)
# A parametrised run's arguments (`[1]`, `{ArgumentsAccessor}[2]`, `(int)`), at the end.
_PARAMETERS = re.compile(r"(?<=[\w\])}])(?:\[[^\]]*\]|\{[^}]*\}|\([^)]*\))+$")
_GENERIC_SUFFIX = re.compile(r"\s*\(\d+(\.\d+)?\s*m?s\)$")
_JAVA_OWNER = re.compile(rf"^(.+?)\(({_JAVA})\)$")
_UNITTEST_NAME = re.compile(r"^(\S+) \(([\w.]+)\)$")
# An entry of Surefire's `Failed tests:` / `Tests in error:` / `Failures:` lists.
_SUREFIRE_PARENS = re.compile(r"^([\w$]+(?:\[.*?\])?)\(([\w.$]+)\)(?::|\s|$)")
_SUREFIRE_DOTTED = re.compile(
    r"^((?:[\w$]+\.)*[\w$]+)(?:>[\w$.]+)?\.([\w$]+(?:\(.*?\))?(?:\[.*?\])?)"
    r"(?::\d+|(?=\s+»)|$)(?:->\S+)?(?:\s|$)"
)
_PHPUNIT_ENTRY = re.compile(r"^(\d+)\) ([\w\\]+::\w+)(?: with data set (#\d+|\"[^\"]*\"))?")
_MINITEST_ENTRY = re.compile(r"^([\w:]+#\S.*?)\s+\[[^\]]+\]:?$")
_GO_TEST = re.compile(r"^(?:Test|Benchmark|Example|Fuzz)\w*/")


_PYTEST_FILE = re.compile(r"^(?:test_\w*|\w*_test|tests?)\.py$")
# Where CI services check a repository out: paths below it are the repository's own.
_CHECKOUT = re.compile(
    r"^(?:/home/runner/work/[^/]+/[^/]+|/Users/runner/work/[^/]+/[^/]+|/__w/[^/]+/[^/]+"
    r"|/home/travis/build/[^/]+/[^/]+|[A-Za-z]:[\\/]a[\\/][^\\/]+[\\/][^\\/]+)[\\/]"
)


def _checkout_relative(path: str) -> str | None:
    """`path` relative to the checkout (None for a path outside it, like site-packages)."""
    if not path.startswith("/") and not re.match(r"^[A-Za-z]:[\\/]", path):
        return path.replace("\\", "/")
    match = _CHECKOUT.match(path)
    if match is None or "site-packages" in path:
        return None
    return path[match.end() :].replace("\\", "/")


def _canonical(name: str) -> str:
    """A form used only to see that two reports name the same test."""
    unittest = _UNITTEST_NAME.match(name)
    if unittest:
        name = f"{unittest.group(2)}.{unittest.group(1)}"
    text = name.replace("::", ".").replace("/", ".").replace("$", ".").replace(" > ", ".")
    text = text.replace(" › ", ".").replace("#", ".").replace(".py.", ".")
    return re.sub(r"\.py$", "", text).strip(". ")


def _java_name(method: str, class_name: str | None) -> str:
    return f"{class_name}.{method}" if class_name else method


class FailingTestCollector:
    """Fed the lines the scanner finds (and the lines after some of them); keeps names."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._canon: list[str] = []
        self._lines: list[int | None] = []  # where each name was first seen, when known
        self.line: int | None = None  # the line being fed (the scanner sets it)
        self._suite: str | None = None  # Ant's current Testsuite
        self._java_class: str | None = None  # Surefire's class being run
        self._ant_classes: list[str] = []  # `Test X FAILED` without its methods (yet)
        self._pending_ant: tuple[str, str | None] | None = None
        self._pending_doctest: str | None = None
        self._pending_minitest = False
        self._pytest_failures = False  # inside pytest's FAILURES / ERRORS sections
        self._pytest_short: str | None = None  # a header's name, until its file is seen
        self._jest_file: str | None = None
        self._cargo_failures = False  # cargo printed `failures:` (its stdout blocks follow)
        self._section: str | None = None  # which multi-line report the context lines belong to
        self._numbered: list[str] | None = None
        self._next_number = 1
        self._indent = 0
        # A handler returning False did not use the line (no context lines wanted).
        self._handlers: dict[str, Callable[[re.Match[str]], bool | None]] = {
            "pytest": lambda m: self._add(m.group(1).replace("::()", "")),
            "pytest-progress": lambda m: self._add(m.group(1).replace("::()", "")),
            "pytest-banner": self._pytest_banner,
            "pytest-header": self._pytest_header,
            "pytest-location": self._pytest_location,
            "unittest": self._unittest,
            "unittest-progress": lambda m: self._add(self._unittest_id(m.group(1))),
            "doctest": self._doctest,
            "surefire-test": self._surefire_test,
            "surefire-class": self._surefire_class,
            "surefire-section": self._surefire_section,
            "gradle": self._gradle,
            "ant-testcase": self._ant_testcase,
            "ant-testsuite": self._ant_testsuite,
            "ant-test": self._ant_test,
            "testng": lambda m: self._add(m.group(1)),
            "junit-platform": lambda m: self._add(_java_name(m.group(2), m.group(1))),
            "sbt": lambda m: self._add(m.group(1)),
            "scalatest": lambda m: self._add(m.group(1)),
            "jest-file": self._jest_file_line,
            "jest": self._jest,
            "jest-summary": lambda m: self._jest_done(),
            "mocha": lambda m: self._open("mocha"),
            "numbered-entry": lambda m: self._section in ("mocha", "phpunit"),
            "go": lambda m: self._add(m.group(1)),
            "gotestsum": lambda m: self._add(f"{m.group(1)}.{m.group(2)}"),
            "rust": lambda m: self._add(m.group(1)),
            "rust-stdout": self._rust_stdout,
            "rust-list": self._rust_list,
            "rspec": lambda m: self._add(f"{m.group(1)} # {m.group(2).strip()}"),
            "minitest": self._minitest,
            "phpunit-section": lambda m: self._open("phpunit"),
            "exunit": lambda m: self._add(m.group(1)),
            "karma": lambda m: self._add(m.group(1)),
            "phpt-section": lambda m: self._open("phpt"),
            "tap": lambda m: None if m.group(2) else self._add(m.group(1)),
            "xctest": lambda m: self._add(f"{m.group(1)}.{m.group(2)}"),
            "dotnet": self._dotnet,
            "xunit": lambda m: self._add(m.group(1)),
            "nunit": lambda m: self._add(m.group(1)),
        }

    # -- results -------------------------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        names = list(self._names)
        canon = set(self._canon)
        for class_name in self._ant_classes:  # a class with no method named: the class
            prefix = _canonical(class_name) + "."
            if not any(c.startswith(prefix) for c in canon) and class_name not in names:
                names.append(class_name)
        parents: set[str] = set()  # a Go test is named by its failing subtests
        for name in names:
            if _GO_TEST.match(name):
                parts = name.split("/")
                parents.update("/".join(parts[:i]) for i in range(1, len(parts)))
        return tuple(n for n in names if n not in parents)[:MAX_TESTS]

    def first_lines(self) -> tuple[int, ...]:
        """The lines where failing tests were first named (their inline failure, usually:
        run summaries come after it), in log order."""
        return tuple(sorted({n for n in self._lines[:MAX_TESTS] if n is not None}))

    # -- input ---------------------------------------------------------------------------
    def on_trigger(self, trigger: Trigger, text: str) -> bool:
        """A line that matched `trigger`'s prefilter; True if it named or opened something."""
        match = trigger.pattern.search(text)
        if match is None:
            return False
        return self._handlers[trigger.id](match) is not False

    def on_context(self, text: str) -> None:
        """A line that follows a trigger with `capture` (in order, once each)."""
        if self._pending_ant is not None:
            method, class_name = self._pending_ant
            self._pending_ant = None
            if re.search(r"^\s*(?:\[junit\])?\s*(?:Caused an ERROR|FAILED)\s*$", text):
                self._add(_java_name(method, class_name or self._suite))
            return
        if self._pending_doctest is not None:
            name, self._pending_doctest = self._pending_doctest, None
            if text.strip() == "Failed example:":
                self._add(name)
            return
        if self._pending_minitest:
            self._pending_minitest = False
            match = _MINITEST_ENTRY.match(text.strip())
            if match:
                self._add(match.group(1))
            return
        if self._section == "surefire":
            self._surefire_line(text)
        elif self._section in ("mocha", "phpunit"):
            self._numbered_line(text)
        elif self._section == "cargo":
            self._cargo_line(text)
        elif self._section == "phpt":
            self._phpt_line(text)

    # -- framework specifics ---------------------------------------------------------------
    def _open(self, section: str) -> None:
        self._section = section
        self._numbered = None
        self._next_number = 1

    def _pytest_banner(self, match: re.Match[str]) -> None:
        title = match.group(1).strip()
        self._pytest_failures = title in ("FAILURES", "ERRORS")
        self._pytest_short = None

    def _pytest_header(self, match: re.Match[str]) -> None:
        self._pytest_short = None
        if not self._pytest_failures:
            return
        name = match.group(1)
        self._add(name)
        head = name.split("[", 1)[0]
        if "::" not in name and "/" not in head and "[doctest]" not in match.group(0):
            self._pytest_short = name  # `test_y` / `TestY.test_z`: its file comes next

    def _pytest_location(self, match: re.Match[str]) -> None:
        """The first `path.py:N: ` after a header is the test's own frame: its file."""
        name, self._pytest_short = self._pytest_short, None
        if name is None:
            return
        path = _checkout_relative(match.group(1))
        if path is None or not _PYTEST_FILE.match(path.rsplit("/", 1)[-1]):
            return  # a fixture in conftest.py, a library: not where the test is
        head, bracket, params = name.partition("[")
        self._add(f"{path}::{head.replace('.', '::')}{bracket}{params}")

    @staticmethod
    def _unittest_id(text: str) -> str:
        match = _UNITTEST_NAME.match(text)
        if match is None:
            return text
        method, where = match.group(1), match.group(2)
        if where.startswith("unittest.loader._FailedTest"):
            return method  # the module that failed to import
        if where.endswith("." + method):  # Python >= 3.11 prints the full id
            where = where[: -len(method) - 1]
        return f"{method} ({where})"

    def _unittest(self, match: re.Match[str]) -> None:
        method, where, dotted = match.group(1), match.group(2), match.group(3)
        self._add(self._unittest_id(f"{method} ({where})") if method else dotted)

    def _doctest(self, match: re.Match[str]) -> None:
        self._pending_doctest = match.group(1)

    def _surefire_test(self, match: re.Match[str]) -> None:
        name = match.group(1)
        if name.startswith(("Tests", "[")) or name.endswith(":"):
            return
        owner = _JAVA_OWNER.match(name)
        if owner and ("." in owner.group(2) or self._java_class is None):
            self._add(f"{owner.group(2)}.{owner.group(1)}")  # `method[params](pkg.Class)`
        elif self._java_class and "." not in re.split(r"[(\[]", name)[0]:
            self._add(f"{self._java_class}.{name}")  # the class is on `Running X` / `- in X`
        else:
            self._add(name)

    def _surefire_class(self, match: re.Match[str]) -> None:
        self._java_class = match.group(1)

    def _surefire_section(self, match: re.Match[str]) -> None:
        self._open("surefire")
        if match.group(1):  # `Failed tests:   testX(com.a.BarTest): message`
            self._surefire_entry(match.group(1))

    def _surefire_line(self, text: str) -> None:
        body = text.removeprefix("[ERROR]")
        stripped = body.strip()
        if text.startswith(("[INFO]", "[WARNING]")) or stripped.startswith(
            ("Tests run:", "BUILD", "Failed to execute", "Results", "Flaked tests:", "Flakes:")
        ):
            self._section = None
            return
        if re.match(r"^ {1,3}\S", body) and not re.match(r"Run \d+:", stripped):
            self._surefire_entry(stripped)  # (`Run N:` lines say where each rerun failed)

    def _surefire_entry(self, entry: str) -> None:
        if entry.startswith(("java.", "javax.", "org.junit.", "at ")):
            return
        match = _SUREFIRE_PARENS.match(entry)
        if match:
            self._add(f"{match.group(2)}.{match.group(1)}")
            return
        match = _SUREFIRE_DOTTED.match(entry)
        if match and not match.group(2).endswith(("Exception", "Error")):
            self._add(f"{match.group(1)}.{match.group(2)}")

    def _gradle(self, match: re.Match[str]) -> None:
        parts = [p.strip() for p in match.group(1).split(" > ")]
        parts = [p for p in parts if p not in {"Gradle suite", "Gradle test"}]
        if not parts or parts[0].startswith((">", ":")):
            return
        last = parts[-1]
        if len(parts) == 1 or re.match(r"^([A-Za-z_][\w$]*\.)+[\w$]+\(", last):
            self._add(last)  # already fully qualified (`pkg.Class.method(...)[3]`)
            return
        owner = "$".join(parts[:-1])
        self._add(f"{owner}.{last}")

    def _ant_testsuite(self, match: re.Match[str]) -> None:
        self._suite = match.group(1)

    def _ant_test(self, match: re.Match[str]) -> None:
        if match.group(1) not in self._ant_classes and len(self._ant_classes) < MAX_TESTS:
            self._ant_classes.append(match.group(1))

    def _ant_testcase(self, match: re.Match[str]) -> None:
        method, class_name, verdict = match.group(1), match.group(2), match.group(3)
        if "took" in verdict:
            self._pending_ant = (method, class_name)
        else:
            self._add(_java_name(method, class_name or self._suite))

    def _jest_file_line(self, match: re.Match[str]) -> None:
        self._jest_file = match.group(1)

    def _jest_done(self) -> bool:
        self._jest_file = None  # the run's counts: its failures were all listed above
        return False

    def _jest(self, match: re.Match[str]) -> None:
        if self._jest_file is None:
            return  # Jest prints `FAIL path` before the failures of each file
        title = match.group(1).strip()
        if title == "Test suite failed to run":
            self._add(f"{self._jest_file} › {title}")
        elif title and not _JEST_NOT_TESTS.match(title):
            self._add(title)

    def _minitest(self, match: re.Match[str]) -> None:
        self._pending_minitest = True

    def _dotnet(self, match: re.Match[str]) -> None:
        name = match.group(1)
        if "." in name.split("(")[0] and not name.endswith(":"):
            self._add(name)

    def _numbered_line(self, text: str) -> None:
        """Mocha's `N) suite\\n  test:` titles; PHPUnit's `N) Class::method`."""
        if self._section == "phpunit":
            if text.startswith(("FAILURES!", "OK (", "Tests: ")):
                self._section = None
                return
            match = _PHPUNIT_ENTRY.match(text.strip())
            if match and int(match.group(1)) == self._next_number:
                self._next_number += 1
                data = f" with data set {match.group(3)}" if match.group(3) else ""
                self._add(match.group(2) + data)
            return
        header = re.match(r"^(\s*)(\d+)\)(?: (.*))?$", text)
        if header and int(header.group(2)) == self._next_number:
            self._next_number += 1
            self._numbered = []
            self._indent = len(header.group(1))
            if header.group(3) and header.group(3).strip():
                self._mocha_part(header.group(3).strip())
            return
        if self._numbered is not None and text.strip():
            joined = " ".join(self._numbered)
            open_brackets = sum(joined.count(c) for c in "{[(") > sum(
                joined.count(c) for c in "}])"
            )
            if len(text) - len(text.lstrip()) <= self._indent and not open_brackets:
                self._numbered = None  # a title's lines are indented under its number
            else:
                self._mocha_part(text.strip())

    def _mocha_part(self, part: str) -> None:
        assert self._numbered is not None
        self._numbered.append(part)
        if part.endswith(":"):
            self._add(" ".join(self._numbered)[:-1])
            self._numbered = None
        elif len(self._numbered) > 12:
            self._numbered = None  # not a title after all

    def _phpt_line(self, text: str) -> None:
        """php-src's run-tests: `description [path/to/test.phpt]` until a `====` rule."""
        if text.startswith("====="):
            self._section = None
            return
        match = re.match(r"^(\S.*? \[[^\]\s]+\.phpt\])(?:\s.*)?$", text)
        if match:
            self._add(match.group(1))

    def _rust_list(self, match: re.Match[str]) -> None:
        self._cargo_failures = True
        self._open("cargo")

    def _rust_stdout(self, match: re.Match[str]) -> None:
        if self._cargo_failures:
            self._add(match.group(1))

    def _cargo_line(self, text: str) -> None:
        """cargo's closing `failures:` list: the names, four spaces in, one a line."""
        if not text.strip():
            return
        match = re.match(r"^    (\S+)$", text)
        if match:
            self._add(match.group(1))
        else:
            self._section = None  # `---- x stdout ----` or `test result:`: not the list

    # -- bookkeeping -----------------------------------------------------------------------
    def _add(self, name: str) -> None:
        name = _GENERIC_SUFFIX.sub("", name.strip())[:MAX_NAME_CHARS]
        if not name or len(self._names) >= MAX_TESTS:
            return
        canon = _canonical(name)
        base = _PARAMETERS.sub("", canon)
        for index, known in enumerate(self._canon):
            if _same_test(known, canon):
                return
            if canon.endswith("." + known):
                self._names[index] = name  # the same test, more qualified
                self._canon[index] = canon
                return
            known_base = _PARAMETERS.sub("", known)
            if base == canon and known_base != known and _same_test(known_base, canon):
                return  # `Class.method` after a run `pkg.Class.method{args}[1]` of it
            if base != canon and known_base == known and _same_test(base, known):
                self._names[index] = name  # the first named run of `Class.method`
                self._canon[index] = canon
                return
        self._names.append(name)
        self._canon.append(canon)
        self._lines.append(self.line)


def _same_test(known: str, canon: str) -> bool:
    """`canon` names `known` or a less qualified form of it."""
    return known == canon or known.endswith("." + canon)
