"""Reading a project directory, and building a plan from the local index and OSV."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from contexten.analysis.deps import DependencyFileError, PlanPolicy, apply_plan
from contexten.depsources.local_index import LocalIndexServer, osv_record, project_document
from contexten.depsources.planning import build_plan
from contexten.depsources.project import load_project, write_files
from contexten.integrations.http import RetryPolicy
from contexten.integrations.osv import OSVDatabase
from contexten.integrations.pypi import PyPIJsonIndex

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def make_project(root: Path) -> None:
    (root / "pyproject.toml").write_text(
        '[project]\nname = "app"\nrequires-python = ">=3.11"\n'
        'dependencies = ["web==1.0.0", "lib>=2"]\n'
    )
    (root / "requirements.txt").write_text("-r requirements/base.txt\n-c constraints.txt\n")
    (root / "requirements").mkdir()
    (root / "requirements" / "base.txt").write_text("# base\n-r ../requirements-common.txt\n")
    (root / "requirements-common.txt").write_text("tool==0.3.0\n")
    (root / "constraints.txt").write_text("deep==1.0.0\n")
    (root / "uv.lock").write_text(
        '[[package]]\nname = "lib"\nversion = "2.0.0"\nsource = { registry = "x" }\n'
    )


def test_load_project_follows_includes(tmp_path: Path) -> None:
    make_project(tmp_path)
    loaded = load_project(tmp_path)
    assert sorted(loaded.texts) == [
        "constraints.txt",
        "pyproject.toml",
        "requirements-common.txt",
        "requirements.txt",
        "requirements/base.txt",
        "uv.lock",
    ]
    groups = {d.name: (d.group, d.file) for d in loaded.project.dependencies}
    assert groups["tool"] == ("requirements", "requirements-common.txt")
    assert groups["deep"] == ("constraints", "constraints.txt")
    assert [(p.name, p.version) for p in loaded.project.locked] == [("lib", "2.0.0")]


def test_load_project_errors(tmp_path: Path) -> None:
    with pytest.raises(DependencyFileError, match="no dependency files found"):
        load_project(tmp_path)
    with pytest.raises(DependencyFileError, match="not a directory"):
        load_project(tmp_path / "missing")
    (tmp_path / "requirements.txt").write_text("-r nowhere.txt\n")
    with pytest.raises(
        DependencyFileError, match=r"requirements\.txt:1: included file 'nowhere\.txt'"
    ):
        load_project(tmp_path)
    (tmp_path / "requirements.txt").write_bytes(b"caf\xe9==1\n")
    with pytest.raises(DependencyFileError, match=r"requirements\.txt: not UTF-8 text"):
        load_project(tmp_path)


def test_includes_outside_the_project_are_not_read(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "secret.txt").write_text("outside==1.0\n")
    (project / "requirements.txt").write_text(
        "-r ../secret.txt\n-r https://example.invalid/reqs.txt\nsix==1.0\n"
    )
    loaded = load_project(project)
    assert [d.name for d in loaded.project.dependencies] == ["six"]
    assert [u.reason for u in loaded.project.unmanaged] == [
        "include outside the project",
        "remote include (URL)",
    ]


def test_include_cycles_terminate(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("-r requirements-dev.txt\na==1\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\nb==1\n")
    loaded = load_project(tmp_path)
    assert sorted(d.name for d in loaded.project.dependencies) == ["a", "b"]


def test_write_files_keeps_bytes(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"a==1\r\nb==2\r\n")
    loaded = load_project(tmp_path)
    write_files(
        tmp_path, {"requirements.txt": loaded.texts["requirements.txt"].replace("a==1", "a==2")}
    )
    assert (tmp_path / "requirements.txt").read_bytes() == b"a==2\r\nb==2\r\n"
    with pytest.raises(DependencyFileError, match="outside the project"):
        write_files(tmp_path, {"../x.txt": "no"})


async def test_build_plan_end_to_end(tmp_path: Path, fast_retries: RetryPolicy) -> None:
    make_project(tmp_path)
    projects = {
        "web": project_document("web", {"1.0.0": {}, "1.0.5": {}, "1.1.0": {}}, now=NOW),
        "lib": project_document("lib", {"2.0.0": {}, "2.4.0": {}}, now=NOW),
        "tool": project_document("tool", {"0.3.0": {}, "0.3.2": {}, "0.4.0": {}}, now=NOW),
        "deep": project_document("deep", {"1.0.0": {}, "1.0.1": {}}, now=NOW),
    }
    vulns = [
        osv_record("GHSA-web", "web", fixed="1.0.5", severity="CRITICAL"),
        # the newest minor of web has its own advisory: found in the second round
        osv_record("GHSA-web-new", "web", introduced="1.1.0", severity="LOW"),
    ]
    loaded = load_project(tmp_path)
    with LocalIndexServer(projects, vulns) as server:
        index = PyPIJsonIndex(server.pypi_url, policy=fast_retries)
        database = OSVDatabase(server.url, policy=fast_retries)
        try:
            plan = await build_plan(loaded.project, index, database, PlanPolicy("smart", now=NOW))
        finally:
            await index.aclose()
            await database.aclose()
    items = {i.name: i for i in plan.items}
    assert plan.items[0].name == "web"  # vulnerable first
    assert items["web"].target == "1.0.5" and items["web"].fixes == ("GHSA-web",)
    assert items["lib"].action == "manual"  # locked; the range already allows 2.4.0
    assert items["tool"].target == "0.3.2"
    assert items["deep"].target == "1.0.1"
    changed = apply_plan(plan, loaded.texts)
    assert changed["pyproject.toml"].endswith('dependencies = ["web==1.0.5", "lib>=2"]\n')
    assert changed["requirements-common.txt"] == "tool==0.3.2\n"
    assert changed["constraints.txt"] == "deep==1.0.1\n"


async def test_build_plan_without_advisories(tmp_path: Path, fast_retries: RetryPolicy) -> None:
    (tmp_path / "requirements.txt").write_text("web==1.0.0\n")
    projects = {"web": project_document("web", {"1.0.0": {}, "1.0.1": {"age_days": 0}})}
    with LocalIndexServer(projects) as server:
        index = PyPIJsonIndex(server.pypi_url, policy=fast_retries)
        try:
            plan = await build_plan(load_project(tmp_path).project, index, None, PlanPolicy())
        finally:
            await index.aclose()
    # `now` is filled in: the day-old release waits for the cooldown
    assert plan.items[0].action == "hold" and "waiting 3 days" in plan.items[0].reason
