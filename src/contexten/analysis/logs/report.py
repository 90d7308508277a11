"""Plain renderings of a Diagnosis (Markdown for issues, PR comments and reports)."""

from __future__ import annotations

from contexten.analysis.logs.model import Diagnosis, EvidenceBlock, EvidenceLine
from contexten.analysis.logs.prompt import sanitize

MAX_TESTS_SHOWN = 30


def excerpts(diagnosis: Diagnosis) -> list[tuple[EvidenceBlock | None, list[EvidenceLine]]]:
    """The evidence lines grouped by block, most telling block first.

    A diagnosis without blocks (built by older code) gives one group of all its lines.
    """
    if not diagnosis.blocks:
        return [(None, list(diagnosis.evidence))] if diagnosis.evidence else []
    out: list[tuple[EvidenceBlock | None, list[EvidenceLine]]] = []
    left = list(diagnosis.evidence)
    for block in diagnosis.blocks:
        inside = [line for line in left if block.start <= line.line <= block.end]
        left = [line for line in left if not block.start <= line.line <= block.end]
        if inside:
            out.append((block, inside))
    if left:
        out.append((None, left))
    return out


def preview(diagnosis: Diagnosis, limit: int) -> list[EvidenceLine]:
    """At most `limit` evidence lines for a short message, most telling first: the first
    block cut down to its message lines (exception, assertion, `E ...`, Caused by:) before
    its frames and context, then the next blocks; each block's lines in log order."""
    from contexten.analysis.logs.blocks import trim

    out: list[EvidenceLine] = []
    for _block, group in excerpts(diagnosis):
        left = limit - len(out)
        if left <= 0:
            break
        by_line = {line.line: line for line in group}
        kept = trim([(line.line, line.text) for line in group], left)
        out.extend(by_line[number] for number, _ in kept)
    return out


def excerpt_title(index: int, block: EvidenceBlock | None) -> str:
    if block is None:
        return f"[{index}] other lines"
    where = (
        f"line {block.start}" if block.start == block.end else f"lines {block.start}-{block.end}"
    )
    rule = f", rule {block.rule}" if block.rule else ""
    return f"[{index}] {where} ({block.kind.value}{rule})"


def _fence(lines: list[str]) -> str:
    body = "\n".join(lines)
    return "```text\n" + body + "\n```"


def _cell(text: str) -> str:
    return sanitize(text, 200).replace("|", "\\|")


def to_markdown(diagnosis: Diagnosis, *, explain: bool = False) -> str:
    d = diagnosis
    out = [
        f"### CI failure: `{d.category.value}` (confidence {d.confidence:.2f})",
        "",
        d.summary,
        "",
    ]
    if d.step:
        out.append(f"- **Step:** `{sanitize(d.step, 200).replace('`', 'ˋ')}`")
    out.append(f"- **Transient:** {'yes' if d.transient else 'no'}")
    if d.recommended_strategies:
        strategies = ", ".join(s.value for s in d.recommended_strategies)
        out.append(f"- **Recommended recovery:** {strategies}")
    if d.fix_hint:
        out.append(f"- **Fix:** {d.fix_hint}")
    out.append(f"- **Signature:** `{d.signature}`")
    if d.baseline is not None:
        used = d.baseline.used
        out.append(f"- **Compared with:** {used} passing run(s)")
        out.extend(f"- **Warning:** {sanitize(w, 300)}" for w in d.baseline.warnings)
    if d.failing_tests:
        out += ["", f"**Failing tests ({len(d.failing_tests)}):**", ""]
        shown = d.failing_tests[:MAX_TESTS_SHOWN]
        out.extend(f"- `{sanitize(name, 300).replace('`', 'ˋ')}`" for name in shown)
        if len(d.failing_tests) > len(shown):
            out.append(f"- … and {len(d.failing_tests) - len(shown)} more")
    if d.evidence:
        out += ["", "**Evidence:**"]
        for index, (block, group) in enumerate(excerpts(d), 1):
            lines = []
            for line in group:
                mark = f" [{line.status.value}]" if line.status is not None else ""
                lines.append(f"{line.line:>7}{mark}: {sanitize(line.text)}")
            out += ["", f"{excerpt_title(index, block)}:", "", _fence(lines)]
    if explain:
        out += [
            "",
            "**Rules fired:**",
            "",
            "| rule | category | lines | first | in failing step | decided |",
            "|---|---|---|---|---|---|",
        ]
        for match in d.rules:
            category = match.category.value if match.category else "-"
            out.append(
                f"| {match.rule_id} | {category} | {match.count} | {match.first_line} | "
                f"{'yes' if match.in_failing_step else 'no'} | "
                f"{'**yes**' if match.decided else ''} |"
            )
        if d.baseline is not None and d.baseline.removed:
            out += ["", "**Removed by the baseline:**", ""]
            out.append(
                _fence(
                    [f"{r.line:>7}: {sanitize(r.text)}  ({r.reason})" for r in d.baseline.removed]
                )
            )
    return "\n".join(out) + "\n"
