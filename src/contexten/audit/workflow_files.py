"""Find and lint a repository's GitHub Actions workflow files (the I/O around workflow_lint)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contexten.analysis.workflow_lint import (
    MAX_WORKFLOW_BYTES,
    WorkflowFinding,
    WorkflowParseError,
    is_workflow_path,
    lint_workflow,
)


class WorkflowFilesError(ValueError):
    """The path to lint does not exist or holds no workflow files; one line."""


@dataclass(frozen=True, slots=True)
class WorkflowLintReport:
    root: Path  # paths in findings and errors are relative to this
    files: tuple[str, ...]
    findings: tuple[WorkflowFinding, ...]
    errors: tuple[str, ...]  # one line per unreadable or invalid file


def repository_root(path: Path) -> Path:
    """The nearest ancestor (or self) holding .git or .github; else the path's directory."""
    start = path if path.is_dir() else path.parent
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists() or (candidate / ".github").is_dir():
            return candidate
    return start


def workflow_files(path: Path) -> list[Path]:
    """Workflow files under `path`: the file itself, its .github/workflows, or its YAML files."""
    if not path.exists():
        raise WorkflowFilesError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    workflows_dir = path / ".github" / "workflows"
    directory = workflows_dir if workflows_dir.is_dir() else path
    return sorted(p for p in directory.iterdir() if p.is_file() and is_workflow_path(p.name))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def lint_path(path: Path, root: Path | None = None) -> WorkflowLintReport:
    """Lint every workflow under `path`; parse errors are collected, not raised."""
    base = root or repository_root(path)
    files = workflow_files(path)
    findings: list[WorkflowFinding] = []
    errors: list[str] = []
    names: list[str] = []
    for file in files:
        name = _relative(file, base)
        names.append(name)
        if file.stat().st_size > MAX_WORKFLOW_BYTES:
            errors.append(f"{name}: larger than {MAX_WORKFLOW_BYTES} bytes; not linted")
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{name}: unreadable: {exc}")
            continue
        try:
            findings.extend(lint_workflow(text, name))
        except WorkflowParseError as exc:
            errors.append(str(exc))
    return WorkflowLintReport(base, tuple(names), tuple(findings), tuple(errors))
