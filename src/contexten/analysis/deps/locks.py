"""Lock files (uv.lock, poetry.lock, pylock.toml, Pipfile.lock): the versions installed."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from contexten.analysis.deps.model import DependencyFileError, LockedPackage, ParsedFile
from contexten.analysis.deps.requirement import _first_line
from contexten.analysis.severity import SEVERITY_RANK as SEVERITY_RANK

# ----------------------------------------------------------------------------- lock files

LOCK_FILE_NAMES = ("uv.lock", "poetry.lock", "pylock.toml", "Pipfile.lock")


def is_lock_file(name: str) -> bool:
    return name in LOCK_FILE_NAMES or bool(re.fullmatch(r"pylock\.[^.]+\.toml", name))


def _lock_toml(text: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DependencyFileError(f"{path}: not valid TOML: {_first_line(exc)}") from None


def _locked(name: Any, version: Any, path: str) -> LockedPackage | None:
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    try:
        Version(version)
    except InvalidVersion:
        return None
    return LockedPackage(canonicalize_name(name), version, path)


def parse_lock(text: str, path: str) -> ParsedFile:
    """Packages and versions from uv.lock, poetry.lock, pylock.toml or Pipfile.lock.

    Only packages from a package index count; the project itself, VCS, path and URL
    sources are skipped because an index cannot update them.
    """
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    found: list[LockedPackage | None] = []
    if base == "Pipfile.lock":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DependencyFileError(f"{path}: not valid JSON: {_first_line(exc)}") from None
        if not isinstance(data, dict):
            raise DependencyFileError(f"{path}: expected a JSON object")
        for section in ("default", "develop"):
            packages = data.get(section) or {}
            if isinstance(packages, dict):
                for name, info in packages.items():
                    if isinstance(info, dict) and isinstance(info.get("version"), str):
                        found.append(_locked(name, info["version"].lstrip("="), path))
    elif base == "uv.lock":
        for pkg in _tables(_lock_toml(text, path).get("package")):
            source = pkg.get("source")
            if isinstance(source, dict) and "registry" not in source:
                continue
            found.append(_locked(pkg.get("name"), pkg.get("version"), path))
    elif base == "poetry.lock":
        for pkg in _tables(_lock_toml(text, path).get("package")):
            source = pkg.get("source")
            if isinstance(source, dict) and source.get("type") not in (None, "legacy"):
                continue
            found.append(_locked(pkg.get("name"), pkg.get("version"), path))
    elif is_lock_file(base):
        for pkg in _tables(_lock_toml(text, path).get("packages")):
            if any(k in pkg for k in ("vcs", "directory", "archive")):
                continue
            found.append(_locked(pkg.get("name"), pkg.get("version"), path))
    else:
        raise DependencyFileError(f"{path}: not a known lock file ({', '.join(LOCK_FILE_NAMES)})")
    return ParsedFile(path, "lock", locked=tuple(p for p in found if p is not None))


def _tables(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
