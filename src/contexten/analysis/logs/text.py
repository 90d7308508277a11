"""Line cleaning and normalisation shared by the scanner, signatures and baselines."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

# `2022-03-22T19:26:23.6131043Z ` at the start of every line of a raw Actions log.
ACTIONS_TIMESTAMP = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
# CSI / OSC / two-character escape sequences.
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_=>]")
# C0/C1 controls except tab; also the Unicode line/paragraph separators and bidi overrides,
# which can reorder or hide text when a log line is shown to a person or a model.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_LINE_CHARS = 2000  # evidence text is cut here; the numbering is not affected


def clean_line(raw: str) -> str:
    """The text of a log line as a person should read it: no timestamp, ANSI or controls."""
    text = ACTIONS_TIMESTAMP.sub("", raw, count=1)
    if "\x1b" in text:
        text = ANSI.sub("", text)
    text = CONTROL.sub("", text).rstrip()
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS] + "…"
    return text


# What always differs between two runs of the same job, in the order it is replaced.
_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<ts>"),
    (re.compile(r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"), "<ts>"),
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (
        re.compile(
            r"(?:/tmp|/var/folders|/private/var|[A-Z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp)[^\s'\":]*"
        ),
        "<tmp>",
    ),
    (re.compile(r"/home/runner/work/_temp/[^\s'\":]*"), "<tmp>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b", re.I), "<hex>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?\s?%"), "<pct>"),
    (
        re.compile(
            r"\b\d+(?:\.\d+)?\s?(?:ms|millis(?:econds)?|s|sec(?:ond)?s?|m|min(?:ute)?s?|h|hours?|"
            r"[kKMG]i?B(?:/s)?|bytes)\b"
        ),
        "<n>",
    ),
    (re.compile(r"(?<=:)\d{2,5}\b"), "<port>"),
    (re.compile(r"[━─═█▇▆▅▄▃▂▁■□▪▫#=>\-\.\s|]{8,}"), " <bar> "),
)
_NUMBER = re.compile(r"(?<![A-Za-z_])\d+(?:\.\d+)*(?![A-Za-z_])")
_SPACES = re.compile(r"\s+")


def normalise_volatile(text: str) -> str:
    """A cleaned line without what always differs between two runs of one job.

    Timestamps, durations, sizes, uuids, hex ids, temp paths, ports, percentages and
    progress bars are replaced; other numbers (counts, line numbers) are kept.
    """
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return _SPACES.sub(" ", text).strip()


def normalise(text: str) -> str:
    """`normalise_volatile`, and every free-standing number becomes `#` (signatures).

    Numbers inside identifiers (`test_case_12`) are kept.
    """
    return _SPACES.sub(" ", _NUMBER.sub("#", normalise_volatile(text))).strip()


# Line keys for aligning a failing log with passing runs at the speed of bytes.translate:
# digits and hex letters are deleted and temp paths cut, so two lines get the same key when
# they differ only in numbers, hashes, ids or temp directories. Keys are Python hashes,
# comparable within one process only.
_KEY_DELETE = b"0123456789abcdefABCDEF"
# Temp directories as they read once hex letters are gone (/_temp/ -> /_tmp/, ...).
_KEY_TEMP = re.compile(rb"(/_?tmp/|/vr/olrs/)[^\s'\":]*")
_KEY_TEMP_MARKERS = (b"tmp/", b"/vr/olrs/")  # what _KEY_TEMP needs to match at all
# Lines are keyed this many bytes at a time, so the short-lived line objects stay in the
# CPU cache: ~20% faster than keying a 4 MB block at once.
KEY_PIECE_BYTES = 256 << 10
# Below this size a few `in` tests beat the call into Hyperscan.
_BULK_BYTES = 4 << 10


def key_bytes(raw: bytes) -> bytes:
    """The bytes of one or more raw lines, reduced for keying (line breaks are kept)."""
    reduced = raw.translate(None, _KEY_DELETE)
    if contains_any(reduced, _KEY_TEMP_MARKERS):
        reduced = _KEY_TEMP.sub(rb"\1", reduced)
    return reduced


def line_key(raw: bytes) -> int:
    return hash(key_bytes(raw))


def keyed_pieces(block: bytes) -> Iterator[tuple[bytes, list[bytes]]]:
    """`block` cut after a `\\n` every KEY_PIECE_BYTES or so: (piece, its reduced lines).

    A piece's reduced lines are `key_bytes(piece).split(b"\\n")` without the empty item
    after a final `\\n`, so `hash` of each is the `line_key` of one line of the block, in
    order. Keys never depend on where the pieces are cut: a line is never split, and
    _KEY_TEMP never matches across a line break.
    """
    start = 0
    while True:
        end = block.find(b"\n", start + KEY_PIECE_BYTES - 1) + 1
        last = end in (0, len(block))
        piece = block[start:] if last else block[start:end]
        lines = key_bytes(piece).split(b"\n")
        if piece.endswith(b"\n"):
            lines.pop()
        yield piece, lines
        if last:
            return
        start = end


@lru_cache(maxsize=16)
def _literal_database(literals: tuple[bytes, ...]) -> Any:
    """A Hyperscan database of `literals`; None without Hyperscan.

    None too for an empty literal or one with a NUL byte (the binding reads C strings).
    """
    if not all(literals) or any(b"\0" in literal for literal in literals):
        return None
    try:
        import hyperscan
    except ImportError:
        return None
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(
        expressions=list(literals),
        ids=list(range(len(literals))),
        elements=len(literals),
        flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(literals),
        literal=True,
    )
    return database


def contains_any(data: bytes, literals: tuple[bytes, ...]) -> bool:
    """Whether `data` holds any of `literals`: one SIMD pass over big buffers.

    `in` reads the data once per literal at ~3 GB/s; Hyperscan reads it once for all of
    them, several times faster. Same answer either way.
    """
    database = _literal_database(literals) if len(data) >= _BULK_BYTES else None
    if database is None:
        return any(literal in data for literal in literals)
    import hyperscan

    found: list[int] = []

    def on_match(literal_id: int, start: int, end: int, flags: int, context: object) -> None:
        found.append(literal_id)

    # A scratch per call (under a microsecond): a shared one is not thread-safe.
    database.scan(data, match_event_handler=on_match, scratch=hyperscan.Scratch(database))
    return bool(found)


def stable_hash(*parts: str) -> str:
    """A short hex digest that is equal across processes and machines."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace"))
    return digest.hexdigest()[:16]
