"""`contexten analyze-log PATH`: say why a CI job failed, with the lines that prove it.

    contexten analyze-log job.log                      # text (rich)
    contexten analyze-log job.log --json               # one JSON object
    contexten analyze-log - --format markdown < job.log
    contexten analyze-log failed.log --baseline-log passed.log --explain

Only the analysis package and rich are imported: this path must start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING

import typer

from contexten.commands._common import EXIT_OK, fail, print_json

if TYPE_CHECKING:
    from contexten.analysis.logs.model import Diagnosis

app = typer.Typer(add_completion=False)

READ_BYTES = 1 << 20
SNIFF_BYTES = 8192
MAX_BASELINES = 3


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


class _Source:
    """One log input: a file or standard input, checked up front, then read in chunks."""

    def __init__(self, name: str, stream: IO[bytes], head: bytes) -> None:
        self.name = name
        self._stream = stream
        self._head = head

    def chunks(self) -> Iterator[bytes]:
        if self._head:
            yield self._head
        while True:
            chunk = self._stream.read(READ_BYTES)
            if not chunk:
                break
            yield chunk
        if self._stream is not sys.stdin.buffer:
            self._stream.close()


def _open(name: str, role: str) -> _Source:
    if name == "-":
        stream: IO[bytes] = sys.stdin.buffer
    else:
        path = Path(name)
        if not path.exists():
            fail(f"{role} {name!r} does not exist (expected a CI log file or '-')")
        if path.is_dir():
            fail(f"{role} {name!r} is a directory (expected a CI log file)")
        try:
            stream = path.open("rb")
        except OSError as exc:
            fail(f"{role} {name!r} cannot be read: {exc.strerror}")
    head = stream.read(SNIFF_BYTES)
    if b"\x00" in head:
        fail(f"{role} {name!r} looks binary (NUL bytes); expected a text log")
    return _Source(name, stream, head)


def _print_text(diagnosis: Diagnosis, explain: bool) -> None:
    from rich.text import Text

    from contexten.commands._common import console as make_console
    from contexten.commands._common import print_table

    console = make_console(highlight=False)
    d = diagnosis
    style = {"diagnosed": "bold red", "unmatched": "bold yellow"}.get(d.status.value, "bold green")
    console.print(
        Text.assemble(
            (f"{d.category.value}", style), f"  confidence {d.confidence:.2f}  ({d.status.value})"
        )
    )
    console.print(Text(d.summary))
    if d.step:
        console.print(Text.assemble(("step: ", "dim"), d.step))
    if d.failing_tests:
        shown = ", ".join(d.failing_tests[:10])
        more = f" (+{len(d.failing_tests) - 10} more)" if len(d.failing_tests) > 10 else ""
        console.print(Text.assemble(("failing tests: ", "dim"), shown + more))
    if d.baseline is not None:
        console.print(
            Text.assemble(("baseline: ", "dim"), f"{d.baseline.used} passing log(s) used")
        )
        for warning in d.baseline.warnings:
            console.print(Text.assemble(("warning: ", "bold yellow"), warning))
    if d.evidence:
        from contexten.analysis.logs.report import excerpt_title, excerpts

        console.print(Text("evidence:", style="dim"))
        for index, (block, group) in enumerate(excerpts(d), 1):
            console.print(Text(excerpt_title(index, block), style="bold"))
            for line in group:
                mark = f" {line.status.value:<7}" if line.status is not None else ""
                console.print(Text.assemble((f"{line.line:>8}{mark} ", "cyan"), line.text))
    if d.recommended_strategies:
        strategies = ", ".join(s.value for s in d.recommended_strategies)
        transient = "transient" if d.transient else "not transient"
        console.print(Text.assemble(("recovery: ", "dim"), f"{strategies} ({transient})"))
    if d.fix_hint:
        console.print(Text.assemble(("fix: ", "dim"), d.fix_hint))
    console.print(Text.assemble(("signature: ", "dim"), d.signature))
    if not explain:
        return
    print_table(
        "rules fired",
        ("rule", "category", "role", "lines", "first", "in step", "decided"),
        [
            (
                match.rule_id,
                match.category.value if match.category else "-",
                match.role,
                str(match.count),
                str(match.first_line),
                "yes" if match.in_failing_step else "no",
                "yes" if match.decided else "",
            )
            for match in d.rules
        ],
        right=[3, 4],
        keep_title=True,
    )
    if any(line.reason for line in d.evidence):
        console.print(Text("why each evidence line was kept:", style="dim"))
        for line in d.evidence:
            console.print(Text.assemble((f"{line.line:>8} ", "cyan"), line.reason))
    if d.baseline is not None and d.baseline.removed:
        console.print(Text("removed by the baseline:", style="dim"))
        for removed in d.baseline.removed:
            console.print(
                Text.assemble(
                    (f"{removed.line:>8} ", "cyan"), removed.text, (f"  ({removed.reason})", "dim")
                )
            )


@app.command()
def analyze_log(
    path: str = typer.Argument(..., help="the job log, or '-' for standard input"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    output_format: OutputFormat = typer.Option(
        OutputFormat.TEXT, "--format", help="text, json or markdown"
    ),
    explain: bool = typer.Option(
        False, "--explain", help="show which rules fired and why lines were kept"
    ),
    baseline_logs: list[str] = typer.Option(
        [], "--baseline-log", help="a passing log of the same job (up to 3; '-' = stdin)"
    ),
) -> None:
    """Diagnose a CI job log: category, evidence lines, failing tests, signature."""
    if len(baseline_logs) > MAX_BASELINES:
        fail(f"--baseline-log given {len(baseline_logs)} times (expected at most {MAX_BASELINES})")
    if [path, *baseline_logs].count("-") > 1:
        fail("'-' (standard input) can be given only once")
    source = _open(path, "log")
    baselines = [_open(name, "baseline log") for name in baseline_logs]
    from contexten.analysis.logs import diagnose_stream

    diagnosis = diagnose_stream(source.chunks(), baseline_streams=[b.chunks() for b in baselines])
    chosen = OutputFormat.JSON if as_json else output_format
    if chosen is OutputFormat.JSON:
        print_json(diagnosis.to_dict())
    elif chosen is OutputFormat.MARKDOWN:
        from contexten.analysis.logs.report import to_markdown

        sys.stdout.write(to_markdown(diagnosis, explain=explain))
    else:
        _print_text(diagnosis, explain)
    raise typer.Exit(EXIT_OK)
