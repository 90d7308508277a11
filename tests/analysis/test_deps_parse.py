"""Reading dependency declarations: pyproject.toml, requirements files, lock files."""

from __future__ import annotations

import json

import pytest

from contexten.analysis.deps import (
    DependencyFileError,
    combine,
    is_lock_file,
    parse_lock,
    parse_pyproject,
    parse_requirements,
)

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]

[project]
name = "demo"
requires-python = ">=3.10"
dependencies = [
    "requests>=2.0,<3",  # http client
    'httpx[http2]==0.27.0 ; python_version >= "3.9"',
    "Pydantic_Core ~= 2.5",
    "local @ file:///opt/local",
]

[project.optional-dependencies]
dev = ["pytest==8.0.0", "requests>=2.0,<3"]

[dependency-groups]
lint = ["ruff==0.5.0", {include-group = "dev"}]

[tool.other]
dependencies = ["not-a-dep==1.0"]
"""


def test_pyproject_reads_pep621_optional_and_groups() -> None:
    parsed = parse_pyproject(PYPROJECT)
    by_group = {(d.group, d.name): d for d in parsed.dependencies}
    assert set(by_group) == {
        ("project", "requests"),
        ("project", "httpx"),
        ("project", "pydantic-core"),
        ("extra:dev", "pytest"),
        ("extra:dev", "requests"),
        ("group:lint", "ruff"),
    }
    assert parsed.requires_python == ">=3.10"
    httpx = by_group[("project", "httpx")]
    assert httpx.extras == ("http2",)
    assert httpx.marker == 'python_version >= "3.9"'
    assert httpx.pinned == "0.27.0"
    assert httpx.line == 9
    assert httpx.raw.startswith("'") and httpx.raw.endswith("'")
    # the same requirement text in two tables gets two positions
    assert by_group[("project", "requests")].line == 8
    assert by_group[("extra:dev", "requests")].line == 15
    assert by_group[("project", "pydantic-core")].pinned is None
    assert [u.text for u in parsed.unmanaged] == ["local @ file:///opt/local"]


def test_pyproject_columns_point_at_the_literal() -> None:
    parsed = parse_pyproject(PYPROJECT)
    lines = PYPROJECT.splitlines()
    for dep in parsed.dependencies:
        line = lines[dep.line - 1]
        assert line[dep.column : dep.column + len(dep.raw)] == dep.raw


def test_pyproject_without_dependencies_is_empty() -> None:
    parsed = parse_pyproject('[project]\nname = "x"\n')
    assert parsed.dependencies == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[project\nname = 1\n", "pyproject.toml: not valid TOML: "),
        ('[project]\ndependencies = "requests"\n', "project.dependencies must be an array"),
        ("[project]\ndependencies = [1]\n", "must be an array of strings, found 1"),
        ('[project]\ndependencies = ["requests>>2"]\n', "pyproject.toml:2: invalid requirement"),
        ('[project]\noptional-dependencies = ["x"]\n', "optional-dependencies must be a table"),
    ],
)
def test_pyproject_bad_input_is_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(DependencyFileError) as caught:
        parse_pyproject(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


REQUIREMENTS = """\
# runtime
-r base.txt
--requirement=extra.txt
-c constraints.txt
--index-url https://example.invalid/simple
flask==2.0.1 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
django>=3.2 ; python_version > "3.8"  # web
Requests[socks]  ==  2.31.0
-e ./local-package
./wheels/pkg-1.0-py3-none-any.whl
git+https://example.invalid/repo.git#egg=thing
pkg @ https://example.invalid/pkg.tar.gz
"""


def test_requirements_lines_includes_markers_hashes() -> None:
    parsed = parse_requirements(REQUIREMENTS, "requirements.txt")
    names = [d.name for d in parsed.dependencies]
    assert names == ["flask", "django", "requests"]
    flask, django, requests = parsed.dependencies
    assert flask.line == 6 and flask.hashes == ("sha256:aaaa", "sha256:bbbb")
    assert flask.raw.endswith("--hash=sha256:bbbb")
    assert "\n" in flask.raw  # the whole logical line, for rewriting the hashes
    assert django.marker == 'python_version > "3.8"'
    assert django.specifier == ">=3.2"
    assert requests.pinned == "2.31.0" and requests.extras == ("socks",)
    assert [(i.kind, i.target, i.line) for i in parsed.includes] == [
        ("requirement", "base.txt", 2),
        ("requirement", "extra.txt", 3),
        ("constraint", "constraints.txt", 4),
    ]
    reasons = {u.text: u.reason for u in parsed.unmanaged}
    assert reasons["./local-package"] == "editable"
    assert reasons["./wheels/pkg-1.0-py3-none-any.whl"] == "URL or path"
    assert reasons["git+https://example.invalid/repo.git#egg=thing"] == "URL or path"
    assert reasons["pkg @ https://example.invalid/pkg.tar.gz"] == "direct URL reference"


def test_constraints_group() -> None:
    parsed = parse_requirements("urllib3==1.26.0\n", "constraints.txt", constraints=True)
    assert parsed.dependencies[0].group == "constraints"


def test_requirements_keep_crlf_in_raw_block() -> None:
    text = "flask==2.0.1 \\\r\n    --hash=sha256:aaaa\r\nsix==1.0\r\n"
    parsed = parse_requirements(text)
    flask, six = parsed.dependencies
    assert flask.raw == "flask==2.0.1 \\\r\n    --hash=sha256:aaaa"
    assert six.line == 3


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("foo==>1", "requirements.txt:2: invalid requirement 'foo==>1'"),
        ("bar[extra", "requirements.txt:2: invalid requirement 'bar[extra'"),
        ("baz===", "requirements.txt:2: invalid requirement 'baz==='"),
    ],
)
def test_broken_requirement_line_names_file_and_line(line: str, fragment: str) -> None:
    with pytest.raises(DependencyFileError) as caught:
        parse_requirements(f"ok==1.0\n{line}\n", "requirements.txt")
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "demo"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "Requests"
version = "2.31.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "vcs-thing"
version = "1.0"
source = { git = "https://example.invalid/x.git" }
"""

POETRY_LOCK = """\
[[package]]
name = "urllib3"
version = "1.26.5"
description = ""

[[package]]
name = "private"
version = "2.0"
[package.source]
type = "git"
url = "https://example.invalid/p.git"
"""

PYLOCK = """\
lock-version = "1.0"
created-by = "test"

[[packages]]
name = "idna"
version = "3.7"
index = "https://pypi.org/simple"

[[packages]]
name = "mine"
directory = { path = "." }
"""


def test_lock_files_registry_packages_only() -> None:
    uv = parse_lock(UV_LOCK, "uv.lock")
    assert [(p.name, p.version) for p in uv.locked] == [("requests", "2.31.0")]
    poetry = parse_lock(POETRY_LOCK, "sub/poetry.lock")
    assert [(p.name, p.version) for p in poetry.locked] == [("urllib3", "1.26.5")]
    pylock = parse_lock(PYLOCK, "pylock.toml")
    assert [(p.name, p.version) for p in pylock.locked] == [("idna", "3.7")]
    pipfile = json.dumps(
        {"default": {"six": {"version": "==1.16.0"}}, "develop": {"pytest": {"version": "==8.0"}}}
    )
    assert [(p.name, p.version) for p in parse_lock(pipfile, "Pipfile.lock").locked] == [
        ("six", "1.16.0"),
        ("pytest", "8.0"),
    ]


def test_lock_file_names_and_errors() -> None:
    assert is_lock_file("pylock.dev.toml") and is_lock_file("uv.lock")
    assert not is_lock_file("pyproject.toml")
    with pytest.raises(DependencyFileError, match=r"uv\.lock: not valid TOML"):
        parse_lock("[[package]\n", "uv.lock")
    with pytest.raises(DependencyFileError, match=r"Pipfile\.lock: not valid JSON"):
        parse_lock("{", "Pipfile.lock")


def test_combine_keeps_everything() -> None:
    project = combine(
        [
            parse_pyproject(PYPROJECT),
            parse_requirements("six==1.0\n", "requirements.txt"),
            parse_lock(UV_LOCK, "uv.lock"),
        ]
    )
    assert project.requires_python == ">=3.10"
    assert project.lock_files == ("uv.lock",)
    assert "six" in project.names() and "requests" in project.names()
