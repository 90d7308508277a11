"""Diagnosis quality on the labelled corpus (tests/data/logs/corpus).

    .venv/bin/python benchmarks/diagnosis_quality.py [--verbose]

Prints
- per category: precision and recall of the predicted category;
- evidence lines: micro precision / recall / F1 against the labelled lines, for our
  evidence and for the naive baseline (the last 20 lines matching error|fail|exception);
- the same with the passing run of each job given as a baseline (issue 11), per category.
The labels were written with each scenario in make_corpus.py, before the tool ran on it.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "logs" / "corpus"
sys.path.insert(0, str(ROOT / "src"))

from contexten.analysis.logs import diagnose  # noqa: E402

NAIVE = re.compile(r"error|fail|exception", re.IGNORECASE)


def naive_lines(text: str, keep: int = 20) -> set[int]:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if NAIVE.search(line)]
    return set(hits[-keep:])


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


class Tally:
    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0

    def add(self, predicted: set[int], truth: set[int]) -> None:
        self.tp += len(predicted & truth)
        self.fp += len(predicted - truth)
        self.fn += len(truth - predicted)

    def row(self) -> str:
        p, r, f = prf(self.tp, self.fp, self.fn)
        return f"P {p:.2f}  R {r:.2f}  F1 {f:.2f}"


def main() -> int:
    verbose = "--verbose" in sys.argv
    labels = json.loads((CORPUS / "labels.json").read_text(encoding="utf-8"))
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    ours, naive, with_base = Tally(), Tally(), Tally()
    per_cat_single: dict[str, Tally] = defaultdict(Tally)
    per_cat_base: dict[str, Tally] = defaultdict(Tally)
    tests_ok = tests_total = 0
    for name, label in sorted(labels.items()):
        text = (CORPUS / name).read_text(encoding="utf-8")
        passing = (CORPUS / label["passing_log"]).read_text(encoding="utf-8")
        truth = set(label["evidence"])
        expected = label["category"]
        single = diagnose(text)
        based = diagnose(text, baseline_logs=[passing])
        confusion[expected][single.category.value] += 1
        got = {e.line for e in single.evidence}
        got_base = {e.line for e in based.evidence}
        ours.add(got, truth)
        naive.add(naive_lines(text), truth)
        with_base.add(got_base, truth)
        per_cat_single[expected].add(got, truth)
        per_cat_base[expected].add(got_base, truth)
        if label["failing_tests"]:
            tests_total += 1
            tests_ok += list(single.failing_tests) == label["failing_tests"]
        if verbose and (single.category.value != expected or got != truth):
            print(
                f"  {name}: expected {expected} got {single.category.value}; "
                f"missing {sorted(truth - got)} extra {sorted(got - truth)}"
            )
    categories = sorted(set(confusion) | {c for row in confusion.values() for c in row})
    print(f"corpus: {len(labels)} failing logs, each with a passing run of the same job")
    print("category        n   precision  recall")
    correct = 0
    for category in categories:
        tp = confusion[category][category]
        predicted = sum(confusion[c][category] for c in confusion)
        actual = sum(confusion[category].values())
        correct += tp
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        print(f"{category:<15} {actual:>2}   {p:>9.2f}  {r:>6.2f}")
    print(f"accuracy: {correct}/{len(labels)} = {correct / len(labels):.1%}")
    print(f"failing tests exactly right: {tests_ok}/{tests_total}")
    print("evidence lines (micro-averaged over all logs):")
    print(f"  naive (last 20 error|fail|exception lines): {naive.row()}")
    print(f"  ours, single log:                           {ours.row()}")
    print(f"  ours, with the passing run as baseline:     {with_base.row()}")
    print("evidence lines per category: single log | with baseline")
    for category in sorted(per_cat_single):
        print(f"  {category:<20} {per_cat_single[category].row()} | {per_cat_base[category].row()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
