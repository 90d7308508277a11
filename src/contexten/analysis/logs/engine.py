"""From the rule hits of one scan to a Diagnosis: category, evidence, signature.

decide() reads the rules' verdict, candidate_evidence() ranks the lines that may show it,
evidence.evidence_blocks() grows them into blocks, build() makes the Diagnosis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from contexten.analysis.logs import blocks
from contexten.analysis.logs.evidence import (
    _PRIORITY,
    _TRAVIS_STATUS,
    RuleDecision,
    _boilerplate,
    evidence_blocks,
)
from contexten.analysis.logs.model import (
    Diagnosis,
    DiagnosisStatus,
    EvidenceBlock,
    EvidenceLine,
    RuleMatch,
)
from contexten.analysis.logs.rules import JOB_LEVEL_RULES, RULES_BY_ID, Role
from contexten.analysis.logs.scan import Hit, ScanResult
from contexten.analysis.logs.text import normalise, stable_hash
from contexten.analysis.taxonomy import FailureCategory, is_transient, strategies_for

EVIDENCE_MAX = 30  # evidence lines at most (blocks.EVIDENCE_MAX)
_GENERIC_LINES = 10  # generic error lines that may anchor blocks when no rule names a cause
_PRIMARY_PER_RULE = 4
_DETAILS = 3
_GENERIC_FAILURE = re.compile(
    r"^##\[error\](Process completed with exit code|The process '.*' failed with exit code)"
)
_UNMATCHED_CONTEXT = 3


def _in_scope(hit: Hit, failing_step: int | None) -> bool:
    return failing_step is None or hit.step == failing_step or hit.rule_id in JOB_LEVEL_RULES


def _failing_step(scan: ScanResult) -> int | None:
    if not scan.steps:
        return None
    for hit in scan.hits:
        if RULES_BY_ID[hit.rule_id].role is Role.FAILED and hit.step >= 0:
            return hit.step
    return None


_ENVIRONMENT = frozenset(
    {FailureCategory.NETWORK, FailureCategory.RATE_LIMIT, FailureCategory.INTEGRATION}
)


def _looks_flaky(in_scope: tuple[Hit, ...]) -> bool:
    """A flaky signal, or a test report line that itself names a network/service error."""
    test_lines: set[int] = set()
    environment_lines: set[int] = set()
    for hit in in_scope:
        rule = RULES_BY_ID[hit.rule_id]
        if rule.role is Role.FLAKY:
            return True
        if rule.category is FailureCategory.TEST:
            test_lines.add(hit.line)
        elif rule.category in _ENVIRONMENT:
            environment_lines.add(hit.line)
    return bool(test_lines & environment_lines)


def _failing_command_scope(scan: ScanResult, hits: tuple[Hit, ...]) -> tuple[Hit, ...]:
    """Travis-style logs (no steps): the hits of the first failing command's output.

    The command runs from its echo (`$ make test`) to its status line (`The command "make
    test" exited with 2.`); a cause printed by an earlier command that did not fail (a
    `--version` banner, a tolerated install error) does not explain the failure. Unchanged
    when no cause lies in that output, and for job-level rules.
    """
    status = [
        h
        for h in hits
        if RULES_BY_ID[h.rule_id].role is Role.FAILED and _TRAVIS_STATUS.search(h.text)
    ]
    if not status:
        return hits
    end = status[0].line
    start = blocks.command_start(scan.lines, end)
    scoped = tuple(h for h in hits if start <= h.line <= end or h.rule_id in JOB_LEVEL_RULES)
    if any(RULES_BY_ID[h.rule_id].role is Role.CAUSE for h in scoped):
        return scoped
    return hits


_UNDER_TEST = 12  # lines under a test failure where its cause is printed
_ASSERTED = re.compile(r"(?i)\b(expected|assert\w*|should)\b")


def _environment_under_test(in_scope: tuple[Hit, ...]) -> FailureCategory | None:
    """The environment category of a service/network error printed under a test failure.

    A 503 or a refused connection on the failure's line or in the lines under it (its
    message, its `Caused by:`) is why the test failed. Lines that compare an expected
    value (`expected 200, got 503`, `assert status == 503`) are the test's own checks:
    they stay a test failure.
    """
    test_lines = [
        h.line
        for h in in_scope
        if RULES_BY_ID[h.rule_id].category is FailureCategory.TEST
        and RULES_BY_ID[h.rule_id].role in (Role.CAUSE, Role.DETAIL)
    ]
    if not test_lines:
        return None
    for hit in in_scope:
        rule = RULES_BY_ID[hit.rule_id]
        if rule.role is not Role.CAUSE or rule.category not in _ENVIRONMENT:
            continue
        if _ASSERTED.search(hit.text):
            continue
        if any(0 <= hit.line - line <= _UNDER_TEST for line in test_lines):
            return rule.category
    return None


def decide(scan: ScanResult) -> RuleDecision:
    is_actions = bool(scan.steps)
    failing_step = _failing_step(scan)
    causes = [h for h in scan.hits if RULES_BY_ID[h.rule_id].role is Role.CAUSE]
    markers = [h for h in scan.hits if RULES_BY_ID[h.rule_id].role is Role.FAILED]
    job_level = [h for h in causes if h.rule_id in JOB_LEVEL_RULES]
    failure_evident = bool(markers) or bool(job_level) or (not is_actions and bool(causes))
    in_scope = tuple(h for h in scan.hits if _in_scope(h, failing_step))
    if not is_actions:
        in_scope = _failing_command_scope(scan, in_scope)
    scoped_causes = [h for h in in_scope if RULES_BY_ID[h.rule_id].role is Role.CAUSE]
    penalty = 1.0
    if not scoped_causes and failing_step is not None:
        # A cause in an earlier step (one that did not stop the job, e.g. continue-on-error)
        # is weak evidence; later steps are clean-up and reports.
        earlier = tuple(h for h in scan.hits if h.step <= failing_step)
        scoped_causes = [h for h in earlier if RULES_BY_ID[h.rule_id].role is Role.CAUSE]
        if scoped_causes:
            in_scope, penalty = earlier, 0.5
    if scan.total_lines == 0 or not scan.has_text:
        return RuleDecision(
            FailureCategory.UNKNOWN, 0.0, DiagnosisStatus.EMPTY, None, None, (), False
        )
    if not scoped_causes:
        status = DiagnosisStatus.UNMATCHED if failure_evident else DiagnosisStatus.NO_FAILURE
        confidence = 0.2 if failure_evident else 0.05
        return RuleDecision(
            FailureCategory.UNKNOWN,
            confidence,
            status,
            None,
            failing_step,
            in_scope,
            failure_evident,
        )
    winner = min(scoped_causes, key=lambda h: (_PRIORITY[h.rule_id], h.line))
    rule = RULES_BY_ID[winner.rule_id]
    assert rule.category is not None
    category = rule.category
    same = {h.rule_id for h in scoped_causes if RULES_BY_ID[h.rule_id].category is category}
    confidence = min(0.99, rule.confidence + 0.02 * (len(same) - 1)) * penalty
    flaky_signal = any(RULES_BY_ID[h.rule_id].role is Role.FLAKY for h in in_scope)
    environment = None
    if category is FailureCategory.TEST and not flaky_signal:
        environment = _environment_under_test(in_scope)
    if environment is not None:
        # The test failed because a service it called answered 5xx / the network failed:
        # the root cause is the environment (a re-run is likely to pass).
        category = environment
        confidence *= 0.85
    elif category is FailureCategory.TEST and _looks_flaky(in_scope):
        category = FailureCategory.FLAKY_TEST
        confidence *= 0.85  # a guess from the failure's kind, not from a re-run
    if not failure_evident:
        confidence = min(confidence, 0.3)
    return RuleDecision(
        category,
        round(confidence, 3),
        DiagnosisStatus.DIAGNOSED,
        winner,
        failing_step,
        in_scope,
        failure_evident,
    )


def _category_of(hit: Hit) -> FailureCategory | None:
    return RULES_BY_ID[hit.rule_id].category


def _last_of_each(hits: Iterable[Hit]) -> list[Hit]:
    """The last of hits with the same text: a retried step or a re-run test suite prints
    its error again, and the last attempt is the one that failed the job."""
    last: dict[str, Hit] = {}
    for hit in hits:
        last.pop(key := blocks.without_nl(hit.text.strip()), None)
        last[key] = hit
    return list(last.values())


def candidate_evidence(decision: RuleDecision, scan: ScanResult) -> list[tuple[EvidenceLine, int]]:
    """Evidence candidates, each with a rank (lower = more telling), without duplicates."""
    ranked: list[tuple[EvidenceLine, int]] = []
    seen: set[int] = set()

    def add(hit: Hit, rank: int, reason: str) -> None:
        if hit.line not in seen:
            seen.add(hit.line)
            ranked.append((EvidenceLine(hit.line, hit.text, hit.rule_id, reason=reason), rank))

    if decision.status in (DiagnosisStatus.EMPTY, DiagnosisStatus.NO_FAILURE):
        return ranked
    if decision.winner is None:
        pool = [
            h
            for h in decision.in_scope
            if RULES_BY_ID[h.rule_id].role is Role.CATCHALL and not _GENERIC_FAILURE.match(h.text)
        ]
        for hit in pool[-_GENERIC_LINES:]:
            add(hit, 50, "a generic error line in the failing step")
        markers = [h for h in decision.in_scope if RULES_BY_ID[h.rule_id].role is Role.FAILED]
        first = markers[0].line if markers else scan.total_lines + 1
        before = [(n, t) for n, t in scan.context if n < first and not _boilerplate(t)]
        for number, text in before[-_UNMATCHED_CONTEXT:]:
            if number not in seen:
                seen.add(number)
                line = EvidenceLine(number, text, None, reason="the output before the failure")
                ranked.append((line, 55))
        if not ranked:
            for hit in markers[:1]:
                add(hit, 60, "the step failed here")
        return ranked
    category = decision.category
    base = FailureCategory.TEST if category is FailureCategory.FLAKY_TEST else category
    per_rule: dict[str, int] = {}
    causes = sorted(
        _last_of_each(h for h in decision.in_scope if RULES_BY_ID[h.rule_id].role is Role.CAUSE),
        key=lambda h: (_PRIORITY[h.rule_id], h.line),
    )
    for hit in causes:
        if _category_of(hit) is not base:
            continue
        count = per_rule.get(hit.rule_id, 0)
        if count >= _PRIMARY_PER_RULE * 3:
            continue
        per_rule[hit.rule_id] = count + 1
        rank = 0 if hit is decision.winner else (1 if count < _PRIMARY_PER_RULE else 20)
        add(hit, rank, f"names the cause ({hit.rule_id})")
    details = 0
    for hit in decision.in_scope:
        role = RULES_BY_ID[hit.rule_id].role
        if role is Role.DETAIL and _category_of(hit) is base and details < _DETAILS * 3:
            details += 1
            add(hit, 5 if details <= _DETAILS else 25, f"explains the failure ({hit.rule_id})")
        elif role is Role.FLAKY and category is FailureCategory.FLAKY_TEST:
            add(hit, 3, f"suggests a flaky test ({hit.rule_id})")
    return ranked


def rule_matches(scan: ScanResult, decision: RuleDecision) -> tuple[RuleMatch, ...]:
    first: dict[str, Hit] = {}
    counts: dict[str, int] = {}
    in_step: dict[str, bool] = {}
    for hit in scan.hits:
        first.setdefault(hit.rule_id, hit)
        counts[hit.rule_id] = counts.get(hit.rule_id, 0) + 1
        in_step[hit.rule_id] = in_step.get(hit.rule_id, False) or _in_scope(
            hit, decision.failing_step
        )
    winner_id = decision.winner.rule_id if decision.winner else None
    order = sorted(first, key=lambda rid: (rid != winner_id, _PRIORITY[rid]))
    out = []
    for rule_id in order:
        rule = RULES_BY_ID[rule_id]
        out.append(
            RuleMatch(
                rule_id,
                rule.category,
                rule.role.value,
                rule.description,
                rule.fix,
                counts[rule_id],
                first[rule_id].line,
                in_step[rule_id],
                rule_id == winner_id,
            )
        )
    return tuple(out)


def signature(
    decision: RuleDecision, evidence: tuple[EvidenceLine, ...], tests: tuple[str, ...]
) -> str:
    """Same cause in another run -> same value: rule, normalised cause lines or test names."""
    if decision.status in (DiagnosisStatus.EMPTY, DiagnosisStatus.NO_FAILURE):
        return stable_hash(decision.status.value)
    rule_id = decision.winner.rule_id if decision.winner else "none"
    if tests and decision.category in (FailureCategory.TEST, FailureCategory.FLAKY_TEST):
        parts = sorted({normalise(name) for name in tests})[:50]
    else:
        cause_lines = [line for line in evidence if line.rule == rule_id] or list(evidence)
        parts = sorted({normalise(line.text) for line in cause_lines})[:5]
    return stable_hash(decision.category.value, rule_id, *parts)


def step_name(scan: ScanResult, decision: RuleDecision) -> str | None:
    index = decision.failing_step
    if index is None and decision.winner is not None and decision.winner.step >= 0:
        index = decision.winner.step
    if index is None or index >= len(scan.steps):
        return None
    return scan.steps[index][1]


def summary(decision: RuleDecision) -> tuple[str, str]:
    """(one-line summary, fix hint)."""
    if decision.status is DiagnosisStatus.EMPTY:
        return "The log is empty.", "Check that the job produced a log (it may have expired)."
    if decision.status is DiagnosisStatus.NO_FAILURE:
        return "Nothing in the log says the job failed.", ""
    if decision.winner is None:
        return (
            "The job failed, but no rule names the cause.",
            "Read the evidence lines; add a rule if this failure recurs.",
        )
    rule = RULES_BY_ID[decision.winner.rule_id]
    text = rule.description
    if decision.category is FailureCategory.FLAKY_TEST:
        text += " The failure looks non-deterministic (flaky)."
    return text, rule.fix


def build(
    scan: ScanResult,
    decision: RuleDecision,
    evidence: tuple[EvidenceLine, ...],
    baseline: object = None,
    evidence_blocks: tuple[EvidenceBlock, ...] = (),
) -> Diagnosis:
    from contexten.analysis.logs.model import BaselineReport

    headline, fix = summary(decision)
    category = decision.category
    failed = decision.status in (DiagnosisStatus.DIAGNOSED, DiagnosisStatus.UNMATCHED)
    return Diagnosis(
        category=category,
        confidence=decision.confidence,
        status=decision.status,
        summary=headline,
        rules=rule_matches(scan, decision),
        evidence=evidence,
        failing_tests=scan.failing_tests,
        step=step_name(scan, decision),
        signature=signature(decision, evidence, scan.failing_tests),
        transient=failed and is_transient(category),
        recommended_strategies=strategies_for(category) if failed else (),
        fix_hint=fix,
        total_lines=scan.total_lines,
        baseline=baseline if isinstance(baseline, BaselineReport) else None,
        blocks=evidence_blocks,
    )


def diagnose_scan(scan: ScanResult) -> Diagnosis:
    decision = decide(scan)
    evidence, found = evidence_blocks(decision, scan, candidate_evidence(decision, scan))
    return build(scan, decision, evidence, evidence_blocks=found)
