"""`contexten workflows lint`: linter-style output, JSON, SARIF, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contexten.cli import main

BAD = """\
on: pull_request
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""
GOOD = """\
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 10
    steps:
      - run: echo hi
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(BAD)
    (workflows / "good.yaml").write_text(GOOD)
    return tmp_path


def test_text_output_is_path_line_col_rule_message(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workflows", "lint", str(repo)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert (
        ".github/workflows/bad.yml:3:3: missing-timeout: job 'build' has no timeout-minutes"
        in "\n".join(lines)
    )
    assert any(
        line.startswith(".github/workflows/bad.yml:7:") and ": script-injection: " in line
        for line in lines
    )
    assert all(line.startswith(".github/workflows/bad.yml:") for line in lines)
    assert "finding(s) in 2 workflow file(s)" in captured.err


def test_clean_file_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "lint", str(repo / ".github" / "workflows" / "good.yaml")]) == 0
    assert capsys.readouterr().out == ""


def test_json_and_min_severity(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "lint", str(repo), "--format", "json", "--min-severity", "high"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["files"] == [".github/workflows/bad.yml", ".github/workflows/good.yaml"]
    assert {f["rule"] for f in data["findings"]} == {"script-injection"}
    assert data["findings"][0]["line"] == 7 and data["findings"][0]["fix"]


def test_sarif(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["workflows", "lint", str(repo), "--format", "sarif"])
    log = json.loads(capsys.readouterr().out)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "contexten-workflow-lint"
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    }
    assert uris == {".github/workflows/bad.yml"}


def test_invalid_yaml_is_exit_2_naming_file_and_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / ".github" / "workflows" / "broken.yml").write_text("on: [push\njobs: {}\n")
    assert main(["workflows", "lint", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "contexten: error: .github/workflows/broken.yml:2:" in err and "invalid YAML" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/dir"], "no such file or directory"),
        ([".", "--format", "xml"], "--format 'xml'"),
        ([".", "--min-severity", "huge"], "--min-severity"),
    ],
)
def test_bad_input(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "lint", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_directory_without_workflows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "lint", str(tmp_path)]) == 0
    assert "no workflow files" in capsys.readouterr().err
