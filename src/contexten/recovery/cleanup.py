"""Resource cleanup: our own leftovers under CONTEXTEN_HOME and in the system temp directory.

Other code that needs a scratch file should create it under `<CONTEXTEN_HOME>/tmp` or with
`tempfile.mkdtemp(prefix=TEMP_PREFIX)`, so this cleanup can find it when the disk fills up.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

TEMP_PREFIX = "contexten-"


@dataclass(frozen=True, slots=True)
class CleanupResult:
    files: int
    bytes: int
    paths: tuple[str, ...] = ()


def clean_temp_files(
    home: Path,
    *,
    now: float,
    max_age_seconds: float = 3600.0,
    report_max_age_seconds: float = 7 * 86400.0,
    system_temp: Path | None = None,
) -> CleanupResult:
    """Delete our own leftovers: files in <home>/tmp, `*.tmp` files anywhere in <home>,
    report directories older than `report_max_age_seconds`, and `contexten-*` entries in
    the system temp directory. Files modified within `max_age_seconds` may be in use and
    are kept. Symlinks are removed, never followed."""
    removed: list[str] = []
    freed = 0

    def remove(path: Path) -> None:
        nonlocal freed
        try:
            stat = path.lstat()
            path.unlink()
        except OSError:
            return
        freed += stat.st_size
        removed.append(str(path))

    def old(path: Path, age: float) -> bool:
        try:
            return now - path.lstat().st_mtime > age
        except OSError:
            return False

    tmp = home / "tmp"
    if tmp.is_dir():
        for path in sorted(tmp.rglob("*"), reverse=True):
            if (path.is_symlink() or path.is_file()) and old(path, max_age_seconds):
                remove(path)
            elif path.is_dir() and not path.is_symlink():
                _rmdir_if_empty(path)
    if home.is_dir():
        for path in home.rglob("*.tmp"):
            if (path.is_symlink() or path.is_file()) and old(path, max_age_seconds):
                remove(path)
    reports = home / "reports"
    if reports.is_dir():
        for run_dir in reports.iterdir():
            if run_dir.is_dir() and not run_dir.is_symlink():
                newest = max(
                    (p.lstat().st_mtime for p in run_dir.rglob("*")),
                    default=run_dir.lstat().st_mtime,
                )
                if now - newest > report_max_age_seconds:
                    for path in sorted(run_dir.rglob("*"), reverse=True):
                        if path.is_dir() and not path.is_symlink():
                            _rmdir_if_empty(path)
                        else:
                            remove(path)
                    _rmdir_if_empty(run_dir)
    system = system_temp if system_temp is not None else Path(tempfile.gettempdir())
    if system.is_dir():
        for entry in system.glob(f"{TEMP_PREFIX}*"):
            if not old(entry, max_age_seconds):
                continue
            if entry.is_dir() and not entry.is_symlink():
                size = sum(p.lstat().st_size for p in entry.rglob("*") if p.is_file())
                shutil.rmtree(entry, ignore_errors=True)
                if not entry.exists():
                    freed += size
                    removed.append(str(entry))
            else:
                remove(entry)
    return CleanupResult(len(removed), freed, tuple(removed[:50]))


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or gone already
        path.rmdir()
