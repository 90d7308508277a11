"""Streaming scan: line numbering, chunk boundaries, odd bytes, bounded input."""

from __future__ import annotations

import pytest

from contexten.analysis.logs import diagnose, diagnose_stream
from contexten.analysis.logs import scan as scan_module
from contexten.analysis.logs.scan import LogScanner


def _numbers_of(log: bytes, needle: str, chunk: int | None = None) -> list[int]:
    chunks = [log] if chunk is None else [log[i : i + chunk] for i in range(0, len(log), chunk)]
    result = LogScanner().scan(chunks)
    return sorted({hit.line for hit in result.hits if needle in hit.text})


def _expected(log: bytes, needle: str) -> list[int]:
    lines = log.decode("utf-8", "replace").splitlines()
    return [n for n, line in enumerate(lines, 1) if needle in line and "##[error]" in line]


@pytest.mark.parametrize(
    "separator", [b"\n", b"\r\n", b"\r", b"\x0b", b"\x0c", b"\x1c", b"\xc2\x85", b"\xe2\x80\xa8"]
)
def test_line_numbers_follow_splitlines(separator: bytes) -> None:
    lines = [b"step %d output" % i for i in range(50)]
    lines[37] = b"##[error]Process completed with exit code 2."
    log = separator.join(lines) + separator
    assert _numbers_of(log, "exit code 2") == _expected(log, "exit code 2") == [38]
    assert LogScanner().scan([log]).total_lines == len(log.decode().splitlines())


def test_mixed_breaks_invalid_utf8_and_tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "BLOCK_BYTES", 64)
    parts = [b"a\r\nb", b"\xff\xfe broken", b"progress 10%\rprogress 50%\rprogress 100%"]
    parts += [
        b"x" * 300,
        b"caf\xc3\xa9 \xe2\x80\xa8 sep",
        b"##[error]Process completed with exit code 3.",
    ]
    log = b"\n".join(parts) + b"\n" + b"tail without newline"
    for chunk in (1, 7, 64, None):
        assert _numbers_of(log, "exit code 3", chunk) == _expected(log, "exit code 3")
    result = LogScanner().scan([log])
    assert result.total_lines == len(log.decode("utf-8", "replace").splitlines())


def test_text_is_cleaned_but_numbering_is_not() -> None:
    log = (
        "2024-04-13T10:00:13.2841061Z \x1b[31mFAILED\x1b[0m tests/test_a.py::test_x - boom\n"
        "2024-04-13T10:00:14.2841061Z ##[error]Process completed with exit code 1.\n"
    )
    diagnosis = diagnose(log)
    assert [(e.line, e.text) for e in diagnosis.evidence] == [
        (1, "FAILED tests/test_a.py::test_x - boom")
    ]


def test_very_long_line_is_cut_and_numbering_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "BLOCK_BYTES", 1 << 16)
    log = b"x" * (1 << 20) + b"\n" + b"##[error]Process completed with exit code 4.\n"
    chunks = [log[i : i + 4096] for i in range(0, len(log), 4096)]
    assert _numbers_of(log, "exit code 4", 4096) == [2]
    assert LogScanner().scan(chunks).total_lines == 2


def test_str_chunks_and_line_lists_give_the_same_result() -> None:
    lines = ["FAILED tests/test_a.py::test_x", "##[error]Process completed with exit code 1."]
    as_text = diagnose("\n".join(lines) + "\n")
    assert diagnose(lines).to_dict() == as_text.to_dict()
    assert (
        diagnose_stream(iter(["FAILED tests/te", "st_a.py::test_x\n", lines[1]])).to_dict()
        == as_text.to_dict()
    )
