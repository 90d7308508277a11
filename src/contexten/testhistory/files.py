"""Finding and reading JUnit reports: files, directories and zip archives (artifacts).

Reads are bounded: a report larger than the cap is refused without reading it whole, and a
zip archive is checked for member count and uncompressed size before anything is inflated.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from contexten.analysis.junit import MAX_REPORT_BYTES

MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_TOTAL_BYTES = 1024 * 1024 * 1024
REPORT_SUFFIXES = (".xml",)


class ReportFileError(ValueError):
    """A report file cannot be read; the message is one line naming the file."""


@dataclass(frozen=True, slots=True)
class ReportSource:
    """Where report bytes came from: a file, or a member of a zip archive."""

    name: str  # for messages: path, or archive.zip!member.xml
    data: bytes


def find_report_files(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """XML reports and zip archives under `paths` (directories are searched recursively).

    Returns the files, sorted per argument, and one-line errors for paths that don't exist.
    """
    found: list[Path] = []
    errors: list[str] = []
    for path in paths:
        if path.is_dir():
            matches = sorted(_walk_reports(path, errors))
            if not matches:
                errors.append(f"{path}: no .xml or .zip reports in this directory")
            found.extend(matches)
        elif path.is_file():
            found.append(path)
        else:
            errors.append(f"{path}: no such file or directory")
    return list(dict.fromkeys(found)), errors


def _walk_reports(root: Path, errors: list[str]) -> Iterator[Path]:
    """Report files under `root`; a directory that vanishes mid-walk is skipped, an
    unreadable one is reported (os.walk, unlike Path.rglob, does not raise on either)."""

    def on_error(exc: OSError) -> None:
        if not isinstance(exc, FileNotFoundError):
            errors.append(f"{exc.filename}: cannot read directory: {exc.strerror or exc}")

    suffixes = (*REPORT_SUFFIXES, ".zip")
    for directory, _dirs, names in os.walk(root, onerror=on_error):
        for name in names:
            candidate = Path(directory) / name
            if candidate.suffix.lower() in suffixes and candidate.is_file():
                yield candidate


def read_report_file(path: Path, max_bytes: int = MAX_REPORT_BYTES) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ReportFileError(f"{path}: report is {size} bytes, over the limit of {max_bytes}")
        with path.open("rb") as handle:
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise ReportFileError(f"{path}: cannot read: {exc.strerror or exc}") from None


def iter_zip_reports(
    data: bytes | Path,
    source: str,
    *,
    max_member_bytes: int = MAX_REPORT_BYTES,
    max_members: int = MAX_ZIP_MEMBERS,
    max_total_bytes: int = MAX_ZIP_TOTAL_BYTES,
) -> Iterator[ReportSource | ReportFileError]:
    """The XML members of a zip archive, each as bytes or as a one-line error."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ReportFileError(f"{source}: not a zip archive: {exc}") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > max_members:
            raise ReportFileError(
                f"{source}: {len(members)} files in the archive, over the limit of {max_members}"
            )
        total = sum(m.file_size for m in members)
        if total > max_total_bytes:
            raise ReportFileError(
                f"{source}: archive expands to {total} bytes, over the limit of {max_total_bytes}"
            )
        for member in sorted(members, key=lambda m: m.filename):
            if not member.filename.lower().endswith(REPORT_SUFFIXES):
                continue
            name = f"{source}!{member.filename}"
            if member.file_size > max_member_bytes:
                yield ReportFileError(
                    f"{name}: report is {member.file_size} bytes, over the limit of"
                    f" {max_member_bytes}"
                )
                continue
            try:
                with archive.open(member) as handle:
                    # The declared size can lie: read one byte more than allowed to notice.
                    content = handle.read(max_member_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                yield ReportFileError(f"{name}: cannot extract: {exc}")
                continue
            if len(content) > max_member_bytes:
                yield ReportFileError(f"{name}: report is over the limit of {max_member_bytes}")
                continue
            yield ReportSource(name, content)


def iter_report_sources(
    files: Sequence[Path], *, max_bytes: int = MAX_REPORT_BYTES
) -> Iterator[ReportSource | ReportFileError]:
    """Bytes of each report file, expanding zip archives; errors are yielded, not raised."""
    for path in files:
        if path.suffix.lower() == ".zip":
            try:
                yield from iter_zip_reports(path, str(path), max_member_bytes=max_bytes)
            except ReportFileError as exc:
                yield exc
            continue
        try:
            yield ReportSource(str(path), read_report_file(path, max_bytes))
        except ReportFileError as exc:
            yield exc
