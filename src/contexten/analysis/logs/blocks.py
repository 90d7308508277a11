"""Evidence as whole blocks: each anchor line grows into the explanation it belongs to.

An anchor is a line a rule chose (or, when no rule fired, the last output line of the
failing command). It grows

- back to its header when it is a continuation (a stack frame goes back to its exception,
  a Python exception line back to `Traceback (most recent call last):`);
- forward over the lines that belong to it: indented lines, frames, `Caused by:` and
  "During handling of the above exception" links, source excerpts and carets, `note:` /
  `help:` / `-->` lines, expected/actual lines; single blank lines inside the block are
  crossed but never shown;
- never over a boundary: a Travis/Actions step marker, a command echo (`$ make`), the
  runner's exit-status line.

The failing command's tail (the lines before `##[error]Process completed with exit code N`
or Travis' `The command "..." exited with N.`) becomes a block when no rule explains the
failure inside that command's output. Blocks are trimmed to at most 30 lines in all, the
most telling first; a long trace keeps its messages and project frames before library
frames. Pure code: the lines come from the scan's LineStore.
"""

# ruff: noqa: E501  (patterns and log lines read best unbroken)

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from contexten.analysis.logs.model import BlockKind, EvidenceBlock, EvidenceLine, LineStatus
from contexten.analysis.logs.scan import LineStore

EVIDENCE_MAX = 30
BLOCK_MAX = 30  # lines of one block before trimming
MAX_BACK = 40  # lines walked back from an anchor to its header
MAX_FORWARD = 60  # lines walked forward over a block's continuation
TAIL_LINES = 8  # command-output lines shown when no rule explains the failure
TAIL_LOOKBACK = 80  # lines looked at before the exit-status line

# Lines no block crosses: runner structure and command echoes.
BOUNDARY = re.compile(
    r"^(travis_(time|fold):|##\[(group|endgroup|section)\]|\$ |The command \".*\" (exited|failed)|"
    r"Done\. Your build exited|##\[error\]Process completed|Post job cleanup|"
    r"Worker information|Build system information|Cleaning up orphan processes|"
    r"\+ [\w./-]+ |Step \d+/\d+ : |> Task :|\[INFO\] -{10,}|\[INFO\] BUILD|"
    r"Ran \d+ tests? in|={5,} .* ={5,}$|_{5,} .* _{5,}$|\* Try:$)"  # Gradle's advice
)
# Lines that say a command failed without saying why (skipped at the end of a command).
WRAPPER = re.compile(
    r"^(npm ERR!|make(\[\d+\])?: (\*\*\*|Leaving directory|Entering directory)|error Command failed with exit code|info Visit https|"
    r"ERROR: \".*\" exited with|Exited with code|\(See full trace by running task|Tasks: TOP|"
    r"ERROR: Job failed|##\[error\](Process completed|The process '.*' failed)|Error: Process completed|script returned exit code|"
    r"Makefile:\d+: recipe for target|The command '.*' returned a non-zero code|"
    r"npm WARN|yarn run v|Command failed with status|\s*$)"
)
_FRAME = re.compile(
    r"^\s*(at [\w$.<>/\[\]-]+[.(: ]|at [^,]+, \S+:\d+$|at <|File \".*\", line \d+|from [\w./-]+:\d+|"
    r"\.\.\. \d+ (more|common frames omitted)|#\d+ +0x[0-9a-f]+|[\w./-]+\.(rb|ex|exs|erl|js|ts|py|go|rs|java|scala|kt|cs|php|pl|lua|hs|clj):\d+)"
)
_CHAIN = re.compile(
    r"^\s*(Caused by:|During handling of the above exception|The above exception was the direct|"
    r"--- End of (inner exception )?stack trace|Suppressed:)"
)
_DETAIL = re.compile(
    r"^\s*(\^[~^]*|~+\^?~*|\|\s|\d+\s*\||-->\s|= (note|help):|(note|help|hint):|"
    r"(Expected|Actual|expected|actual|but was|but got|Got|got|want|Diff|Difference|Reason)\b|Failed \d+/\d+ subtests|"
    r"(READ|WRITE) of size \d+ at |"
    r"[-+]{1}\s|\+\+\+ |@@ )"
)
_EXCEPTION_TAIL = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Failure|Warning)\b")
_TRACEBACK = re.compile(r"^\s*Traceback \(most recent call last\)")
_LIBRARY_FRAME = re.compile(
    r"(\bat (java|javax|jdk|sun|kotlin|scala|org\.junit|org\.apache|org\.gradle|junit|"
    r"org\.testng|org\.springframework|com\.sun|groovy|org\.codehaus)\.|site-packages|"
    r"dist-packages|/usr/lib/python|node_modules|internal/|<frozen |\.rvm/|/gems/|"
    r"/usr/local/lib|System\.Runtime|Microsoft\.|lib/python\d)"
)


# Build tools that prefix every line with its level (sbt, Maven): blocks look past it.
_LEVEL_PREFIX = re.compile(
    r"^\[(info|error|warn|warning|debug|success|ERROR|INFO|WARN|WARNING)\] ?"
)


# Travis' macOS workers (travis_retry, xcpretty) leave a literal `nl` before many lines
# and as lines of their own: the line is what follows it.
_NL_ARTEFACT = re.compile(r"^nl(?=$|[^a-z])")


def without_nl(text: str) -> str:
    """`text` without the stray `nl` Travis' macOS workers leave before it."""
    return _NL_ARTEFACT.sub("", text, count=1) if text.startswith("nl") else text


def _text(store: LineStore, number: int) -> str | None:
    """Line `number` as the block rules read it: without a `[info] ` / `[ERROR] ` prefix
    (nor a stray `nl`)."""
    text = store.get(number)
    if text is None:
        return text
    text = without_nl(text)
    if not text.startswith("["):
        return text
    return _LEVEL_PREFIX.sub("", text, count=1)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" \t"))


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def boundary(text: str) -> bool:
    return bool(BOUNDARY.match(text))


def _continues(text: str, header_indent: int) -> bool:
    """Does `text` belong to the block whose header is indented `header_indent`?"""
    if _blank(text) or boundary(text):
        return False
    if _CHAIN.match(text) or _FRAME.match(text) or _DETAIL.match(text):
        return True
    return _indent(text) > header_indent


def _kind_of(texts: Sequence[str], default: BlockKind) -> BlockKind:
    if any(_FRAME.match(t) or _TRACEBACK.match(t) or _CHAIN.match(t) for t in texts):
        return BlockKind.TRACE
    if any(re.match(r"^\s*(\^|-->|\d+\s*\|)", t) for t in texts):
        return BlockKind.COMPILER
    return default


@dataclass(frozen=True, slots=True)
class Block:
    start: int
    end: int
    kind: BlockKind
    rule: str | None
    lines: tuple[tuple[int, str], ...]  # the non-blank lines shown, in log order
    rank: int


def grow(
    store: LineStore,
    anchor: int,
    *,
    lower: int = 1,
    upper: int | None = None,
) -> list[tuple[int, str]]:
    """The lines of the block around `anchor` (blank lines left out), in log order."""
    text = _text(store, anchor)
    if text is None:
        return []
    start = anchor
    header_indent = _indent(text)
    if _PYTEST_LINE.match(text):
        section = _pytest_section(store, anchor, lower, upper)
        if section is not None:
            return section
    if _UNITTEST_HEADER.match(text):
        section = _unittest_section(store, anchor, upper)
        if section is not None:
            return section
    if _EXCEPTION_TAIL.match(text):
        start = _back_through_traceback(store, anchor, lower)
    elif _OPENER.match(text):
        pass  # it heads its block
    elif _marked(text) or header_indent > 0:
        start = _back_to_header(store, anchor, lower)
    if start == anchor and start > lower and _NAMED_ABOVE.match(_text(store, start - 1) or ""):
        start -= 1  # "t9806-options.sh ......" then "Dubious, test returned 1" below it
    if _POD_RESULT.match(text):
        start = _pod_header(store, anchor, lower)
    header_indent = min(header_indent, _indent(_text(store, start) or ""))
    # Forward: the lines that belong to the block.
    end = anchor
    header = _text(store, start) or ""
    opens = header.rstrip().endswith((":", "!")) and not _FRAME.match(header)
    forward = 0
    following_last = text
    while forward < MAX_FORWARD and (upper is None or end + 1 <= upper):
        following = _text(store, end + 1)
        if following is None:
            break
        if _blank(following):
            skip = 2
            after = _text(store, end + skip)
            if after is not None and _blank(after):
                skip = 3  # two blank lines between the parts of one failure (Go's testify)
                after = _text(store, end + skip)
            if (
                after is not None
                and (upper is None or end + skip <= upper)
                and _continues(after, header_indent)
                and (_indent(after) > header_indent or _CHAIN.match(after) or _marked(after))
                and (
                    _marked(after)
                    or _indent(after) >= _indent(following_last)
                    or _NUMBERED.match(header)  # all of "  1) test ..." is indented under it
                )
            ):
                end += skip
                forward += skip
                continue
            break
        if _continues(following, header_indent):
            end += 1
            forward += 1
            following_last = following
            continue
        if opens and forward < 10 and not boundary(following) and not WRAPPER.match(following):
            end += 1
            forward += 1
            continue
        break
    if _AT_COLUMN.match(header):
        end = _to_caret(store, end, upper)
    return _shown(store, start, end, anchor)


# A compiler's `file:line:col: message`, and the caret under its source excerpt.
_AT_COLUMN = re.compile(r"^\W{0,3}\s*[\w./-]+\.\w+:\d+:\d+: ")
_CARET = re.compile(r"^\s*\^[~^]*\s*$")
_TO_CARET = 8


def _to_caret(store: LineStore, end: int, upper: int | None) -> int:
    """The caret line closing a compiler error's excerpt, when blank lines (or the stray
    `nl` of macOS workers) stand between it and the error: the block ends there."""
    for number in range(end + 1, end + 1 + _TO_CARET):
        if upper is not None and number > upper:
            break
        text = _text(store, number)
        if text is None or boundary(text) or _AT_COLUMN.match(text):
            break
        if _CARET.match(text):
            return number
    return end


def _shown(store: LineStore, start: int, end: int, anchor: int) -> list[tuple[int, str]]:
    """The lines of a block from `start` to `end`: no blank ones, and no progress or
    passing-subtest lines other than the anchor."""
    out = []
    for number in range(start, end + 1):
        line = store.get(number)
        if line is None or _blank(_text(store, number)):
            continue
        if number != anchor and _NOISE.match(_text(store, number) or ""):
            continue
        out.append((number, line))
    return out


# `pod lib lint`: "-> ReactiveMapKit (10.0.0)", then its "- ERROR | ..." lines.
_POD_RESULT = re.compile(r"^\s*- (ERROR|WARN|NOTE) *\| ")
_POD_HEADER = re.compile(r"^\s*-> \S+ \(")


def _pod_header(store: LineStore, anchor: int, lower: int) -> int:
    """The `-> Pod (version)` line a pod lint result belongs to (else the result itself)."""
    for number in range(anchor - 1, max(lower, anchor - 12) - 1, -1):
        text = _text(store, number)
        if text is None:
            break
        if _POD_HEADER.match(text):
            return number
        if not (_blank(text) or _POD_RESULT.match(text)):
            break
    return anchor


_NUMBERED = re.compile(r"^\s*\d+\) \S")
_NAMED_ABOVE = re.compile(r"^.*\S \.{3,}\s*$")  # a test's name, its result below
_PYTEST_HEADER = re.compile(r"^_{3,} .+ _{3,}$")
_PYTEST_LINE = re.compile(r"^(E   |>   |[\w/.-]+\.py:\d+: \w+)")
_PYTEST_END = re.compile(r"^([\w/.-]+\.py:\d+: \w+|-{5,} Captured |_{3,} .+ _{3,}$|={3,})")


def _pytest_section(
    store: LineStore, anchor: int, lower: int, upper: int | None
) -> list[tuple[int, str]] | None:
    """A pytest failure: from its `____ test_x ____` header to its `file.py:N: Error` line."""
    start = None
    for number in range(anchor, max(lower, anchor - MAX_FORWARD) - 1, -1):
        text = _text(store, number)
        if text is not None and _PYTEST_HEADER.match(text):
            start = number
            break
        if text is None or boundary(text):
            break
    if start is None:
        return None
    end = anchor
    for number in range(anchor, anchor + MAX_FORWARD):
        if upper is not None and number > upper:
            break
        text = _text(store, number)
        if text is None or (boundary(text) and not _PYTEST_END.match(text)):
            break
        end = number
        if number > anchor and _PYTEST_END.match(text):
            if _PYTEST_HEADER.match(text) or text.startswith("=") or "Captured" in text:
                end = number - 1
            break
    return _shown(store, start, end, anchor)


_UNITTEST_HEADER = re.compile(r"^(FAIL|ERROR): \S")
_RULE_LINE = re.compile(r"^(-{20,}|={20,})$")
_UNITTEST_END = re.compile(r"^(-{20,}$|={20,}$|Ran \d+ tests? in )")


def _unittest_section(
    store: LineStore, anchor: int, upper: int | None
) -> list[tuple[int, str]] | None:
    """A unittest/nose failure: `FAIL: test_x (mod.Case)`, its rule line, then its traceback
    and captured output up to the next rule line."""
    rule = anchor + 1
    if not _RULE_LINE.match(_text(store, rule) or ""):
        return None
    end = rule
    for number in range(rule + 1, rule + 1 + MAX_FORWARD):
        if upper is not None and number > upper:
            break
        text = _text(store, number)
        if text is None or _UNITTEST_END.match(text):
            break
        end = number
    shown = [item for item in _shown(store, anchor, end, anchor) if item[0] != rule]
    return _errors_in_captures(shown)


_CAPTURE = re.compile(r"^-+ >> (begin|end) captured (stdout|stderr|logging) << -+$")


def _errors_in_captures(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Of what nose captured (a test's log output, its stdout), only the error-looking lines
    and tracebacks: a captured DEBUG log says nothing about the failure."""
    out: list[tuple[int, str]] = []
    inside = False
    for number, line in lines:
        text = line.strip()
        marker = _CAPTURE.match(text)
        if marker:
            inside = marker.group(1) == "begin"
            continue
        if not inside or ERRORISH.search(text) or _FRAME.match(line) or _TRACEBACK.match(text):
            out.append((number, line))
    return out


def _marked(text: str) -> bool:
    return bool(_CHAIN.match(text) or _FRAME.match(text) or _DETAIL.match(text))


_HEADER = re.compile(
    r"(FAIL|Fail|fail|ERROR|Error|error|✗|✖|×|^\s*\d+\) |Exception|panic|abort|Traceback)"
)


def _back_through_traceback(store: LineStore, anchor: int, lower: int) -> int:
    """From a Python exception line up through its traceback(s) and chain links."""
    start = anchor
    for _ in range(MAX_BACK):
        previous = _text(store, start - 1) if start - 1 >= lower else None
        if previous is None or boundary(previous):
            break
        if _blank(previous):
            before = _text(store, start - 2) if start - 2 >= lower else None
            if before is not None and _CHAIN.match(before):
                start -= 2
                continue
            break
        if _indent(previous) > 0 or _TRACEBACK.match(previous) or _CHAIN.match(previous):
            start -= 1
            if _TRACEBACK.match(previous):
                # a chained traceback may be above ("During handling ...")
                continue
            continue
        break
    return start


def _back_to_header(store: LineStore, anchor: int, lower: int) -> int:
    """From a continuation line (frame, detail, indented line) up to its header."""
    start = anchor
    current = _text(store, anchor) or ""
    for _ in range(MAX_BACK):
        previous = _text(store, start - 1) if start - 1 >= lower else None
        if previous is None or boundary(previous) or _blank(previous):
            break
        p_indent, c_indent = _indent(previous), _indent(current)
        if p_indent < c_indent or (
            _marked(current) and not _marked(previous) and p_indent <= c_indent
        ):
            start -= 1
            current = previous
            if p_indent == 0 or _HEADER.search(previous):
                break
            continue
        if p_indent == c_indent and _marked(current) and _marked(previous):
            start -= 1
            current = previous
            continue
        break
    return start


def trim(lines: Sequence[tuple[int, str]], budget: int) -> list[tuple[int, str]]:
    """At most `budget` lines: messages and project frames before library frames."""
    if len(lines) <= budget:
        return list(lines)
    first = [lines[0]]
    rest = list(lines[1:])

    def order(item: tuple[int, str]) -> int:
        text = item[1]
        if _CHAIN.match(text) or _PYTEST_LINE.match(text) or _EXCEPTION_TAIL.match(text.strip()):
            return 0  # messages, Caused by:, pytest's E and > lines
        if not _FRAME.match(text):
            return 1 if ERRORISH.search(text) or _DETAIL.match(text) else 2
        return 3 if _LIBRARY_FRAME.search(text) else 2

    chosen = first + sorted(rest, key=lambda item: (order(item), item[0]))[: budget - 1]
    return sorted(chosen)


def command_tail(
    store: LineStore,
    exit_line: int,
    *,
    lower: int = 1,
    keep: Callable[[int, str], bool] | None = None,
    size: int = TAIL_LINES,
) -> list[tuple[int, str]]:
    """The failing command's last output lines before its exit-status line.

    Wrapper lines (npm ERR!, make: ***, ...) right before the exit are skipped; the walk
    stops at a boundary (the command's echo, a step marker). `keep` filters the lines
    (with a passing log: only new and changed lines).
    """
    out: list[tuple[int, str]] = []
    number = exit_line - 1
    looked = 0
    started = False
    while number >= lower and looked < TAIL_LOOKBACK and len(out) < size:
        text = _text(store, number)
        if text is None or boundary(text):
            if started or text is None:
                break
            number -= 1
            looked += 1
            continue
        if not started and WRAPPER.match(text):
            number -= 1
            looked += 1
            continue
        if not _blank(text) and (keep is None or keep(number, text)):
            started = True
            out.append((number, store.get(number) or text))
        number -= 1
        looked += 1
    if not out:
        # Only wrapper lines: they are all there is.
        number = exit_line - 1
        while number >= lower and len(out) < size:
            text = _text(store, number)
            if text is None or boundary(text):
                break
            if not _blank(text) and (keep is None or keep(number, text)):
                out.append((number, store.get(number) or text))
            number -= 1
    return sorted(out)


ERRORISH = re.compile(
    r"(?i)(error|fail|exception|fatal|abort|panic|cannot|can't|could not|couldn't|not found|"
    r"undefined|denied|invalid|unexpected|missing|expected|refused|timed? ?out|traceback|"
    r"violation|warning|no such|unable|✗|✖|×|❌|not ok|problem|mismatch|differ|incorrect|"
    r"wrong|illegal|unknown|unsupported|conflict|broken|crash|killed|segmentation)"
)
_NOISE = re.compile(
    r"^\s*(✓|✔|ok\b|PASS\b|XFAIL |SKIP |PASSED|--- PASS|--- SKIP|=== (RUN|PAUSE|CONT) |\[info\]|\[INFO\]|INFO\b|Compiling |Downloading|Installing|"
    r"Collecting|Requirement already|Running |Finished |Building |Linking |CC |CXX |LD |"
    r"\d+ passing|\.+$|[-=#*_~]+$|\[\s*\d+%\]|Resolving |Fetching |Using |Retrieving |"
    r"Progress|travis_|\[\s*\d+ of \d+\] Compiling |\d+(\.\d+)?s$|.*--:--:--|\s*% Total +% Received|\s*Dload +Upload|.*\s(PASS|PASSED|OK|ok|SKIP|SKIPPED)$|"
    r".*\S\s*\.{3,}\s*(ok|skipped)\b)"  # prove's and unittest's "name ..... ok"
)


_PASSED = re.compile(
    r"^.*\S\s+(PASS|PASSED|OK|ok)( \([\d.]+m?s\))?$|^\s*(✓|✔|--- PASS|PASS\b|ok \d+ )|"
    r"^\s*✖ \d+ problems? \(0 errors"  # ESLint with warnings only
)


def passed(text: str) -> bool:
    """A line that reports a passing test or check (never the cause of a failure)."""
    return bool(_PASSED.match(text))


def noise(text: str) -> bool:
    """Progress, success and separator lines: they never explain a failure."""
    return bool(_NOISE.match(text))


def smart_tail(
    store: LineStore,
    exit_line: int,
    *,
    lower: int = 1,
    keep: Callable[[int, str], bool] | None = None,
    window: int = 30,
    size: int = TAIL_LINES,
) -> list[tuple[int, str]]:
    """The failing command's telling last lines: from the first error-looking line of its
    last output lines to the end; without one, its last `size` lines."""
    lines = command_tail(store, exit_line, lower=lower, keep=keep, size=window)
    lines = [(n, t) for n, t in lines if not _NOISE.match(t)] or lines
    recent = _past_backtrace(lines, size)
    errorish = [i for i, (_, t) in enumerate(recent) if ERRORISH.search(t)]
    if not errorish:
        return recent
    start = recent[errorish[0]][0]
    grown = grow(store, start, lower=lower, upper=exit_line - 1)
    head = [item for item in grown if item[0] < start and (keep is None or keep(*item))]
    told = [item for item in recent[errorish[0] :] if not _says_nothing(item[1])]
    return sorted(set(head[-4:] + (told or recent[errorish[0] :])))


def _past_backtrace(lines: list[tuple[int, str]], size: int) -> list[tuple[int, str]]:
    """The last `size` lines, reaching further up the same paragraph when most of them are a
    wrapper's backtrace ("rake aborted!" and its frames): what it relays is just above."""
    recent = lines[-size:]
    relaying = sum(_says_nothing(t) for _, t in recent)
    if 2 * relaying < len(recent):
        return recent
    index = len(lines) - len(recent)
    while index > 0 and relaying > 0 and lines[index - 1][0] == lines[index][0] - 1:
        index -= 1
        relaying -= 0 if _says_nothing(lines[index][1]) else 1
    return lines[index:]


_BARE_HEADER = re.compile(r"^\s*\w+ aborted!\s*$")


def bare_header(text: str) -> bool:
    """A header that says only that something stopped ("rake aborted!"): its message is
    under it."""
    return bool(_BARE_HEADER.match(text))


def only_relays(lines: Sequence[tuple[int, str]]) -> bool:
    """Do these lines only relay a failure (a wrapper's message, library frames)?"""
    return all(_says_nothing(text) and text.strip() for _, text in lines)


def _says_nothing(text: str) -> bool:
    """A tail line that only relays the failure: a wrapper's message, a library frame."""
    plain = without_nl(text)
    return bool(WRAPPER.match(plain) or (_FRAME.match(plain) and _LIBRARY_FRAME.search(plain)))


MAX_COMMAND_LINES = 4000  # a command's output is searched this far back from its status


def command_start(
    store: LineStore, exit_line: int, lower: int = 1, limit: int = MAX_COMMAND_LINES
) -> int:
    """The first output line of the command whose exit status is on `exit_line`.

    At most `limit` lines back: the explanation of a failure is near its end.
    """
    number = exit_line - 1
    lower = max(lower, exit_line - limit)
    while number >= lower:
        text = _text(store, number)
        if text is None:
            return number + 1
        if text.startswith("##[group]Run "):
            return _after_script(store, number, exit_line)
        if text.startswith(("$ ", "travis_fold:start")):
            return number + 1
        number -= 1
    return lower


_SCRIPT_MAX = 200  # lines of an Actions step's script echo (before its ##[endgroup])


def _after_script(store: LineStore, group: int, exit_line: int) -> int:
    """The first output line of the Actions step opened at `group`: after the echo of its
    script, its shell and env (`##[endgroup]`), which say what ran, not why it failed."""
    for number in range(group + 1, min(exit_line, group + _SCRIPT_MAX)):
        text = _text(store, number)
        if text is None:
            break
        if text.startswith("##[endgroup]"):
            return number + 1
        if text.startswith("##[group]"):
            break
    return group + 1


# A list of failures follows (the header itself explains nothing).
_SECTION = re.compile(
    r"^\s*(\d+ failing$|There (was|were) \d+ (failure|error|warning|risky test)s?:|"
    r"=+ (FAILURES|ERRORS) =+$|Failures:\s*$|Errors:\s*$|failures:\s*$|Failed tests:|"
    r"Tests in error:|Failing tests:|Summary of all failing tests|FAILED TESTS:|"
    r"The following tests FAILED:|Test Summary Report|Offenses:\s*$|Testing failed:$|Build FAILED\.$|=+ ?DIFF ?=+$)"
)
# The end of a failure list: run summaries, runner structure.
_SECTION_END = re.compile(
    r"^\s*(FAILURES!|ERRORS!|Tests: \d+|OK, but|Finished in |\d+ examples?, |Ran \d+ tests|"
    r"=+ .*(passed|failed|error|warnings? summary|short test summary).* =+$|"
    r"Tests run:|test result:|Results :|Time: |Generating code coverage|Code Coverage|"
    r"npm ERR!|error Command failed|Randomized with seed|\d+ tests?, \d+ failures?|"
    r"TEST FAILURE|\*\* (TEST|BUILD) FAILED \*\*|Total time:|\d+ Warning\(s\)|\d+ Error\(s\)|\d+ files? inspected|make(\[\d+\])?: \*\*\*)"
)
# A line that opens one failure (or error) on its own: grown like a rule's anchor.
_OPENER = re.compile(
    r"^\s*(● |❌ |- (ERROR|WARN) \| |\[-\] \S|--- FAIL: |.* \*\*\* FAILED \*\*\*$|[\w:]+ failed on line \d+|FAIL:? [\w./\[]|ERROR:? [\w./]|not ok \d+|\d+\) \S|✗ |✖ |× |"
    r"FAIL in \(|ERROR in \(|\*\* \(\w+Error\)|\*\*\* .*FAILED \*\*\*|"
    r"[\w./-]+\.\w+:\d+(:\d+)?:\s*(fatal )?[Ee]rror\b|[\w./-]+\(\d+(,\d+)?\): error |"
    r"error(\[\w+\])?: |Error: |ERROR: |fatal: |FATAL: |panic: |rake aborted!|"
    r"[\w.+-]+: (fatal )?error: |[\w.<>`'-]+ \[FAIL\]$|"
    r"Traceback \(most recent|Exception in thread|[\w.]+(Error|Exception): |"
    r"[Ff]ailure → |[Ee]rror → |Assertion failed|AssertionError|Failed asserting|"
    r".*\S\s+(FAIL|FAILED|ERROR|\[FAILED\]|\[ERROR\])$|Failure:$|Error:$|"
    r"([Ii]llegal|[Uu]nknown|[Ii]nvalid|[Uu]nrecognized) (option|switch|argument|flag)s?\b)"
)


_SECTION_READ = 4  # a list is read this many budgets far; trimming keeps its messages


def section_blocks(
    store: LineStore, first: int, last: int, *, budget: int = BLOCK_MAX
) -> list[tuple[int, list[tuple[int, str]]]]:
    """Failure lists between `first` and `last`: (header line, the lines under it)."""
    out: list[tuple[int, list[tuple[int, str]]]] = []
    number = first
    while number <= last:
        text = _text(store, number)
        number += 1
        if text is None or not _SECTION.match(text):
            continue
        lines: list[tuple[int, str]] = []
        blanks = 0
        cursor = number
        level = _LEVEL_PREFIX.match(store.get(number - 1) or "")
        while cursor <= last and len(lines) < budget * _SECTION_READ:
            line = _text(store, cursor)
            if line is None or _SECTION_END.match(line):
                break
            if passed(line) or (level and not (store.get(cursor) or "").startswith(level[0])):
                break  # a passing test, or the `[error]` lines of the list are over
            if boundary(line) and not _PYTEST_HEADER.match(line):
                break
            if _SECTION.match(line) and lines:
                break
            if _blank(line) or set(line.strip()) <= set("=-_*"):
                blanks += 1
                if blanks >= 3 and lines:
                    break
            else:
                blanks = 0
                lines.append((cursor, store.get(cursor) or line))
            cursor += 1
        if _PHPT_DIFF.match(text):
            lines = _phpt_failure(lines)
        if lines:
            out.append((number - 1, lines))
        number = cursor
    return out


_PHPT_DIFF = re.compile(r"=+ ?DIFF ?=+$")
_PHPT_DONE = re.compile(r"=+ ?DONE ?=+$")


def _phpt_failure(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """PHP run-tests' diff up to its `DONE` and the result line under it; nothing when the
    result is an expected failure (XFAIL) or a pass."""
    for index, (_, line) in enumerate(lines):
        if _PHPT_DONE.match(line.strip()):
            result = lines[index + 1 : index + 2]
            if result and result[0][1].lstrip().startswith(("XFAIL", "PASS", "SKIP")):
                return []
            return lines[: index + 2]
    return lines


def opener_lines(store: LineStore, first: int, last: int, limit: int = 40) -> list[int]:
    """Lines between `first` and `last` that open a failure, the last `limit` of them."""
    found: list[int] = []
    for number in range(first, last + 1):
        text = _text(store, number)
        if text is not None and _OPENER.match(text) and not passed(text):
            found.append(number)
    return found[-limit:]


# The build treats warnings as errors: the warnings before this line are the failure.
_WERROR = re.compile(
    r"(Failing due to -Werror|warnings being treated as errors|all warnings being treated as errors|"
    r"error: warnings found and -Werror specified|\[-Werror(=[\w-]+)?\]|-Werror -- |"
    r"Warnings? treated as errors?|fatal warnings? found|No warnings allowed)"
)
_WARNING = re.compile(r"^\s*[\w./-]+\.\w+:\d+(:\d+)?(-\d+)?:\s*\[?[Ww]arning\b")


def werror_warnings(store: LineStore, first: int, last: int, limit: int = 2) -> list[int]:
    """Warning lines (`file:line:col: warning`) that failed the build because a later line
    says warnings are errors (-Werror, fatal warnings): the last `limit` before it."""
    werror = None
    for number in range(last, first - 1, -1):
        text = _text(store, number)
        if text is not None and _WERROR.search(text):
            werror = number
            break
    if werror is None:
        return []
    found: list[int] = []
    for number in range(werror, max(first, werror - MAX_COMMAND_LINES) - 1, -1):
        text = _text(store, number)
        if text is not None and _WARNING.match(text):
            found.append(number)
            if len(found) >= limit:
                break
    return sorted(found)


# A test's own failure line, unmistakable wherever it is in a long output.
_TEST_FAILURE = re.compile(
    r"^\s*(.* \*\*\* FAILED \*\*\*$|FAIL .*\[[\w./-]+\]$|[\w:]+ failed on line \d+|--- FAIL: |"
    r"not ok \d+ |FAIL: \w|ERROR: test\w*|● |\[-\] \S|(Module|Test) Failed: \S|(.* )?Dubious, test returned [1-9]|.*\b\w+_SUITE:\w+ failed|\S.*:\s+FAIL( \([\d.]+m?s\))?$)"
)
# Bytes every _TEST_FAILURE (or pytest header) line contains one of.
_TEST_FAILURE_HINT = re.compile(
    rb"FAIL|[Ff]ail|not ok|\[-\] |\xe2\x97\x8f|Dubious|ERROR: test|____"
)
FAR_LINES = 40000  # lines of a long command output searched for its first test failure


def first_test_failure(store: LineStore, first: int, last: int) -> int | None:
    """The first line between `first` and `last` where a test says it failed (for a pytest
    failure under its `____ test_x ____` header: its first `E   ` line).

    Lines without a word any of the patterns needs are skipped on their raw bytes, so a long
    output's lines are not all decoded (and kept) for nothing."""
    for number in range(first, last + 1):
        raw = store.raw(number)
        if raw is None or not _TEST_FAILURE_HINT.search(raw):
            continue
        text = _text(store, number)
        if text is None:
            continue
        if _TEST_FAILURE.match(text):
            return number
        if _PYTEST_HEADER.match(text) and _in_failures(store, number, first):
            for below in range(number + 1, min(last, number + 4 * MAX_FORWARD) + 1):
                line = _text(store, below)
                if line is None or _PYTEST_HEADER.match(line) or boundary(line):
                    break
                if line.startswith("E   "):
                    return below
    return None


def _in_failures(store: LineStore, header: int, first: int) -> bool:
    """Is the `____ x ____` line at `header` in pytest's FAILURES / ERRORS section?"""
    for number in range(header - 1, max(first, header - 3) - 1, -1):
        text = _text(store, number)
        if text is not None and re.match(r"^=+ (FAILURES|ERRORS) =+$", text):
            return True
    return False


RESERVED_LINES = 3


def assemble(
    blocks: Iterable[Block],
    *,
    status: dict[int, LineStatus] | None = None,
    limit: int = EVIDENCE_MAX,
) -> tuple[tuple[EvidenceLine, ...], tuple[EvidenceBlock, ...]]:
    """Evidence lines and blocks: by rank, overlapping blocks merged, `limit` lines in all."""
    ordered = sorted(blocks, key=lambda b: (b.rank, b.start))
    taken: list[Block] = []
    used: set[int] = set()
    total = 0
    for index, block in enumerate(ordered):
        lines = [(n, t) for n, t in block.lines if n not in used]
        if not lines or total >= limit:
            continue
        # the blocks after this one keep a few lines each: one long block never hides them
        later = min(len(ordered) - index - 1, limit // RESERVED_LINES - 1)
        room = max(RESERVED_LINES, limit - total - RESERVED_LINES * later)
        lines = trim(lines, min(BLOCK_MAX, room))
        used.update(n for n, _ in lines)
        total += len(lines)
        taken.append(
            Block(lines[0][0], lines[-1][0], block.kind, block.rule, tuple(lines), block.rank)
        )
    evidence: list[EvidenceLine] = []
    out_blocks: list[EvidenceBlock] = []
    for block in taken:
        out_blocks.append(EvidenceBlock(block.start, block.end, block.kind, block.rule))
        for number, text in block.lines:
            line_status = status.get(number) if status is not None else None
            reason = f"{block.kind.value} block" + (f" ({block.rule})" if block.rule else "")
            evidence.append(EvidenceLine(number, text, block.rule, line_status, reason))
    return tuple(evidence), tuple(out_blocks)
