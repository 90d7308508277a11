"""Which files of a repository the audit reads: tracked (git) or walked, minus exclusions."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path

from contexten.analysis.secrets import is_probably_binary

MAX_FILE_BYTES = 2 * 1024 * 1024
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".eggs",
        "site-packages",
        "build",
        "dist",
    }
)


def _excluded(relative: str, exclude: Iterable[str]) -> bool:
    parts = relative.split("/")
    if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in parts[:-1]):
        return True
    for pattern in exclude:
        glob = pattern.rstrip("/")
        if fnmatchcase(relative, glob) or fnmatchcase(relative, glob.replace("**/", "")):
            return True
        if glob.endswith("/**") and relative.startswith(glob[:-3] + "/"):
            return True
    return False


def _git_files(root: Path) -> list[str] | None:
    """Tracked plus untracked-but-not-ignored files, or None outside a git work tree."""
    if not (root / ".git").exists():
        return None
    try:
        result = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    names = result.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({name for name in names if name})


def _walked_files(root: Path) -> list[str]:
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        base = Path(directory)
        for name in files:
            found.append((base / name).relative_to(root).as_posix())
    return sorted(found)


def repository_files(root: Path, exclude: Iterable[str] = ()) -> list[str]:
    """Repository-relative paths (forward slashes) of the regular files the audit covers."""
    patterns = tuple(exclude)
    names = _git_files(root)
    if names is None:
        names = _walked_files(root)
    return [
        name
        for name in names
        if not _excluded(name, patterns)
        and (root / name).is_file()
        and not (root / name).is_symlink()
    ]


def read_text_file(path: Path) -> str | None:
    """The file's text, or None when it is too large, binary or unreadable."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if is_probably_binary(data[:8192]):
        return None
    return data.decode("utf-8", errors="replace")
