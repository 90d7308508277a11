"""The bulk helpers of baseline keying give the same answers as their plain definitions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contexten.analysis.logs import text
from contexten.analysis.logs.text import contains_any, key_bytes, keyed_pieces

LITERALS = (b"tmp/", b"/vr/olrs/", b"ERROR")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([b"x" * 97, b"tmp/", b"/vr/olrs/", b"ERROR", b"\n", b"ok "])),
    st.integers(min_value=0, max_value=3),
)
def test_contains_any_matches_in(parts: list[bytes], pad: int) -> None:
    data = b"".join(parts) + b"." * (text._BULK_BYTES * pad // 2)
    assert contains_any(data, LITERALS) == any(lit in data for lit in LITERALS)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"line one\n", b"2024-01-01T00:00:00Z tmp/abc/x\n", b"\r\n", b"a" * 300 + b"\n", b"z"]
        ),
        max_size=60,
    ),
    st.sampled_from([1, 7, 64, 4096]),
)
def test_keyed_pieces_equal_key_bytes_split_whatever_the_piece_size(
    lines: list[bytes], piece: int
) -> None:
    block = b"".join(lines)
    saved = text.KEY_PIECE_BYTES
    text.KEY_PIECE_BYTES = piece
    try:
        got = [line for _, reduced in keyed_pieces(block) for line in reduced]
        pieces = b"".join(p for p, _ in keyed_pieces(block))
    finally:
        text.KEY_PIECE_BYTES = saved
    expected = key_bytes(block).split(b"\n")
    if block.endswith(b"\n"):
        expected = expected[:-1]
    assert pieces == block
    assert got == expected
