"""Real labelled CI logs for the quality benchmark: LogChunks (dev split) and BugSwarm.

LogChunks (Brandt et al., MSR 2020, CC BY 4.0): failed Travis CI logs, each with the chunk
a person marked as the reason the build failed. The chunk is located in the log as the
shared scorer does (`../shared/tools/score_evidence.py`): the last occurrence of its first
line, then each next line in order; ANSI codes removed, lines stripped, blank lines skipped.
At most `max_evidence` evidence lines count:

- hit rate: share of logs where at least one evidence line lies in the chunk;
- line recall: mean share of the chunk's lines the evidence covers;
- precision: mean share of the evidence lines that lie in the chunk.

The data is read from a path (default `../shared/data/ci-logs` beside the repository); the
benchmark says so clearly when it is absent. Nothing here is used by the tests.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ci-logs"

# LogChunks' repository languages grouped by build ecosystem (for the per-ecosystem rows).
ECOSYSTEM = {
    "C": "C/C++ (make, cmake)",
    "C++": "C/C++ (make, cmake)",
    "Objective-C": "Swift/Obj-C (xcodebuild)",
    "Swift": "Swift/Obj-C (xcodebuild)",
    "Haskell": "Haskell (cabal, stack)",
    "Lua": "Lua",
    "TeX": "TeX",
    "Elixir": "Elixir/Erlang (mix, rebar)",
    "Erlang": "Elixir/Erlang (mix, rebar)",
    "Clojure": "Clojure/Lisp (lein)",
    "Lisp": "Clojure/Lisp (lein)",
    "Scala": "Scala (sbt)",
    "Rust": "Rust (cargo)",
    "Go": "Go",
    "C#": ".NET",
    "PowerShell": ".NET",
    "PHP": "PHP (composer, phpunit)",
    "Python": "Python",
    "Ruby": "Ruby",
    "JavaScript": "JavaScript/TypeScript",
    "TypeScript": "JavaScript/TypeScript",
    "CoffeeScript": "JavaScript/TypeScript",
    "CSS": "Web (CSS, HTML)",
    "HTML": "Web (CSS, HTML)",
    "Shell": "Shell",
}


def clean(line: str) -> str:
    return ANSI.sub("", line).strip()


@dataclass(frozen=True, slots=True)
class Case:
    path: Path
    language: str
    span: frozenset[int]  # 1-based lines of the labelled chunk


def logchunks_cases(data: Path) -> Iterator[Case]:
    """Every dev-split log whose chunk can be located (unpacked once under the temp dir)."""
    source = data / "logchunks-dev"
    dest = Path(tempfile.gettempdir()) / "logchunks-dev"
    if not (dest / "logs").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(source / "logs.tar.xz") as archive:
            archive.extractall(dest, filter="data")
    with (source / "annotations.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    for record in records:
        path = dest / record["log"]
        if not path.exists():
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        lines = [clean(x) for x in text.splitlines()]
        chunk = [clean(x) for x in record["chunk"].splitlines() if clean(x)]
        if not chunk:
            continue
        starts = [i for i, x in enumerate(lines) if chunk[0] in x]
        span: set[int] = set()
        for start in starts[-1:]:
            j = start
            for piece in chunk:
                while j < len(lines) and piece not in lines[j]:
                    j += 1
                if j < len(lines):
                    span.add(j + 1)
                    j += 1
        if span:
            yield Case(path, record["language"], frozenset(span))


@dataclass
class Score:
    logs: int = 0
    hit: float = 0.0
    recall: float = 0.0
    precision: float = 0.0
    evidence: int = 0

    def add(self, evidence: list[int], span: frozenset[int]) -> tuple[float, float]:
        got = set(evidence)
        found = len(got & span)
        recall = found / len(span)
        precision = found / len(got) if got else 0.0
        self.logs += 1
        self.hit += recall > 0
        self.recall += recall
        self.precision += precision
        self.evidence += len(got)
        return recall, precision

    def row(self) -> str:
        n = max(self.logs, 1)
        return (
            f"{self.logs:>4} logs  hit {self.hit / n:.2f}  recall {self.recall / n:.2f}  "
            f"precision {self.precision / n:.2f}  lines/log {self.evidence / n:.1f}"
        )


@dataclass
class Report:
    total: Score = field(default_factory=Score)
    per_ecosystem: dict[str, Score] = field(default_factory=dict)
    cases: list[dict[str, object]] = field(default_factory=list)


def score_logchunks(
    data: Path,
    evidence_of: Callable[[bytes], list[int]],
    *,
    max_evidence: int = 30,
    limit: int | None = None,
) -> Report:
    report = Report()
    for index, case in enumerate(logchunks_cases(data)):
        if limit is not None and index >= limit:
            break
        lines = evidence_of(case.path.read_bytes())[:max_evidence]
        recall, precision = report.total.add(lines, case.span)
        group = ECOSYSTEM.get(case.language, case.language)
        report.per_ecosystem.setdefault(group, Score()).add(lines, case.span)
        report.cases.append(
            {
                "log": str(case.path),
                "language": case.language,
                "recall": round(recall, 3),
                "precision": round(precision, 3),
                "evidence": len(lines),
                "chunk": sorted(case.span),
                "got": lines,
            }
        )
    return report
