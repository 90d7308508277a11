"""Diagnose a failed job against passing runs of the same job: which lines are new.

The failing log is scanned once (as in single-log mode) while keeping a compact key of
every line (a hash of the raw bytes with digits and hex letters deleted and temp paths cut:
see text.line_key). Each passing log is then streamed block by block: its line keys are
computed at bytes.translate speed and compared with the keys of the candidate evidence
lines; only the few lines whose keys meet are decoded and compared exactly. Nothing of a
passing log is kept but a few counters and the statuses of the candidate lines.

- present: the same line (after removing timestamps, durations, ids, hashes, temp paths,
  ports, percentages, progress) occurs in a passing run;
- changed: a line equal up to numbers and hex ids occurs in a passing run;
- new: neither.

Rule hits that are present in a passing run do not decide the category when another rule
fired on a new line; new lines around the failure join the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import compress, count

from contexten.analysis.logs.engine import build, candidate_evidence, decide
from contexten.analysis.logs.evidence import RuleDecision, _region, evidence_blocks, exit_line
from contexten.analysis.logs.model import (
    BaselineLog,
    BaselineReport,
    Diagnosis,
    EvidenceLine,
    LineStatus,
    RemovedLine,
)
from contexten.analysis.logs.rules import RULES_BY_ID, Role
from contexten.analysis.logs.scan import Hit, LogScanner, ScanResult, _blocks, _canonical
from contexten.analysis.logs.text import (
    clean_line,
    contains_any,
    keyed_pieces,
    line_key,
    normalise_volatile,
)

MIN_STEP_OVERLAP = 0.5  # share of the failing job's steps a passing job must also have
MIN_LINE_OVERLAP = 0.2  # without steps: share of the passing log's lines also in the failing log
MAX_CHECKS_PER_KEY = 16  # passing lines compared exactly with one candidate key
_STEP = re.compile(r"^##\[group\]Run (.+)$")
_STEP_MARKER = (b"##[group]Run ",)
_REGION_COMPARED = 600  # last lines of the failing command compared with the passing runs
_AROUND_HIT = 25  # lines around a rule's line compared (its block may grow over them)
_HITS_GROWN = 100  # the last rule lines of the failing step whose surroundings are compared

Chunks = Iterable[bytes | str]


@dataclass
class _Comparison:
    lines: int = 0
    matched: int = 0
    steps: set[str] = field(default_factory=set)
    status: dict[int, LineStatus] = field(default_factory=dict)


def _candidates(scan: ScanResult) -> dict[int, tuple[int, str]]:
    """line number -> (key, text) for every line that could become evidence.

    Rule hits in the failing step (or in earlier steps when it has none) and the lines
    kept around hits and failure markers.
    """
    decision = decide(scan)
    pool = decision.in_scope
    if decision.failing_step is not None and decision.winner not in decision.in_scope:
        # The winner came from an earlier step: any hit up to the failing step may matter.
        pool = tuple(h for h in scan.hits if h.step <= decision.failing_step)
    out: dict[int, tuple[int, str]] = {}
    for hit in pool:
        if RULES_BY_ID[hit.rule_id].role is not Role.STEP:
            out[hit.line] = (hit.key, hit.text)
    keys = dict(scan.context_keys)
    for number, text in scan.context:
        if number in keys and number not in out:
            out[number] = (keys[number], text)
    # The failing command's (or step's) last output lines and the lines around the rules'
    # lines: blocks grow over them, and the new ones among them are the evidence.
    first, last = _region(decision, scan, exit_line(decision, scan))
    wanted = set(range(max(first, last - _REGION_COMPARED), last + 1))
    causes = [h for h in pool if RULES_BY_ID[h.rule_id].role in (Role.CAUSE, Role.DETAIL)]
    for hit in causes[-_HITS_GROWN:]:
        wanted.update(range(hit.line - _AROUND_HIT, hit.line + _AROUND_HIT + 1))
    for number in sorted(wanted):
        if number in out or number < 1:
            continue
        raw = scan.lines.raw(number)
        if raw is not None:
            out[number] = (line_key(raw), clean_line(raw.decode("utf-8", "replace")))
    return out


class _Normalised(dict[str, str]):
    """normalise_volatile of each text asked for, computed once: its slowest step per line."""

    def __missing__(self, text: str) -> str:
        value = self[text] = normalise_volatile(text)
        return value


class _Checker:
    """Exact comparison of the candidates with the passing lines that share their key.

    Normalisation only runs when the cleaned texts differ: most present lines are identical.
    A key is closed once all its lines are present or after MAX_CHECKS_PER_KEY lines.
    """

    def __init__(
        self,
        candidates: dict[int, tuple[int, str]],
        normalised: _Normalised,
        status: dict[int, LineStatus],
    ) -> None:
        self._candidates = candidates
        self._normalised = normalised
        self._status = status
        self._by_key: dict[int, list[int]] = {}
        for number, (key, _) in candidates.items():
            self._by_key.setdefault(key, []).append(number)
        self.open_keys = set(self._by_key)
        self._checks: dict[int, int] = {}

    def check_piece(self, piece: bytes, hashes: list[int]) -> None:
        """`hashes`: the line keys of `piece`, in order."""
        if self.open_keys.isdisjoint(hashes):  # most pieces (the fastest test)
            return
        # Where the open keys are, found at C speed: most lines are not candidates.
        found = list(compress(count(), map(self.open_keys.__contains__, hashes)))
        raw_lines = piece.split(b"\n")
        for index in found:
            key = hashes[index]
            if key in self.open_keys:  # it may have closed earlier in this piece
                self._check_line(key, clean_line(raw_lines[index].decode("utf-8", "replace")))

    def _check_line(self, key: int, text: str) -> None:
        numbers = self._by_key[key]
        normalised_text: str | None = None
        for number in numbers:
            wanted = self._candidates[number][1]
            if text != wanted:
                if normalised_text is None:
                    normalised_text = normalise_volatile(text)
                if self._normalised[wanted] != normalised_text:
                    self._status.setdefault(number, LineStatus.CHANGED)
                    continue
            self._status[number] = LineStatus.PRESENT
        self._checks[key] = self._checks.get(key, 0) + 1
        if self._checks[key] >= MAX_CHECKS_PER_KEY or all(
            self._status.get(n) is LineStatus.PRESENT for n in numbers
        ):
            self.open_keys.discard(key)  # seen often enough: it stays changed (or present)


def _compare(
    chunks: Chunks,
    candidates: dict[int, tuple[int, str]],
    failing_keys: set[int] | frozenset[int],
    normalised: _Normalised,
) -> _Comparison:
    """Stream one passing log: its line count, matched lines, steps, candidate statuses.

    `normalised` keeps the candidates' normalised texts from one passing log to the next.
    """
    result = _Comparison()
    checker = _Checker(candidates, normalised, result.status)
    for raw_block in _blocks(chunks):
        block = _canonical(raw_block)
        _collect_steps(block, result.steps)
        for piece, lines in keyed_pieces(block):
            hashes = list(map(hash, lines))
            result.lines += len(hashes)
            if failing_keys.issuperset(hashes):  # most pieces of a run of the same job
                result.matched += len(hashes)
            else:
                result.matched += sum(map(failing_keys.__contains__, hashes))
            if checker.open_keys:
                checker.check_piece(piece, hashes)
    return result


def _collect_steps(block: bytes, steps: set[str]) -> None:
    if not contains_any(block, _STEP_MARKER):
        return  # most blocks: one fast pass instead of a slower `find`
    position = block.find(b"##[group]Run ")
    while position >= 0:
        start = block.rfind(b"\n", 0, position) + 1
        end = block.find(b"\n", position)
        raw = block[start : end if end >= 0 else len(block)]
        match = _STEP.match(clean_line(raw.decode("utf-8", "replace")))
        if match:
            steps.add(normalise_volatile(match.group(1).strip()[:200]))
        position = block.find(b"##[group]Run ", position + 1)


def _same_job(scan: ScanResult, comparison: _Comparison) -> tuple[bool, str]:
    failing_steps = {normalise_volatile(name) for _, name in scan.steps}
    if failing_steps and comparison.steps:
        shared = len(failing_steps & comparison.steps)
        ok = shared / len(failing_steps) >= MIN_STEP_OVERLAP
        return ok, f"{shared} of {len(failing_steps)} steps in common"
    share = comparison.matched / comparison.lines if comparison.lines else 0.0
    return share >= MIN_LINE_OVERLAP, f"{share:.0%} of its lines in common"


def _without_present(scan: ScanResult, status: dict[int, LineStatus]) -> ScanResult:
    """The scan without rule hits on lines that also occur in a passing run."""
    kept = tuple(
        hit
        for hit in scan.hits
        if RULES_BY_ID[hit.rule_id].role in (Role.STEP, Role.FAILED)
        or status.get(hit.line) is not LineStatus.PRESENT
    )
    return replace(scan, hits=kept)


def diagnose_with_baseline(
    chunks: Chunks, baseline_streams: Sequence[Chunks], *, engine: str | None = None
) -> Diagnosis:
    scan = LogScanner(engine, keep_keys=True).scan(chunks)
    candidates = _candidates(scan)
    logs: list[BaselineLog] = []
    warnings: list[str] = []
    status: dict[int, LineStatus] = {}
    normalised = _Normalised()
    for index, stream in enumerate(baseline_streams, 1):
        comparison = _compare(stream, candidates, scan.line_keys, normalised)
        same, how = _same_job(scan, comparison)
        if not same:
            warning = f"baseline log {index} looks like another job ({how}): ignored"
            warnings.append(warning)
            logs.append(BaselineLog(comparison.lines, comparison.matched, False, warning))
            continue
        logs.append(BaselineLog(comparison.lines, comparison.matched, True))
        for number, line_status in comparison.status.items():
            if status.get(number) is not LineStatus.PRESENT:
                status[number] = line_status
    if not any(log.used for log in logs):
        single = decide(scan)
        evidence, found = evidence_blocks(single, scan, candidate_evidence(single, scan))
        report = BaselineReport(tuple(logs), (), tuple(warnings))
        return build(scan, single, evidence, report, found)
    compared = {n: status.get(n, LineStatus.NEW) for n in candidates}
    return _diagnose_aligned(scan, compared, tuple(logs), tuple(warnings))


def _diagnose_aligned(
    scan: ScanResult,
    status: dict[int, LineStatus],
    logs: tuple[BaselineLog, ...],
    warnings: tuple[str, ...],
) -> Diagnosis:
    """`status`: every compared line of the failing log (new, changed or present)."""
    original = decide(scan)
    filtered = _without_present(scan, status)
    decision = decide(filtered)
    if decision.winner is None and original.winner is not None:
        decision = original  # only lines the passing runs also have: trust the rules
        filtered = scan
    ranked = candidate_evidence(decision, filtered)

    def mark(line: EvidenceLine) -> EvidenceLine:
        line_status = status.get(line.line, LineStatus.NEW)
        return replace(line, status=line_status, reason=f"{line.reason}; {line_status.value}")

    ranked = [(mark(line), rank) for line, rank in ranked]
    # Generic error lines that a passing run also prints explain nothing.
    ranked = [
        (line, rank)
        for line, rank in ranked
        if line.status is not LineStatus.PRESENT
        or (line.rule is not None and RULES_BY_ID[line.rule].role is not Role.CATCHALL)
    ]

    def keep(number: int, text: str) -> bool:
        # Lines a passing run also prints leave a block (a rule's own line stays).
        return status.get(number) is not LineStatus.PRESENT

    evidence, found = evidence_blocks(decision, filtered, ranked, status=status, keep=keep)
    removed = _removed(scan, original, status)
    return build(scan, decision, evidence, BaselineReport(logs, removed, warnings), found)


def _removed(
    scan: ScanResult, decision: RuleDecision, status: dict[int, LineStatus]
) -> tuple[RemovedLine, ...]:
    """Rule hits of the single-log diagnosis that the passing runs also have."""
    single = [line for line, _ in candidate_evidence(decision, scan)]
    hits: dict[int, Hit] = {hit.line: hit for hit in scan.hits}
    out = []
    for line in single:
        if status.get(line.line) is LineStatus.PRESENT:
            rule = line.rule or (hits[line.line].rule_id if line.line in hits else "")
            out.append(RemovedLine(line.line, line.text, rule, "also in a passing run"))
    return tuple(out)
