"""Update plans: classification, strategies, cooldown, security fixes, rewriting files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from contexten.analysis.deps import (
    Advisory,
    PackageInfo,
    PlanError,
    PlanPolicy,
    Release,
    apply_plan,
    classify_update,
    combine,
    is_breaking,
    parse_lock,
    parse_pyproject,
    parse_requirements,
    plan_markdown,
    plan_to_dict,
    plan_updates,
    pull_request_title,
    python_floor,
    rewrite_requirement_text,
)

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def info(name: str, *versions: str | tuple[str, dict[str, Any]]) -> PackageInfo:
    """Releases 30 days old unless options say otherwise (age_days, yanked, ...)."""
    releases = []
    for entry in versions:
        version, options = (entry, {}) if isinstance(entry, str) else entry
        age = options.pop("age_days", 30)
        releases.append(Release(version, NOW - timedelta(days=age), **options))
    return PackageInfo(name, tuple(releases))


def advisory(
    id_: str, package: str, fixed: str | None, introduced: str = "0", **kw: Any
) -> Advisory:
    events: tuple[tuple[str, str], ...] = (("introduced", introduced),)
    if fixed:
        events += (("fixed", fixed),)
    return Advisory(id_, package, ranges=(events,), **kw)


def plan_for(
    requirements: str,
    index: dict[str, PackageInfo],
    advisories: dict[str, list[Advisory]] | None = None,
    **policy: Any,
) -> Any:
    project = combine([parse_requirements(requirements, "requirements.txt")])
    return plan_updates(project, index, advisories or {}, PlanPolicy(now=NOW, **policy))


def by_name(plan: Any) -> dict[str, Any]:
    return {i.name: i for i in plan.items}


@pytest.mark.parametrize(
    ("current", "target", "kind", "breaking"),
    [
        ("1.2.3", "1.2.4", "patch", False),
        ("1.2.3", "1.3.0", "minor", False),
        ("1.2.3", "2.0.0", "major", True),
        ("0.3.1", "0.3.2", "patch", False),
        ("0.3.1", "0.4.0", "minor", True),  # below 1.0 a minor may break
        ("0.9.0", "1.0.0", "major", True),
        ("2.0", "2.0.1.post1", "patch", False),
    ],
)
def test_classify(current: str, target: str, kind: str, breaking: bool) -> None:
    assert classify_update(Version(current), Version(target)) == kind
    assert is_breaking(Version(current), Version(target)) is breaking


INDEX = {
    "lib": info("lib", "1.2.0", "1.2.5", "1.4.0", "2.1.0"),
    "zero": info("zero", "0.3.1", "0.3.4", "0.5.0"),
}


@pytest.mark.parametrize(
    ("strategy", "lib_target", "zero_target"),
    [
        ("conservative", "1.2.5", "0.3.4"),
        ("smart", "1.4.0", "0.3.4"),
        ("aggressive", "2.1.0", "0.3.4"),  # never a 0.x breaking update
    ],
)
def test_strategies(strategy: str, lib_target: str, zero_target: str) -> None:
    plan = plan_for("lib==1.2.0\nzero==0.3.1\n", INDEX, strategy=strategy)
    items = by_name(plan)
    assert items["lib"].target == lib_target and items["lib"].action == "apply"
    assert items["zero"].target == zero_target
    assert items["zero"].latest == "0.5.0"


def test_held_updates_say_why() -> None:
    plan = plan_for("lib==1.4.0\nzero==0.3.4\n", INDEX, strategy="smart")
    items = by_name(plan)
    assert items["lib"].action == "hold"
    assert items["lib"].reason == "major update 2.1.0; smart applies minor and patch updates only"
    assert items["zero"].action == "hold"
    assert "0.x breaking update; never applied automatically" in items["zero"].reason


def test_up_to_date_packages_are_not_listed() -> None:
    assert plan_for("lib==2.1.0\n", INDEX, strategy="aggressive").items == ()


def test_unknown_strategy_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="unknown strategy 'yolo'; expected one of: conservative"):
        plan_for("lib==1.2.0\n", INDEX, strategy="yolo")


def test_cooldown_waits_for_new_releases() -> None:
    index = {"lib": info("lib", "1.0.0", "1.0.1", ("1.0.2", {"age_days": 1}))}
    item = by_name(plan_for("lib==1.0.0\n", index, cooldown_days=3))["lib"]
    assert item.target == "1.0.1"
    held = by_name(plan_for("lib==1.0.1\n", index, cooldown_days=3))["lib"]
    assert held.action == "hold" and "released 1 day(s) ago; waiting 3 days" in held.reason
    none = by_name(plan_for("lib==1.0.1\n", index, cooldown_days=0))["lib"]
    assert none.target == "1.0.2"


def test_yanked_prerelease_and_requires_python_are_skipped() -> None:
    index = {
        "lib": info(
            "lib",
            "1.0.0",
            "1.1.0",
            ("1.2.0", {"yanked": True}),
            ("1.3.0rc1", {}),
            ("1.4.0", {"requires_python": ">=3.13"}),
        )
    }
    project = combine(
        [
            parse_pyproject(
                '[project]\nrequires-python = ">=3.11"\ndependencies = ["lib==1.0.0"]\n'
            ),
        ]
    )
    plan = plan_updates(project, index, {}, PlanPolicy(now=NOW))
    assert plan.items[0].target == "1.1.0"
    with_pre = plan_updates(project, index, {}, PlanPolicy(now=NOW, allow_prereleases=True))
    assert with_pre.items[0].target == "1.3.0rc1"
    assert python_floor(">=3.11,<4") == Version("3.11")


def test_security_fix_goes_to_lowest_fixed_release_and_skips_cooldown() -> None:
    index = {"web": info("web", "2.0.0", ("2.0.3", {"age_days": 0}), "2.0.4", "3.0.0")}
    advisories = {"web": [advisory("GHSA-x", "web", fixed="2.0.3", severity="high")]}
    item = by_name(plan_for("web==2.0.0\n", index, advisories, strategy="conservative"))["web"]
    # the regular target (2.0.4) is newer and fixed too: one update does both
    assert item.target == "2.0.4" and item.fixes == ("GHSA-x",)
    assert item.reason == "security fix (GHSA-x)"
    index = {"web": info("web", "2.0.0", ("2.0.3", {"age_days": 0}))}
    item = by_name(plan_for("web==2.0.0\n", index, advisories, strategy="conservative"))["web"]
    assert item.target == "2.0.3" and item.action == "apply"


def test_security_fix_beyond_strategy_depends_on_security_priority() -> None:
    index = {"web": info("web", "1.0.0", "2.0.0")}
    advisories = {"web": [advisory("PYSEC-1", "web", fixed="2.0.0", severity="critical")]}
    first = by_name(plan_for("web==1.0.0\n", index, advisories, strategy="smart"))["web"]
    assert first.target == "2.0.0" and first.breaking and first.action == "apply"
    strict = by_name(
        plan_for("web==1.0.0\n", index, advisories, strategy="smart", security_priority=False)
    )["web"]
    assert strict.action == "manual"
    assert "the fix (2.0.0) is outside the smart strategy" in strict.reason


def test_no_fix_available_is_manual() -> None:
    index = {"web": info("web", "1.0.0", "1.1.0")}
    advisories = {"web": [advisory("GHSA-open", "web", fixed=None)]}
    item = by_name(plan_for("web==1.0.0\n", index, advisories))["web"]
    assert item.action == "manual" and item.reason == "vulnerable: no release fixes it yet"
    assert item.severity == "unknown" and item.security


def test_vulnerable_targets_are_avoided() -> None:
    index = {"lib": info("lib", "1.0.0", "1.1.0", "1.2.0")}
    advisories = {"lib": [advisory("GHSA-new", "lib", fixed=None, introduced="1.2.0")]}
    item = by_name(plan_for("lib==1.0.0\n", index, advisories))["lib"]
    assert item.target == "1.1.0" and not item.security


def test_security_priority_orders_vulnerable_first_by_severity() -> None:
    index = {
        "aaa": info("aaa", "1.0.0", "1.0.1"),
        "bbb": info("bbb", "1.0.0", "1.0.1"),
        "ccc": info("ccc", "1.0.0", "1.0.1"),
    }
    advisories = {
        "bbb": [advisory("B", "bbb", fixed="1.0.1", severity="medium")],
        "ccc": [advisory("C", "ccc", fixed="1.0.1", severity="critical")],
    }
    text = "aaa==1.0.0\nbbb==1.0.0\nccc==1.0.0\n"
    assert [i.name for i in plan_for(text, index, advisories).items] == ["ccc", "bbb", "aaa"]
    plain = plan_for(text, index, advisories, security_priority=False)
    assert [i.name for i in plain.items] == ["aaa", "bbb", "ccc"]


def test_locked_range_needs_lock_update_or_floor_for_security() -> None:
    pyproject = '[project]\ndependencies = ["lib>=1.0"]\n'
    lock = '[[package]]\nname = "lib"\nversion = "1.1.0"\nsource = { registry = "x" }\n'
    project = combine([parse_pyproject(pyproject), parse_lock(lock, "uv.lock")])
    index = {"lib": info("lib", "1.0.0", "1.1.0", "1.1.5", "1.3.0")}
    plan = plan_updates(project, index, {}, PlanPolicy(now=NOW))
    item = plan.items[0]
    assert item.current == "1.1.0" and item.current_source == "lock"
    assert item.action == "manual" and "update uv.lock" in item.reason
    advisories = {"lib": [advisory("GHSA-l", "lib", fixed="1.1.5")]}
    secured = plan_updates(project, index, advisories, PlanPolicy(now=NOW)).items[0]
    assert secured.action == "apply"
    new = apply_plan(
        plan_updates(project, index, advisories, PlanPolicy(now=NOW)), {"pyproject.toml": pyproject}
    )
    assert new["pyproject.toml"] == '[project]\ndependencies = ["lib>=1.1.5"]\n'


def test_transitive_vulnerability_is_reported_not_applied() -> None:
    lock = '[[package]]\nname = "deep"\nversion = "1.0.0"\n'
    project = combine([parse_lock(lock, "poetry.lock")])
    index = {"deep": info("deep", "1.0.0", "1.0.1")}
    item = plan_updates(
        project, index, {"deep": [advisory("G", "deep", "1.0.1")]}, PlanPolicy(now=NOW)
    ).items[0]
    assert item.action == "manual" and "transitive dependency locked at 1.0.0" in item.reason
    # and an outdated transitive package without advisories is not our business
    assert plan_updates(project, index, {}, PlanPolicy(now=NOW)).items == ()


def test_unknown_package_is_held() -> None:
    item = by_name(plan_for("ghost==1.0\n", {}))["ghost"]
    assert item.action == "hold" and item.reason == "not found on the package index"


@pytest.mark.parametrize(
    ("text", "target", "floor", "expected"),
    [
        ("lib==1.0.0", "1.2.0", None, "lib==1.2.0"),
        ("lib >= 1.0 , < 2.0", "2.3.1", None, "lib >= 1.0 , < 3.0"),
        ("lib<2", "2.3.1", None, "lib<3"),
        ("lib>=1.0,<1.5", "1.7.0", None, "lib>=1.0,<1.8"),
        ("lib~=1.4", "1.9.0", None, "lib~=1.4"),
        ("lib~=1.4", "2.1.0", None, "lib~=2.1"),
        ("lib~=1.4.2", "1.9.0", None, "lib~=1.9.0"),
        ("lib==1.*", "2.0.5", None, "lib==2.*"),
        ("lib<=1.5", "1.7", None, "lib<=1.7"),
        (
            "lib[x,y]==1.0 ; python_version < '3.12'",
            "1.1",
            None,
            "lib[x,y]==1.1 ; python_version < '3.12'",
        ),
        ("lib", "1.5.0", "1.5.0", "lib>=1.5.0"),
        ("lib ; sys_platform == 'linux'", "1.5.0", "1.5.0", "lib>=1.5.0 ; sys_platform == 'linux'"),
        ("lib>=1.0", "1.5.0", "1.5.0", "lib>=1.5.0"),
        ("lib>1.0,!=1.3", "1.5.0", "1.4.0", "lib>=1.4.0,!=1.3"),
        ("lib<2", "1.5.0", "1.4.0", "lib<2,>=1.4.0"),
        ("lib (>=1.0)", "1.5.0", "1.5.0", "lib (>=1.5.0)"),
    ],
)
def test_rewrite_requirement_text(text: str, target: str, floor: str | None, expected: str) -> None:
    floor_version = Version(floor) if floor else None
    assert rewrite_requirement_text(text, Version(target), floor_version) == expected


def test_rewrite_refuses_what_it_cannot_express() -> None:
    # a prefix family cannot hold a floor inside it, so a floor is appended instead
    assert rewrite_requirement_text("lib==1.*", Version("1.5"), Version("1.5")) == "lib==1.*,>=1.5"
    assert rewrite_requirement_text("lib!=1.5", Version("1.5"), None) is None


@given(
    current=st.tuples(st.integers(0, 5), st.integers(0, 9), st.integers(0, 9)),
    bump=st.tuples(st.integers(0, 3), st.integers(0, 12), st.integers(0, 12)),
    form=st.sampled_from(
        ["=={v}", "~={mm}", ">={v},<{major1}", "<={v}", ">={v}", "=={major}.*", ""]
    ),
)
def test_rewritten_specifier_always_admits_the_target(
    current: tuple[int, int, int], bump: tuple[int, int, int], form: str
) -> None:
    v = ".".join(map(str, current))
    target = Version(".".join(str(c + b) for c, b in zip(current, bump, strict=True)))
    spec = form.format(
        v=v, mm=f"{current[0]}.{current[1]}", major=current[0], major1=current[0] + 1
    )
    new = rewrite_requirement_text(f"pkg{spec}", target)
    assert new is not None
    assert SpecifierSet(new[3:]).contains(target, prereleases=True)


PYPROJECT = """\
[project]
name = "app"
dependencies = [
    # keep this comment
    "lib==1.2.0",  # pinned on purpose
    'zero >= 0.3.1, < 0.4 ; python_version >= "3.10"',
]

[project.optional-dependencies]
test = ["lib==1.2.0", "other>=1"]
"""

REQS = (
    "# header\r\nlib==1.2.0 \\\r\n    --hash=sha256:old1 \\\r\n    --hash=sha256:old2\r\n"
    "zero==0.3.1\r\n"
)


def test_apply_changes_only_the_requirements() -> None:
    index = {
        "lib": info("lib", "1.2.0", ("1.2.5", {"sha256": ("n1", "n2")})),
        "zero": info("zero", "0.3.1", "0.3.4"),
        "other": info("other", "1.0"),
    }
    project = combine(
        [parse_pyproject(PYPROJECT, "pyproject.toml"), parse_requirements(REQS, "requirements.txt")]
    )
    plan = plan_updates(project, index, {}, PlanPolicy(strategy="conservative", now=NOW))
    new = apply_plan(plan, {"pyproject.toml": PYPROJECT, "requirements.txt": REQS})
    assert new["pyproject.toml"] == PYPROJECT.replace('"lib==1.2.0"', '"lib==1.2.5"')
    assert new["requirements.txt"] == (
        "# header\r\nlib==1.2.5 \\\r\n    --hash=sha256:n1 \\\r\n    --hash=sha256:n2\r\n"
        "zero==0.3.4\r\n"
    )
    # zero's range in pyproject already allows 0.3.4 and is not locked: nothing to change there
    assert "zero >= 0.3.1, < 0.4" in new["pyproject.toml"]


def test_hash_pinned_line_without_new_hashes_is_manual() -> None:
    index = {"lib": info("lib", "1.2.0", "1.2.5")}
    plan = plan_updates(
        combine([parse_requirements(REQS, "requirements.txt")]),
        index,
        {},
        PlanPolicy(now=NOW),
    )
    item = by_name(plan)["lib"]
    assert item.action == "manual" and "hash-pinned" in item.reason


def test_apply_detects_a_changed_file() -> None:
    index = {"lib": info("lib", "1.2.0", "1.2.5")}
    plan = plan_for("lib==1.2.0\n", index)
    with pytest.raises(PlanError, match=r"requirements\.txt:1: expected 'lib==1\.2\.0'"):
        apply_plan(plan, {"requirements.txt": "lib==1.1.0\n"})
    with pytest.raises(PlanError, match="file not given"):
        apply_plan(plan, {})
    # the requirement moved to another column on the same line: still found
    assert apply_plan(plan, {"requirements.txt": "  lib==1.2.0\n"}) == {
        "requirements.txt": "  lib==1.2.5\n"
    }


def test_plan_key_identifies_the_changes() -> None:
    index = {"lib": info("lib", "1.2.0", "1.2.5"), "zero": info("zero", "0.3.1", "0.3.4")}
    one = plan_for("lib==1.2.0\nzero==0.3.1\n", index)
    two = plan_for("lib==1.2.0\nzero==0.3.1\n", index)
    three = plan_for("lib==1.2.0\nzero==0.3.0\n", index)
    assert one.key == two.key != three.key


def test_reports() -> None:
    index = {"lib": info("lib", "1.2.0", "1.2.5", "2.0.0"), "web": info("web", "1.0", "1.1")}
    advisories = {
        "web": [
            advisory(
                "GHSA-w",
                "web",
                "1.1",
                severity="high",
                summary="XSS | in forms",
                url="https://osv.dev/vulnerability/GHSA-w",
            )
        ]
    }
    plan = plan_for("lib==1.2.0\nweb==1.0\n", index, advisories)
    text = plan_markdown(plan)
    assert "| web | 1.0 | 1.1 | minor | requirements.txt | GHSA-w |" in text
    assert (
        "| [GHSA-w](https://osv.dev/vulnerability/GHSA-w) | web | high | 1.1 | XSS \\| in forms |"
        in text
    )
    assert f"<!-- contexten-deps-plan: {plan.key} -->" in text
    assert pull_request_title(plan) == "fix(deps): update 2 dependencies (1 security)"
    data = plan_to_dict(plan)
    assert data["items"][0]["name"] == "web" and data["items"][0]["severity"] == "high"
    assert data["items"][1]["rewrites"] == [
        {"file": "requirements.txt", "line": 1, "old": "lib==1.2.0", "new": "lib==1.2.5"}
    ]


def test_pins_per_marker_are_never_moved_down() -> None:
    text = 'lib==1.2.0 ; python_version < "3.10"\nlib==2.0.0 ; python_version >= "3.10"\n'
    index = {"lib": info("lib", "1.2.0", "1.4.0", "2.0.0", "2.0.1")}
    item = by_name(plan_for(text, index, strategy="smart"))["lib"]
    assert item.current == "1.2.0" and item.target == "1.4.0"
    assert [(r.line, r.new) for r in item.rewrites] == [(1, 'lib==1.4.0 ; python_version < "3.10"')]
