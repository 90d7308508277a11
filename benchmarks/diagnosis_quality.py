"""Diagnosis quality: real labelled CI logs first, then the synthetic corpus.

    .venv/bin/python benchmarks/diagnosis_quality.py [--data DIR] [--limit N] [--verbose]

Real logs (read from --data, default `../shared/data/ci-logs` beside the repository; a
clear message when absent; see benchmarks/real_logs.py):
- LogChunks dev split (430 failed Travis logs, the failure chunk a person marked): hit rate,
  line recall and precision of the first 30 evidence lines, overall and per ecosystem, next
  to a keyword grep (the last 20 lines matching error|fail|exception);
- BugSwarm's GitHub Actions logs (no evidence labels): share of failed jobs with evidence,
  lines and blocks per log, categories.

The synthetic corpus (tests/data/logs/corpus, written together with the rules: regression
only) then prints
- per category: precision and recall of the predicted category;
- evidence lines: micro precision / recall / F1 against the labelled lines, for our
  evidence and for the naive baseline (the last 20 lines matching error|fail|exception);
- the same with the passing run of each job given as a baseline (issue 11), per category.
The labels were written with each scenario in make_corpus.py, before the tool ran on it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "logs" / "corpus"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from real_logs import DEFAULT_DATA, score_logchunks  # noqa: E402

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


def real_logs(data: Path, limit: int | None) -> None:
    if not (data / "logchunks-dev" / "annotations.jsonl").is_file():
        print(
            f"real logs: {data / 'logchunks-dev'} not found; pass --data DIR (the directory "
            "holding logchunks-dev/ and bugswarm/). Skipped."
        )
        return

    def ours(raw: bytes) -> list[int]:
        return [line.line for line in diagnose(raw).evidence]

    def grep(raw: bytes) -> list[int]:
        return sorted(naive_lines(raw.decode("utf-8", "replace")))

    report = score_logchunks(data, ours, limit=limit)
    naive = score_logchunks(data, grep, limit=limit)
    print("LogChunks dev split (real Travis logs, human-marked failure chunk; 30 lines max):")
    print(f"  ours:          {report.total.row()}")
    print(f"  keyword grep:  {naive.total.row()}")
    print("  per ecosystem (ours):")
    for name, score in sorted(report.per_ecosystem.items()):
        print(f"    {name:<28} {score.row()}")
    bugswarm(data / "bugswarm")


def bugswarm(folder: Path) -> None:
    expected = folder / "expected.json"
    if not expected.is_file():
        print(f"BugSwarm: {folder} not found. Skipped.")
        return
    records = json.loads(expected.read_text(encoding="utf-8"))
    logs = with_evidence = lines = block_count = 0
    categories: Counter[str] = Counter()
    for record in records:
        path = folder / record["log"]
        if record["expected"].get("status") != "broken" or not path.is_file():
            continue
        diagnosis = diagnose(path.read_bytes())
        logs += 1
        with_evidence += bool(diagnosis.evidence)
        lines += len(diagnosis.evidence)
        block_count += len(diagnosis.blocks)
        categories[diagnosis.category.value] += 1
    if not logs:
        return
    print(f"BugSwarm GitHub Actions logs ({logs} failed jobs, no evidence labels):")
    print(
        f"  with evidence {with_evidence}/{logs}; lines/log {lines / logs:.1f}; "
        f"blocks/log {block_count / logs:.1f}"
    )
    print("  categories: " + ", ".join(f"{k} {v}" for k, v in categories.most_common()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="real CI log data")
    parser.add_argument("--limit", type=int, help="score only the first N LogChunks logs")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    verbose = args.verbose
    real_logs(args.data, args.limit)
    print()
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
    print(
        f"synthetic corpus (regression only): {len(labels)} failing logs, "
        "each with a passing run of the same job"
    )
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
