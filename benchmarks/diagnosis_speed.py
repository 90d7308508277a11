"""Speed and memory of log analysis on big generated Actions logs, side by side with grep.

    .venv/bin/python benchmarks/diagnosis_speed.py [--mb 100] [--runs 5] [--keep DIR]
        [--content synthetic|corpus]

Prints
1. single log: our analysis of an N MB failing log (failure near the end) vs
   `grep -E -c -f vocabulary` over the same file, where the vocabulary is exactly the set of
   patterns our scanner runs (case-insensitive ones spelled with [Xx] classes so grep needs
   no -i); ratio = ours / grep; peak RSS and tracemalloc peak of the analysing process;
2. with a baseline (issue 11): the failing log against an N MB passing log of the same job,
   time relative to the single-log analysis, and peak RSS;
3. `contexten analyze-log --json` on a 1 MB log, cold start (a new process each time).
Every analysis runs in its own subprocess (engine compile included). Single-log and baseline
runs alternate, `--runs` of each, so a change in machine load hits both alike; their
figures are medians (min in brackets), wall and CPU. grep and the CLI: best of 3.
`--content corpus` builds both logs from the real CI logs in ../shared/data/ci-logs
instead of a dozen templates (see generate_from_corpus).
"""

# ruff: noqa: E501  (report lines and log templates read best unbroken)

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

NOISE = [
    "tests/unit/test_module_{a}.py::test_case_{b} PASSED [ {p}%]",
    "tests/unit/test_errors_{a}.py::test_error_handling_{b} PASSED [ {p}%]",
    "  Downloading https://files.pythonhosted.org/packages/{h}/pkg-{a}.{b}.tar.gz ({p} kB)",
    "[INFO] Compiling {a} source files to /home/runner/work/proj/proj/target/classes",
    "[INFO] Tests run: {a}, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.{b} s - in com.acme.Module{a}Test",
    "ok  \tgithub.com/acme/proj/pkg/mod{a}\t0.{b}s",
    "  \u2713 handles request {a} correctly ({b} ms)",
    "  \u2713 reports an error when the input is invalid ({b} ms)",
    "npm WARN deprecated pkg{a}@1.{b}.0: this package is no longer supported",
    "WARNING: Retrying (Retry(total=4)) after connection broken by 'ReadTimeoutError' /simple/pkg{a}/",
    "DEBUG: exception handler registered for route /api/v{a}/items/{b}",
    "Progress: resolved {a}, reused {b}, downloaded 0, added {p}",
]
FAILURE = [
    "=================================== FAILURES ===================================",
    "______________________________ test_login ______________________________",
    ">       assert response.status_code == 200",
    "E       assert 401 == 200",
    "tests/test_auth.py:14: AssertionError",
    "=========================== short test summary info ============================",
    "FAILED tests/test_auth.py::test_login - assert 401 == 200",
    "========================= 1 failed, 9999 passed in 812.12s =========================",
    "##[error]Process completed with exit code 1.",
]


def generate(path: Path, megabytes: int, failing: bool, seed: int) -> None:
    """An Actions log: a few steps of noise, the failure (if any) in the last 1%."""
    order = random.Random(seed)  # which lines: the same for both runs of the job
    numbers = random.Random(seed * 7919 + (1 if failing else 2))  # what varies per run
    target = megabytes << 20
    size = 0
    with path.open("w", encoding="utf-8") as out:

        def write(line: str) -> None:
            nonlocal size
            second = size // 20000
            stamp = f"2024-05-01T1{second // 36000 % 10}:{second // 600 % 60:02d}:{second // 10 % 60:02d}"
            text = f"{stamp}.{numbers.randrange(10**7):07d}Z {line}\n"
            out.write(text)
            size += len(text)

        for step in ("actions/checkout@v4", "pip install -r requirements.txt", "pytest -q"):
            write(f"##[group]Run {step}")
            write("##[endgroup]")
            while size < target * (0.2 if step != "pytest -q" else 0.99):
                template = NOISE[order.randrange(len(NOISE))]
                write(
                    template.format(
                        a=order.randrange(1000),
                        b=numbers.randrange(1000),
                        p=numbers.randrange(100),
                        h=f"{numbers.getrandbits(64):016x}",
                    )
                )
        for line in FAILURE if failing else ["===== 10000 passed in 801.02s ====="]:
            write(line)
        write("Post job cleanup.")
        write("Cleaning up orphan processes")


CORPUS = ROOT.parent / "shared" / "data" / "ci-logs"
_STAMP = re.compile(rb"^(?:\xef\xbb\xbf)?\d{4}-\d\d-\d\dT[\d:.]+Z ?")
_DIGITS = re.compile(rb"\d+")


def generate_from_corpus(
    path: Path, megabytes: int, failing: bool, seed: int, data: Path = CORPUS
) -> None:
    """An N MB log of real CI log lines (the shared corpus, cycled), for realistic content.

    The synthetic logs repeat a dozen templates; real logs do not: about 40% of their lines
    are distinct once numbers and hex ids are set aside, which makes the line-key sets big.
    Each cycle through the corpus tags every third line with a word of its own (the same in
    both runs), so cycles do not simply repeat; the passing run has its own timestamps and,
    on one line in 20, other numbers.
    """
    lines = [
        _STAMP.sub(b"", line)
        for log in sorted(data.rglob("*.log"))
        for line in log.read_bytes().splitlines()
    ]
    words = random.Random(seed)
    numbers = random.Random(seed * 7919 + (1 if failing else 2))
    target, size = megabytes << 20, 0
    with path.open("wb") as out:

        def write(line: bytes) -> None:
            nonlocal size
            stamp = f"2024-05-01T10:{numbers.randrange(60):02d}:00.{numbers.randrange(10**7):07d}Z "
            text = stamp.encode() + line + b"\n"
            out.write(text)
            size += len(text)

        while size < target * 0.99:
            tag = b" " + bytes(words.choice(b"ghijklmnopqrstuvwxyz") for _ in range(6))
            for index, line in enumerate(lines):
                if not failing and numbers.random() < 0.05:
                    line = _DIGITS.sub(lambda _: str(numbers.randrange(1000)).encode(), line)
                write(line + (tag if index % 3 == 0 else b""))
                if size >= target * 0.99:
                    break
        for text in FAILURE if failing else ["===== 10000 passed in 801.02s ====="]:
            write(text.encode())


def _both_cases(pattern: str) -> str:
    """A case-insensitive pattern spelled case-sensitively: letters become [Xx] classes."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
        elif ch == "[":
            end = pattern.index("]", i + 2 if pattern[i + 1 : i + 2] in ("]", "^") else i + 1)
            body, items, j = pattern[i + 1 : end], [], 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-" and body[j].isalpha():
                    low, high = body[j], body[j + 2]
                    items.append(f"{low}-{high}{low.swapcase()}-{high.swapcase()}")
                    j += 3
                else:
                    c = body[j]
                    items.append(c + c.swapcase() if c.isascii() and c.isalpha() else c)
                    j += 1
            out.append("[" + "".join(items) + "]")
            i = end + 1
        else:
            out.append(f"[{ch.upper()}{ch.lower()}]" if ch.isascii() and ch.isalpha() else ch)
            i += 1
    return "".join(out)


def grep_vocabulary() -> list[str]:
    """Our scanner's patterns in grep -E syntax, without -i (see _both_cases)."""
    from contexten.analysis.logs.scan import prefilter_vocabulary

    return [
        p.pattern if p.case_sensitive else _both_cases(p.pattern) for p in prefilter_vocabulary()
    ]


ANALYSE = """
import json, resource, sys, time, tracemalloc
trace = sys.argv[3] == "trace"
if trace:
    tracemalloc.start()
from contexten.analysis.logs import diagnose_stream
def chunks(path):
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            yield block
paths = sys.argv[1], [p for p in sys.argv[2].split(",") if p]
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start, cpu_start = time.perf_counter(), cpu()
d = diagnose_stream(chunks(paths[0]), baseline_streams=[chunks(p) for p in paths[1]])
elapsed, cpu_seconds = time.perf_counter() - start, cpu() - cpu_start
peak = tracemalloc.get_traced_memory()[1] if trace else 0
print(json.dumps({"seconds": elapsed, "cpu": cpu_seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "traced_mb": peak / 2**20, "category": d.category.value,
                  "evidence": [e.line for e in d.evidence],
                  "baseline": d.baseline.to_dict() if d.baseline else None}))
"""


def analyse(failing: Path, baselines: list[Path], trace: bool = False) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            ANALYSE,
            str(failing),
            ",".join(map(str, baselines)),
            "trace" if trace else "-",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def best_of(runs: int, fn: object) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best, result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(float(run[key]) for run in runs))


def _spread(runs: list[dict[str, Any]], key: str) -> str:
    return f"{_median(runs, key):.2f} (min {min(float(run[key]) for run in runs):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5, help="analyses of each kind (median)")
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument(
        "--data",
        type=Path,
        default=CORPUS,
        help="the real CI logs for --content corpus (default ../shared/data/ci-logs)",
    )
    parser.add_argument(
        "--content",
        choices=("synthetic", "corpus"),
        default="synthetic",
        help="log lines: generated templates (the issue's benchmark) or real CI log lines",
    )
    args = parser.parse_args()
    if args.runs < 1 or args.mb < 1:
        parser.error("--runs and --mb must be at least 1")
    if args.content == "corpus" and not args.data.is_dir():
        parser.error(f"--content corpus: {args.data} not found (expected the shared CI logs)")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="contexten-speed-"))
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = "" if args.content == "synthetic" else "corpus-"
    failing, passing = workdir / f"{prefix}failing.log", workdir / f"{prefix}passing.log"
    small = workdir / "small.log"
    make = (
        generate
        if args.content == "synthetic"
        else functools.partial(generate_from_corpus, data=args.data)
    )
    for path, mb, is_failing, seed, maker in (
        (failing, args.mb, True, 1, make),
        (passing, args.mb, False, 1, make),
        (small, 1, True, 2, generate),
    ):
        if not path.exists():
            maker(path, mb, is_failing, seed)
    vocabulary = workdir / "vocabulary.txt"
    vocabulary.write_text("\n".join(grep_vocabulary()) + "\n", encoding="utf-8")
    lines = sum(1 for _ in failing.open("rb"))
    print(
        f"failing log: {failing.stat().st_size / 2**20:.0f} MB, {lines} lines; vocabulary: "
        f"{len(grep_vocabulary())} patterns"
    )

    import resource

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    grep_cpu = [float("inf")]

    def grep() -> str:
        before = children_cpu()
        proc = subprocess.run(
            ["grep", "-E", "-c", "-f", str(vocabulary), str(failing)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
        grep_cpu[0] = min(grep_cpu[0], children_cpu() - before)
        return proc.stdout.strip()

    grep_seconds, grep_count = best_of(3, grep)
    singles: list[dict[str, Any]] = []
    based: list[dict[str, Any]] = []
    for _ in range(args.runs):
        singles.append(analyse(failing, []))
        based.append(analyse(failing, [passing]))
    traced = analyse(failing, [], trace=True)
    single_wall, single_cpu = _median(singles, "seconds"), _median(singles, "cpu")
    print(
        f"grep -E -c -f vocabulary (LC_ALL=C): {grep_seconds:.2f} s wall, {grep_cpu[0]:.2f} s CPU "
        f"({grep_count} matching lines)"
    )
    print(
        f"ours, single log: {_spread(singles, 'seconds')} s wall, {_spread(singles, 'cpu')} s CPU "
        f"-> ratio {single_wall / grep_seconds:.1f}x grep (wall), "
        f"{single_cpu / grep_cpu[0]:.1f}x (CPU); category {singles[0]['category']}, "
        f"evidence lines {singles[0]['evidence']}"
    )
    print(
        f"  peak RSS of the analysing process: {max(r['rss_mb'] for r in singles):.0f} MB; "
        f"tracemalloc peak (Python allocations): {traced['traced_mb']:.1f} MB"
    )
    print(
        f"ours, with a {passing.stat().st_size / 2**20:.0f} MB passing log as baseline: "
        f"{_spread(based, 'seconds')} s wall, {_spread(based, 'cpu')} s CPU -> "
        f"{_median(based, 'seconds') / single_wall:.2f}x single-log (wall), "
        f"{_median(based, 'cpu') / single_cpu:.2f}x (CPU), medians of {args.runs} runs each; "
        f"peak RSS {max(r['rss_mb'] for r in based):.0f} MB"
    )
    paired = sorted(b["seconds"] / s["seconds"] for s, b in zip(singles, based, strict=True))
    print(f"  wall ratio of each alternating pair: {', '.join(f'{r:.2f}' for r in paired)}")
    print(f"  baseline: {json.dumps(based[0]['baseline'])[:300]}")
    print(f"  evidence with baseline: {based[0]['evidence']}")

    cli_cpu = [float("inf")]

    def cli() -> int:
        before = children_cpu()
        code = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "contexten"), "analyze-log", str(small), "--json"],
            capture_output=True,
            check=True,
        ).returncode
        cli_cpu[0] = min(cli_cpu[0], children_cpu() - before)
        return code

    cli_seconds, _ = best_of(3, cli)
    print(
        f"contexten analyze-log --json on a {small.stat().st_size / 2**20:.1f} MB log, cold start: "
        f"{cli_seconds:.2f} s wall, {cli_cpu[0]:.2f} s CPU"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.keep is None:
        for path in (failing, passing, small, vocabulary):
            path.unlink()
        workdir.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
