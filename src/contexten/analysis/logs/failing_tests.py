"""Names of failing tests, from the report lines of the common test runners.

Names are given the way each runner identifies a test:
pytest `path/test_x.py::Class::test_y[param]`, unittest `module.Class.test_y`, JUnit
(Maven, Gradle, Ant) `package.Class.method` (nested classes `Outer$Inner`), Jest
`Suite › test`, Mocha `suite test`, Go `TestX/sub`, Rust `module::test`, RSpec and .NET as
printed. The same test reported twice (a progress line and a summary) is listed once, by its
most qualified name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_TESTS = 500
MAX_NAME_CHARS = 500


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


TRIGGERS: tuple[Trigger, ...] = (
    _t(
        "pytest",
        "(FAILED|ERROR) ",
        r"^(?:FAILED|ERROR) (\S+?(?:::\S+?|\.py)(?:\[.*?\])?)(?: - .*)?$",
    ),
    _t(
        "pytest-header",
        "___ ",
        r"^_{3,} (?:(?:ERROR|FAILURE) at (?:setup|teardown) of |ERROR collecting )?(\S.*?) _{3,}$",
    ),
    _t("unittest", "(FAIL|ERROR): ", r"^(?:FAIL|ERROR): (\S+)(?: \(([\w.]+)\)|\s*$)"),
    _t(
        "surefire-test",
        "<<< (FAILURE|ERROR)!",
        r"^(?:\[ERROR\] )?(?!Tests run:)(\S+?)(?:\(([\w.$]+)\))?\s+"
        r"(?:--\s+)?(?:Time elapsed:.*)?<<< (?:FAILURE|ERROR)!",
    ),
    _t(
        "surefire-section",
        "(Failed tests:|Tests in error:|\\[ERROR\\] (Failures|Errors):)",
        r"^(?:\[ERROR\] )?(?:Failed tests:|Tests in error:|Failures:|Errors:)\s*$",
        capture=200,
    ),
    _t("gradle", " FAILED", r"^(\S.* > .+|(?:[A-Za-z_][\w$]*\.)+[\w$]+(?:\(.*\))?) FAILED$"),
    _t(
        "ant-testcase",
        "Testcase: ",
        r"Testcase: (\w+)(?:\(([\w.$]+)\))?(:?\s*(FAILED|Caused an ERROR)| took)",
        capture=1,
    ),
    _t("ant-testsuite", "Testsuite: ", r"Testsuite: ([\w.$]+)"),
    _t(
        "junit-platform",
        "MethodSource \\[className",
        r"MethodSource \[className = '([\w.$]+)', methodName = '(\w+)'",
    ),
    _t("sbt", " failed: ", r"\bTest ([\w$]+(?:\.[\w$]+)+) failed: "),
    _t("jest", "●", r"^\s*● (?!Console$)(.+?)\s*$"),
    _t("mocha", "[0-9]+ failing", r"^\s*\d+ failing\b", capture=3000),
    _t("go", "--- FAIL: ", r"^\s*--- FAIL: (\S+)"),
    _t("rust", "\\.\\.\\. FAILED", r"^test (\S+) \.\.\. FAILED$"),
    _t("rspec", "rspec \\./", r"^rspec \./(\S+) # (.+)$"),
    _t("dotnet", "Failed ", r"^\s+Failed (\S+) \[[\d.<> ]+m?s\]"),
)

_JEST_NOT_TESTS = (
    "Console",
    "Deprecation",
    "Cannot log after tests are done",
    "Validation Error",
    "Validation Warning",
)
_GENERIC_SUFFIX = re.compile(r"\s*\(\d+(\.\d+)?\s*m?s\)$")


def _canonical(name: str) -> str:
    """A form used only to see that two reports name the same test."""
    text = name.replace("::", ".").replace("/", ".").replace("$", ".").replace(" > ", ".")
    text = text.replace(" › ", ".").replace(".py.", ".")
    return re.sub(r"\.py$", "", text).strip(". ")


def _java_name(method: str, class_name: str | None) -> str:
    return f"{class_name}.{method}" if class_name else method


class FailingTestCollector:
    """Fed the lines the scanner finds (and the lines after some of them); keeps names."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._canon: list[str] = []
        self._suite: str | None = None  # Ant's current Testsuite
        self._pending_ant: tuple[str, str | None] | None = None
        self._section: str | None = None  # which multi-line report the context lines belong to
        self._mocha_title: list[str] | None = None
        self._mocha_next = 1
        self._handlers: dict[str, Callable[[re.Match[str]], None]] = {
            "pytest": lambda m: self._add(m.group(1)),
            "pytest-header": self._pytest_header,
            "unittest": self._unittest,
            "surefire-test": self._surefire_test,
            "surefire-section": lambda m: self._open("surefire"),
            "gradle": self._gradle,
            "ant-testcase": self._ant_testcase,
            "ant-testsuite": self._ant_testsuite,
            "junit-platform": lambda m: self._add(_java_name(m.group(2), m.group(1))),
            "sbt": lambda m: self._add(m.group(1)),
            "jest": self._jest,
            "mocha": lambda m: self._open("mocha"),
            "go": lambda m: self._add(m.group(1)),
            "rust": lambda m: self._add(m.group(1)),
            "rspec": lambda m: self._add(f"{m.group(2).strip()}"),
            "dotnet": lambda m: self._add(m.group(1)),
        }

    # -- results -------------------------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        return tuple(self._names)

    # -- input ---------------------------------------------------------------------------
    def on_trigger(self, trigger: Trigger, text: str) -> bool:
        """A line that matched `trigger`'s prefilter; True if it named or opened something."""
        match = trigger.pattern.search(text)
        if match is None:
            return False
        self._handlers[trigger.id](match)
        return True

    def on_context(self, text: str) -> None:
        """A line that follows a trigger with `capture` (in order, once each)."""
        if self._pending_ant is not None:
            method, class_name = self._pending_ant
            self._pending_ant = None
            if re.search(r"Caused an ERROR|FAILED", text):
                self._add(_java_name(method, class_name or self._suite))
            return
        if self._section == "surefire":
            self._surefire_line(text)
        elif self._section == "mocha":
            self._mocha_line(text)

    # -- framework specifics ---------------------------------------------------------------
    def _open(self, section: str) -> None:
        self._section = section
        self._mocha_title = None
        self._mocha_next = 1

    def _pytest_header(self, match: re.Match[str]) -> None:
        name = match.group(1)
        if " " in name or name.startswith("Captured") or name in {"FAILURES", "ERRORS"}:
            return  # section titles and `____ summary ____` style banners
        self._add(name)

    def _unittest(self, match: re.Match[str]) -> None:
        method, where = match.group(1), match.group(2)
        if where is None:
            self._add(method)  # nose and others print the dotted id alone
        elif where.startswith("unittest.loader._FailedTest"):
            self._add(method)  # the module that failed to import
        elif where.endswith("." + method):
            self._add(where)  # Python >= 3.11 prints the full id in the parentheses
        else:
            self._add(f"{where}.{method}")

    def _surefire_test(self, match: re.Match[str]) -> None:
        name, class_name = match.group(1), match.group(2)
        if name.startswith(("Tests", "[")) or name.endswith(":"):
            return
        self._add(_java_name(name, class_name))

    def _surefire_line(self, text: str) -> None:
        body = text.removeprefix("[ERROR]").strip()
        if (
            not body
            or body.startswith(("Tests run:", "[INFO]", "[WARNING]"))
            or text.startswith("[INFO]")
        ):
            self._section = None
            return
        if body.startswith(("Failures:", "Errors:", "Failed tests:", "Tests in error:")):
            return
        if (
            body.startswith(("Run ", "at ", "expected", "java.", "org.", "Caused by"))
            and ":" in body
        ):
            return  # `Run 1: ...` blocks and traces inside the list
        match = re.match(
            r"^([\w$.]+?)(?:\(([\w.$]+)\))?[.:](\w[\w$\[\]]*)?(?::\d+)?(?:\s|$|»)", body
        )
        if match is None:
            return
        if match.group(2):  # `method(pkg.Class)`
            self._add(f"{match.group(2)}.{match.group(1)}")
            return
        qualified = re.match(r"^([\w$.]+?\.\w+)(?:[:(\s]|$|»)", body)
        if qualified:
            self._add(qualified.group(1))

    def _gradle(self, match: re.Match[str]) -> None:
        parts = [p.strip() for p in match.group(1).split(" > ")]
        parts = [p for p in parts if p not in {"Gradle suite", "Gradle test"}]
        if not parts:
            return
        last = parts[-1]
        if len(parts) == 1 or re.match(r"^([A-Za-z_][\w$]*\.)+[\w$]+\(", last):
            self._add(last)  # already fully qualified (`pkg.Class.method(...)[3]`)
            return
        owner = "$".join(parts[:-1])
        self._add(f"{owner}.{last}")

    def _ant_testsuite(self, match: re.Match[str]) -> None:
        self._suite = match.group(1)

    def _ant_testcase(self, match: re.Match[str]) -> None:
        method, class_name, verdict = match.group(1), match.group(2), match.group(3)
        if "took" in verdict:
            self._pending_ant = (method, class_name)
        else:
            self._add(_java_name(method, class_name or self._suite))

    def _jest(self, match: re.Match[str]) -> None:
        title = match.group(1).strip()
        if title and not title.startswith(_JEST_NOT_TESTS):
            self._add(title)

    def _mocha_line(self, text: str) -> None:
        header = re.match(r"^\s*(\d+)\) (.*)$", text)
        if header and int(header.group(1)) == self._mocha_next:
            self._mocha_next += 1
            self._mocha_title = []
            self._mocha_part(header.group(2))
            return
        if self._mocha_title is not None and text.strip():
            self._mocha_part(text.strip())

    def _mocha_part(self, part: str) -> None:
        assert self._mocha_title is not None
        self._mocha_title.append(part)
        if part.endswith(":"):
            self._add(" ".join(self._mocha_title)[:-1])
            self._mocha_title = None
        elif len(self._mocha_title) > 12:
            self._mocha_title = None  # not a title after all

    # -- bookkeeping -----------------------------------------------------------------------
    def _add(self, name: str) -> None:
        name = _GENERIC_SUFFIX.sub("", name.strip())[:MAX_NAME_CHARS]
        if not name or len(self._names) >= MAX_TESTS:
            return
        canon = _canonical(name)
        for index, known in enumerate(self._canon):
            if known == canon or known.endswith("." + canon):
                return
            if canon.endswith("." + known):
                self._names[index] = name  # the same test, more qualified
                self._canon[index] = canon
                return
        self._names.append(name)
        self._canon.append(canon)
