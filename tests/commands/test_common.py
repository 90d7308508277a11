"""`commands._common.print_table`: rows stay whole when piped and at 80 columns."""

from __future__ import annotations

import pytest
from rich.console import Console

from contexten.commands import _common

URL = "https://github.com/octo/repo/actions/runs/1234567890/attempts/2"
ROWS = [
    ("run-1234567890", URL, "the job failed because the network dropped the connection twice"),
    ("run-2", "https://example.com/x", "short"),
]


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> list[Console]:
    """stdout is an 80-column terminal; the consoles record what they print."""
    made: list[Console] = []

    def console() -> Console:
        made.append(Console(width=80, record=True, force_terminal=True))
        return made[-1]

    monkeypatch.setattr(_common, "stdout_is_terminal", lambda: True)
    monkeypatch.setattr(_common, "console", console)
    return made


def _lines(consoles: list[Console]) -> list[str]:
    return [line.rstrip() for c in consoles for line in c.export_text().splitlines()]


def test_piped_output_is_tab_separated_with_the_column_names_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _common.print_table("runs", ("run", "url", "note"), ROWS, wrap=[2])
    assert capsys.readouterr().out.splitlines() == [
        "run\turl\tnote",
        "\t".join(ROWS[0]),
        "\t".join(ROWS[1]),
    ]


def test_piped_cells_never_split_a_row(capsys: pytest.CaptureFixture[str]) -> None:
    _common.print_table("t", ("a", "b"), [("x\ty", "line one\nline two")], keep_title=True)
    assert capsys.readouterr().out.splitlines() == ["t", "a\tb", "x y\tline one line two"]


def test_at_80_columns_a_table_too_wide_becomes_blocks_with_urls_whole(
    terminal: list[Console],
) -> None:
    _common.print_table("runs", ("run", "url", "note"), ROWS, wrap=[2])
    lines = _lines(terminal)
    assert f"  url: {URL}" in lines
    assert "  note: the job failed because the network dropped the connection twice" in lines
    assert all("…" not in line for line in lines)


def test_a_table_that_fits_wraps_only_free_text_at_word_boundaries(
    terminal: list[Console],
) -> None:
    note = " ".join(f"word{i}" for i in range(30))  # wider than what is left of 80 columns
    rows = [("r1", "https://example.com/runs/1", note)]
    _common.print_table("runs", ("run", "url", "note"), rows, wrap=[2])
    lines = _lines(terminal)
    assert lines[1].startswith("┏") and any("https://example.com/runs/1" in x for x in lines)
    cells = [line.split("│")[3].strip() for line in lines if line.count("│") == 4]
    assert len(cells) > 1  # the note wrapped onto several lines ...
    assert " ".join(cells) == note  # ... between words only


def test_blocks_indent_the_lines_of_a_multi_line_value(terminal: list[Console]) -> None:
    rows = [("r1", URL, "first line\nsecond line")]
    _common.print_table(None, ("run", "url", "note"), rows, wrap=[2])
    assert _lines(terminal) == ["r1", f"  url: {URL}", "  note: first line", "    second line"]
