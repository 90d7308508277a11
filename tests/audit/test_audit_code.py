"""bandit results: noise filtered, messages never quote literals, fingerprints stable."""

from __future__ import annotations

from pathlib import Path

from contexten.audit.code import CodeScanOptions, is_test_file, scan_code


def test_defaults_hide_noise_and_assert_in_tests(audit_repo: Path) -> None:
    files = ["app/runner.py", "app/settings.py", "tests/token_values.py"]
    findings, status = scan_code(audit_repo, files)
    assert status.state == "ok" and status.version
    assert sorted(f.rule for f in findings) == ["B324", "B506", "B602"]
    everything, _ = scan_code(
        audit_repo,
        files,
        CodeScanOptions(min_confidence="low", skipped_tests=(), asserts_in_tests=True),
    )
    assert {"B101", "B105", "B404"} <= {f.rule for f in everything}


def test_bandit_messages_do_not_leak_the_literal(audit_repo: Path) -> None:
    findings, _ = scan_code(
        audit_repo, ["app/settings.py"], CodeScanOptions(min_confidence="low", skipped_tests=())
    )
    b105 = [f for f in findings if f.rule == "B105"]
    assert b105
    for finding in b105:
        assert "ghp_" not in finding.message and "U206e5q6" not in finding.message
        assert "'…'" in finding.message


def test_fingerprints_survive_line_moves(audit_repo: Path) -> None:
    before, _ = scan_code(audit_repo, ["app/runner.py"])
    runner = audit_repo / "app" / "runner.py"
    runner.write_text("# a new first line\n" + runner.read_text())
    after, _ = scan_code(audit_repo, ["app/runner.py"])
    assert [f.line + 1 for f in before] == [f.line for f in after]
    assert [f.fingerprint for f in before] == [f.fingerprint for f in after]


def test_no_python_files() -> None:
    findings, status = scan_code(Path("."), ["README.md"])
    assert findings == [] and status.detail == "no Python files"


def test_is_test_file() -> None:
    assert is_test_file("tests/unit/helpers.py") and is_test_file("pkg/test_x.py")
    assert is_test_file("conftest.py") and not is_test_file("src/contest.py")
