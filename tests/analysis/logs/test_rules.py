"""Every rule: its positive examples fire it, its negative examples do not."""

from __future__ import annotations

import re

import pytest
from rule_examples import EXAMPLES, MULTI_LINE

from contexten.analysis.logs.matcher import _non_capturing
from contexten.analysis.logs.rules import RULES, RULES_BY_ID
from contexten.analysis.logs.scan import LogScanner

STAMP = "2024-04-13T10:00:13.2841061Z "
POSITIVE = [(rule_id, line) for rule_id, (pos, _) in EXAMPLES.items() for line in pos]
NEGATIVE = [(rule_id, line) for rule_id, (_, neg) in EXAMPLES.items() for line in neg]


def _fired(lines: list[str], engine: str | None = None) -> dict[int, set[str]]:
    log = "".join(STAMP + line + "\n" for line in lines)
    scan = LogScanner(engine).scan([log.encode()])
    fired: dict[int, set[str]] = {}
    for hit in scan.hits:
        fired.setdefault(hit.line, set()).add(hit.rule_id)
    for line, _ in scan.steps:
        fired.setdefault(line, set()).add("gha-step" if scan.steps else "")
    return fired


def test_every_rule_has_positive_and_negative_examples() -> None:
    covered = set(EXAMPLES) | set(MULTI_LINE)
    assert covered == set(RULES_BY_ID), sorted(set(RULES_BY_ID) ^ covered)
    for rule_id, (positives, negatives) in EXAMPLES.items():
        assert positives and negatives, rule_id


def test_rule_ids_are_unique_and_described() -> None:
    assert len({rule.id for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.description, rule.id
        if rule.role.value == "cause":
            assert rule.fix and rule.category is not None, rule.id


@pytest.mark.parametrize(("rule_id", "line"), POSITIVE)
def test_positive_example_fires(rule_id: str, line: str) -> None:
    rule = RULES_BY_ID[rule_id]
    flags = 0 if rule.case_sensitive else re.IGNORECASE
    # The prefilter must let through every raw line the exact pattern accepts.
    assert re.search(_non_capturing(rule.prefilter), STAMP + line, flags), "prefilter misses"
    if rule_id == "jenkins-stage":
        scan = LogScanner().scan([(line + "\n").encode()])
        assert scan.steps == ((1, "Build"),)
        return
    assert rule_id in _fired([line]).get(1, set())


@pytest.mark.parametrize(("rule_id", "line"), NEGATIVE)
def test_negative_example_does_not_fire(rule_id: str, line: str) -> None:
    if rule_id in ("gha-step", "jenkins-stage"):
        assert LogScanner().scan([(line + "\n").encode()]).steps == ()
        return
    assert rule_id not in _fired([line]).get(1, set())


@pytest.mark.parametrize("rule_id", sorted(MULTI_LINE))
def test_multi_line_rules(rule_id: str) -> None:
    lines, index, negative = MULTI_LINE[rule_id]
    assert rule_id in _fired(lines).get(index + 1, set())
    assert rule_id not in _fired(negative).get(index + 1, set())


@pytest.mark.parametrize("engine", ["hyperscan", "re2", "re"])
def test_engines_agree(engine: str) -> None:
    pytest.importorskip({"hyperscan": "hyperscan", "re2": "re2", "re": "re"}[engine])
    lines = [line for _, line in POSITIVE + NEGATIVE]
    assert _fired(lines, engine) == _fired(lines, "re")


ALL_LINES = sorted({line for _, line in POSITIVE + NEGATIVE})


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_prefilter_admits_every_line_the_pattern_accepts(rule: object) -> None:
    from contexten.analysis.logs.rules import Rule
    from contexten.analysis.logs.text import clean_line

    assert isinstance(rule, Rule)
    flags = 0 if rule.case_sensitive else re.IGNORECASE
    prefilter = re.compile(_non_capturing(rule.prefilter), flags)
    for line in ALL_LINES:
        if rule.regex.search(clean_line(STAMP + line)):
            assert prefilter.search(STAMP + line), line
