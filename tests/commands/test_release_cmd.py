"""`contexten release plan` on real git repositories made in a temporary directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from contexten.cli import main


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def commit(repo: Path, subject: str, body: str = "") -> str:
    message = ["-m", subject] + (["-m", body] if body else [])
    git(repo, "commit", "--allow-empty", "-q", *message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, "feat: first")
    git(tmp_path, "tag", "v0.9.0")
    commit(tmp_path, "feat: in 1.0")
    git(tmp_path, "tag", "v1.0.0")
    git(tmp_path, "tag", "not-a-version")
    commit(tmp_path, "fix(io): close files")
    commit(tmp_path, "docs: typo")
    return tmp_path


def test_plan_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["release", "plan", str(repo), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["previous_tag"] == "v1.0.0" and data["version"] == "1.0.1"
    assert data["tag"] == "v1.0.1" and data["bump"] == "patch"
    assert [c["type"] for c in data["commits"]] == ["docs", "fix"]
    assert data["head"] == git(repo, "rev-parse", "HEAD").strip()
    assert "* **io:** close files" in data["changelog"]


def test_plan_text_with_breaking_change(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit(repo, "feat(api): new endpoint", "BREAKING CHANGE: old endpoint removed")
    assert main(["release", "plan", str(repo), "--repo-url", "https://github.com/o/r/"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1.0.0 -> 2.0.0 (major) since v1.0.0\n")
    assert "## [2.0.0](https://github.com/o/r/compare/v1.0.0...v2.0.0)" in out
    assert "* **api:** old endpoint removed" in out


def test_no_release_due(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, "chore: init")
    git(tmp_path, "tag", "release-1.0.0")
    commit(tmp_path, "ci: workflow")
    assert main(["release", "plan", str(tmp_path), "--tag-prefix", "release-"]) == 0
    assert "No release due: 1 commit(s) since release-1.0.0" in capsys.readouterr().out


def test_first_release_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, "feat!: everything")
    assert main(["release", "plan", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "0.1.0"
    args = ["release", "plan", str(tmp_path), "--json", "--initial-version", "1.0.0"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1.0.0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--breaking-pre-major", "huge"], "--breaking-pre-major must be minor or major"),
        (["--feat-pre-major", "major"], "--feat-pre-major must be minor or patch"),
        (["--initial-version", "one"], "initial version 'one' is not a semantic version"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, "feat: x")
    assert main(["release", "plan", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_not_a_repository_or_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert main(["release", "plan", str(plain)]) == 2
    assert "not a git repository" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert main(["release", "plan", str(empty)]) == 2
    assert "has no commits yet" in capsys.readouterr().err
