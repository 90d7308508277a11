"""One streaming pass over a log: which rules fire on which lines, steps, failing tests.

The log arrives as chunks of bytes. They are regrouped into blocks that end at a line
break, every prefilter runs over a whole block at once (see matcher.py), and only the lines
they hit are decoded, cleaned and checked against the rules' exact patterns. Memory stays
at a few blocks whatever the log size.

Line numbers follow `str.splitlines()` of the whole log decoded as UTF-8 with errors
replaced: a block that holds any line break other than `\\n` is decoded and re-joined with
`\\n` first, so counting `\\n` is exact afterwards.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from contexten.analysis.logs.failing_tests import TRIGGERS, FailingTestCollector, Trigger
from contexten.analysis.logs.matcher import BlockMatcher, Prefilter, build_matcher
from contexten.analysis.logs.rules import RULES, Role, Rule
from contexten.analysis.logs.text import clean_line, contains_any, keyed_pieces, line_key

BLOCK_BYTES = 1 << 20  # scanned at a time: larger blocks cost memory, not speed
KEPT_BYTES = 4 << 20  # the log's first and last bytes kept for evidence blocks
MAX_LINE_BYTES = 64 << 10  # longer lines are cut (their numbering is kept)
HITS_KEPT_HEAD = 50  # per rule: the first hits and the last ones are kept
HITS_KEPT_TAIL = 200
CONTEXT_BEFORE = 12  # lines kept before each failure marker (for "nothing matched" evidence)
TAIL_LINES = 30
SMALL_LOG_BYTES = 8 << 20  # up to here the fast-compiling engine scans; then the fastest
NEIGHBOURS = 2  # baseline mode: lines kept before each hit (new ones may become evidence)
MAX_CONTEXT_KEYS = 20_000
MAX_LINE_KEYS = 2_000_000

# Every line break but `\n`, as UTF-8 (text.contains_any looks for all in one pass).
_OTHER_BREAKS = (
    b"\r",
    b"\x0b",
    b"\x0c",
    b"\x1c",
    b"\x1d",
    b"\x1e",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\xe2\x80\xa9",
)
_ANY_BREAK = re.compile(rb"[\n\r\x0b\x0c\x1c-\x1e]|\xc2\x85|\xe2\x80[\xa8\xa9]")


@dataclass(frozen=True, slots=True)
class Hit:
    rule_id: str
    line: int
    text: str
    step: int  # index into ScanResult.steps, -1 before the first step
    key: int = 0  # text.line_key of the raw line (baseline alignment)


class LineStore:
    """The raw lines kept for growing evidence blocks: the log's first and last blocks.

    The head keeps the first KEPT_BYTES (4 MB), the tail at least the last KEPT_BYTES, so
    memory stays near 8-9 MB whatever the log size and logs up to 8 MB are kept whole.
    Lines are split and cleaned only when asked for.
    """

    def __init__(self) -> None:
        self._head: list[tuple[int, bytes]] = []
        self._head_bytes = 0
        self._tail: deque[tuple[int, bytes]] = deque()
        self._tail_bytes = 0
        self._split: dict[int, list[bytes]] = {}
        self._texts: dict[int, str | None] = {}

    def add(self, first_line: int, block: bytes) -> None:
        if self._head_bytes < KEPT_BYTES:
            self._head.append((first_line, block))
            self._head_bytes += len(block)
            return
        self._tail.append((first_line, block))
        self._tail_bytes += len(block)
        while self._tail_bytes - len(self._tail[0][1]) >= KEPT_BYTES:
            first, dropped = self._tail.popleft()
            self._tail_bytes -= len(dropped)
            self._split.pop(first, None)

    def _blocks(self) -> list[tuple[int, bytes]]:
        return [*self._head, *self._tail]

    def _pieces(self, first_line: int, block: bytes) -> list[bytes]:
        pieces = self._split.get(first_line)
        if pieces is None:
            pieces = block.split(b"\n")
            if block.endswith(b"\n"):
                pieces.pop()
            self._split[first_line] = pieces
        return pieces

    def has(self, number: int) -> bool:
        return self.get(number) is not None

    def get(self, number: int) -> str | None:
        """The cleaned text of line `number` (1-based), or None when it was not kept."""
        try:
            return self._texts[number]
        except KeyError:
            pass
        raw = self.raw(number)
        text = None if raw is None else clean_line(raw.decode("utf-8", "replace"))
        self._texts[number] = text
        return text

    def raw(self, number: int) -> bytes | None:
        """The raw bytes of line `number` (for baseline keys), or None."""
        for first_line, block in reversed(self._blocks()):
            if number < first_line:
                continue
            pieces = self._pieces(first_line, block)
            index = number - first_line
            if index < len(pieces):
                return pieces[index][:MAX_LINE_BYTES]
        return None


@dataclass(frozen=True, slots=True)
class ScanResult:
    total_lines: int
    total_bytes: int
    hits: tuple[Hit, ...]
    steps: tuple[tuple[int, str], ...]  # (line, name)
    failing_tests: tuple[str, ...]
    context: tuple[tuple[int, str], ...]  # lines just before failure markers, and the tail
    engine: str
    has_text: bool = True  # False: empty or only whitespace
    # Baseline mode only: keys of the lines around hits and failure markers, and of every
    # line of the log (capped), for alignment with passing runs.
    context_keys: tuple[tuple[int, int], ...] = ()
    # line_keys is the scanner's own set, not a frozen copy (up to MAX_LINE_KEYS keys, tens
    # of MB): read it, never change it.
    line_keys: set[int] | frozenset[int] = frozenset()
    # The raw lines kept for evidence blocks (the first and the last blocks of the log).
    lines: LineStore = field(default_factory=LineStore)
    # Where failing tests were first named (their inline failures, usually).
    failing_test_lines: tuple[int, ...] = ()


def _small_log_engine() -> str | None:
    """RE2 compiles in milliseconds: the engine for the start of every log."""
    try:
        import re2  # noqa: F401
    except ImportError:
        return None
    return "re2"


@lru_cache(maxsize=4)
def _compiled(engine: str | None) -> tuple[BlockMatcher, tuple[Rule | Trigger, ...]]:
    items: tuple[Rule | Trigger, ...] = (*RULES, *TRIGGERS)
    prefilters = [Prefilter(item.prefilter, item.case_sensitive) for item in items]
    return build_matcher(prefilters, engine), items


def prefilter_vocabulary() -> list[Prefilter]:
    """Every pattern the scanner runs over the raw log (rules and test-name triggers)."""
    items: tuple[Rule | Trigger, ...] = (*RULES, *TRIGGERS)
    return [Prefilter(item.prefilter, item.case_sensitive) for item in items]


def _blocks(chunks: Iterable[bytes | str]) -> Iterator[bytes]:
    """Regroup chunks into blocks that end right after a line break (the last may not)."""
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        data = chunk.encode("utf-8", "replace") if isinstance(chunk, str) else chunk
        if not data:
            continue
        pending.append(data)
        size += len(data)
        if size < BLOCK_BYTES:
            continue
        split = _split_at_last_newline(pending)
        if split is not None:
            block, rest = split
            yield block
            pending, size = ([rest], len(rest)) if rest else ([], 0)
            continue
        joined = b"".join(pending)
        cut = joined.rfind(b"\n") + 1
        if cut == 0:
            cut = _last_break(joined)
        if cut == 0:
            # One enormous line: keep its start; the rest holds no line break, so dropping
            # it leaves the numbering intact.
            joined = joined[:MAX_LINE_BYTES]
            pending, size = [joined], len(joined)
            continue
        yield joined[:cut]
        rest = joined[cut:]
        pending, size = ([rest], len(rest)) if rest else ([], 0)
    if pending:
        yield b"".join(pending)


def _split_at_last_newline(pending: list[bytes]) -> tuple[bytes, bytes] | None:
    """`b"".join(pending)` cut just after its last `\\n` (None if there is none).

    The same as joining and slicing, with one copy of the block instead of two.
    """
    for index in range(len(pending) - 1, -1, -1):
        cut = pending[index].rfind(b"\n") + 1
        if cut:
            chunk = pending[index]
            head = chunk if cut == len(chunk) else memoryview(chunk)[:cut]
            block = b"".join([*pending[:index], head])
            rest = chunk[cut:] + b"".join(pending[index + 1 :])
            return block, rest
    return None


def _last_break(data: bytes) -> int:
    """Offset just after the last line break of any kind (0 if none), never inside `\\r\\n`."""
    end = 0
    for match in _ANY_BREAK.finditer(data):
        if match.group() == b"\r" and match.end() == len(data):
            break  # may be the first half of `\r\n`
        end = match.end()
    return end


def _canonical(block: bytes) -> bytes:
    """The block with every kind of line break written as `\\n` (numbering unchanged)."""
    if not contains_any(block, _OTHER_BREAKS):
        return block
    text = block.decode("utf-8", "replace")
    lines = text.splitlines()
    ends_with_break = bool(lines) and text.splitlines(keepends=True)[-1] != lines[-1]
    return ("\n".join(lines) + ("\n" if ends_with_break else "")).encode("utf-8")


@dataclass
class _State:
    hits_head: dict[str, list[Hit]] = field(default_factory=dict)
    hits_tail: dict[str, deque[Hit]] = field(default_factory=dict)
    steps: list[tuple[int, str]] = field(default_factory=list)
    context: dict[int, str] = field(default_factory=dict)
    recent: dict[str, int] = field(default_factory=dict)  # rule id -> last line it fired
    failure_markers: int = 0


class LogScanner:
    """Feed blocks with `feed`, then `finish` for the result. Not thread-safe."""

    def __init__(self, engine: str | None = None, *, keep_keys: bool = False) -> None:
        self._engine = engine
        self._matcher, self._items = _compiled(engine or _small_log_engine())
        self._tests = FailingTestCollector()
        self._state = _State()
        self._next_line = 1  # number of the first line of the next block
        self._total_bytes = 0
        self._last_ended_with_break = True
        self._capture_left = 0
        self._prev_tail: deque[tuple[int, str]] = deque(maxlen=CONTEXT_BEFORE)
        self._has_text = False
        self._keep_keys = keep_keys
        self._line_keys: set[int] = set()
        self._context_keys: dict[int, int] = {}
        self._lines = LineStore()

    # -- public --------------------------------------------------------------------------
    def scan(self, chunks: Iterable[bytes | str]) -> ScanResult:
        for block in _blocks(chunks):
            self.feed(block)
        return self.finish()

    def feed(self, raw_block: bytes) -> None:
        self._total_bytes += len(raw_block)
        block = _canonical(raw_block)
        if not block:
            return
        if not self._has_text:
            self._has_text = not block.isspace()
        if self._engine is None and self._total_bytes > SMALL_LOG_BYTES:
            # A big log: worth the Hyperscan compile (~0.25 s) for its speed.
            self._matcher, self._items = _compiled(None)
        if self._keep_keys and len(self._line_keys) < MAX_LINE_KEYS:
            self._keep_line_keys(block)
        self._lines.add(self._next_line, block)
        self._next_line += self._scan_block(block)
        self._last_ended_with_break = block.endswith(b"\n")

    def finish(self) -> ScanResult:
        total = self._next_line - 1 + (0 if self._last_ended_with_break else 1)
        state = self._state
        hits: list[Hit] = []
        for rule_id, head in state.hits_head.items():
            hits.extend(head)
            hits.extend(state.hits_tail.get(rule_id, ()))
        hits.sort(key=lambda hit: (hit.line, hit.rule_id))
        for line, text in self._prev_tail:
            state.context.setdefault(line, text)
        context = tuple(sorted(state.context.items()))
        return ScanResult(
            total_lines=total,
            total_bytes=self._total_bytes,
            hits=tuple(hits),
            steps=tuple(state.steps),
            failing_tests=self._tests.names(),
            failing_test_lines=self._tests.first_lines(),
            context=context,
            engine=self._matcher.name,
            has_text=self._has_text,
            context_keys=tuple(sorted(self._context_keys.items())),
            line_keys=self._line_keys,
            lines=self._lines,
        )

    # -- one block -------------------------------------------------------------------------
    def _keep_line_keys(self, block: bytes) -> None:
        keys = self._line_keys
        for _, lines in keyed_pieces(block):
            keys.update(map(hash, lines))
        if block.endswith(b"\n"):
            # The empty text after the block's last line break has always been keyed too
            # (it was one `split` item); kept so the matched-line counts stay as they were.
            keys.add(hash(b""))

    def _scan_block(self, block: bytes) -> int:
        """Scan one block; return the number of line breaks in it."""
        lines: dict[int, set[int] | None] = {}
        for end, pattern_id in self._matcher.scan(block):
            start = block.rfind(b"\n", 0, end) + 1
            known = lines.get(start, set())
            if pattern_id < 0 or known is None:
                lines[start] = None  # the engine does not say which patterns: check all
            else:
                known.add(pattern_id)
                lines[start] = known
        position, line_no = 0, self._next_line
        context_pos = 0 if self._capture_left else -1
        for start in sorted(lines):
            line_no += block.count(b"\n", position, start)
            position = start
            if context_pos >= 0:
                context_pos = self._emit_context(block, context_pos, start)
            end = block.find(b"\n", start)
            end = len(block) if end < 0 else end
            raw = block[start : min(end, start + MAX_LINE_BYTES)]
            text = clean_line(raw.decode("utf-8", "replace"))
            if context_pos == start and self._capture_left:
                self._tests.on_context(text)
                self._capture_left -= 1
                context_pos = end + 1
            captured = self._on_line(block, start, line_no, text, lines[start])
            if captured > self._capture_left:
                self._capture_left = captured
                context_pos = end + 1
        if context_pos >= 0:
            self._emit_context(block, context_pos, len(block))
        breaks = line_no - self._next_line + block.count(b"\n", position)
        self._remember_tail(block, breaks)
        return breaks

    def _emit_context(self, block: bytes, position: int, limit: int) -> int:
        """Pass the lines from `position` up to `limit` to the test collector while wanted."""
        while self._capture_left and position < limit:
            end = block.find(b"\n", position)
            end = len(block) if end < 0 else end
            raw = block[position : min(end, position + MAX_LINE_BYTES)]
            self._tests.on_context(clean_line(raw.decode("utf-8", "replace")))
            self._capture_left -= 1
            position = end + 1
        return position if self._capture_left else -1

    def _remember_tail(self, block: bytes, breaks: int) -> None:
        ends_with_break = block.endswith(b"\n")
        end = len(block) - 1 if ends_with_break else len(block)
        last_line = self._next_line + breaks - (1 if ends_with_break else 0)
        found: list[tuple[int, str]] = []
        line_no = last_line
        while end > 0 and len(found) < max(CONTEXT_BEFORE, TAIL_LINES):
            start = block.rfind(b"\n", 0, end) + 1
            raw = block[start : min(end, start + MAX_LINE_BYTES)]
            found.append((line_no, clean_line(raw.decode("utf-8", "replace"))))
            if self._keep_keys:
                self._context_keys[line_no] = line_key(raw)
            line_no -= 1
            end = start - 1
        self._prev_tail.extend(reversed(found))

    def _preceding(
        self, block: bytes, start: int, line_no: int, count: int = CONTEXT_BEFORE
    ) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        end = start - 1
        while end >= 0 and len(out) < count:
            begin = block.rfind(b"\n", 0, end) + 1
            line_no -= 1
            raw = block[begin : min(end, begin + MAX_LINE_BYTES)]
            out.append((line_no, clean_line(raw.decode("utf-8", "replace"))))
            if self._keep_keys:
                self._context_keys[line_no] = line_key(raw)
            end = begin - 1
        if len(out) < count:
            wanted = count - len(out)
            out.extend(reversed(list(self._prev_tail)[-wanted:]))
        return out

    # -- one line --------------------------------------------------------------------------
    def _on_line(
        self, block: bytes, start: int, line_no: int, text: str, ids: set[int] | None
    ) -> int:
        """Check the exact patterns of the candidate rules; return lines of context wanted."""
        wanted = 0
        candidates = range(len(self._items)) if ids is None else sorted(ids)
        for index in candidates:
            item = self._items[index]
            if isinstance(item, Trigger):
                self._tests.line = line_no
                named = self._tests.on_trigger(item, text)
                self._tests.line = None  # context lines are fed without their numbers
                if named and item.capture:
                    wanted = max(wanted, item.capture)
                continue
            match = item.regex.search(text)
            if match is None:
                continue
            if item.role in _NAMED and (_names_a_thing(text, match) or _WARNING.match(text)):
                continue
            if item.requires is not None:
                last = self._state.recent.get(item.requires)
                if last is None or line_no - last > item.within:
                    continue
            self._record(item, match, line_no, text, block, start)
        return wanted

    def _record(
        self, rule: Rule, match: re.Match[str], line_no: int, text: str, block: bytes, start: int
    ) -> None:
        state = self._state
        state.recent[rule.id] = line_no
        if rule.role is Role.STEP:
            state.steps.append((line_no, match.group(1).strip()[:200]))
            return
        end = block.find(b"\n", start)
        raw = block[start : end if end >= 0 else len(block)]
        hit = Hit(rule.id, line_no, text, len(state.steps) - 1, line_key(raw))
        head = state.hits_head.setdefault(rule.id, [])
        if len(head) < HITS_KEPT_HEAD:
            head.append(hit)
        else:
            state.hits_tail.setdefault(rule.id, deque(maxlen=HITS_KEPT_TAIL)).append(hit)
        if (
            self._keep_keys
            and rule.role in (Role.CAUSE, Role.DETAIL, Role.CATCHALL)
            and len(self._context_keys) < MAX_CONTEXT_KEYS
        ):
            for number, before in self._preceding(block, start, line_no, NEIGHBOURS):
                state.context.setdefault(number, before)
        if rule.role is Role.FAILED and state.failure_markers < 20:
            state.failure_markers += 1
            for number, before in self._preceding(block, start, line_no):
                state.context[number] = before


_NAMED = (Role.CAUSE, Role.DETAIL)
# A test id with parameters: what follows `[` is test data, not the failure.
_TEST_ID = re.compile(r"^\s*\S+\.py::[^\s\[]+\[")
_IDENTIFIER = re.compile(r"[\w-]")
# A test's start line or its passed, skipped or expected-to-fail result: the rest is its name.
_RESULT = re.compile(
    r"^\s*((PASS|SKIP|XFAIL|ok \d+)\b|(# )?Starting [Tt]est:|=== RUN |Running [Tt]est:? )"
)
# A line that is only a test's name, `module::test name` (QUnit, Ember): no message on it.
_TEST_NAME = re.compile(r"^\s*[\w-]+(:[\w-]+)*::\w[^:]* [^:]*$")
# A compiler's warning (`Foo.cs(11,18): warning CS1574: ... could not be resolved`): what it
# says did not fail the build (warnings-as-errors builds are found from their own message).
_WARNING = re.compile(r"^\s*[\w./\\-]+(\(\d+(,\d+)?\)|:\d+(:\d+)?):?\s*warning\b", re.IGNORECASE)


def _names_a_thing(text: str, match: re.Match[str]) -> bool:
    """Is a rule's match part of a name rather than a message: inside a word or a file name
    (`libsigsegv2`, `test-net-connect-econnrefused.lua`), or a parametrised test id's data?"""
    start, end = match.span()
    before = text[start - 1] if start > 0 else ""
    after = text[end : end + 2]
    glued_before = bool(before) and (bool(_IDENTIFIER.match(before)) or before in "./")
    glued_after = bool(after) and (
        bool(_IDENTIFIER.match(after[0])) or (after[0] == "." and after[1:2].isalnum())
    )
    if glued_before and glued_after and match.group(0)[:1].isalnum():
        return True
    if _TEST_NAME.match(text) or _RESULT.match(text):
        return True
    test_id = _TEST_ID.match(text)
    return test_id is not None and start >= test_id.end()
