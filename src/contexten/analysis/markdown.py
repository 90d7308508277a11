"""Markdown for reports: the one table-cell escaping, and `Table` (a table for a person).

Every report that writes a Markdown table (workflows, the audit, dependency plans, the
GitHub Actions job summary, test-history reports) escapes its cells here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def md_cell(value: object, limit: int | None = None) -> str:
    """`value` as one Markdown table cell: line breaks become spaces, `|` is escaped; cut to
    `limit` characters (ending in "…") when given."""
    text = str(value).replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    text = text.replace("|", "\\|")
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


@dataclass(frozen=True, slots=True)
class Table:
    """A table for a person to read: rendered as a Prefect table artifact or Markdown."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    title: str = ""

    def to_markdown(self) -> str:
        lines = []
        if self.title:
            lines.append(f"**{self.title}**\n")
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        lines.extend("| " + " | ".join(md_cell(v) for v in row) + " |" for row in self.rows)
        return "\n".join(lines)
