"""Conventional commits to the next semantic version and a grouped changelog."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contexten.analysis.release import (
    Commit,
    ReleaseError,
    ReleasePolicy,
    SemVer,
    decide_bump,
    latest_tag,
    next_version,
    parse_commit,
    parse_version,
    plan_release,
    plan_to_dict,
)


def sha(n: int) -> str:
    return f"{n:040x}"


def test_parse_header_scope_bang_and_footer() -> None:
    parsed = parse_commit(Commit(sha(1), "Feat(API)!: drop v1 endpoints"))
    assert parsed is not None
    assert (parsed.type, parsed.scope, parsed.breaking) == ("feat", "API", True)
    assert parsed.breaking_notes == ("drop v1 endpoints",)
    body = "Longer text.\n\nBREAKING CHANGE: config moved to\n  contexten.toml\nRefs: #12\n"
    footer = parse_commit(Commit(sha(2), "fix: read config", body))
    assert footer is not None and footer.breaking
    assert footer.breaking_notes == ("config moved to contexten.toml",)
    hyphen = parse_commit(Commit(sha(3), "perf: faster", "BREAKING-CHANGE: x"))
    assert hyphen is not None and hyphen.breaking_notes == ("x",)


@pytest.mark.parametrize(
    "subject",
    [
        "Merge pull request #4 from o/branch",
        "update readme",
        "feat add thing",  # no colon
        "feat:",  # no description
        "feat(scope: x",
    ],
)
def test_non_conventional_subjects(subject: str) -> None:
    assert parse_commit(Commit(sha(9), subject)) is None


def test_revert_subject_from_github() -> None:
    parsed = parse_commit(Commit(sha(4), 'Revert "feat: add cache"'))
    assert (
        parsed is not None and parsed.type == "revert" and parsed.description == "feat: add cache"
    )


@pytest.mark.parametrize(
    ("subjects", "bump"),
    [
        (["docs: a", "chore: b", "ci: c"], "none"),
        (["fix: a", "docs: b"], "patch"),
        (["perf: a"], "patch"),
        (["fix: a", "feat: b"], "minor"),
        (["feat: a", "refactor!: b"], "major"),
    ],
)
def test_bump_is_the_largest(subjects: list[str], bump: str) -> None:
    commits = [parse_commit(Commit(sha(i), s)) for i, s in enumerate(subjects)]
    assert decide_bump(c for c in commits if c is not None) == bump


@pytest.mark.parametrize(
    ("current", "bump", "policy", "expected"),
    [
        ("1.2.3", "patch", ReleasePolicy(), "1.2.4"),
        ("1.2.3", "minor", ReleasePolicy(), "1.3.0"),
        ("1.2.3", "major", ReleasePolicy(), "2.0.0"),
        ("0.4.2", "major", ReleasePolicy(), "0.5.0"),
        ("0.4.2", "major", ReleasePolicy(breaking_pre_major="major"), "1.0.0"),
        ("0.4.2", "minor", ReleasePolicy(), "0.5.0"),
        ("0.4.2", "minor", ReleasePolicy(feat_pre_major="patch"), "0.4.3"),
        ("1.0.0-rc.2", "patch", ReleasePolicy(), "1.0.0"),
        ("1.1.0-rc.1", "major", ReleasePolicy(), "2.0.0"),
        ("1.1.1-beta", "minor", ReleasePolicy(), "1.2.0"),
        (None, "patch", ReleasePolicy(), "0.0.1"),
        (None, "minor", ReleasePolicy(), "0.1.0"),
        (None, "major", ReleasePolicy(initial_version="1.0.0"), "1.0.0"),
    ],
)
def test_next_version(current: str | None, bump: str, policy: ReleasePolicy, expected: str) -> None:
    version = parse_version(current) if current else None
    assert str(next_version(version, bump, policy)) == expected  # type: ignore[arg-type]


def test_no_bump_no_version_and_bad_initial() -> None:
    assert next_version(SemVer(1, 0, 0), "none") is None
    with pytest.raises(ReleaseError, match="initial version 'one' is not a semantic version"):
        next_version(None, "patch", ReleasePolicy(initial_version="one"))


def test_latest_tag_by_semver_not_text() -> None:
    tags = ["v1.9.0", "v1.10.0", "v1.10.0-rc.1", "release-2", "v2.0.0-beta.2", "v2.0.0-beta.10"]
    assert latest_tag(tags, "v") == ("v2.0.0-beta.10", SemVer(2, 0, 0, "beta.10"))
    assert latest_tag(["1.0.0", "v3.0.0"], "") == ("1.0.0", SemVer(1, 0, 0))
    assert latest_tag(["nothing"], "v") is None


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)), min_size=1))
def test_latest_tag_is_the_maximum(versions: list[tuple[int, int, int]]) -> None:
    tags = [f"v{a}.{b}.{c}" for a, b, c in versions]
    assert latest_tag(tags, "v") == (
        f"v{'.'.join(map(str, max(versions)))}",
        SemVer(*max(versions)),
    )


COMMITS = [
    Commit(sha(6), "docs: explain config"),
    Commit(sha(5), "feat(cli)!: rename --fast to --quick (#42)", "BREAKING CHANGE: --fast is gone"),
    Commit(sha(4), "fix(parser): handle empty logs"),
    Commit(sha(3), "perf: cache signatures"),
    Commit(sha(2), "tidy up"),
    Commit(sha(1), "feat: add release command"),
]


def test_plan_release_changelog() -> None:
    plan = plan_release(
        COMMITS, "v1.4.1", date="2025-03-01", repo_url="https://github.com/acme/tool"
    )
    assert (plan.bump, str(plan.version), plan.tag) == ("major", "2.0.0", "v2.0.0")
    assert [c.subject for c in plan.other_commits] == ["tidy up"]
    text = plan.changelog
    assert text.startswith(
        "## [2.0.0](https://github.com/acme/tool/compare/v1.4.1...v2.0.0) (2025-03-01)\n"
    )
    sections = [line for line in text.splitlines() if line.startswith("### ")]
    assert sections == [
        "### ⚠ BREAKING CHANGES",
        "### Features",
        "### Bug Fixes",
        "### Performance Improvements",
    ]
    assert "* **cli:** --fast is gone" in text
    assert (
        "* **cli:** rename --fast to --quick ([#42](https://github.com/acme/tool/issues/42)) "
        f"([{sha(5)[:7]}](https://github.com/acme/tool/commit/{sha(5)}))"
    ) in text
    assert "explain config" not in text  # docs are hidden by default
    shown = plan_release(COMMITS, "v1.4.1", policy=ReleasePolicy(show_all_types=True))
    assert "### Documentation" in shown.changelog and "explain config" in shown.changelog
    assert f"* **parser:** handle empty logs ({sha(4)[:7]})" in shown.changelog


def test_plan_release_without_releasable_commits() -> None:
    plan = plan_release([Commit(sha(1), "chore: bump tooling")], "v0.3.0")
    assert not plan.releasable and plan.version is None and plan.changelog == ""
    assert plan_to_dict(plan)["releasable"] is False


def test_plan_release_first_release_and_bad_tag() -> None:
    first = plan_release([Commit(sha(1), "feat: hello")], None)
    assert str(first.version) == "0.1.0" and first.previous_version is None
    assert first.changelog.startswith("## 0.1.0\n")
    with pytest.raises(ReleaseError, match="tag 'latest' is not a semantic version"):
        plan_release([Commit(sha(1), "feat: x")], "latest")
