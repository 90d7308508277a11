"""pip requirements and constraints files (`-r`/`-c` includes are returned to the caller)."""

from __future__ import annotations

import re
from typing import Literal

from packaging.utils import canonicalize_name

from contexten.analysis.deps.model import (
    DeclaredDependency,
    DependencyFileError,
    Include,
    ParsedFile,
    UnmanagedRequirement,
)
from contexten.analysis.deps.requirement import _HASH, _URLISH, _parse_requirement
from contexten.analysis.severity import SEVERITY_RANK as SEVERITY_RANK

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
