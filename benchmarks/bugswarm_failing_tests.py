"""Failing-test names against BugSwarm's labelled GitHub Actions logs.

    .venv/bin/python benchmarks/bugswarm_failing_tests.py [--data DIR] [--verbose]

Data: `--data` (default ../shared/data/ci-logs/bugswarm beside the repository): the raw
logs and expected.json with BugSwarm's own labels (`tests_failed_names`, '#'-separated).

Printed:
- "all named": the share of the logs with labelled names where every labelled test is named;
- precision: of the names reported on logs whose failing tests are known (labelled names, or
  no failing test at all: passing jobs, build failures), the share that name a labelled test
  not already named by an earlier entry (so entries that are not tests and duplicates count
  against it);
- the verdicts on passing logs (a passing job must not be called failed with confidence);
- the category where BugSwarm's labels imply it: a job whose tests failed must come out
  `test` or `flaky_test`, a job that could not resolve a dependency `dependency` (BugSwarm
  labels no other root cause).

BugSwarm names tests its own way (`method(pkg.Class)` for Maven, `tests.mod::test` for
pytest, `Suite test:` for Mocha, ...); we print runner-native ids. A reported name names a
labelled test when its word tokens (ignoring `py`) contain the label's; a shorter report is
accepted only when it still holds the label's last token (the test's own name) and one more
(its class, suite or module), since a log may print a test without the package BugSwarm
read elsewhere. unittest's `mod (unittest.loader._FailedTest)` label is the module `mod`.
Logs labelled with failing tests but no names are left out of both figures.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ci-logs" / "bugswarm"
sys.path.insert(0, str(ROOT / "src"))

from contexten.analysis.logs import diagnose  # noqa: E402

HIGH_CONFIDENCE = 0.5
_IGNORED_TOKENS = {"py"}
_FAILED_IMPORT = " (unittest.loader._FailedTest)"


def tokens(name: str) -> list[str]:
    found = re.findall(r"[^\W_](?:[\w\-]*[^\W_])?|_\w+", name)
    return [t.lower() for t in found if t.lower() not in _IGNORED_TOKENS]


def split_expected(names: str) -> list[str]:
    """The labelled names, in order, repeats kept (parametrised runs share one label)."""
    # Mocha titles end with ':' and may contain '#' themselves ("... #0:").
    parts = names.split(":#") if names.endswith(":") else names.split("#")
    # `mod (unittest.loader._FailedTest)` is unittest's stand-in for a module that failed
    # to import: the module is the name.
    parts = [part.replace(_FAILED_IMPORT, "").strip() for part in parts]
    return [part for part in parts if part]


def names_test(found: str, wanted: str) -> bool:
    have, want = set(tokens(found)), tokens(wanted)
    if not have or not want:
        return False
    if set(want) <= have:
        return True
    leaf = want[-1]
    return have <= set(want) and leaf in have and len(have) >= 2


@dataclass
class Tally:
    with_names: int = 0
    all_named: int = 0
    reported: int = 0
    correct: int = 0
    passing: int = 0
    passing_high: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    categories: dict[str, list[int]] = field(default_factory=dict)  # kind -> [right, all]
    wrong_categories: list[str] = field(default_factory=list)


_IMPLIED = {
    "tests failed": ("test", "flaky_test"),
    "a dependency was not resolved": ("dependency",),
}


def implied_kind(expected: dict[str, object]) -> str | None:
    """The root-cause kind BugSwarm's labels imply for a failed job, if any."""
    if expected.get("status") == "ok":
        return None
    if expected.get("could_not_resolve_dep"):
        return "a dependency was not resolved"
    if expected.get("tests_failed_bool") and expected.get("num_tests_failed") not in (0, "NA"):
        return "tests failed"
    return None


def score_names(found: list[str], wanted: list[str]) -> tuple[list[str], list[str]]:
    """(labels no reported name covers, reported names that are wrong or repeats)."""
    claimed = [False] * len(wanted)
    wrong: list[str] = []
    for name in found:
        matches = [i for i, w in enumerate(wanted) if names_test(name, w)]
        free = [i for i in matches if not claimed[i]]
        if free:
            claimed[free[0]] = True
        else:
            wrong.append(name if not matches else f"{name} (again)")
    missing = []
    for label in dict.fromkeys(wanted):
        if not any(names_test(name, label) for name in found):
            missing.append(label)
    return missing, wrong


def measure(data: Path) -> Tally:
    tally = Tally()
    records = json.loads((data / "expected.json").read_text())
    seen: set[str] = set()
    for record in records:
        path = data / record["log"]
        if record.get("log_missing") or record["log"] in seen or not path.exists():
            continue
        seen.add(record["log"])
        expected = record.get("expected") or {}
        diagnosis = diagnose(path.read_bytes())
        if expected.get("status") == "ok":
            tally.passing += 1
            if diagnosis.confidence >= HIGH_CONFIDENCE and diagnosis.failed:
                tally.passing_high.append(
                    f"{record['log']}: {diagnosis.category} {diagnosis.confidence}"
                )
        kind = implied_kind(expected)
        if kind is not None:
            counts = tally.categories.setdefault(kind, [0, 0])
            counts[1] += 1
            if diagnosis.category.value in _IMPLIED[kind]:
                counts[0] += 1
            else:
                tally.wrong_categories.append(f"{record['log']}: {kind} -> {diagnosis.category}")
        found = list(diagnosis.failing_tests)
        labels = expected.get("tests_failed_names") or ""
        if labels:
            tally.with_names += 1
            wanted = split_expected(labels)
        elif expected.get("status") == "ok" or expected.get("num_tests_failed") == 0:
            wanted = []  # no failing test: every reported name is wrong
        else:
            continue  # failing tests without names: cannot judge
        missing, wrong = score_names(found, wanted)
        if labels and not missing:
            tally.all_named += 1
        tally.reported += len(found)
        tally.correct += len(found) - len(wrong)
        if missing or wrong:
            tally.mismatches.append(f"{record['log']}: missing={missing} wrong={wrong}")
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BugSwarm log folder")
    parser.add_argument("--verbose", action="store_true", help="print every mismatch")
    args = parser.parse_args(argv)
    if not (args.data / "expected.json").is_file():
        print(
            f"no BugSwarm data at {args.data} (expected.json missing); pass --data DIR",
            file=sys.stderr,
        )
        return 2
    tally = measure(args.data)
    share = tally.all_named / tally.with_names if tally.with_names else 0.0
    precision = tally.correct / tally.reported if tally.reported else 1.0
    print(f"logs with labelled failing-test names: {tally.with_names}")
    print(f"  all named: {tally.all_named}/{tally.with_names} = {share:.2f}")
    print(f"  precision: {tally.correct}/{tally.reported} = {precision:.2f}")
    print(
        f"passing logs: {tally.passing}; diagnosed as failed with confidence >= "
        f"{HIGH_CONFIDENCE}: {len(tally.passing_high)}"
    )
    for line in tally.passing_high:
        print(f"  {line}")
    for kind, (right, total) in sorted(tally.categories.items()):
        wanted = " or ".join(_IMPLIED[kind])
        print(f"category where {kind}: {wanted} in {right}/{total} = {right / total:.2f}")
    for line in tally.wrong_categories:
        print(f"  {line}")
    if args.verbose:
        for line in tally.mismatches:
            print("  MISMATCH", line[:600])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
