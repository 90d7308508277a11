"""Find and read a project's dependency files; write the updated ones back.

Looks in the project directory for pyproject.toml, requirements*.txt / *.in, constraints*.txt,
requirements/*.txt and lock files, and follows `-r`/`-c` includes. Includes must stay inside
the project directory; files and their number are bounded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from contexten.analysis.deps import (
    DependencyFileError,
    ParsedFile,
    Project,
    UnmanagedRequirement,
    combine,
    is_lock_file,
    parse_lock,
    parse_pyproject,
    parse_requirements,
)

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_FILES = 200

_PATTERNS = (
    "requirements*.txt",
    "requirements*.in",
    "constraints*.txt",
    "requirements/*.txt",
    "requirements/*.in",
)


@dataclass(frozen=True, slots=True)
class LoadedProject:
    root: Path
    project: Project
    texts: dict[str, str]  # relative posix path -> text, for applying a plan


def _read(root: Path, relative: str) -> str:
    path = root / relative
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DependencyFileError(f"{relative}: cannot read: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise DependencyFileError(f"{relative}: larger than {MAX_FILE_BYTES} bytes")
    try:
        # bytes, not read_text: keep CRLF line endings so rewrites change nothing else
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DependencyFileError(f"{relative}: not UTF-8 text") from None
    except OSError as exc:
        raise DependencyFileError(f"{relative}: cannot read: {exc.strerror or exc}") from None


def discover(root: Path) -> list[str]:
    """Dependency files directly in `root` (and requirements/), relative posix paths."""
    found: set[Path] = set()
    if (root / "pyproject.toml").is_file():
        found.add(root / "pyproject.toml")
    for pattern in _PATTERNS:
        found.update(p for p in root.glob(pattern) if p.is_file())
    found.update(p for p in root.iterdir() if p.is_file() and is_lock_file(p.name))
    return sorted(p.relative_to(root).as_posix() for p in found)


def _inside(root: Path, relative: str) -> bool:
    resolved = (root / relative).resolve()
    return resolved == root or root in resolved.parents


def load_project(root: Path | str) -> LoadedProject:
    """Read every dependency file of the project at `root`.

    Raises DependencyFileError (one line, naming the file) for a missing directory, no
    dependency files, an unreadable or unparseable file, or a missing include.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DependencyFileError(f"{base}: not a directory")
    base = base.resolve()
    start = discover(base)
    if not start:
        raise DependencyFileError(
            f"{base}: no dependency files found (pyproject.toml, requirements*.txt, "
            "constraints*.txt, uv.lock, poetry.lock, pylock.toml, Pipfile.lock)"
        )
    constraints = {p for p in start if PurePosixPath(p).name.startswith("constraints")}
    queue = deque(start)
    seen: set[str] = set(start)
    texts: dict[str, str] = {}
    parsed: list[ParsedFile] = []
    outside: list[UnmanagedRequirement] = []
    while queue:
        relative = queue.popleft()
        text = _read(base, relative)
        texts[relative] = text
        name = PurePosixPath(relative).name
        if name == "pyproject.toml":
            parsed.append(parse_pyproject(text, relative))
        elif is_lock_file(name):
            parsed.append(parse_lock(text, relative))
        else:
            result = parse_requirements(text, relative, constraints=relative in constraints)
            parsed.append(result)
            for include in result.includes:
                if "://" in include.target:
                    outside.append(
                        UnmanagedRequirement(
                            relative, include.line, include.target, "remote include (URL)"
                        )
                    )
                    continue
                target = (PurePosixPath(relative).parent / include.target).as_posix()
                if not _inside(base, target):
                    outside.append(
                        UnmanagedRequirement(
                            relative, include.line, include.target, "include outside the project"
                        )
                    )
                    continue
                target = (base / target).resolve().relative_to(base).as_posix()
                if not (base / target).is_file():
                    raise DependencyFileError(
                        f"{relative}:{include.line}: included file {include.target!r} not found"
                    )
                if include.kind == "constraint":
                    constraints.add(target)
                if target not in seen:
                    if len(seen) >= MAX_FILES:
                        raise DependencyFileError(f"{relative}: more than {MAX_FILES} files")
                    seen.add(target)
                    queue.append(target)
    project = combine(parsed)
    if outside:
        project = Project(
            project.files,
            project.dependencies,
            project.locked,
            project.unmanaged + tuple(outside),
            project.requires_python,
        )
    return LoadedProject(base, project, texts)


def write_files(root: Path, changed: dict[str, str]) -> list[str]:
    """Write new file texts under `root` (keeping each file's bytes otherwise as they were)."""
    written: list[str] = []
    for relative, text in sorted(changed.items()):
        if not _inside(root, relative):
            raise DependencyFileError(f"{relative}: outside the project; not written")
        path = root / relative
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        written.append(relative)
    return written
