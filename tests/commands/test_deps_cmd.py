"""`contexten deps plan|apply` against a local package index on 127.0.0.1."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexten.cli import main
from contexten.depsources.local_index import LocalIndexServer, osv_record, project_document

PYPROJECT = """\
[project]
name = "app"
dependencies = [
    "web==1.0.0",   # the web framework
    "util>=1.0,<2",
]
"""


@pytest.fixture
def server() -> Iterator[LocalIndexServer]:
    projects = {
        "web": project_document("web", {"1.0.0": {}, "1.0.2": {}, "1.3.0": {}, "2.0.0": {}}),
        "util": project_document("util", {"1.0.0": {}, "1.9.0": {}, "2.1.0": {}}),
    }
    vulns = [osv_record("GHSA-web1", "web", fixed="1.0.2", severity="HIGH", summary="RCE")]
    with LocalIndexServer(projects, vulns) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "requirements-dev.txt").write_text("util==1.0.0\n")
    return tmp_path


def urls(server: LocalIndexServer) -> list[str]:
    return ["--index-url", server.pypi_url, "--osv-url", server.url]


def test_plan_json(
    contexten_home: Path,
    server: LocalIndexServer,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["deps", "plan", str(project), "--json", *urls(server)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    items = {i["name"]: i for i in data["items"]}
    assert data["strategy"] == "smart"
    assert items["web"]["target"] == "1.3.0" and items["web"]["fixes"] == ["GHSA-web1"]
    assert items["web"]["severity"] == "high"
    assert items["util"]["target"] == "1.9.0"
    assert data["items"][0]["name"] == "web"  # security first


def test_plan_table_and_markdown(
    contexten_home: Path,
    server: LocalIndexServer,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["deps", "plan", str(project), "-s", "conservative", *urls(server)]) == 0
    out = capsys.readouterr().out
    assert "web" in out and "1.0.2" in out and "GHSA-web1 (high; fixed in 1.0.2) RCE" in out
    assert main(["deps", "plan", str(project), "--markdown", *urls(server)]) == 0
    body = capsys.readouterr().out
    assert body.startswith("## Dependency updates (smart)")
    assert "| web | 1.0.0 | 1.3.0 | minor | pyproject.toml | GHSA-web1 |" in body


def test_plan_from_settings_without_advisories(
    contexten_home: Path,
    server: LocalIndexServer,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from contexten.config import reload_settings

    monkeypatch.setenv("PYPI_INDEX_URL", server.pypi_url)
    monkeypatch.setenv("OSV_API_URL", "http://127.0.0.1:9")  # closed: must not be asked
    reload_settings()
    assert main(["deps", "plan", str(project), "--json", "--no-advisories"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert all(not i["advisories"] for i in data["items"])
    assert server.requests["/v1/querybatch"] == 0


def test_apply_writes_only_requirements(
    contexten_home: Path,
    server: LocalIndexServer,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["deps", "apply", str(project), "--json", *urls(server)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["changed_files"] == ["pyproject.toml", "requirements-dev.txt"]
    assert (project / "pyproject.toml").read_text() == PYPROJECT.replace("web==1.0.0", "web==1.3.0")
    assert (project / "requirements-dev.txt").read_text() == "util==1.9.0\n"
    # applied: a second plan has nothing left to apply
    assert main(["deps", "plan", str(project), "--json", *urls(server)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [i["action"] for i in again["items"]] == ["hold", "hold"]


def test_apply_dry_run_changes_nothing(
    contexten_home: Path,
    server: LocalIndexServer,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["deps", "apply", str(project), "--dry-run", *urls(server)]) == 0
    diff = capsys.readouterr().out
    assert '-    "web==1.0.0",   # the web framework' in diff
    assert '+    "web==1.3.0",   # the web framework' in diff
    assert (project / "pyproject.toml").read_text() == PYPROJECT


def test_apply_with_failing_tests_restores_files(
    contexten_home: Path,
    server: LocalIndexServer,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    failing = f"{sys.executable} -c \"import sys; print('boom'); sys.exit(3)\""
    code = main(["deps", "apply", str(project), "--json", "--test-command", failing, *urls(server)])
    result = json.loads(capsys.readouterr().out)
    assert code == 1
    assert result["tests"]["passed"] is False and "boom" in result["tests"]["output_tail"]
    assert result["written"] is False
    assert (project / "pyproject.toml").read_text() == PYPROJECT
    passing = f'{sys.executable} -c "pass"'
    assert main(["deps", "apply", str(project), "--test-command", passing, *urls(server)]) == 0
    assert "web==1.3.0" in (project / "pyproject.toml").read_text()


def test_apply_runs_tests_without_our_tokens_and_redacts_their_output(
    contexten_home: Path,
    server: LocalIndexServer,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from contexten.config import reload_settings

    token = "ghp_" + "Z" * 36
    monkeypatch.setenv("GITHUB_TOKEN", token)
    reload_settings()
    script = (
        "import os, sys; print('env', os.environ.get('GITHUB_TOKEN', 'absent'));"
        f" print('echo', {token!r}); sys.exit(1)"
    )
    command = f'{sys.executable} -c "{script}"'
    code = main(["deps", "apply", str(project), "--json", "--test-command", command, *urls(server)])
    out = capsys.readouterr().out
    tail = json.loads(out)["tests"]["output_tail"]
    assert code == 1
    assert "env absent" in tail
    assert "echo ***" in tail and token not in tail


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({"pyproject.toml": "[project\n"}, [], "pyproject.toml: not valid TOML: "),
        ({"requirements.txt": "ok==1\nfoo==>1\n"}, [], "requirements.txt:2: invalid requirement"),
        ({"requirements.txt": "ok==1\n"}, ["--strategy", "yolo"], "--strategy: unknown strategy"),
        ({}, [], "no dependency files found"),
        ({"requirements.txt": "-r missing.txt\n"}, [], "included file 'missing.txt' not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    contexten_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    args: list[str],
    message: str,
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code = main(["deps", "plan", str(tmp_path), "--index-url", "http://127.0.0.1:9", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("contexten: error: ")


def test_negative_cooldown_is_a_usage_error(contexten_home: Path, project: Path) -> None:
    assert main(["deps", "plan", str(project), "--cooldown-days", "-1"]) == 2


def test_unreachable_index_exits_1(
    contexten_home: Path,
    server: LocalIndexServer,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from contexten.config import reload_settings

    monkeypatch.setenv("HTTP_MAX_ATTEMPTS", "1")
    reload_settings()
    server.fail("/pypi/", 503, 503)
    assert main(["deps", "plan", str(project), *urls(server)]) == 1
    err = capsys.readouterr().err
    assert "HTTP 503" in err and err.count("\n") == 1


def test_plan_with_the_advisory_service_unreachable_still_prints_the_plan(
    contexten_home: Path,
    server: LocalIndexServer,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from contexten.config import reload_settings

    monkeypatch.setenv("HTTP_MAX_ATTEMPTS", "1")
    reload_settings()
    offline = ["--index-url", server.pypi_url, "--osv-url", "http://127.0.0.1:9"]  # closed
    assert main(["deps", "plan", str(project), "--json", *offline]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["advisories_checked"] is False
    assert "cannot connect" in data["advisories_not_checked"]
    assert {i["name"]: i["target"] for i in data["items"]} == {"web": "1.3.0", "util": "1.9.0"}
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1
    assert warning[0].startswith("contexten: warning: known vulnerabilities were not checked")
    # The table marks every package's advisories "not checked".
    assert main(["deps", "plan", str(project), *offline]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["Package", "Current", "Target", "Update", "Action", "Advisories", "Why"]
    assert [row[5] for row in rows[1:]] == ["not checked", "not checked"]
    # The pull-request body says so too.
    assert main(["deps", "plan", str(project), "--markdown", *offline]) == 0
    assert "Known vulnerabilities were **not checked**" in capsys.readouterr().out
