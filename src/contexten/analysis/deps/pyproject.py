"""pyproject.toml: PEP 621 dependencies and optional dependencies, PEP 735 dependency groups.

tomllib reads the document; a small scanner finds where each requirement string literal
stands (tomllib gives no positions), so a rewrite changes only that literal."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from contexten.analysis.deps.model import (
    DeclaredDependency,
    DependencyFileError,
    ParsedFile,
    UnmanagedRequirement,
)
from contexten.analysis.deps.requirement import _first_line, _parse_requirement
from contexten.analysis.severity import SEVERITY_RANK as SEVERITY_RANK

# ----------------------------------------------------------------------------- pyproject.toml


@dataclass(frozen=True, slots=True)
class _TomlString:
    section: tuple[str, ...]
    start: int
    end: int
    line: int
    column: int
    value: str


def _header_path(inner: str) -> tuple[str, ...]:
    try:
        data: Any = tomllib.loads(f"[{inner}]\n")
    except tomllib.TOMLDecodeError:
        return ()
    path: list[str] = []
    while isinstance(data, dict) and len(data) == 1:
        key = next(iter(data))
        path.append(key)
        data = data[key]
    return tuple(path)


_HEADER = re.compile(r"\[\[?(?P<inner>[^\]\n]+?)\]\]?[ \t]*(?:#[^\n]*)?$")


def _toml_strings(text: str) -> list[_TomlString]:
    """Single-line string literals with positions and the table they are in.

    tomllib has validated the document already; this only finds where things are.
    """
    out: list[_TomlString] = []
    section: tuple[str, ...] = ()
    i, n, line, line_start_offset, depth = 0, len(text), 1, 0, 0
    at_line_start = True
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, line_start_offset, at_line_start = line + 1, i + 1, True
            i += 1
            continue
        if ch in " \t\r":
            i += 1
            continue
        if ch == "#":
            stop = text.find("\n", i)
            i = n if stop < 0 else stop
            continue
        if text.startswith('"""', i) or text.startswith("'''", i):
            quote = text[i : i + 3]
            j = i + 3
            while True:
                j = text.find(quote, j)
                if j < 0 or quote == "'''" or _unescaped(text, j):
                    break
                j += 1
            stop = n if j < 0 else j + 3
            while stop < n and text[stop] == quote[0]:
                stop += 1
            newlines = text.count("\n", i, stop)
            if newlines:
                line += newlines
                line_start_offset = text.rfind("\n", i, stop) + 1
            i, at_line_start = stop, False
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch and text[j] != "\n":
                j += 2 if (ch == '"' and text[j] == "\\") else 1
            raw = text[i : j + 1]
            try:
                value = tomllib.loads(f"v = {raw}\n")["v"]
            except tomllib.TOMLDecodeError:
                value = None
            if isinstance(value, str):
                out.append(_TomlString(section, i, j + 1, line, i - line_start_offset, value))
            i, at_line_start = j + 1, False
            continue
        if ch == "[" and depth == 0 and at_line_start:
            stop = text.find("\n", i)
            stop = n if stop < 0 else stop
            header = _HEADER.match(text[i:stop].rstrip())
            if header:
                section = _header_path(header["inner"])
                i, at_line_start = stop, False
                continue
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        at_line_start = False
        i += 1
    return out


def _unescaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 0


def _string_list(value: Any, where: str, *, allow_tables: bool = False) -> list[str]:
    if not isinstance(value, list):
        raise DependencyFileError(f"{where} must be an array of strings")
    out: list[str] = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif allow_tables and isinstance(item, dict):
            continue  # {include-group = "..."}: its members are parsed with their group
        else:
            raise DependencyFileError(f"{where} must be an array of strings, found {item!r}")
    return out


def parse_pyproject(text: str, path: str = "pyproject.toml") -> ParsedFile:
    """PEP 621 dependencies and optional dependencies, and PEP 735 dependency groups."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DependencyFileError(f"{path}: not valid TOML: {_first_line(exc)}") from None
    project = data.get("project", {})
    if not isinstance(project, dict):
        raise DependencyFileError(f"{path}: [project] must be a table")
    entries: list[tuple[str, str, str]] = []  # (group, root table, requirement)
    for text_ in _string_list(project.get("dependencies", []), f"{path}: project.dependencies"):
        entries.append(("project", "project", text_))
    optional = project.get("optional-dependencies", {})
    if not isinstance(optional, dict):
        raise DependencyFileError(f"{path}: project.optional-dependencies must be a table")
    for extra, reqs in optional.items():
        where = f"{path}: project.optional-dependencies.{extra}"
        entries.extend((f"extra:{extra}", "project", r) for r in _string_list(reqs, where))
    groups = data.get("dependency-groups", {})
    if not isinstance(groups, dict):
        raise DependencyFileError(f"{path}: [dependency-groups] must be a table")
    for group, reqs in groups.items():
        where = f"{path}: dependency-groups.{group}"
        members = _string_list(reqs, where, allow_tables=True)
        entries.extend((f"group:{group}", "dependency-groups", r) for r in members)
    requires_python = project.get("requires-python")
    if requires_python is not None and not isinstance(requires_python, str):
        raise DependencyFileError(f"{path}: project.requires-python must be a string")

    strings = _toml_strings(text)
    used: set[int] = set()
    deps: list[DeclaredDependency] = []
    unmanaged: list[UnmanagedRequirement] = []
    for group, root, requirement in entries:
        literal = next(
            (
                (k, s)
                for k, s in enumerate(strings)
                if k not in used and s.value == requirement and s.section[:1] in ((root,), ())
            ),
            None,
        )
        line, column, raw = 0, 0, ""
        if literal is not None:
            used.add(literal[0])
            found = literal[1]
            line, column, raw = found.line, found.column, text[found.start : found.end]
        where = f"{path}:{line}" if line else path
        req = _parse_requirement(requirement, where)
        if req.url:
            unmanaged.append(UnmanagedRequirement(path, line, requirement, "direct URL reference"))
            continue
        deps.append(
            DeclaredDependency(
                name=canonicalize_name(req.name),
                requirement=requirement,
                specifier=str(req.specifier),
                file=path,
                line=line,
                column=column,
                raw=raw,
                group=group,
                extras=tuple(sorted(req.extras)),
                marker=str(req.marker) if req.marker else None,
            )
        )
    return ParsedFile(
        path,
        "pyproject",
        dependencies=tuple(deps),
        unmanaged=tuple(unmanaged),
        requires_python=requires_python,
    )
