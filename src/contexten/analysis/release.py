"""Next version and changelog from conventional commits. Pure: takes commits, returns a plan.

Rules (Conventional Commits 1.0 as release-please and semantic-release apply them): a
breaking change (`type!:` or a `BREAKING CHANGE:` footer) bumps major, `feat` minor,
`fix`/`perf`/`revert`/`deps` patch; `docs`, `chore`, `ci`, ... make no release. Below 1.0.0
the bumps are explicit settings: by default a breaking change bumps the minor version and a
feature the minor version too (0.4.2 -> 0.5.0), so nothing reaches 1.0.0 by accident.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Bump = Literal["major", "minor", "patch", "none"]
BUMP_RANK: dict[str, int] = {"none": 0, "patch": 1, "minor": 2, "major": 3}

# type -> (section title, bump, shown by default)
COMMIT_TYPES: dict[str, tuple[str, Bump, bool]] = {
    "feat": ("Features", "minor", True),
    "fix": ("Bug Fixes", "patch", True),
    "perf": ("Performance Improvements", "patch", True),
    "revert": ("Reverts", "patch", True),
    "deps": ("Dependencies", "patch", True),
    "docs": ("Documentation", "none", False),
    "style": ("Styles", "none", False),
    "refactor": ("Code Refactoring", "none", False),
    "test": ("Tests", "none", False),
    "build": ("Build System", "none", False),
    "ci": ("Continuous Integration", "none", False),
    "chore": ("Miscellaneous Chores", "none", False),
}

MAX_SUBJECT = 500  # longer subjects are cut in the changelog


class ReleaseError(ValueError):
    """Bad release input (a tag that is not a version, a bad setting); one line."""


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    subject: str
    body: str = ""


@dataclass(frozen=True, slots=True)
class ConventionalCommit:
    sha: str
    type: str  # lower case
    scope: str | None
    description: str
    breaking: bool = False
    breaking_notes: tuple[str, ...] = ()
    body: str = ""


@dataclass(frozen=True, slots=True, order=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.prerelease}" if self.prerelease else core

    @property
    def sort_key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # a pre-release sorts before its release (1.0.0-rc.1 < 1.0.0)
        parts = tuple(
            (0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease.split(".") if p
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, parts)


_SEMVER = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


def parse_version(text: str, prefix: str = "") -> SemVer | None:
    """A semantic version from a tag like `v1.2.3` (None when it is not one)."""
    if prefix and not text.startswith(prefix):
        return None
    match = _SEMVER.match(text[len(prefix) :])
    if not match:
        return None
    return SemVer(int(match["major"]), int(match["minor"]), int(match["patch"]), match["pre"] or "")


def latest_tag(tags: Iterable[str], prefix: str = "v") -> tuple[str, SemVer] | None:
    """The highest semantic-version tag with `prefix`; other tags are ignored."""
    versions = [(tag, v) for tag in tags if (v := parse_version(tag.strip(), prefix)) is not None]
    if not versions:
        return None
    return max(versions, key=lambda pair: pair[1].sort_key)


_HEADER = re.compile(
    r"^(?P<type>[A-Za-z][A-Za-z0-9_-]*)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?"
    r":[ \t]+(?P<desc>\S.*)$"
)
_REVERT = re.compile(r'^Revert "(?P<inner>.+)"$')
_FOOTER = re.compile(
    r"^(?P<token>BREAKING[ -]CHANGE|[A-Za-z][\w-]*)(?::[ \t]|[ \t]#)(?P<value>.*)$"
)


def parse_commit(commit: Commit) -> ConventionalCommit | None:
    """The conventional-commit reading of a commit, or None when it does not follow it."""
    subject = commit.subject.strip()
    revert = _REVERT.match(subject)
    if revert:
        return ConventionalCommit(commit.sha, "revert", None, revert["inner"], body=commit.body)
    match = _HEADER.match(subject)
    if not match:
        return None
    notes = _breaking_notes(commit.body)
    bang = bool(match["bang"])
    description = match["desc"].strip()[:MAX_SUBJECT]
    if bang and not notes:
        notes = (description,)
    scope = (match["scope"] or "").strip() or None
    return ConventionalCommit(
        commit.sha,
        match["type"].lower(),
        scope,
        description,
        breaking=bang or bool(notes),
        breaking_notes=notes,
        body=commit.body,
    )


def _breaking_notes(body: str) -> tuple[str, ...]:
    notes: list[str] = []
    current: list[str] | None = None
    for line in body.splitlines():
        footer = _FOOTER.match(line)
        if footer:
            if current is not None:
                notes.append(" ".join(current).strip())
            token = footer["token"]
            current = (
                [footer["value"].strip()]
                if token in ("BREAKING CHANGE", "BREAKING-CHANGE")
                else None
            )
        elif current is not None:
            if not line.strip():
                notes.append(" ".join(current).strip())
                current = None
            else:
                current.append(line.strip())
    if current is not None:
        notes.append(" ".join(current).strip())
    return tuple(n for n in notes if n)


@dataclass(frozen=True, slots=True)
class ReleasePolicy:
    """Explicit choices for versions below 1.0.0, and what the changelog shows."""

    breaking_pre_major: Literal["minor", "major"] = "minor"
    feat_pre_major: Literal["minor", "patch"] = "minor"
    initial_version: str | None = None  # the first release when there is no tag yet
    show_all_types: bool = False  # also docs, chore, ci, ... sections


def commit_bump(commit: ConventionalCommit) -> Bump:
    if commit.breaking:
        return "major"
    return COMMIT_TYPES.get(commit.type, ("", "none", False))[1]


def decide_bump(commits: Iterable[ConventionalCommit]) -> Bump:
    best: Bump = "none"
    for commit in commits:
        bump = commit_bump(commit)
        if BUMP_RANK[bump] > BUMP_RANK[best]:
            best = bump
    return best


def next_version(
    current: SemVer | None, bump: Bump, policy: ReleasePolicy | None = None
) -> SemVer | None:
    """The version after `current` for `bump`; None when nothing warrants a release."""
    policy = policy or ReleasePolicy()
    if bump == "none":
        return None
    if current is None:
        if policy.initial_version is not None:
            initial = parse_version(policy.initial_version)
            if initial is None:
                raise ReleaseError(
                    f"initial version {policy.initial_version!r} is not a semantic version (X.Y.Z)"
                )
            return initial
        current = SemVer(0, 0, 0)
    if current.major == 0:
        if bump == "major":
            bump = policy.breaking_pre_major
        elif bump == "minor":
            bump = policy.feat_pre_major
    if current.prerelease:
        # finish the pre-release unless the changes since need a bigger step
        base = SemVer(current.major, current.minor, current.patch)
        if bump == "major" and (base.minor or base.patch):
            return SemVer(base.major + 1, 0, 0)
        if bump == "minor" and base.patch:
            return SemVer(base.major, base.minor + 1, 0)
        return base
    if bump == "major":
        return SemVer(current.major + 1, 0, 0)
    if bump == "minor":
        return SemVer(current.major, current.minor + 1, 0)
    return SemVer(current.major, current.minor, current.patch + 1)


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    previous_tag: str | None
    previous_version: SemVer | None
    bump: Bump
    version: SemVer | None  # None: no release-worthy changes
    tag: str | None
    commits: tuple[ConventionalCommit, ...]
    other_commits: tuple[Commit, ...] = field(default=())  # not conventional
    changelog: str = ""

    @property
    def releasable(self) -> bool:
        return self.version is not None


def plan_release(
    commits: Sequence[Commit],
    previous_tag: str | None,
    *,
    tag_prefix: str = "v",
    policy: ReleasePolicy | None = None,
    date: str | None = None,
    repo_url: str | None = None,
) -> ReleasePlan:
    """Next version and changelog for `commits` (newest first, as `git log` lists them)."""
    policy = policy or ReleasePolicy()
    previous: SemVer | None = None
    if previous_tag is not None:
        previous = parse_version(previous_tag, tag_prefix)
        if previous is None:
            raise ReleaseError(
                f"tag {previous_tag!r} is not a semantic version with prefix {tag_prefix!r}"
            )
    parsed: list[ConventionalCommit] = []
    others: list[Commit] = []
    for commit in commits:
        conventional = parse_commit(commit)
        if conventional is None:
            others.append(commit)
        else:
            parsed.append(conventional)
    bump = decide_bump(parsed)
    version = next_version(previous, bump, policy)
    tag = f"{tag_prefix}{version}" if version else None
    changelog = ""
    if version is not None and tag is not None:
        changelog = changelog_markdown(
            parsed,
            version=str(version),
            previous_tag=previous_tag,
            tag=tag,
            date=date,
            repo_url=repo_url,
            show_all_types=policy.show_all_types,
        )
    return ReleasePlan(
        previous_tag, previous, bump, version, tag, tuple(parsed), tuple(others), changelog
    )


_ISSUE_REF = re.compile(r"(?<![\w/])#(\d+)\b")


def _describe(commit: ConventionalCommit, repo_url: str | None) -> str:
    text = commit.description.replace("\n", " ")
    if repo_url:
        text = _ISSUE_REF.sub(lambda m: f"[#{m[1]}]({repo_url}/issues/{m[1]})", text)
    scope = f"**{commit.scope}:** " if commit.scope else ""
    short = commit.sha[:7]
    link = f"[{short}]({repo_url}/commit/{commit.sha})" if repo_url else short
    return f"* {scope}{text} ({link})"


def changelog_markdown(
    commits: Sequence[ConventionalCommit],
    *,
    version: str,
    previous_tag: str | None,
    tag: str,
    date: str | None = None,
    repo_url: str | None = None,
    show_all_types: bool = False,
) -> str:
    """A release-please style changelog section: breaking changes first, then by type."""
    title = version
    if repo_url and previous_tag:
        title = f"[{version}]({repo_url}/compare/{previous_tag}...{tag})"
    header = f"## {title}" + (f" ({date})" if date else "")
    out = [header]
    breaking = [c for c in commits if c.breaking]
    if breaking:
        out += ["", "### ⚠ BREAKING CHANGES", ""]
        for commit in breaking:
            scope = f"**{commit.scope}:** " if commit.scope else ""
            for note in commit.breaking_notes or (commit.description,):
                out.append(f"* {scope}{note}")
    for type_, (section, _bump, shown) in COMMIT_TYPES.items():
        members = [
            c for c in commits if c.type == type_ and (shown or show_all_types or c.breaking)
        ]
        if members:
            out += ["", f"### {section}", ""]
            out += [_describe(c, repo_url) for c in members]
    unknown = [c for c in commits if c.type not in COMMIT_TYPES and (show_all_types or c.breaking)]
    if unknown:
        out += ["", "### Other Changes", ""]
        out += [_describe(c, repo_url) for c in unknown]
    return "\n".join(out) + "\n"


def plan_to_dict(plan: ReleasePlan) -> dict[str, object]:
    return {
        "previous_tag": plan.previous_tag,
        "previous_version": str(plan.previous_version) if plan.previous_version else None,
        "bump": plan.bump,
        "version": str(plan.version) if plan.version else None,
        "tag": plan.tag,
        "releasable": plan.releasable,
        "commits": [
            {
                "sha": c.sha,
                "type": c.type,
                "scope": c.scope,
                "description": c.description,
                "breaking": c.breaking,
                "bump": commit_bump(c),
            }
            for c in plan.commits
        ],
        "other_commits": [{"sha": c.sha, "subject": c.subject} for c in plan.other_commits],
        "changelog": plan.changelog,
    }
