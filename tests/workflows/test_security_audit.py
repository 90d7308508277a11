"""The security_audit workflow body over the fixture repository and a local OSV service."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexten.audit.baseline import write_baseline
from contexten.audit.osv_local import serve_osv
from contexten.config import Settings
from contexten.orchestration.workflows import SecurityAuditParameters
from contexten.store import open_store
from contexten.workflows.base import WorkflowContext, WorkflowError
from contexten.workflows.security_audit import BASELINE_FILE, run

DATA = Path(__file__).resolve().parents[1] / "data" / "audit"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(DATA / "repo", target)
    return target


@pytest.fixture(scope="module")
def osv_url() -> Iterator[str]:
    with serve_osv(json.loads((DATA / "osv" / "records.json").read_text())) as url:
        yield url


def context(tmp_path: Path, osv_api_url: str) -> WorkflowContext:
    values: dict[str, Any] = {"contexten_home": tmp_path / "home", "osv_api_url": osv_api_url}
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    return WorkflowContext(settings=Settings(**values), store=store, run_id="audit-run")


async def test_findings_fail_the_run_and_sarif_is_written(
    tmp_path: Path, repo: Path, osv_url: str
) -> None:
    outcome = await run(SecurityAuditParameters(path=str(repo)), context(tmp_path, osv_url))
    assert outcome.ok is False
    assert outcome.data["counts"] == {"critical": 3, "high": 10, "medium": 4, "low": 0}
    assert "13 at or above high" in outcome.summary
    sarif = json.loads(Path(outcome.data["sarif_path"]).read_text())
    assert [r["tool"]["driver"]["name"] for r in sarif["runs"]] == [
        "pip-audit",
        "bandit",
        "contexten-secrets",
    ]
    assert outcome.markdown.startswith("## Security audit")
    assert len(outcome.tables[0].rows) == 17
    assert "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" not in outcome.markdown + json.dumps(
        outcome.data
    )


async def test_baseline_in_the_repository_makes_a_clean_run(
    tmp_path: Path, repo: Path, osv_url: str
) -> None:
    ctx = context(tmp_path, osv_url)
    first = await run(SecurityAuditParameters(path=str(repo)), ctx)
    from contexten.audit.runner import AuditOptions, run_audit

    report = run_audit(AuditOptions(repo, osv_url))
    write_baseline(repo / BASELINE_FILE, report.findings)
    second = await run(SecurityAuditParameters(path=str(repo)), ctx)
    assert first.ok is False and second.ok is True
    assert second.data["findings"] == [] and len(second.data["baselined"]) == 17


async def test_only_secrets_with_critical_threshold(
    tmp_path: Path, repo: Path, osv_url: str
) -> None:
    params = SecurityAuditParameters(
        path=str(repo), fail_on="critical", include_dependencies=False, include_code=False
    )
    outcome = await run(params, context(tmp_path, osv_url))
    assert {t["tool"]: t["state"] for t in outcome.data["tools"]} == {
        "pip-audit": "skipped",
        "bandit": "skipped",
        "secrets": "ok",
    }
    assert outcome.ok is False  # the private key and the AWS secret are critical
    (repo / "deploy" / "keys" / "service.pem").unlink()
    settings = repo / "app" / "settings.py"
    settings.write_text(settings.read_text().replace("AWS_SECRET_ACCESS_KEY", "UNRELATED_NAME"))
    again = await run(params, context(tmp_path, osv_url))
    assert again.ok is True, again.summary


async def test_unreachable_osv_is_not_a_pass(tmp_path: Path, repo: Path) -> None:
    params = SecurityAuditParameters(path=str(repo), include_code=False, include_secrets=False)
    outcome = await run(params, context(tmp_path, "http://127.0.0.1:9"))
    assert outcome.ok is False
    assert "incomplete: pip-audit failed" in outcome.summary


async def test_bad_path_raises(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="not a directory"):
        await run(
            SecurityAuditParameters(path=str(tmp_path / "nope")), context(tmp_path, "http://x")
        )
