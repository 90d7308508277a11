"""Which lines show why the job failed: the ranked candidate lines grown into blocks.

`evidence_blocks` takes the rules' decision (RuleDecision, made by engine.decide) and the
candidate lines (engine.candidate_evidence) and returns the evidence lines and blocks,
most telling first: failure lists in the failing command's output, the rules' lines grown
into their blocks, lines that open a failure on their own, and the failing command's
last output lines. RuleDecision and the few helpers the decision shares with this step
live here, so that engine.py imports this module and not the reverse.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from contexten.analysis.logs import blocks
from contexten.analysis.logs.model import (
    BlockKind,
    DiagnosisStatus,
    EvidenceBlock,
    EvidenceLine,
    LineStatus,
)
from contexten.analysis.logs.rules import RULES, RULES_BY_ID, Role
from contexten.analysis.logs.scan import Hit, LineStore, ScanResult
from contexten.analysis.taxonomy import FailureCategory

# A rule's place in RULES: lower decides first (engine.decide ranks the causes with it).
_PRIORITY = {rule.id: index for index, rule in enumerate(RULES)}


def _boilerplate(text: str) -> bool:
    """Lines that never explain a failure: empty, Actions group markers, step headers."""
    stripped = text.strip()
    return not stripped or stripped.startswith(
        (
            "##[endgroup]",
            "##[group]",
            "shell: ",
            "env:",
            "Post job cleanup",
            "##[error]Process completed",
        )
    )


@dataclass(frozen=True, slots=True)
class RuleDecision:
    """What the rules say before evidence is chosen (the baseline step reuses it)."""

    category: FailureCategory
    confidence: float
    status: DiagnosisStatus
    winner: Hit | None
    failing_step: int | None  # index into scan.steps
    in_scope: tuple[Hit, ...]  # hits in the failing step or job-level, in log order
    failure_evident: bool


# A Travis command's status line (engine scopes the hits to the failing command with it).
_TRAVIS_STATUS = re.compile(
    r'The command ".*" ((failed and )?exited with [1-9]|failed \d+ times\.)'  # travis_retry
)


_EXIT_STATUS = re.compile(
    r"(The command \".*\" ((failed and )?exited with [1-9]|failed \d+ times\.)|"
    r"##\[error\]Process completed with exit code [1-9]|"
    r"Error: Process completed with exit code [1-9])"
)
MAX_BLOCKS = 3  # rule/failure-list blocks; the failing command's tail comes on top
_TAIL = 22  # the failing command's last lines looked at for its own block
_ANCHOR_RANK = 20  # candidates ranked above this are not grown into blocks of their own
_STOPPED = re.compile(r"(exited with|exit code) (124|137)\b")
_NAMED_TESTS = 3  # failing tests whose first mention is grown into a block
_NAMED_RANK = 6
# Failure lists come after the blocks of the rules that name a cause, except pytest's
# FAILURES / ERRORS sections: each failure there is the assertion with its source and place.
_SECTION_RANK = 2
_DETAILED = re.compile(r"=+ (FAILURES|ERRORS) =+")
_OUTSIDE = 40  # rank added to anchors outside the failing command's output


def exit_line(decision: RuleDecision, scan: ScanResult) -> int | None:
    """The failing command's exit-status line (Travis or Actions), if the log has one.

    Travis echoes a multi-line command inside its status line: the line returned is the
    one that starts `The command "`.
    """
    markers = [
        h
        for h in decision.in_scope
        if RULES_BY_ID[h.rule_id].role is Role.FAILED and _EXIT_ANY.search(h.text)
    ]
    if not markers:
        return None
    line = markers[0].line
    if _EXIT_STATUS.search(markers[0].text):
        return line
    if not _TRAVIS_TAIL.match(markers[0].text):
        return None
    for number in range(line - 1, max(0, line - _MAX_ECHO), -1):
        text = scan.lines.get(number)
        if text is None:
            break
        if 'The command "' in text:
            return number
    return None


def _status_line(scan: ScanResult, hit: Hit) -> int | None:
    """The line that starts a Travis status (`The command "...`) whose hit is `hit`: a
    multi-line command's status ends lines below its start."""
    if _TRAVIS_STATUS.search(hit.text):
        return hit.line
    for number in range(hit.line - 1, max(0, hit.line - _MAX_ECHO), -1):
        text = scan.lines.get(number)
        if text is None:
            break
        if 'The command "' in text:
            return number
    return None


_EXIT_ANY = re.compile(
    r"exited with [1-9]|\" failed \d+ times\.|Process completed with exit code [1-9]"
)
_TRAVIS_TAIL = re.compile(r'^.*" ((failed and )?exited with [1-9]|failed \d+ times\.)')
_MAX_ECHO = 200
_REGION_MAX = 4000  # lines of the failing command's output searched for failure lists


def _last_lines(scan: ScanResult, before: int, count: int) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    number = before - 1
    while number >= 1 and len(out) < count:
        text = scan.lines.get(number)
        if text is None:
            break
        shown = text.strip() and not _boilerplate(text) and not blocks.boundary(text)
        if shown and (out or not blocks.WRAPPER.match(text)):
            out.append((number, text))
        number -= 1
    return sorted(out)


def _region(decision: RuleDecision, scan: ScanResult, exit_at: int | None) -> tuple[int, int]:
    """The failing command's (or step's) output lines: where the explanation is."""
    if exit_at is not None:
        first, last = blocks.command_start(scan.lines, exit_at), exit_at - 1
    elif decision.failing_step is not None:
        first = scan.steps[decision.failing_step][0] + 1
        following = [line for line, _ in scan.steps[decision.failing_step + 1 :]]
        last = following[0] - 1 if following else scan.total_lines
    else:
        first, last = 1, scan.total_lines
    return max(first, last - _REGION_MAX), last


def _kind_for(rule: str | None, texts: list[str]) -> BlockKind:
    category = _category_of_rule(rule) if rule else None
    default = BlockKind.ERROR
    if category in _TESTISH:
        default = BlockKind.TEST
    elif category in (FailureCategory.COMPILE, FailureCategory.LINT):
        default = BlockKind.COMPILER
    return blocks._kind_of(texts, default)


def evidence_blocks(
    decision: RuleDecision,
    scan: ScanResult,
    ranked: list[tuple[EvidenceLine, int]],
    *,
    status: dict[int, LineStatus] | None = None,
    keep: Callable[[int, str], bool] | None = None,
) -> tuple[tuple[EvidenceLine, ...], tuple[EvidenceBlock, ...]]:
    """Grow the ranked candidate lines into blocks; the failing command's tail when none fits.

    `keep` (baseline mode) says which lines may be shown when no rule marks them.
    """
    if decision.status is DiagnosisStatus.EMPTY:
        return (), ()
    store = scan.lines
    exit_at = exit_line(decision, scan)
    first, last = _region(decision, scan, exit_at)
    quiet = False  # nothing says the job failed: only lines that look like a failure
    if decision.status is DiagnosisStatus.NO_FAILURE:
        quiet = not any(RULES_BY_ID[h.rule_id].role in _SHOWN for h in scan.hits)
        first = max(1, scan.total_lines - _QUIET_LINES)
    candidates: list[blocks.Block] = []
    covered: set[int] = set()
    relay: blocks.Block | None = None

    def add(lines: list[tuple[int, str]], kind: BlockKind, rule: str | None, rank: int) -> None:
        if keep is not None:
            lines = [(n, t) for n, t in lines if (rule is not None and n == anchor) or keep(n, t)]
        if not lines:
            return
        covered.update(range(lines[0][0], lines[-1][0] + 1))
        candidates.append(blocks.Block(lines[0][0], lines[-1][0], kind, rule, tuple(lines), rank))

    anchor = 0
    # 1. Failure lists in the failing command's output (mocha, PHPUnit, pytest, rspec, ...).
    for header, lines in blocks.section_blocks(store, first, last):
        detailed = _DETAILED.search(store.get(header) or "")
        add(lines, BlockKind.TEST, None, 0 if detailed else _SECTION_RANK)
        covered.add(header)  # "There was 1 failure:" says less than the list under it
    # 2. The rules' lines, grown into their blocks (outside the command's output: demoted).
    explained = decision.winner is not None
    for line, rank in sorted(ranked, key=lambda item: (item[1], item[0].line)):
        if line.line in covered or (not explained and rank >= 55):
            continue
        catchall = line.rule is None or RULES_BY_ID[line.rule].role is Role.CATCHALL
        if catchall and blocks.WRAPPER.match(line.text):
            continue  # "npm ERR! Test failed", "make: *** Error 1": the tail shows them
        if blocks.passed(line.text):
            continue  # "unknown option fallback:   OK": a passing test's name, not a cause
        inside = first <= line.line <= last
        if not inside:
            if exit_at is not None:
                continue  # another command's output: not why this one failed
            rank += _OUTSIDE
        if rank >= _ANCHOR_RANK + _OUTSIDE:
            continue
        if _SUMMARY.match(line.text):
            rank += _SUMMARY_RANK  # "3 failed, 40 passed": the failures themselves say more
        anchor = line.line
        grown = blocks.grow(store, line.line, upper=last if inside else None)
        if not grown:
            grown = [(line.line, line.text)]
        add(grown, _kind_for(line.rule, [t for _, t in grown]), line.rule, rank)
    # 2a. Where the failing tests were first named: their failure, message and location.
    named = [n for n in scan.failing_test_lines if first <= n <= last and n not in covered]
    for number in named[:_NAMED_TESTS]:
        if number in covered:
            continue
        anchor = number
        grown = blocks.grow(store, number, lower=first, upper=last)
        add(grown, _kind_for(None, [t for _, t in grown]), None, _NAMED_RANK)
    # 3. Lines that open a failure on their own (file:line: error, --- FAIL:, Error: ...):
    #    the first and the last not yet shown.
    openers = [n for n in blocks.opener_lines(store, first, last) if n not in covered]
    for rank, number in enumerate(dict.fromkeys(openers[:1] + openers[-1:]), 7):
        if number in covered:
            continue
        anchor = number
        grown = blocks.grow(store, number, lower=first, upper=last)
        if blocks.bare_header(store.get(number) or "") and blocks.only_relays(
            grown[1:] or [(number + 1, store.get(number + 1) or "")]
        ):
            continue  # "rake aborted!" / "Command failed with status (1)": the tail shows it
        add(grown, _kind_for(None, [t for _, t in grown]), None, rank)
    # 3a. The command's first test failure, however long its output.
    if exit_at is not None or (decision.failing_step is None and not scan.steps):
        far = max(1, last - blocks.FAR_LINES)
        start = (
            blocks.command_start(store, exit_at, lower=far, limit=blocks.FAR_LINES)
            if exit_at is not None
            else far
        )
        failed_at = blocks.first_test_failure(store, start, last)
        if failed_at is not None and failed_at not in covered:
            anchor = failed_at
            grown = blocks.grow(store, failed_at, lower=start, upper=last)
            add(grown, _kind_for(None, [t for _, t in grown]), None, 2)
    # 3b. Warnings that failed the build because warnings are errors (-Werror).
    for number in blocks.werror_warnings(store, first, last):
        if number in covered:
            continue
        anchor = number
        grown = blocks.grow(store, number, lower=first, upper=last)
        add(grown, BlockKind.COMPILER, None, 2)
    # 3c. A status that says the command was stopped (timeout(1)'s 124, SIGKILL's 137): it
    #     is the evidence itself.
    status_text = store.get(exit_at) if exit_at is not None else None
    if exit_at is not None and status_text and _STOPPED.search(status_text):
        add([(exit_at, status_text)], BlockKind.ERROR, None, 1)
    # 4. The failing command's last output lines (without an exit-status line: the log's).
    end_at = exit_at if exit_at is not None else _end_of_output(decision, scan)
    if end_at is not None and not quiet:
        exit_at = end_at
        tail = blocks.smart_tail(store, exit_at, lower=first, keep=keep, size=_TAIL)
        tail = [(n, t) for n, t in tail if n not in covered]
        if tail:
            tail = _with_command(store, tail, first)
            add(
                tail,
                blocks._kind_of([t for _, t in tail], BlockKind.COMMAND),
                None,
                10 if explained else 0,
            )
            relay = candidates[-1]
    if status is not None:
        candidates = [_with_new_neighbours(b, store, status) for b in candidates]
    later = _later_command_blocks(decision, scan, exit_at, keep) if not quiet else []
    if later:
        both = _interleaved(_merged(candidates)[:MAX_BLOCKS], later)
        return blocks.assemble(_distinct(both), status=status)
    if quiet:
        # Nothing says the job failed (a log cut short?): its last lines only when they
        # look like a failure.
        tail = blocks.smart_tail(store, scan.total_lines + 1, lower=first, keep=keep, size=_TAIL)
        if any(blocks.ERRORISH.search(t) for _, t in tail) and not candidates:
            add(tail, BlockKind.COMMAND, None, 60)
        return blocks.assemble(_merged(candidates)[:MAX_BLOCKS], status=status)
    if not candidates:
        markers = [h for h in decision.in_scope if RULES_BY_ID[h.rule_id].role is Role.FAILED]
        before = markers[0].line if markers else scan.total_lines + 1
        tail = _last_lines(scan, before, blocks.TAIL_LINES)
        if keep is not None:
            tail = [(n, t) for n, t in tail if keep(n, t)] or tail
        if tail:
            candidates.append(
                blocks.Block(tail[0][0], tail[-1][0], BlockKind.COMMAND, None, tuple(tail), 60)
            )
        elif markers:
            m = markers[0]
            candidates.append(
                blocks.Block(m.line, m.line, BlockKind.COMMAND, m.rule_id, ((m.line, m.text),), 60)
            )
    chosen = _without_relay(_merged(candidates), relay)[:MAX_BLOCKS]
    return blocks.assemble(_latest_copies(chosen, store, first, last), status=status)


def _with_command(
    store: LineStore, tail: list[tuple[int, str]], first: int
) -> list[tuple[int, str]]:
    """A command's whole (short) output with the command that printed it (`$ make check`):
    what ran is half of what failed. (An Actions step's command is its step name.)"""
    echo = first - 1
    text = store.get(echo)
    if text is None or tail[0][0] > first + 2:
        return tail
    if text.startswith("$ "):  # the store's text is cleaned (no ANSI codes)
        return [(echo, text), *tail]
    return tail


_COPIES_SEARCHED = 4000  # lines after a block searched for a later copy of its first line


def _latest_copies(
    chosen: list[blocks.Block], store: LineStore, first: int, last: int
) -> list[blocks.Block]:
    """Each block at the last place its first line is printed: a test suite retried or run
    again prints the same failure, and the last run is the one that failed the job."""
    out: list[blocks.Block] = []
    taken = {n for b in chosen for n, _ in b.lines}
    for block in chosen:
        head = [text.strip() for _, text in block.lines[:2]]
        later = None
        if len(head[0]) >= 12:  # short lines ("FAIL", "Error:") recur without being copies
            upper = min(last, block.end + _COPIES_SEARCHED)
            for number in range(upper, block.end, -1):
                if _same_lines(store, number, head):
                    later = number
                    break
        if later is None:
            out.append(block)
            continue
        if later in taken:
            continue  # another block shows the later copy
        grown = blocks.grow(store, later, lower=first, upper=last)
        lines = tuple(grown) or ((later, store.get(later) or ""),)
        out.append(
            blocks.Block(lines[0][0], lines[-1][0], block.kind, block.rule, lines, block.rank)
        )
    return out


def _same_lines(store: LineStore, number: int, texts: list[str]) -> bool:
    """Do the non-blank lines from `number` on read `texts`?"""
    for text in texts:
        line = store.get(number)
        while line is not None and not line.strip() and text:
            number += 1
            line = store.get(number)
        if line is None or line.strip() != text:
            return False
        number += 1
    return True


def _without_relay(chosen: list[blocks.Block], relay: blocks.Block | None) -> list[blocks.Block]:
    """The failing command's last lines, when other blocks explain the failure and nothing
    was merged into them, mostly relay it ("see above", a summary, a wrapper's message)."""
    if relay is None or len(chosen) < 2:
        return chosen
    latest = max(chosen, key=lambda b: b.start)
    if latest.lines != relay.lines:
        return chosen
    return [b for b in chosen if b is not latest]


_LATER_BLOCKS = 2  # blocks of a later failing command shown beside the first one's
_SPLIT_BLOCK_MAX = 15  # lines of one block when two failing commands share the evidence


def _later_command_blocks(
    decision: RuleDecision,
    scan: ScanResult,
    exit_at: int | None,
    keep: Callable[[int, str], bool] | None,
) -> list[blocks.Block]:
    """Travis runs every `script:` command even after one failed: the job's failure may be
    the last failing command rather than the first. Its blocks (failure lists, cause lines
    grown into blocks, its output's tail), best first; none when only one command failed.
    """
    if scan.steps or exit_at is None:
        return []
    statuses = [
        h
        for h in scan.hits
        if RULES_BY_ID[h.rule_id].role is Role.FAILED
        and (_TRAVIS_STATUS.search(h.text) or _TRAVIS_TAIL.match(h.text))
        and h.line > exit_at
    ]
    if not statuses:
        return []
    found_end = _status_line(scan, statuses[-1])
    if found_end is None or found_end <= exit_at:
        return []
    end = found_end
    store = scan.lines
    first = blocks.command_start(store, end)
    last = end - 1
    if first <= exit_at:
        return []
    first = max(first, last - _REGION_MAX)
    found: list[blocks.Block] = []
    covered: set[int] = set()

    def add(lines: list[tuple[int, str]], kind: BlockKind, rule: str | None, rank: int) -> None:
        if keep is not None:
            lines = [(n, t) for n, t in lines if keep(n, t)]
        lines = [(n, t) for n, t in lines if n not in covered]
        if not lines:
            return
        covered.update(range(lines[0][0], lines[-1][0] + 1))
        found.append(blocks.Block(lines[0][0], lines[-1][0], kind, rule, tuple(lines), rank))

    for header, lines in blocks.section_blocks(store, first, last):
        add(lines, BlockKind.TEST, None, 0)
        covered.add(header)
    start = blocks.command_start(store, end, lower=exit_at + 1, limit=blocks.FAR_LINES)
    failed_at = blocks.first_test_failure(store, start, last)
    if failed_at is not None and failed_at not in covered:
        grown = blocks.grow(store, failed_at, lower=start, upper=last)
        add(grown, _kind_for(None, [t for _, t in grown]), None, 0)
    causes = sorted(
        (
            h
            for h in scan.hits
            if first <= h.line <= last
            and RULES_BY_ID[h.rule_id].role in (Role.CAUSE, Role.DETAIL)
            and not _SUMMARY.match(h.text)
        ),
        key=lambda h: (RULES_BY_ID[h.rule_id].role is not Role.CAUSE, _PRIORITY[h.rule_id], h.line),
    )
    for hit in causes[:_LATER_BLOCKS]:
        if hit.line in covered:
            continue
        grown = blocks.grow(store, hit.line, lower=first, upper=last) or [(hit.line, hit.text)]
        add(grown, _kind_for(hit.rule_id, [t for _, t in grown]), hit.rule_id, 1)
    openers = [n for n in blocks.opener_lines(store, first, last) if n not in covered]
    for number in openers[-1:]:
        grown = blocks.grow(store, number, lower=first, upper=last)
        add(grown, _kind_for(None, [t for _, t in grown]), None, 7)
    tail = blocks.smart_tail(store, end, lower=first, keep=keep, size=_TAIL)
    add(tail, blocks._kind_of([t for _, t in tail], BlockKind.COMMAND), None, 10 if found else 0)
    return _merged(found)[:_LATER_BLOCKS]


def _interleaved(earlier: list[blocks.Block], later: list[blocks.Block]) -> list[blocks.Block]:
    """The first failing command's best block, the later command's best, then the rest;
    each at most _SPLIT_BLOCK_MAX lines so that both fit."""
    out: list[blocks.Block] = []
    for index in range(max(len(earlier), len(later))):
        for group in (earlier, later):
            if index < len(group):
                block = group[index]
                lines = blocks.trim(block.lines, _SPLIT_BLOCK_MAX)
                out.append(
                    blocks.Block(
                        lines[0][0], lines[-1][0], block.kind, block.rule, tuple(lines), len(out)
                    )
                )
    return out


_NEW_NEIGHBOURS = 5  # new lines next to a rule's block that join it (baseline mode)
_NEWISH = (LineStatus.NEW, LineStatus.CHANGED)


def _with_new_neighbours(
    block: blocks.Block, store: LineStore, status: dict[int, LineStatus]
) -> blocks.Block:
    """A rule's block grown by the new or changed lines right above and below it."""
    if block.rule is None:
        return block
    lines = dict(block.lines)
    for step, start in ((-1, block.start - 1), (1, block.end + 1)):
        number = start
        for _ in range(_NEW_NEIGHBOURS):
            text = store.get(number)
            if text is None or not text.strip() or blocks.boundary(text) or blocks.noise(text):
                break
            if status.get(number) not in _NEWISH:
                break
            lines[number] = text
            number += step
    if len(lines) == len(block.lines):
        return block
    ordered = tuple(sorted(lines.items()))
    return blocks.Block(ordered[0][0], ordered[-1][0], block.kind, block.rule, ordered, block.rank)


def _merged(candidates: list[blocks.Block]) -> list[blocks.Block]:
    """Blocks that touch (a list of compiler errors, one per line) become one; by rank."""
    out: list[blocks.Block] = []
    for block in sorted(candidates, key=lambda b: b.start):
        if out and block.start <= out[-1].end + 1:
            last = out[-1]
            lines = dict(last.lines)
            lines.update(block.lines)
            out[-1] = blocks.Block(
                last.start,
                max(last.end, block.end),
                last.kind if last.rank <= block.rank else block.kind,
                last.rule if last.rank <= block.rank else block.rule,
                tuple(sorted(lines.items())),
                min(last.rank, block.rank),
            )
        else:
            out.append(block)
    return _distinct(out)


def _distinct(candidates: list[blocks.Block]) -> list[blocks.Block]:
    """One block per distinct text: a retried or repeated failure prints the same block
    again; the last one is kept (failures come late) with the best rank of its copies."""
    latest: dict[tuple[str, ...], blocks.Block] = {}
    best: dict[tuple[str, ...], int] = {}
    for block in sorted(candidates, key=lambda b: b.start):
        key = tuple(_DIGITS.sub("#", blocks.without_nl(text.strip())) for _, text in block.lines)
        latest[key] = block
        best[key] = min(best.get(key, block.rank), block.rank)
    out = [
        blocks.Block(b.start, b.end, b.kind, b.rule, b.lines, best[key])
        for key, b in latest.items()
    ]
    out.sort(key=lambda b: (b.rank, b.start))
    return out


_DIGITS = re.compile(r"\d+")


_SHOWN = (Role.CAUSE, Role.CATCHALL, Role.DETAIL)
# Run summaries: they say that tests failed, not why.
_SUMMARY = re.compile(
    r"^\s*(=+ .* =+$|!+ .* !+$|\d+ failed|FAILED \(|Tests run: .*Fail|Tests: \d+|"
    r"\d+ (tests?|examples?), \d+ failures?|Ran \d+ tests?|ERRORS?!|FAILURES!|"
    r"Test Suites: |\d+ failing|BUILD FAILED|\[ERROR\] Tests run:|"
    r"\[\w+\] (Failed: Total \d|\*\*\* \d+ TESTS? FAILED))"
)
_SUMMARY_RANK = 15
_QUIET_LINES = 2000  # lines searched for failure-looking blocks when nothing says it failed


def _end_of_output(decision: RuleDecision, scan: ScanResult) -> int | None:
    """Where the failing output ends when no exit-status line says it: the failing step's
    first failure marker, else the end of the log (a log cut short, a runner that died)."""
    markers = [h for h in decision.in_scope if RULES_BY_ID[h.rule_id].role is Role.FAILED]
    if markers:
        return markers[0].line
    if decision.status is DiagnosisStatus.NO_FAILURE and not decision.in_scope:
        return None
    return scan.total_lines + 1


_TESTISH = (FailureCategory.TEST, FailureCategory.FLAKY_TEST)


def _category_of_rule(rule_id: str) -> FailureCategory | None:
    rule = RULES_BY_ID.get(rule_id)
    return rule.category if rule else None
