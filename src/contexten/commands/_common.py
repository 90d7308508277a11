"""Helpers shared by the command modules: errors, JSON output, the console."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import typer

EXIT_OK = 0
EXIT_FAILED = 1  # a workflow ran and failed, or findings at/above --fail-on
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print a one-line error to stderr and exit with `code`."""
    first_line = message.strip().splitlines()[0] if message.strip() else "error"
    print(f"contexten: error: {first_line}", file=sys.stderr)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def console(**options: Any) -> Any:
    """A rich console on stdout. When stdout is not a terminal, lines are not wrapped at a
    guessed width (rich would assume 80 columns and break long paths, URLs and log lines)."""
    from rich.console import Console

    options.setdefault("soft_wrap", not stdout_is_terminal())
    return Console(**options)


def stdout_is_terminal() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    wrap: Iterable[int] = (),
    right: Iterable[int] = (),
    keep_title: bool = False,
    out: Any = None,
) -> None:
    """Rows for a person on a terminal, or for a program when stdout is not a terminal.

    Piped or redirected: tab-separated lines, the column names first, one row a line, no
    colour, nothing cut or wrapped; the title only with `keep_title` (then as the first
    line). On a terminal: a rich table in which only the `wrap` columns (free text) wrap,
    at word boundaries; identifiers, paths and URLs stay whole. When the table cannot fit
    the terminal that way, each row is printed as a block of `column: value` lines
    instead, so nothing is ever cut or broken mid-word.

    A cell is a string (printed as is: no markup) or a rich Text (for colour). `out` is the
    rich console to print on (default: stdout's).
    """
    table_rows = [list(row) for row in rows]
    terminal = stdout_is_terminal() if out is None else out.is_terminal
    if not terminal:
        lines = [_plain_cell(title)] if keep_title and title else []
        lines += ["\t".join(columns)]
        lines += ["\t".join(_plain_cell(cell) for cell in row) for row in table_rows]
        target = sys.stdout if out is None else out.file
        target.write("\n".join(lines) + "\n")
        return
    from rich.table import Table
    from rich.text import Text

    out = out or console()
    wrapping, right_aligned = set(wrap), set(right)
    table = Table(title=title or None)
    for index, name in enumerate(columns):
        table.add_column(
            name,
            no_wrap=index not in wrapping,
            overflow="ellipsis" if index not in wrapping else "fold",
            justify="right" if index in right_aligned else "left",
        )
    for row in table_rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(str(cell)) for cell in row))
    if table.__rich_measure__(out, out.options).minimum <= out.width:
        out.print(table)
        return
    if title:
        out.print(Text(title, style="bold"))
    for row in table_rows:
        first = row[0] if isinstance(row[0], Text) else Text(str(row[0]), style="bold")
        out.print(first, soft_wrap=True)
        for name, cell in zip(columns[1:], row[1:], strict=False):
            value = cell if isinstance(cell, Text) else Text(str(cell))
            line = Text(f"  {name}: ")
            # the lines of a multi-line value stay under their column's name
            line.append_text(Text("\n    ").join(value.split("\n")))
            out.print(line, soft_wrap=True)


def _plain_cell(cell: Any) -> str:
    text = cell.plain if hasattr(cell, "plain") else str(cell)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
