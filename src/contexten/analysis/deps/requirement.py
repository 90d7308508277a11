"""Requirement text: parsing one requirement, rewriting its version clauses and hashes."""

from __future__ import annotations

import re
from collections.abc import Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from contexten.analysis.deps.model import MAX_REQUIREMENT_LENGTH, DependencyFileError
from contexten.analysis.severity import SEVERITY_RANK as SEVERITY_RANK

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
