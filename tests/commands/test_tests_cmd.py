"""`contexten tests ...` end to end, in process, against a fresh store per test."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from contexten.cli import main

JUNIT = Path(__file__).resolve().parents[1] / "data" / "junit"
MIKEPENZ = JUNIT / "mikepenz-action-junit-report"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["tests", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ingest_directory_reports_bad_files_and_continues(
    contexten_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "ingest", str(MIKEPENZ), "-R", "o/r", "--run-id", "1", "--commit", "c1", "--json"
    )
    assert code == 2  # three files are not well-formed XML
    data = json.loads(out)
    assert data["invalid"] == 3
    assert data["parsed"] == 34
    assert data["stored"] == sum(f.get("cases", 0) for f in data["files"] if "error" not in f)
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert all(
        line.startswith("contexten: error: ") and ".xml: not well-formed XML" in line
        for line in lines
    )
    # Again with --skip-invalid: exit 0, and nothing is stored twice.
    code, out, _ = run(
        capsys,
        "ingest",
        str(MIKEPENZ),
        "-R",
        "o/r",
        "--run-id",
        "1",
        "--commit",
        "c1",
        "--json",
        "--skip-invalid",
    )
    assert code == 0
    again = json.loads(out)
    assert again["stored"] == 0
    assert all(f["duplicate"] for f in again["files"] if "error" not in f)


def test_ingest_uses_github_actions_variables(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from contexten.config import reload_settings

    for name, value in {
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_RUN_ID": "777",
        "GITHUB_RUN_ATTEMPT": "3",
        "GITHUB_SHA": "deadbeef",
        "GITHUB_REF_NAME": "main",
        "GITHUB_JOB": "unit",
    }.items():
        monkeypatch.setenv(name, value)
    reload_settings()
    code, out, _ = run(capsys, "ingest", str(MIKEPENZ / "python" / "report.xml"), "--json")
    assert code == 0
    assert json.loads(out)["run"] == {
        "repository": "acme/app",
        "run_id": "777",
        "attempt": 3,
        "commit": "deadbeef",
        "branch": "main",
        "job": "unit",
    }


def test_ingest_bad_arguments(contexten_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ingest", "/no/such/dir", "--dry-run")
    assert code == 2
    assert "/no/such/dir: no such file or directory" in err
    code, _, err = run(capsys, "ingest", str(MIKEPENZ), "--timestamp", "yesterday")
    assert code == 2 and "--timestamp 'yesterday'" in err
    code, _, err = run(capsys, "ingest", str(MIKEPENZ), "-R", "not-a-repo")
    assert code == 2 and "must be owner/name" in err


def flaky_history(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two commits where tests failed, then passed on a re-run attempt."""
    for commit in ("c1", "c2"):
        for attempt, name in ((1, "flaky_all_failures.xml"), (2, "flaky_success_first.xml")):
            code, _, _ = run(
                capsys,
                "ingest",
                str(MIKEPENZ / "flaky_retries" / name),
                "-R",
                "o/r",
                "--run-id",
                f"run-{commit}",
                "--attempt",
                str(attempt),
                "--commit",
                commit,
            )
            assert code == 0


def test_report_flaky_and_quarantine_flow(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flaky_history(tmp_path, capsys)
    code, out, _ = run(capsys, "report", "-R", "o/r", "--json")
    assert code == 0
    data = json.loads(out)
    names = [f["name"] for f in data["flaky"]]
    assert (
        "/home/runner/work/tests/test_order.py::test_order.TestOrder::test_success_first" in names
    )
    assert all(f["flaky_events"] >= 1 for f in data["flaky"])
    planned = {p["name"] for p in data["quarantine"]["plan"] if p["action"] == "add"}
    assert planned  # two flaky commits each: over the activation threshold

    code, out, _ = run(capsys, "quarantine", "update", "-R", "o/r", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["dry_run"]
    code, out, _ = run(capsys, "quarantine", "list", "--json")
    assert json.loads(out)["tests"] == []  # dry run changed nothing

    code, out, _ = run(capsys, "quarantine", "update", "-R", "o/r", "--json")
    assert {c["name"] for c in json.loads(out)["changes"]} == planned
    export = tmp_path / "quarantine.json"
    code, out, _ = run(capsys, "quarantine", "export", "-o", str(export))
    assert code == 0
    assert len(json.loads(export.read_text())["tests"]) == len(planned)

    code, out, _ = run(capsys, "flaky", "-R", "o/r")
    assert code == 0 and "failed in run-c" in out


def test_gate_exit_codes(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = MIKEPENZ / "python" / "report.xml"  # two failing tests
    code, out, _ = run(capsys, "gate", str(report), "-R", "o/r")
    assert code == 1 and "2 blocking failures" in out
    run(capsys, "ingest", str(report), "-R", "o/r", "--run-id", "9")
    for test in ("test_which_fails", "test_with_error"):
        code, _, err = run(capsys, "quarantine", "add", test, "-R", "o/r", "--reason", "ticket 7")
        assert code == 0, err
    code, out, _ = run(capsys, "gate", str(report), "-R", "o/r", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and len(data["quarantined_failures"]) == 2
    # The same decision from an exported file, without the database.
    export = tmp_path / "q.json"
    run(capsys, "quarantine", "export", "-o", str(export))
    code, _, _ = run(capsys, "gate", str(report), "-R", "o/r", "--quarantine-file", str(export))
    assert code == 0
    code, out, _ = run(capsys, "quarantine", "export", "--format", "text")
    assert code == 0
    assert sorted(line.split("  # ")[0] for line in out.splitlines()) == [
        "python.test_sample::test_which_fails",
        "python.test_sample::test_with_error",
    ]
    assert "# ticket 7 (until 20" in out
    # Unreadable list: fail closed by default, fail open on request.
    missing = str(tmp_path / "missing.json")
    code, _, err = run(capsys, "gate", str(report), "-R", "o/r", "--quarantine-file", missing)
    assert code == 1 and "failing closed" in err
    code, _, err = run(
        capsys,
        "gate",
        str(report),
        "-R",
        "o/r",
        "--quarantine-file",
        missing,
        "--on-store-error",
        "pass",
    )
    assert code == 0 and "failing open" in err
    # A corrupt report never passes the gate.
    corrupt = JUNIT / "enricomi-publish-unit-test-result-action" / "pytest" / "corrupt-xml.xml"
    code, _, err = run(capsys, "gate", str(report), str(corrupt), "-R", "o/r")
    assert code == 2 and "corrupt-xml.xml: not well-formed XML" in err

    code, _, err = run(capsys, "quarantine", "release", "test_which_fails", "-R", "o/r")
    assert code == 0
    code, _, _ = run(capsys, "gate", str(report), "-R", "o/r")
    assert code == 1


def test_shard_formats(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(
        JUNIT / "enricomi-publish-unit-test-result-action/pytest/junit.gloo.standalone.xml", reports
    )
    run(capsys, "ingest", str(reports), "-R", "o/r", "--run-id", "1")
    code, out, _ = run(capsys, "shard", "-n", "4", "-R", "o/r", "--format", "json")
    assert code == 0
    plan = json.loads(out)
    assert len(plan["shards"]) == 4
    assert all(s["items"] for s in plan["shards"])
    assert plan["imbalance_percent"] < 5
    items = [i for s in plan["shards"] for i in s["items"]]
    assert len(items) == len(set(items)) == 97
    assert all(i.startswith("test/test_") and "::" in i for i in items)

    code, out, _ = run(capsys, "shard", "-n", "4", "-i", "2", "-R", "o/r", "--format", "pytest")
    assert code == 0
    assert out.splitlines() == plan["shards"][1]["items"]

    code, _, err = run(capsys, "shard", "-n", "4", "-i", "9", "-R", "o/r")
    assert code == 2 and "the plan has 4 shards" in err

    out_dir = tmp_path / "shards"
    code, _, err = run(
        capsys, "shard", "-n", "3", "-R", "o/r", "--by", "file", "--output-dir", str(out_dir)
    )
    assert code == 0
    files = {i.split("::")[0] for i in items}
    assert len(files) == 2  # two test files: two shards, none empty
    assert "planned 2 shards" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["shard-1.txt", "shard-2.txt"]
    written = {line for p in out_dir.iterdir() for line in p.read_text().splitlines()}
    assert written == files

    collected = tmp_path / "collected.txt"
    collected.write_text(
        "test/test_new.py::test_a\ntest/test_new.py::test_b\n\n2 tests collected in 0.01s\n"
    )
    code, out, err = run(
        capsys, "shard", "-n", "2", "-R", "o/r", "--collect", str(collected), "--format", "json"
    )
    assert code == 0
    assert json.loads(out)["unknown_items"] == 2
    assert "median estimate" in err


def test_shard_without_history_is_bad_input(
    contexten_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "shard", "-n", "2")
    assert code == 2 and "no test history" in err
    code, _, err = run(capsys, "shard", "-n", "2", "--format", "yaml")
    assert code == 2 and "--format 'yaml'" in err


def test_slow_and_markdown_report(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(
        capsys,
        "ingest",
        str(JUNIT / "enricomi-publish-unit-test-result-action/pytest"),
        "-R",
        "o/r",
        "--skip-invalid",
    )
    code, out, _ = run(capsys, "slow", "-R", "o/r", "--top", "3", "--json")
    assert code == 0
    slowest = json.loads(out)["slowest"]
    assert len(slowest) == 3
    assert slowest[0]["p50_seconds"] >= slowest[1]["p50_seconds"] >= slowest[2]["p50_seconds"]
    markdown = tmp_path / "report.md"
    code, _, _ = run(capsys, "report", "-R", "o/r", "--markdown", str(markdown))
    assert code == 0
    assert markdown.read_text().startswith("# Test report")


def test_tables_show_long_test_ids_whole(capsys: pytest.CaptureFixture[str]) -> None:
    from contexten.commands.tests_common import print_test_table
    from contexten.workflows.base import Table

    test_id = "tests/integration/test_payments.py::TestRefunds::test_partial_refund_is_idempotent"
    print_test_table(Table(("test", "p50", "p95"), ((test_id, "1.0 s", "2.0 s"),), "Slowest tests"))
    # Piped: the title, then tab-separated rows; the id whole.
    assert capsys.readouterr().out.splitlines() == [
        "Slowest tests",
        "test\tp50\tp95",
        f"{test_id}\t1.0 s\t2.0 s",
    ]


def _junit(tmp: Path, name: str, failed: bool) -> Path:
    result = '<failure message="boom">assert 1 == 2</failure>' if failed else ""
    path = tmp / name
    path.write_text(
        '<testsuite name="s" tests="1"><testcase classname="tests.test_x" name="test_a" '
        f'file="tests/test_x.py" time="0.5">{result}</testcase></testsuite>\n'
    )
    return path


def test_report_on_an_empty_store_says_to_ingest_first(
    contexten_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("report", "flaky", "slow"):
        code, _, err = run(capsys, command)
        assert code == 0
        assert err.startswith("contexten: note: the test history in sqlite:///")
        assert "is empty: ingest JUnit reports first, e.g. `contexten tests ingest" in err


def test_report_outside_the_stored_history_says_what_is_stored(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "ingest", str(_junit(tmp_path, "a.xml", False)), "-R", "a/b")[0] == 0
    code, _, err = run(capsys, "report", "-R", "c/d")
    assert code == 0
    assert "no test executions in the last 14 days, repository c/d among the 1 stored" in err
    assert "(repositories stored: a/b)" in err


def test_reports_without_commit_or_run_id_are_separate_uploads(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Two unrelated checkouts (no --commit, no --run-id, no repository): the same test id
    # passes in one and fails in the other. That is not one commit, so not flaky.
    passed, failed = _junit(tmp_path, "pass.xml", False), _junit(tmp_path, "fail.xml", True)
    code, out, _ = run(capsys, "ingest", str(passed), "--json")
    upload = json.loads(out)["files"][0]["upload"]
    assert code == 0 and upload.startswith("pass.xml@") and len(upload) == len("pass.xml@") + 8
    assert run(capsys, "ingest", str(failed))[0] == 0
    code, out, _ = run(capsys, "flaky", "--json")
    assert code == 0 and json.loads(out)["flaky"] == []
    # The same file again is the same upload: stored once.
    code, out, _ = run(capsys, "ingest", str(passed), "--json")
    assert json.loads(out)["files"][0]["duplicate"] is True


def test_flaky_evidence_links_the_commit_and_the_runs(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for attempt, failed in ((1, True), (2, False)):
        report = _junit(tmp_path, f"attempt{attempt}.xml", failed)
        args = ["-R", "o/r", "--run-id", "111", "--attempt", str(attempt), "--commit", "abc123"]
        assert run(capsys, "ingest", str(report), *args)[0] == 0
    code, out, _ = run(capsys, "flaky", "-R", "o/r")
    assert code == 0
    evidence = out.splitlines()[-1]
    assert evidence == (
        "  tests/test_x.py::tests.test_x::test_a: commit https://github.com/o/r/commit/abc123;"
        " failed in 111 <https://github.com/o/r/actions/runs/111>;"
        " passed in 111#2 <https://github.com/o/r/actions/runs/111/attempts/2>"
    )


def test_report_piped_is_the_markdown_itself(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "ingest", str(_junit(tmp_path, "a.xml", False)), "-R", "a/b")[0] == 0
    code, out, _ = run(capsys, "report", "-R", "a/b")
    assert code == 0
    assert out.startswith("# Test report\n\na/b · all branches · last 14 days: 1 tests")
    assert "| tests/test_x.py::tests.test_x::test_a |" in out  # whole, in a Markdown table


def test_ingest_in_batches_stores_what_one_by_one_stores(
    contexten_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Several reports a transaction: the same rows and outcomes as one report at a time."""
    from sqlalchemy import func, select

    from contexten.analysis.junit import JUnitError, parse_junit
    from contexten.commands import tests_ingest
    from contexten.store import test_history as history
    from contexten.store.db import Store, open_store
    from contexten.store.models import (
        TestCaseRecord,
        TestIngestRecord,
        TestResultRecord,
        TestUploadRecord,
    )
    from contexten.testhistory.files import ReportFileError, find_report_files, iter_report_sources

    # Two copies of a report of the directory: duplicates, each stored once.
    for copy in ("a", "b"):
        (tmp_path / copy).mkdir()
        shutil.copy(MIKEPENZ / "python" / "report.xml", tmp_path / copy / "report.xml")
    paths = [MIKEPENZ, tmp_path / "a", tmp_path / "b"]
    writes: list[int] = []
    bulk = history.ingest_reports

    def counted(store: Store, items: Iterable[Any]) -> list[history.IngestOutcome]:
        listed = list(items)
        writes.append(len(listed))
        return bulk(store, listed)

    monkeypatch.setattr(history, "ingest_reports", counted)
    monkeypatch.setattr(tests_ingest, "BATCH_REPORTS", 8)
    code, out, _ = run(
        capsys,
        "ingest",
        *map(str, paths),
        "-R",
        "o/r",
        "--run-id",
        "1",
        "--commit",
        "c1",
        "--json",
        "--skip-invalid",
    )
    assert code == 0
    batched = [
        (f["file"], f["stored"], f["duplicate"])
        for f in json.loads(out)["files"]
        if "error" not in f
    ]
    assert len(batched) == 36  # 34 reports and the two copies
    # One transaction per eight reports; the last four (both copies among them) at the end.
    assert writes == [8, 8, 8, 8, 4]

    # The same reports one at a time, into a store of their own.
    single = open_store(f"sqlite:///{tmp_path / 'single.db'}")
    origin = history.ReportOrigin(repository="o/r", run_id="1", commit="c1")
    one_by_one = []
    files, _ = find_report_files(paths)
    for source in iter_report_sources(files):
        assert not isinstance(source, ReportFileError)
        try:
            report = parse_junit(source.data, source.name)
        except JUnitError:
            continue
        outcome = history.ingest_report(single, report, origin, source.data)
        one_by_one.append((source.name, outcome.stored, outcome.duplicate))
    assert batched == one_by_one
    assert [d for _, _, d in batched].count(True) == 2  # the two copies

    def contents(store: Store) -> tuple[list[int], list[tuple[str, str, float | None]]]:
        with store.session() as session:
            counts = [
                session.scalar(select(func.count()).select_from(table)) or 0
                for table in (TestCaseRecord, TestIngestRecord, TestResultRecord, TestUploadRecord)
            ]
            rows = session.execute(
                select(
                    TestCaseRecord.test_id,
                    TestResultRecord.outcome,
                    TestResultRecord.duration_seconds,
                ).join(TestCaseRecord, TestCaseRecord.id == TestResultRecord.case_id)
            ).all()
        return counts, sorted((str(a), str(b), c) for a, b, c in rows)

    stored = contents(open_store())
    assert stored == contents(single)
    assert stored[0][1] == 34 and stored[0][2] == sum(s for _, s, _ in batched) > 0
