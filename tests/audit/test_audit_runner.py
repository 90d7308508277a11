"""The whole audit over the fixture repository, against a local OSV service."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from contexten.audit.baseline import load_baseline, write_baseline
from contexten.audit.runner import AuditInputError, AuditOptions, run_audit

EXPECTED_SECRETS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "audit" / "expected_secrets.json").read_text()
)["secrets"]


def test_all_three_tools_report_into_one_report(audit_repo: Path, osv_url: str) -> None:
    report = run_audit(AuditOptions(audit_repo, osv_url))
    assert [(t.tool, t.state) for t in report.tools] == [
        ("pip-audit", "ok"),
        ("bandit", "ok"),
        ("secrets", "ok"),
    ]
    deps = {(f.rule, f.path, f.line, f.severity) for f in report.findings if f.tool == "pip-audit"}
    assert deps == {
        ("PYSEC-TEST-0001", "requirements.txt", 2, "high"),  # GHSA alias rated HIGH
        ("CVE-TEST-0002", "requirements.txt", 3, "critical"),  # CVSS 3.1 vector: 9.8
        ("PYSEC-TEST-0003", "requirements.txt", 3, "high"),  # unrated: treated as high
    }
    requests_finding = next(f for f in report.findings if f.rule == "PYSEC-TEST-0001")
    assert requests_finding.fix == "Upgrade requests from 2.19.0 to 2.20.0 or later."
    assert "GHSA-test-req0-0001" in requests_finding.aliases
    unrated = next(f for f in report.findings if f.rule == "PYSEC-TEST-0003")
    assert "no severity published" in unrated.message
    code = {(f.rule, f.line) for f in report.findings if f.tool == "bandit"}
    assert code == {("B602", 10), ("B506", 14), ("B324", 18)}
    secrets = {(f.path, f.line, f.rule) for f in report.findings if f.tool == "secrets"}
    assert secrets == {(e["path"], e["line"], e["rule"]) for e in EXPECTED_SECRETS}
    assert report.failing("critical") and len(report.failing("low")) == len(report.findings)


def test_unreachable_vulnerability_service_is_an_error_line(audit_repo: Path) -> None:
    report = run_audit(AuditOptions(audit_repo, "http://127.0.0.1:9", include_code=False))
    pip_audit = report.tools[0]
    assert pip_audit.state == "error"
    assert "unreachable" in pip_audit.detail
    assert report.incomplete
    assert not [f for f in report.findings if f.tool == "pip-audit"]
    assert [f.tool for f in report.findings] and {f.tool for f in report.findings} == {"secrets"}


def test_unpinned_requirements_are_skipped_not_resolved(audit_repo: Path, osv_url: str) -> None:
    (audit_repo / "requirements.txt").write_text("requests>=2.0\n")
    report = run_audit(AuditOptions(audit_repo, osv_url, include_code=False, include_secrets=False))
    status = report.tools[0]
    assert status.state == "skipped"
    assert "requirements.txt not fully pinned" in status.detail
    assert report.findings == ()


def test_installed_environment_is_audited(tmp_path: Path, osv_records: list[dict]) -> None:
    from importlib.metadata import version

    from contexten.audit.osv_local import serve_osv

    installed = version("typer")
    record = {
        "id": "GHSA-test-typr-0005",
        "summary": "installed-environment test record",
        "database_specific": {"severity": "MODERATE"},
        "affected": [{"package": {"ecosystem": "PyPI", "name": "typer"}, "versions": [installed]}],
    }
    with serve_osv([record]) as url:
        report = run_audit(
            AuditOptions(
                tmp_path,
                url,
                include_code=False,
                include_secrets=False,
                installed_environment=True,
            )
        )
    assert report.tools[0].state == "ok" and "installed environment" in report.tools[0].detail
    assert [(f.rule, f.severity) for f in report.findings] == [("GHSA-test-typr-0005", "medium")]
    assert f"typer {installed}" in report.findings[0].message


def test_ignores_need_reason_and_expiry_and_expire(audit_repo: Path, osv_url: str) -> None:
    (audit_repo / ".contexten-audit.toml").write_text(
        'exclude = ["deploy/**", "tests/**"]\n'
        "[[ignore]]\n"
        'id = "CVE-TEST-0001"\n'
        'reason = "requests only talks to our own host"\n'
        "expires = 2030-01-01\n"
        "[[ignore]]\n"
        'id = "B602"\n'
        'path = "app/*"\n'
        'reason = "the command is a constant"\n'
        "expires = 2020-01-01\n"
    )
    report = run_audit(AuditOptions(audit_repo, osv_url, today=date(2025, 6, 1)))
    assert [(i.finding.rule, i.reason) for i in report.ignored] == [
        ("PYSEC-TEST-0001", "requests only talks to our own host")
    ]
    assert [r.id for r in report.expired_ignores] == ["B602"]
    assert "B602" in {f.rule for f in report.findings}  # expired: no longer ignored
    assert not [f for f in report.findings if f.path.startswith(("deploy/", "tests/"))]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[[ignore]]\nid = "B602"\nexpires = 2030-01-01\n', "'reason' is required"),
        ('[[ignore]]\nid = "B602"\nreason = "x"\n', "'expires' date is required"),
        ('[[ignore]]\nid = "B602"\nreason = "x"\nexpires = "soon"\n', "must be a date"),
        ("[[ignore]\n", "invalid TOML"),
        ("allow = []\n", "unknown key(s) allow"),
    ],
)
def test_bad_config_is_a_one_line_input_error(audit_repo: Path, config: str, message: str) -> None:
    (audit_repo / ".contexten-audit.toml").write_text(config)
    with pytest.raises(AuditInputError) as info:
        run_audit(AuditOptions(audit_repo, "http://127.0.0.1:9"))
    assert message in str(info.value) and ".contexten-audit.toml" in str(info.value)
    assert "\n" not in str(info.value)


def test_baseline_makes_known_findings_not_new(
    audit_repo: Path, osv_url: str, tmp_path: Path
) -> None:
    first = run_audit(AuditOptions(audit_repo, osv_url))
    baseline = tmp_path / "baseline.json"
    assert write_baseline(baseline, first.findings) == len(first.findings)
    # The baseline holds no secret value, only fingerprints.
    text = baseline.read_text()
    assert "ghp_M2NW" not in text and "U206e5q6" not in text
    # A new secret, and an old one moved down a few lines: only the new one is new.
    settings = audit_repo / "app" / "settings.py"
    settings.write_text(
        "\n\n" + settings.read_text() + 'NEW_TOKEN = "ghp_Qm7Lx2Rb9Kd4Wt8Zc1Vn6Hy3Pj5Sf0Ga2Ue7"\n'
    )
    second = run_audit(AuditOptions(audit_repo, osv_url, baseline_path=baseline))
    assert len(second.baselined) == len(first.findings)
    assert [(f.rule, f.line) for f in second.findings] == [("github-token", 24)]
    assert load_baseline(baseline) == {f.fingerprint for f in first.findings}


def test_bad_baseline_and_missing_path(audit_repo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "b.json"
    bad.write_text('{"version": 7}')
    with pytest.raises(AuditInputError, match="not a contexten audit baseline"):
        run_audit(AuditOptions(audit_repo, "http://127.0.0.1:9", baseline_path=bad))
    with pytest.raises(AuditInputError, match="not a directory"):
        run_audit(AuditOptions(tmp_path / "missing", "http://127.0.0.1:9"))


def test_requirements_pinned_rules() -> None:
    from contexten.audit.dependencies import requirements_pinned

    assert requirements_pinned("# c\nrequests==2.19.0 \\\n    --hash=sha256:abc\n-r other.txt\n")
    assert requirements_pinned('jinja2==2.10 ; python_version >= "3"\n')
    assert not requirements_pinned("requests>=2.0\n")
    assert not requirements_pinned("requests==2.19.0,<3\n")
    assert not requirements_pinned("-e .\n")
    assert not requirements_pinned("pkg @ git+https://example.invalid/pkg.git\n")
    assert not requirements_pinned("requests==2.*\n")  # not one exact version
    assert not requirements_pinned("not a requirement ==\n")
