"""Failing-test names and pass/fail verdicts against BugSwarm's labelled Actions logs.

    .venv/bin/python benchmarks/bugswarm_failing_tests.py [--verbose]

Data: ../shared/data/ci-logs/bugswarm/ (expected.json holds BugSwarm's own labels).
BugSwarm names tests its own way (`method(pkg.Class)` for Maven, `tests.mod::test` for
pytest, `Suite test:` for Mocha, ...); we print runner-native ids. Two names are the same
test when one's word tokens (ignoring `py`) contain the other's.
A log matches when every expected name is found and no extra name is reported.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ci-logs" / "bugswarm"
sys.path.insert(0, str(ROOT / "src"))

from contexten.analysis.logs import diagnose  # noqa: E402

HIGH_CONFIDENCE = 0.5
_IGNORED_TOKENS = {"py"}


def tokens(name: str) -> frozenset[str]:
    return frozenset(t.lower() for t in re.findall(r"[A-Za-z0-9_\-]+", name)) - _IGNORED_TOKENS


def split_expected(names: str) -> list[str]:
    # Mocha titles end with ':' and may contain '#' themselves ("... #0:").
    parts = names.split(":#") if names.endswith(":") else names.split("#")
    out = []
    for part in parts:
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def same_test(a: str, b: str) -> bool:
    ta, tb = tokens(a), tokens(b)
    return bool(ta) and bool(tb) and (ta <= tb or tb <= ta)


def main() -> int:
    verbose = "--verbose" in sys.argv
    records = json.loads((DATA / "expected.json").read_text())
    with_names = strict_ok = recall_ok = 0
    passing = 0
    passing_high: list[tuple[str, float, str]] = []
    failures: list[str] = []
    seen_logs: set[str] = set()
    for record in records:
        if record.get("log_missing") or record["log"] in seen_logs:
            continue
        path = DATA / record["log"]
        if not path.exists():
            continue
        seen_logs.add(record["log"])
        expected = record.get("expected") or {}
        diagnosis = diagnose(path.read_bytes())
        if expected.get("status") == "ok":
            passing += 1
            if diagnosis.confidence >= HIGH_CONFIDENCE and diagnosis.failed:
                passing_high.append((record["log"], diagnosis.confidence, diagnosis.category))
        names = expected.get("tests_failed_names")
        if not names:
            continue
        with_names += 1
        wanted = split_expected(names)
        found = list(diagnosis.failing_tests)
        missing = [w for w in wanted if not any(same_test(w, f) for f in found)]
        extra = [f for f in found if not any(same_test(w, f) for w in wanted)]
        recall_ok += not missing
        strict_ok += not missing and not extra
        if missing or extra:
            failures.append(f"{record['log']}: missing={missing[:3]} extra={extra[:3]}")
    print(f"logs listing failing tests: {with_names}")
    print(
        f"  all names found and no extra: {strict_ok}/{with_names} = {strict_ok / with_names:.1%}"
    )
    print(
        f"  all names found:              {recall_ok}/{with_names} = {recall_ok / with_names:.1%}"
    )
    print(
        f"passing logs: {passing}; diagnosed as failed with confidence >= {HIGH_CONFIDENCE}: "
        f"{len(passing_high)}"
    )
    for log, confidence, category in passing_high:
        print(f"  {log}: {category} {confidence}")
    if verbose:
        for line in failures:
            print("  MISMATCH", line[:400])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
