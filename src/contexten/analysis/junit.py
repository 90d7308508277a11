"""JUnit/xUnit XML reports → test case results. Pure: bytes in, frozen dataclasses out.

Reads the dialects CI tools write: pytest, unittest, Maven Surefire/Failsafe (including
`flakyFailure`/`flakyError`/`rerunFailure`/`rerunError`), Gradle, Jest, Mocha, Go
(go-junit-report), nextest, Catch2, PHPUnit, tst (`status="disabled"`), nested suites.

The XML is untrusted: no entity expansion, no DTD loading, no network, bounded size.

Two kinds of counts come out of a report:
- element counts (`ElementCounts`): every `<testcase>`, `<failure>`, `<error>`, `<skipped>`;
- per-test counts (`TestSummary`): distinct tests, each with one aggregated state
  (error > failure > success > skipped), falling back to the suites' declared totals when a
  report has suites but no test cases.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any

MAX_REPORT_BYTES = 64 * 1024 * 1024
MAX_MESSAGE_CHARS = 500
JUNIT_ROOTS = ("testsuites", "testsuite")


class JUnitError(ValueError):
    """A report is not well-formed XML, not JUnit, or too large; one line naming the source."""


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    FLAKY = "flaky"  # passed on a re-run within the same execution


FAILING = frozenset({Outcome.FAILED, Outcome.ERROR})
PASSING = frozenset({Outcome.PASSED, Outcome.FLAKY})


@dataclass(frozen=True, slots=True)
class TestCaseResult:
    """One `<testcase>` element."""

    __test__ = False  # not a pytest class

    suite: str | None
    classname: str | None
    name: str
    file: str | None  # normalized path, or the suite's path-like name (see location)
    line: int | None
    outcome: Outcome
    duration_seconds: float | None
    message: str | None
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    flaky_failures: int = 0  # surefire flakyFailure/flakyError: failed, then passed
    rerun_failures: int = 0  # surefire rerunFailure/rerunError: failed again on re-run

    @property
    def location(self) -> str | None:
        """What tells this test apart from same-named tests in other files."""
        return self.file

    def test_id(self, repository: str | None = None) -> str:
        return test_id(repository, self.file, self.classname, self.name)


@dataclass(frozen=True, slots=True)
class ElementCounts:
    """`<testcase>` elements, and how many of them hold each kind of result element."""

    testcases: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    flaky_or_rerun: int = 0


@dataclass(frozen=True, slots=True)
class DeclaredTotals:
    """What the top-level suites' attributes claim (tests, failures, errors, skipped, time)."""

    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    disabled: int = 0
    time_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TestSummary:
    """Counts of distinct tests (or runs), each in exactly one state."""

    __test__ = False

    tests: int
    passed: int
    skipped: int
    failed: int
    errors: int


@dataclass(frozen=True, slots=True)
class JUnitReport:
    source: str
    root: str
    suites: int  # leaf suites: those with cases, or without child suites
    cases: tuple[TestCaseResult, ...]
    elements: ElementCounts
    declared: DeclaredTotals
    timestamp: datetime | None  # the first suite's timestamp, when given

    @property
    def duration_seconds(self) -> float:
        declared = self.declared.time_seconds
        if declared > 0:
            return declared
        return sum(c.duration_seconds or 0.0 for c in self.cases)

    def test_summary(self) -> TestSummary:
        """Distinct tests by (file, class, name), aggregated error > failure > success > skip."""
        cases = self.cases
        if not cases:
            return _declared_summary(self.declared)
        if len(set(map(hash, map(_CASE_KEY, cases)))) == len(cases):
            # Each test once (the common case): a test's state is its case's outcome.
            # Counted in C; the key tuples are freed at once (only ints are kept).
            outcomes = Counter(map(_OUTCOME, cases))
            return TestSummary(
                tests=len(cases),
                passed=outcomes[Outcome.PASSED] + outcomes[Outcome.FLAKY],
                skipped=outcomes[Outcome.SKIPPED],
                failed=outcomes[Outcome.FAILED],
                errors=outcomes[Outcome.ERROR],
            )
        states: dict[tuple[str | None, str | None, str], int] = {}
        for case in cases:
            key = (case.file, case.classname, case.name)
            rank = _STATE_RANK[case.outcome]
            if rank > states.get(key, -1):
                states[key] = rank
        ranks = list(states.values())
        return TestSummary(
            tests=len(ranks),
            passed=ranks.count(1),
            skipped=ranks.count(0),
            failed=ranks.count(2),
            errors=ranks.count(3),
        )

    def run_summary(self) -> TestSummary:
        """Per-element counts (a case with two result elements counts in both)."""
        if not self.cases:
            return _declared_summary(self.declared)
        e = self.elements
        return TestSummary(
            tests=e.testcases,
            passed=e.testcases - e.skipped - e.failures - e.errors,
            skipped=e.skipped,
            failed=e.failures,
            errors=e.errors,
        )


_CASE_KEY = attrgetter("file", "classname", "name")
_OUTCOME = attrgetter("outcome")
# error > failure > success (passed, flaky) > skipped
_STATE_RANK = {
    Outcome.SKIPPED: 0,
    Outcome.PASSED: 1,
    Outcome.FLAKY: 1,
    Outcome.FAILED: 2,
    Outcome.ERROR: 3,
}


def _declared_summary(d: DeclaredTotals) -> TestSummary:
    return TestSummary(
        tests=d.tests,
        passed=d.tests - d.skipped - d.failures - d.errors,
        skipped=d.skipped,
        failed=d.failures,
        errors=d.errors,
    )


def test_id(repository: str | None, file: str | None, classname: str | None, name: str) -> str:
    """Stable id of a test: sha256 over repository, file, class and name (parameters kept)."""
    key = "\x1f".join((repository or "", file or "", classname or "", name))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


test_id.__test__ = False  # type: ignore[attr-defined]


# Checkout roots of hosted CI runners: the same test must keep its id on every runner.
_WORKSPACE_PREFIXES = (
    re.compile(r"^/home/runner/work/([^/]+)/\1/"),  # GitHub-hosted Linux/macOS runners
    re.compile(r"^/Users/runner/work/([^/]+)/\1/"),
    re.compile(r"^[A-Za-z]:/a/([^/]+)/\1/"),  # GitHub-hosted Windows runners
    re.compile(r"^/__w/([^/]+)/\1/"),  # GitHub job containers
    re.compile(r"^/github/workspace/"),  # Docker container actions
    re.compile(r"^/builds/[^/]+/[^/]+/"),  # GitLab
    re.compile(r"^/home/circleci/project/"),
)


def normalize_path(path: str | None, strip_prefixes: Iterable[str] = ()) -> str | None:
    """Forward slashes, no CI checkout root, no leading './'."""
    if not path:
        return None
    value = path.strip().replace("\\", "/")
    for prefix in strip_prefixes:
        p = prefix.replace("\\", "/").rstrip("/") + "/"
        if value.startswith(p):
            value = value[len(p) :]
            break
    else:
        for pattern in _WORKSPACE_PREFIXES:
            stripped = pattern.sub("", value, count=1)
            if stripped != value:
                value = stripped
                break
    while value.startswith("./"):
        value = value[2:]
    return value or None


def parse_duration(value: str | None) -> float | None:
    """Seconds from a `time` attribute; None when missing or not a number.

    Surefire writes thousands separators ("1,234.5"); a few reporters write a decimal
    comma ("0,25"). One comma followed by exactly three digits is read as thousands.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if "," in text:
        if "." in text:
            text = text.replace(",", "")
        else:
            head, _, tail = text.rpartition(",")
            text = (
                text.replace(",", "")
                if len(tail) == 3 and head.count(",") == 0
                else (head.replace(",", "") + "." + tail)
            )
    try:
        seconds = float(text)
    except ValueError:
        return None
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return None
    return seconds


def parse_timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _int_attr(element: Any, name: str) -> int:
    raw = element.get(name)
    if not raw:
        return 0
    try:
        return max(int(float(raw.strip())), 0)
    except ValueError:
        return 0


def _local(tag: Any) -> str | None:
    if not isinstance(tag, str):
        return None  # comments, processing instructions, entities
    if tag.startswith("{"):
        return tag.rpartition("}")[2]
    return tag


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped:
            return stripped[:MAX_MESSAGE_CHARS]
    return None


_PATH_LIKE = re.compile(
    r"[/\\]|\.(?:py|js|jsx|ts|tsx|mjs|cjs|rb|php|go|rs|java|kt|cs|swift|scala)$"
)


def _path_like(value: str | None) -> bool:
    return bool(value) and bool(_PATH_LIKE.search(value or ""))


@dataclass(slots=True)
class _Counter:
    testcases: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    flaky_or_rerun: int = 0
    leaf_suites: int = 0
    unnamed: int = 0


class _Walker:
    def __init__(self, strip_prefixes: tuple[str, ...]) -> None:
        self.strip_prefixes = strip_prefixes
        self.counter = _Counter()
        self.cases: list[TestCaseResult] = []

    def suite(self, element: Any, inherited_file: str | None) -> None:
        name = element.get("name") or None
        own_file = element.get("file")
        suite_file = inherited_file
        if _path_like(own_file) and own_file not in (".py",):
            suite_file = normalize_path(own_file, self.strip_prefixes)
        elif _path_like(name):
            suite_file = normalize_path(name, self.strip_prefixes)
        has_cases = False
        has_suites = False
        for child in element:
            tag = _local(child.tag)
            if tag == "testcase":
                has_cases = True
                self.case(child, name, suite_file)
            elif tag == "testsuite":
                has_suites = True
                self.suite(child, suite_file)
        if has_cases or not has_suites:
            self.counter.leaf_suites += 1

    def case(self, element: Any, suite: str | None, suite_file: str | None) -> None:
        c = self.counter
        c.testcases += 1
        failures = errors = skipped = flaky = rerun = 0
        message: str | None = None
        for child in element:
            tag = _local(child.tag)
            if tag is None or tag in ("system-out", "system-err", "properties"):
                continue
            if tag == "failure":
                failures += 1
            elif tag == "error":
                errors += 1
            elif tag == "skipped":
                skipped += 1
                continue
            elif tag in ("flakyFailure", "flakyError"):
                flaky += 1
            elif tag in ("rerunFailure", "rerunError"):
                rerun += 1
            else:
                continue
            if message is None:
                message = _first_line(child.get("message")) or _first_line(child.text)
                if message is None and len(child):
                    message = _first_line(child[0].text)  # surefire <stackTrace>
        # Counted per case: a case with three <failure> elements is one failed case.
        c.failures += failures > 0
        c.errors += errors > 0
        c.skipped += skipped > 0
        c.flaky_or_rerun += (flaky + rerun) > 0

        status = (element.get("status") or "").strip().lower()
        if errors:
            outcome = Outcome.ERROR
        elif failures:
            outcome = Outcome.FAILED
        elif rerun:
            outcome = Outcome.FAILED  # a rerun element without a failure still failed
        elif skipped or status in ("disabled", "skipped", "notrun", "ignored"):
            outcome = Outcome.SKIPPED
        elif flaky:
            outcome = Outcome.FLAKY
        else:
            outcome = Outcome.PASSED

        classname = element.get("classname") or None
        name = element.get("name") or None
        if name is None:
            # A nameless case cannot be told apart from its neighbours except by position.
            c.unnamed += 1
            name = f"(unnamed testcase {c.unnamed})"
        file = normalize_path(element.get("file"), self.strip_prefixes) or suite_file
        if file is None and not classname and suite:
            file = suite  # e.g. Jest: the suite is the test file, the class is empty
        line_raw = element.get("line")
        line = int(line_raw) if line_raw and line_raw.strip().isdigit() else None
        self.cases.append(
            TestCaseResult(
                suite=suite,
                classname=classname,
                name=name,
                file=file,
                line=line,
                outcome=outcome,
                duration_seconds=parse_duration(element.get("time")),
                message=message,
                failures=failures,
                errors=errors,
                skipped=skipped,
                flaky_failures=flaky,
                rerun_failures=rerun,
            )
        )


def _parser() -> Any:
    from lxml import etree

    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
        recover=False,
    )


def parse_junit(
    data: bytes,
    source: str,
    *,
    max_bytes: int = MAX_REPORT_BYTES,
    strip_prefixes: Iterable[str] = (),
) -> JUnitReport:
    """Parse one report. Raises JUnitError (one line naming `source`) on bad input."""
    from lxml import etree

    if len(data) > max_bytes:
        raise JUnitError(f"{source}: report is {len(data)} bytes, over the limit of {max_bytes}")
    if not data.strip():
        raise JUnitError(f"{source}: file is empty, expected a JUnit XML report")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        detail = (str(exc).splitlines() or ["syntax error"])[0]
        detail = detail.replace("Unregistered error message", "syntax error")
        detail = re.sub(r"\s*\(<string>, line \d+\)$", "", detail)
        raise JUnitError(f"{source}: not well-formed XML: {detail}") from None
    except ValueError as exc:  # e.g. unicode strings with an encoding declaration
        raise JUnitError(f"{source}: cannot read XML: {exc}") from None
    root_tag = _local(root.tag) or ""
    if root_tag not in JUNIT_ROOTS:
        raise JUnitError(
            f"{source}: not a JUnit report: root element <{root_tag}>, "
            "expected <testsuites> or <testsuite>"
        )
    walker = _Walker(tuple(strip_prefixes))
    top_suites: list[Any]
    if root_tag == "testsuite":
        top_suites = [root]
        walker.suite(root, None)
    else:
        top_suites = []
        for child in root:
            tag = _local(child.tag)
            if tag == "testsuite":
                top_suites.append(child)
                walker.suite(child, None)
            elif tag == "testcase":
                walker.case(child, root.get("name") or None, None)
    cases = _plausible_durations(walker.cases)
    declared = _declared(top_suites)
    timestamp = None
    for suite in (root, *top_suites):
        timestamp = parse_timestamp(suite.get("timestamp"))
        if timestamp is not None:
            break
    c = walker.counter
    return JUnitReport(
        source=source,
        root=root_tag,
        suites=c.leaf_suites,
        cases=cases,
        elements=ElementCounts(
            testcases=c.testcases,
            failures=c.failures,
            errors=c.errors,
            skipped=c.skipped,
            flaky_or_rerun=c.flaky_or_rerun,
        ),
        declared=declared,
        timestamp=timestamp,
    )


MAX_PLAUSIBLE_SECONDS = 7 * 86400.0


def _plausible_durations(cases: list[TestCaseResult]) -> tuple[TestCaseResult, ...]:
    """Durations in seconds, whatever unit the reporter used.

    container-structure-test writes Go nanoseconds (`time="999638317"`). A report whose
    durations are all whole numbers with one over a week is read as nanoseconds; any other
    duration over a week is dropped as unknown rather than skewing every statistic.
    """
    times = [c.duration_seconds for c in cases if c.duration_seconds]
    if not times or max(times) <= MAX_PLAUSIBLE_SECONDS:
        return tuple(cases)
    if all(t == int(t) for t in times):
        return tuple(
            replace(c, duration_seconds=c.duration_seconds / 1e9) if c.duration_seconds else c
            for c in cases
        )
    return tuple(
        replace(c, duration_seconds=None)
        if c.duration_seconds and c.duration_seconds > MAX_PLAUSIBLE_SECONDS
        else c
        for c in cases
    )


def _declared(suites: list[Any]) -> DeclaredTotals:
    tests = failures = errors = skipped = disabled = 0
    time_seconds = 0.0
    for suite in suites:
        tests += _int_attr(suite, "tests")
        failures += _int_attr(suite, "failures")
        errors += _int_attr(suite, "errors")
        skipped += _int_attr(suite, "skipped") or _int_attr(suite, "skips")
        disabled += _int_attr(suite, "disabled")
        time_seconds += parse_duration(suite.get("time")) or 0.0
    return DeclaredTotals(tests, failures, errors, skipped, disabled, time_seconds)


@dataclass(frozen=True, slots=True)
class AggregatedResult:
    """One test's result in one report: repeated `<testcase>` elements are retries."""

    case: TestCaseResult  # the last element seen, with the aggregated outcome
    outcome: Outcome
    attempts: int
    duration_seconds: float | None  # of the last attempt


def aggregate_retries(cases: Iterable[TestCaseResult]) -> Iterator[AggregatedResult]:
    """Fold repeated elements of one test (same file, class, name) into one result.

    Passed and failed in the same report → flaky (passed on retry, or failed after
    passing: either way the outcome is not a function of the code). Order kept.
    """
    groups: dict[tuple[str | None, str | None, str], list[TestCaseResult]] = {}
    for case in cases:
        groups.setdefault((case.file, case.classname, case.name), []).append(case)
    for members in groups.values():
        last = members[-1]
        if len(members) == 1:
            yield AggregatedResult(last, last.outcome, 1, last.duration_seconds)
            continue
        outcomes = {m.outcome for m in members}
        if (outcomes & FAILING and outcomes & PASSING) or Outcome.FLAKY in outcomes:
            outcome = Outcome.FLAKY
        else:
            outcome = max(outcomes, key=lambda o: _STATE_RANK[o])
        yield AggregatedResult(last, outcome, len(members), last.duration_seconds)
