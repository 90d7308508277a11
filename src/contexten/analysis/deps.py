"""Dependency update plans: read declarations, classify updates, plan by strategy, rewrite files.

Pure: functions take file texts, package-index data and advisories and return frozen
dataclasses. Reading files and talking to the index live in `contexten.depsources`.

- Parsing: pyproject.toml (PEP 621 `dependencies`, `optional-dependencies`, PEP 735
  `dependency-groups`), requirements files (pip format: `-r`/`-c` includes returned for the
  caller to follow, markers, `--hash` options, continuation lines), lock files (uv.lock,
  poetry.lock, pylock.toml, Pipfile.lock) for the versions actually installed.
- Planning: every update is classified patch/minor/major (a 0.x minor counts as breaking);
  `conservative` applies patches, `smart` minors and patches, `aggressive` anything except a
  0.x breaking update (never applied automatically). Releases younger than the cooldown wait;
  security fixes skip the wait and go to the lowest release that fixes the advisories. With
  `security_priority` (the default) vulnerable packages come first and a fix may go beyond
  the strategy, even to a breaking release (flagged as breaking in the PR); without it a fix
  outside the strategy is reported for a person instead. Targets with known advisories of
  their own are avoided.
- Applying: each change is a `Rewrite` of one requirement's text at a known line, so the
  rest of the file (comments, order, quoting, whitespace) stays as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

Strategy = Literal["conservative", "smart", "aggressive"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
UpdateKind = Literal["patch", "minor", "major"]
Severity = Literal["unknown", "low", "medium", "high", "critical"]
SEVERITY_RANK: dict[str, int] = {"unknown": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
Action = Literal["apply", "hold", "manual"]
CurrentSource = Literal["pin", "lock", "index", "unknown"]

MAX_REQUIREMENT_LENGTH = 4096  # longer "requirements" are not hand-written; refuse them


class DependencyFileError(ValueError):
    """A dependency file cannot be parsed; the message names the file (and line), one line."""


class PlanError(ValueError):
    """A plan cannot be made or applied (unknown strategy, file changed since planning)."""


# ----------------------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class DeclaredDependency:
    """One requirement as written in a project file.

    `raw` is the exact text at (`line`, `column`): for pyproject.toml the string literal with
    its quotes; for requirements files the requirement through the end of its logical line
    (continuations, `--hash` options and comment included). Rewrites replace `raw`.
    """

    name: str  # canonical (PEP 503)
    requirement: str  # the requirement string, decoded
    specifier: str  # "" when any version is allowed
    file: str
    line: int  # 1-based
    column: int  # 0-based offset of `raw` in the line
    raw: str
    group: str  # project | extra:<name> | group:<name> | requirements | constraints
    extras: tuple[str, ...] = ()
    marker: str | None = None
    hashes: tuple[str, ...] = ()  # "sha256:<hex>" from --hash options

    @property
    def pinned(self) -> str | None:
        """The exact version when the specifier is one `==X` (no wildcard) or `===X`."""
        try:
            specs = list(SpecifierSet(self.specifier))
        except InvalidSpecifier:
            return None
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            return specs[0].version
        return None


@dataclass(frozen=True, slots=True)
class LockedPackage:
    name: str  # canonical
    version: str
    file: str


@dataclass(frozen=True, slots=True)
class UnmanagedRequirement:
    """A requirement we do not update (a URL, a local path, an editable install)."""

    file: str
    line: int
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class Include:
    """A `-r`/`-c` line: the caller reads `target` relative to `file` and parses it too."""

    kind: Literal["requirement", "constraint"]
    target: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class ParsedFile:
    path: str
    kind: Literal["pyproject", "requirements", "lock"]
    dependencies: tuple[DeclaredDependency, ...] = ()
    locked: tuple[LockedPackage, ...] = ()
    unmanaged: tuple[UnmanagedRequirement, ...] = ()
    includes: tuple[Include, ...] = ()
    requires_python: str | None = None


@dataclass(frozen=True, slots=True)
class Project:
    """Everything read from one project's dependency files."""

    files: tuple[str, ...] = ()
    dependencies: tuple[DeclaredDependency, ...] = ()
    locked: tuple[LockedPackage, ...] = ()
    unmanaged: tuple[UnmanagedRequirement, ...] = ()
    requires_python: str | None = None

    @property
    def lock_files(self) -> tuple[str, ...]:
        return tuple(sorted({p.file for p in self.locked}))

    def names(self) -> tuple[str, ...]:
        return tuple(sorted({d.name for d in self.dependencies} | {p.name for p in self.locked}))


def combine(parsed: Iterable[ParsedFile]) -> Project:
    files: list[str] = []
    deps: list[DeclaredDependency] = []
    locked: list[LockedPackage] = []
    unmanaged: list[UnmanagedRequirement] = []
    requires_python: str | None = None
    for item in parsed:
        files.append(item.path)
        deps.extend(item.dependencies)
        locked.extend(item.locked)
        unmanaged.extend(item.unmanaged)
        requires_python = requires_python or item.requires_python
    return Project(tuple(files), tuple(deps), tuple(locked), tuple(unmanaged), requires_python)


# ----------------------------------------------------------------------------- requirement text

_NAME_AND_EXTRAS = re.compile(
    r"\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*"
)
_CLAUSE = re.compile(r"(?P<op>~=|===|==|!=|<=|>=|<|>)(?P<ws>\s*)(?P<ver>[^\s,;()]+)")
_URLISH = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|\.{1,2}[/\\]|/|~|[A-Za-z]:[/\\])|\.(?:whl|zip|tar\.gz|tgz)$"
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _parse_requirement(text: str, where: str) -> Requirement:
    if len(text) > MAX_REQUIREMENT_LENGTH:
        raise DependencyFileError(
            f"{where}: requirement longer than {MAX_REQUIREMENT_LENGTH} chars"
        )
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise DependencyFileError(
            f"{where}: invalid requirement {text!r}: {_first_line(exc)}"
        ) from None


def _specifier_region(text: str) -> tuple[int, int]:
    """Start and end offsets of the version specifier in a requirement's text."""
    match = _NAME_AND_EXTRAS.match(text)
    start = match.end() if match else 0
    end = text.find(";", start)
    return start, (len(text) if end < 0 else end)


def _release(version: Version, size: int = 3) -> tuple[int, ...]:
    padded = tuple(version.release) + (0,) * size
    return padded[:size]


def _format_release(parts: Sequence[int]) -> str:
    return ".".join(str(p) for p in parts)


def _raised_upper_bound(bound: Version, target: Version) -> str:
    """A `<` bound at the same granularity as `bound` that admits `target` (<3 -> <4)."""
    parts = list(bound.release)
    significant = max((i for i, p in enumerate(parts) if p != 0), default=0)
    new = list(_release(target, significant + 1))
    new[significant] += 1
    new += [0] * (len(parts) - len(new))
    return _format_release(new)


def rewrite_clauses(
    clauses: Sequence[tuple[str, str]], target: Version, floor: Version | None = None
) -> list[tuple[str, str]] | None:
    """New (operator, version) clauses that admit `target` and, given `floor`, exclude
    versions below it. One output clause per input clause, plus maybe one `>=floor` at the
    end. None when the specifier cannot be rewritten to admit the target."""
    out: list[tuple[str, str]] = []
    bounded_below = False
    for op, text in clauses:
        new_op, new_text = op, text
        if op in ("==", "===") and not text.endswith(".*"):
            new_text = str(target)
            bounded_below = True
        elif op in ("==", "!=") and text.endswith(".*"):
            # a prefix match bounds a family, not a floor: a security floor is appended
            if op == "==" and not SpecifierSet(f"=={text}").contains(target, prereleases=True):
                size = len(Version(text[:-2]).release)
                new_text = _format_release(_release(target, size)) + ".*"
        else:
            try:
                version = Version(text)
            except InvalidVersion:
                return None
            if op == "~=":
                bounded_below = True
                admits = SpecifierSet(f"~={text}").contains(target, prereleases=True)
                if not admits or (floor is not None and version < floor):
                    new_text = _format_release(_release(target, max(2, len(version.release))))
            elif op in (">=", ">"):
                bounded_below = True
                if floor is not None and (version < floor or (op == ">" and version == floor)):
                    new_op, new_text = ">=", str(floor)
            elif op == "<" and target >= version:
                new_text = _raised_upper_bound(version, target)
            elif op == "<=" and target > version:
                new_text = str(target)
        out.append((new_op, new_text))
    if floor is not None and not bounded_below:
        out.append((">=", str(floor)))
    try:
        spec = SpecifierSet(",".join(op + text for op, text in out))
    except InvalidSpecifier:
        return None
    if not spec.contains(target, prereleases=True):
        return None
    if floor is not None and any(spec.contains(v, prereleases=True) for v in _below(floor)):
        return None
    return out


def _below(floor: Version) -> tuple[Version, ...]:
    """A few versions just under `floor`, to check a floor was really raised."""
    release = list(floor.release)
    candidates: list[Version] = []
    for i in range(len(release) - 1, -1, -1):
        if release[i] > 0:
            lower = release[:i] + [release[i] - 1] + [999] * (len(release) - i - 1)
            candidates.append(Version(_format_release(lower)))
            break
    return tuple(candidates)


def rewrite_requirement_text(
    text: str, target: Version, floor: Version | None = None
) -> str | None:
    """`text` with its version clauses rewritten in place (spacing, extras, markers kept)."""
    start, end = _specifier_region(text)
    matches = list(_CLAUSE.finditer(text, start, end))
    clauses = [(m["op"], m["ver"]) for m in matches]
    new = rewrite_clauses(clauses, target, floor)
    if new is None:
        return None
    pieces: list[str] = []
    cursor = 0
    for match, (op, version) in zip(matches, new, strict=False):
        pieces.append(text[cursor : match.start()])
        pieces.append(f"{op}{match['ws']}{version}")
        cursor = match.end()
    if len(new) > len(matches):
        op, version = new[-1]
        if matches:
            pieces.append(f",{op}{version}")
        else:
            # right after the name and extras, before any space that precedes a marker
            name_end = len(text[:start].rstrip())
            pieces.append(text[cursor:name_end])
            pieces.append(f"{op}{version}")
            cursor = name_end
    pieces.append(text[cursor:])
    return "".join(pieces)


_HASH = re.compile(r"--hash(?:=|\s+)(?P<value>[A-Za-z0-9_]+:[A-Za-z0-9]+)")


def _replace_hashes(text: str, hashes: Sequence[str]) -> str:
    """Swap the `--hash` options in a requirement line for `hashes`, keeping the layout."""
    found = list(_HASH.finditer(text))
    if not found:
        return text
    separator = text[found[0].end() : found[1].start()] if len(found) > 1 else " "
    rendered = separator.join(f"--hash={h}" for h in hashes)
    return text[: found[0].start()] + rendered + text[found[-1].end() :]


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


# ----------------------------------------------------------------------------- requirements files

_COMMENT = re.compile(r"(^|\s+)#.*$")
_OPTION_SPLIT = re.compile(r"\s+(?=--?[A-Za-z])")
_INCLUDE = re.compile(
    r"^(?:(?P<short>-[rc])\s*|(?P<long>--requirement|--constraint)(?:\s*=\s*|\s+))(?P<target>\S+)$"
)
_EDITABLE = re.compile(r"^(?:-e|--editable)(?:\s*=\s*|\s+)(?P<target>.+)$")


def parse_requirements(
    text: str, path: str = "requirements.txt", *, constraints: bool = False
) -> ParsedFile:
    """A pip requirements (or constraints) file. `-r`/`-c` lines come back as includes."""
    group = "constraints" if constraints else "requirements"
    physical = text.splitlines(keepends=True)
    lines = text.splitlines()
    deps: list[DeclaredDependency] = []
    unmanaged: list[UnmanagedRequirement] = []
    includes: list[Include] = []
    index = 0
    while index < len(lines):
        first = index
        parts = [lines[index]]
        while parts[-1].endswith("\\") and index + 1 < len(lines):
            index += 1
            parts.append(lines[index])
        index += 1
        lineno = first + 1
        where = f"{path}:{lineno}"
        joined = " ".join(p[:-1] if p.endswith("\\") else p for p in parts)
        content = _COMMENT.sub("", joined).strip()
        if not content:
            continue
        if content.startswith("-"):
            include = _INCLUDE.match(content)
            if include:
                flag = include["short"] or include["long"]
                kind: Literal["requirement", "constraint"] = (
                    "constraint" if flag in ("-c", "--constraint") else "requirement"
                )
                includes.append(Include(kind, include["target"], path, lineno))
                continue
            editable = _EDITABLE.match(content)
            if editable:
                unmanaged.append(
                    UnmanagedRequirement(path, lineno, editable["target"].strip(), "editable")
                )
            continue  # global options (--index-url, --pre, ...) do not name packages
        requirement_text = _OPTION_SPLIT.split(content, maxsplit=1)[0].strip()
        pathlike = bool(_URLISH.search(requirement_text)) or any(
            sep in requirement_text for sep in ("/", "\\")
        )
        if pathlike and "@" not in requirement_text:
            unmanaged.append(UnmanagedRequirement(path, lineno, requirement_text, "URL or path"))
            continue
        try:
            req = _parse_requirement(requirement_text, where)
        except DependencyFileError:
            if not pathlike:
                raise
            unmanaged.append(UnmanagedRequirement(path, lineno, requirement_text, "URL or path"))
            continue
        if req.url:
            unmanaged.append(
                UnmanagedRequirement(path, lineno, requirement_text, "direct URL reference")
            )
            continue
        # the block as it is in the file (line endings included) so a rewrite can replace it
        block = "".join(physical[first:index])
        block = block[: len(block) - (len(physical[index - 1]) - len(lines[index - 1]))]
        column = block.find(requirement_text)
        raw = block[column:] if 0 <= column < len(parts[0]) else ""
        deps.append(
            DeclaredDependency(
                name=canonicalize_name(req.name),
                requirement=requirement_text,
                specifier=str(req.specifier),
                file=path,
                line=lineno,
                column=max(column, 0),
                raw=raw,
                group=group,
                extras=tuple(sorted(req.extras)),
                marker=str(req.marker) if req.marker else None,
                hashes=tuple(m["value"] for m in _HASH.finditer(content)),
            )
        )
    return ParsedFile(
        path,
        "requirements",
        dependencies=tuple(deps),
        unmanaged=tuple(unmanaged),
        includes=tuple(includes),
    )


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


# ----------------------------------------------------------------------------- index and advisories


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    uploaded_at: datetime | None = None  # earliest file upload; None when unknown
    yanked: bool = False
    requires_python: str | None = None
    sha256: tuple[str, ...] = ()  # of every file of the release, for hash-pinned lines


@dataclass(frozen=True, slots=True)
class PackageInfo:
    name: str  # canonical
    releases: tuple[Release, ...]


@dataclass(frozen=True, slots=True)
class Advisory:
    """A known vulnerability of one package, with the versions it affects (OSV semantics)."""

    id: str
    package: str  # canonical
    summary: str = ""
    aliases: tuple[str, ...] = ()
    severity: Severity = "unknown"
    # each range: its events in order, ("introduced"|"fixed"|"last_affected"|"limit", version)
    ranges: tuple[tuple[tuple[str, str], ...], ...] = ()
    versions: tuple[str, ...] = ()  # explicitly listed affected versions
    url: str = ""

    def affects(self, version: Version | str) -> bool:
        try:
            v = version if isinstance(version, Version) else Version(version)
        except InvalidVersion:
            return False
        for listed in self.versions:
            try:
                if Version(listed) == v:
                    return True
            except InvalidVersion:
                continue
        for events in self.ranges:
            parsed: list[tuple[Version, int, str]] = []
            for kind, text in events:
                try:
                    parsed.append((Version(text), _EVENT_ORDER.get(kind, 9), kind))
                except InvalidVersion:
                    continue
            affected = False
            for at, _, kind in sorted(parsed):
                if kind == "introduced" and v >= at:
                    affected = True
                elif (kind in ("fixed", "limit") and v >= at) or (
                    kind == "last_affected" and v > at
                ):
                    affected = False
            if affected:
                return True
        return False

    @property
    def fixed_versions(self) -> tuple[str, ...]:
        return tuple(
            sorted(
                {text for events in self.ranges for kind, text in events if kind == "fixed"},
                key=_version_key,
            )
        )


_EVENT_ORDER = {"introduced": 0, "fixed": 1, "last_affected": 2, "limit": 3}


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


def max_severity(advisories: Iterable[Advisory]) -> Severity:
    best: Severity = "unknown"
    for advisory in advisories:
        if SEVERITY_RANK[advisory.severity] > SEVERITY_RANK[best]:
            best = advisory.severity
    return best


# ----------------------------------------------------------------------------- classification


def classify_update(current: Version, target: Version) -> UpdateKind:
    """patch, minor or major by the first release number that changes."""
    c, t = _release(current), _release(target)
    if c[0] != t[0]:
        return "major"
    if c[1] != t[1]:
        return "minor"
    return "patch"


def is_breaking(current: Version, target: Version) -> bool:
    """A major update, or a minor one below 1.0 (0.3 -> 0.4 may break by semver)."""
    c, t = _release(current), _release(target)
    return c[0] != t[0] or (c[0] == 0 and c[1] != t[1])


def within_strategy(strategy: str, current: Version, candidate: Version) -> bool:
    """Would `strategy` apply current -> candidate (security aside)?"""
    if is_breaking(current, candidate) and _release(current)[0] == 0:
        return False  # never a 0.x breaking update automatically
    if strategy == "conservative":
        return _release(current, 2) == _release(candidate, 2)
    if strategy == "smart":
        return not is_breaking(current, candidate)
    if strategy == "aggressive":
        return True
    raise PlanError(f"unknown strategy {strategy!r}; expected one of: {', '.join(STRATEGIES)}")


def check_strategy(strategy: str) -> Strategy:
    if strategy not in STRATEGIES:
        raise PlanError(f"unknown strategy {strategy!r}; expected one of: {', '.join(STRATEGIES)}")
    return strategy  # type: ignore[return-value]


def python_floor(requires_python: str | None) -> Version | None:
    """The lowest Python 3 minor version a project supports, from `requires-python`."""
    if not requires_python:
        return None
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return None
    return next((Version(f"3.{m}") for m in range(0, 40) if spec.contains(f"3.{m}")), None)


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    strategy: Strategy = "smart"
    security_priority: bool = True  # vulnerable first; security fixes may exceed the strategy
    cooldown_days: int = 3
    now: datetime | None = None  # None: no cooldown
    allow_prereleases: bool = False


@dataclass(frozen=True, slots=True)
class Rewrite:
    file: str
    line: int
    column: int
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ResolvedVersion:
    version: str
    source: CurrentSource


@dataclass(frozen=True, slots=True)
class PlanItem:
    name: str
    current: str | None
    current_source: CurrentSource
    target: str | None
    latest: str | None
    kind: UpdateKind | None
    breaking: bool
    action: Action
    reason: str
    advisories: tuple[Advisory, ...] = ()  # affecting the current version
    fixes: tuple[str, ...] = ()  # ids of advisories the target fixes
    rewrites: tuple[Rewrite, ...] = ()
    files: tuple[str, ...] = ()  # where the package is declared or locked

    @property
    def security(self) -> bool:
        return bool(self.advisories)

    @property
    def severity(self) -> Severity:
        return max_severity(self.advisories)


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    strategy: Strategy
    items: tuple[PlanItem, ...]
    cooldown_days: int = 3
    lock_files: tuple[str, ...] = ()
    unmanaged: tuple[UnmanagedRequirement, ...] = field(default=())
    # Why known vulnerabilities were not (fully) checked, e.g. the advisory service was
    # unreachable; None when they were checked (or not asked for).
    advisories_not_checked: str | None = None

    @property
    def applicable(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.action == "apply")

    @property
    def key(self) -> str:
        """Identifies the changes: the same updates give the same key (branch, PR)."""
        payload = [
            [i.name, i.target, sorted([r.file, r.old, r.new] for r in i.rewrites)]
            for i in sorted(self.applicable, key=lambda i: i.name)
        ]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def _versions(info: PackageInfo) -> list[tuple[Version, Release]]:
    out: list[tuple[Version, Release]] = []
    for release in info.releases:
        try:
            out.append((Version(release.version), release))
        except InvalidVersion:
            continue
    return sorted(out, key=lambda pair: pair[0])


def _compatible(release: Release, floor: Version | None) -> bool:
    if floor is None or not release.requires_python:
        return True
    try:
        return SpecifierSet(release.requires_python).contains(floor, prereleases=True)
    except InvalidSpecifier:
        return True


def resolve_current(
    declared: Sequence[DeclaredDependency],
    locked: Sequence[LockedPackage],
    info: PackageInfo | None,
    *,
    allow_prereleases: bool = False,
) -> ResolvedVersion | None:
    """The version in use: the lowest exact pin, else the lowest locked version, else the
    newest index release every declaration allows (what an install picks today)."""
    pins = [Version(p) for d in declared if (p := d.pinned) and _valid(p)]
    if pins:
        return ResolvedVersion(str(min(pins)), "pin")
    locks = [Version(p.version) for p in locked]
    if locks:
        return ResolvedVersion(str(min(locks)), "lock")
    if info is None:
        return None
    specs = [SpecifierSet(d.specifier) for d in declared]
    allowed = [
        v
        for v, r in _versions(info)
        if not r.yanked
        and (allow_prereleases or not v.is_prerelease)
        and all(s.contains(v, prereleases=True) for s in specs)
    ]
    return ResolvedVersion(str(allowed[-1]), "index") if allowed else None


def _valid(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def current_versions(
    project: Project, index: Mapping[str, PackageInfo], *, allow_prereleases: bool = False
) -> dict[str, ResolvedVersion]:
    """The version in use of every declared or locked package we can tell."""
    out: dict[str, ResolvedVersion] = {}
    for name in project.names():
        declared = [d for d in project.dependencies if d.name == name]
        locked = [p for p in project.locked if p.name == name]
        resolved = resolve_current(
            declared, locked, index.get(name), allow_prereleases=allow_prereleases
        )
        if resolved is not None:
            out[name] = resolved
    return out


def plan_updates(
    project: Project,
    index: Mapping[str, PackageInfo],
    advisories: Mapping[str, Sequence[Advisory]],
    policy: PlanPolicy,
) -> UpdatePlan:
    """The update plan for `project` under `policy`.

    `index` maps canonical names to their releases (a missing name: not on the index);
    `advisories` maps canonical names to every advisory known for the package.
    """
    check_strategy(policy.strategy)
    if policy.cooldown_days < 0:
        raise PlanError(f"cooldown days must not be negative, got {policy.cooldown_days}")
    floor = python_floor(project.requires_python)
    items: list[PlanItem] = []
    for name in project.names():
        item = _plan_package(
            name,
            [d for d in project.dependencies if d.name == name],
            [p for p in project.locked if p.name == name],
            index.get(name),
            tuple(advisories.get(name, ())),
            policy,
            floor,
        )
        if item is not None:
            items.append(item)
    if policy.security_priority:
        items.sort(key=lambda i: (not i.security, -SEVERITY_RANK[i.severity], i.name))
    else:
        items.sort(key=lambda i: i.name)
    return UpdatePlan(
        policy.strategy,
        tuple(items),
        cooldown_days=policy.cooldown_days,
        lock_files=project.lock_files,
        unmanaged=project.unmanaged,
    )


def _plan_package(
    name: str,
    declared: Sequence[DeclaredDependency],
    locked: Sequence[LockedPackage],
    info: PackageInfo | None,
    known: tuple[Advisory, ...],
    policy: PlanPolicy,
    floor: Version | None,
) -> PlanItem | None:
    files = tuple(sorted({d.file for d in declared} | {p.file for p in locked}))
    resolved = resolve_current(declared, locked, info, allow_prereleases=policy.allow_prereleases)
    current = Version(resolved.version) if resolved else None
    source: CurrentSource = resolved.source if resolved else "unknown"
    vulns = tuple(a for a in known if current is not None and a.affects(current))

    def item(action: Action, reason: str, **extra: Any) -> PlanItem:
        values: dict[str, Any] = {
            "name": name,
            "current": str(current) if current else None,
            "current_source": source,
            "target": None,
            "latest": None,
            "kind": None,
            "breaking": False,
            "action": action,
            "reason": reason,
            "advisories": vulns,
            "files": files,
        }
        values.update(extra)
        return PlanItem(**values)

    if not declared and not vulns:
        return None  # an up-to-date question about a transitive package is not ours
    if info is None:
        return item("hold", "not found on the package index")
    if current is None:
        return item("hold", "no release on the index satisfies the declared versions")

    excluded = [s for d in declared for s in SpecifierSet(d.specifier) if s.operator == "!="]
    allow_pre = policy.allow_prereleases or current.is_prerelease
    candidates = [
        (v, r)
        for v, r in _versions(info)
        if not r.yanked
        and (allow_pre or not v.is_prerelease)
        and _compatible(r, floor)
        and all(e.contains(v, prereleases=True) for e in excluded)
    ]
    newer = [(v, r) for v, r in candidates if v > current]
    latest = candidates[-1][0] if candidates else None
    by_version = dict(candidates)

    def cooled(release: Release) -> bool:
        if policy.now is None or release.uploaded_at is None:
            return True
        return release.uploaded_at <= policy.now - timedelta(days=policy.cooldown_days)

    def safe(version: Version) -> bool:
        return not any(a.affects(version) for a in known)

    in_strategy = [
        (v, r) for v, r in newer if within_strategy(policy.strategy, current, v) and cooled(r)
    ]
    regular = max((v for v, _ in in_strategy if safe(v)), default=None)
    target = regular
    security_floor: Version | None = None
    if vulns:
        fixes = [v for v, _ in newer if not any(a.affects(v) for a in vulns)]
        allowed = (
            fixes
            if policy.security_priority
            else [v for v in fixes if within_strategy(policy.strategy, current, v)]
        )
        lowest_fix = min((v for v in allowed if safe(v)), default=min(allowed, default=None))
        if lowest_fix is None:
            why = (
                "no release fixes it yet"
                if not fixes
                else (f"the fix ({min(fixes)}) is outside the {policy.strategy} strategy")
            )
            return item("manual", f"vulnerable: {why}", latest=str(latest) if latest else None)
        security_floor = lowest_fix
        if regular is None or regular < lowest_fix:
            target = lowest_fix

    if target is None:
        return _held(item, current, newer, latest, policy, cooled, safe)

    attempts = [target] + ([security_floor] if security_floor and security_floor != target else [])
    failure = ""
    for choice in attempts:
        result = _rewrites_for(declared, choice, security_floor, by_version[choice], current)
        if isinstance(result, str):
            failure = failure or result
            continue
        return _chosen(item, name, current, choice, latest, vulns, locked, declared, result)
    common = _describe(current, target, latest, vulns)
    return item("manual", failure, **common)


def _describe(
    current: Version, target: Version, latest: Version | None, vulns: Sequence[Advisory]
) -> dict[str, Any]:
    return {
        "target": str(target),
        "latest": str(latest) if latest else None,
        "kind": classify_update(current, target),
        "breaking": is_breaking(current, target),
        "fixes": tuple(a.id for a in vulns if not a.affects(target)),
    }


def _chosen(
    item: Callable[..., PlanItem],
    name: str,
    current: Version,
    target: Version,
    latest: Version | None,
    vulns: Sequence[Advisory],
    locked: Sequence[LockedPackage],
    declared: Sequence[DeclaredDependency],
    rewrites: Sequence[Rewrite],
) -> PlanItem:
    common = _describe(current, target, latest, vulns)
    fixed = common["fixes"]
    reason = (f"security fix ({', '.join(fixed)})" if fixed else f"{common['kind']} update") + (
        ", breaking" if common["breaking"] else ""
    )
    if rewrites:
        return item("apply", reason, rewrites=tuple(rewrites), **common)
    where = ", ".join(p.file for p in locked) or "the environment"
    if not declared:
        why = f"transitive dependency locked at {current} in {where}; upgrade it there"
    else:
        why = (
            f"declared versions already allow {target}; update {where} "
            f"(e.g. `uv lock --upgrade-package {name}`)"
        )
    return item("manual", f"{reason}: {why}", **common)


def _rewrites_for(
    declared: Sequence[DeclaredDependency],
    target: Version,
    floor: Version | None,
    release: Release,
    current: Version,
) -> list[Rewrite] | str:
    """The rewrites that move every declaration to `target`, or why that is impossible."""
    rewrites: list[Rewrite] = []
    for dep in declared:
        spec = SpecifierSet(dep.specifier)
        lowest = _lower_bound(spec)
        if lowest is not None and lowest > target:
            continue  # already newer (e.g. another marker's pin): never move it down
        admits = spec.contains(target, prereleases=True)
        allows_vulnerable = floor is not None and spec.contains(current, prereleases=True)
        if admits and not allows_vulnerable:
            continue
        new = _rewrite(dep, target, floor, release)
        if new is None:
            why = " (hash-pinned; the index gave no sha256)" if dep.hashes else ""
            return f"cannot rewrite {dep.requirement!r} in {dep.file}:{dep.line} for {target}{why}"
        if new != dep.raw:
            rewrites.append(Rewrite(dep.file, dep.line, dep.column, dep.raw, new))
    return rewrites


def _held(
    item: Callable[..., PlanItem],
    current: Version,
    newer: Sequence[tuple[Version, Release]],
    latest: Version | None,
    policy: PlanPolicy,
    cooled: Callable[[Release], bool],
    safe: Callable[[Version], bool],
) -> PlanItem | None:
    """Why a newer release is not applied, or None when the package is up to date."""
    if not newer or latest is None:
        return None
    release = dict(newer)[latest]
    extra = {
        "target": None,
        "latest": str(latest),
        "kind": classify_update(current, latest),
        "breaking": is_breaking(current, latest),
    }
    if is_breaking(current, latest) and _release(current)[0] == 0:
        why = f"{latest} is a 0.x breaking update; never applied automatically"
    elif not within_strategy(policy.strategy, current, latest):
        allowed = {"conservative": "patch updates", "smart": "minor and patch updates"}
        scope = allowed.get(policy.strategy, "updates")
        why = f"{extra['kind']} update {latest}; {policy.strategy} applies {scope} only"
    elif not cooled(release):
        age = policy.now - release.uploaded_at if policy.now and release.uploaded_at else None
        days = f"{age.days} day(s) ago" if age is not None else "recently"
        why = f"{latest} was released {days}; waiting {policy.cooldown_days} days"
    elif not safe(latest):
        why = f"{latest} has known vulnerabilities"
    else:
        why = f"{latest} is available"
    return item("hold", why, **extra)


def _lower_bound(spec: SpecifierSet) -> Version | None:
    """The highest lower bound among the clauses (==, ===, >=, >, ~=), if any."""
    bounds: list[Version] = []
    for clause in spec:
        if clause.operator in ("==", "===", ">=", ">", "~=") and "*" not in clause.version:
            try:
                bounds.append(Version(clause.version))
            except InvalidVersion:
                continue
    return max(bounds, default=None)


def _rewrite(
    dep: DeclaredDependency, target: Version, floor: Version | None, release: Release
) -> str | None:
    if not dep.raw:
        return None
    if dep.file.endswith(".toml"):
        quote = dep.raw[0]
        inner = rewrite_requirement_text(dep.raw[1:-1], target, floor)
        return None if inner is None else f"{quote}{inner}{quote}"
    head, rest = dep.raw[: len(dep.requirement)], dep.raw[len(dep.requirement) :]
    if head != dep.requirement:
        return None
    new_head = rewrite_requirement_text(head, target, floor)
    if new_head is None:
        return None
    if dep.hashes:
        if not release.sha256:
            return None  # hash-pinned: without the new files' hashes pip would refuse
        rest = _replace_hashes(rest, [f"sha256:{h}" for h in release.sha256])
    return new_head + rest


# ----------------------------------------------------------------------------- applying


def apply_plan(plan: UpdatePlan, texts: Mapping[str, str]) -> dict[str, str]:
    """The new text of every file the plan changes. `texts` maps each file to its text.

    Raises PlanError when a requirement is no longer where the plan found it.
    """
    out: dict[str, str] = {}
    for item in plan.applicable:
        for rewrite in item.rewrites:
            text = out.get(rewrite.file, texts.get(rewrite.file))
            if text is None:
                raise PlanError(f"{rewrite.file}: file not given to apply the plan")
            out[rewrite.file] = _apply_rewrite(text, rewrite)
    return {path: text for path, text in out.items() if text != texts.get(path)}


def _apply_rewrite(text: str, rewrite: Rewrite) -> str:
    lines = text.splitlines(keepends=True)
    if not 1 <= rewrite.line <= len(lines):
        raise PlanError(
            f"{rewrite.file}:{rewrite.line}: line not found; the file changed since the plan"
        )
    line_start = sum(len(line) for line in lines[: rewrite.line - 1])
    line_end = line_start + len(lines[rewrite.line - 1])
    at = line_start + rewrite.column
    if text[at : at + len(rewrite.old)] != rewrite.old:
        at = text.find(rewrite.old, line_start)
        if at < 0 or at >= line_end:
            raise PlanError(
                f"{rewrite.file}:{rewrite.line}: expected {rewrite.old.splitlines()[0]!r}; "
                "the file changed since the plan"
            )
    return text[:at] + rewrite.new + text[at + len(rewrite.old) :]


# ----------------------------------------------------------------------------- reports


def plan_to_dict(plan: UpdatePlan) -> dict[str, Any]:
    return {
        "strategy": plan.strategy,
        "key": plan.key,
        "cooldown_days": plan.cooldown_days,
        "lock_files": list(plan.lock_files),
        "advisories_checked": plan.advisories_not_checked is None,
        "advisories_not_checked": plan.advisories_not_checked,
        "items": [
            {
                "name": i.name,
                "current": i.current,
                "current_source": i.current_source,
                "target": i.target,
                "latest": i.latest,
                "kind": i.kind,
                "breaking": i.breaking,
                "action": i.action,
                "reason": i.reason,
                "security": i.security,
                "severity": i.severity if i.security else None,
                "advisories": [
                    {
                        "id": a.id,
                        "aliases": list(a.aliases),
                        "severity": a.severity,
                        "summary": a.summary,
                        "fixed": list(a.fixed_versions),
                        "url": a.url,
                    }
                    for a in i.advisories
                ],
                "fixes": list(i.fixes),
                "files": list(i.files),
                "rewrites": [
                    {"file": r.file, "line": r.line, "old": r.old, "new": r.new} for r in i.rewrites
                ],
            }
            for i in plan.items
        ],
        "unmanaged": [
            {"file": u.file, "line": u.line, "text": u.text, "reason": u.reason}
            for u in plan.unmanaged
        ],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def pull_request_title(plan: UpdatePlan) -> str:
    items = plan.applicable
    security = sum(1 for i in items if i.fixes)
    if len(items) == 1:
        only = items[0]
        prefix = "fix(deps)" if only.fixes else "chore(deps)"
        return f"{prefix}: update {only.name} to {only.target}"
    prefix = "fix(deps)" if security else "chore(deps)"
    extra = f" ({security} security)" if security else ""
    return f"{prefix}: update {len(items)} dependencies{extra}"


def plan_markdown(plan: UpdatePlan) -> str:
    """A table of changes and advisories, for a pull request body or a report."""
    out = [f"## Dependency updates ({plan.strategy})", ""]
    if plan.advisories_not_checked:
        out += [
            f"> Known vulnerabilities were **not checked**: {_cell(plan.advisories_not_checked)}",
            "",
        ]
    applied = plan.applicable
    if applied:
        out += [
            "| Package | From | To | Update | Files | Advisories |",
            "|---|---|---|---|---|---|",
        ]
        for i in applied:
            kind = f"{i.kind}{' (breaking)' if i.breaking else ''}"
            fixes = ", ".join(i.fixes) or "-"
            files = ", ".join(sorted({r.file for r in i.rewrites}))
            cells = [_cell(i.name), str(i.current), str(i.target), kind, _cell(files), fixes]
            out.append("| " + " | ".join(cells) + " |")
    else:
        out.append("No updates to apply.")
    others = [i for i in plan.items if i.action != "apply"]
    if others:
        out += [
            "",
            "### Not applied",
            "",
            "| Package | Current | Latest | Why |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {_cell(i.name)} | {i.current or '-'} | {i.latest or '-'} | {_cell(i.reason)} |"
            for i in others
        ]
    by_id = {a.id: a for i in plan.items for a in i.advisories}
    if by_id:
        out += [
            "",
            "### Advisories",
            "",
            "| Advisory | Package | Severity | Fixed in | Summary |",
            "|---|---|---|---|---|",
        ]
        for a in sorted(by_id.values(), key=lambda a: (-SEVERITY_RANK[a.severity], a.id)):
            label = f"[{a.id}]({a.url})" if a.url else a.id
            fixed = ", ".join(a.fixed_versions) or "-"
            out.append(f"| {label} | {a.package} | {a.severity} | {fixed} | {_cell(a.summary)} |")
    if plan.lock_files and applied:
        out += ["", f"Lock files to regenerate after merging: {', '.join(plan.lock_files)}."]
    out += ["", f"<!-- contexten-deps-plan: {plan.key} -->"]
    return "\n".join(out) + "\n"
