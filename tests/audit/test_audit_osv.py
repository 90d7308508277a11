"""OSV severity (GitHub rating, CVSS v3), record fetching and the local OSV service."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from contexten.analysis.osv import cvss3_base_score, osv_severity
from contexten.audit.osv_local import affects
from contexten.integrations.http import RetryPolicy
from contexten.integrations.osv import fetch_records
from contexten.integrations.packages import VulnerabilityDatabaseError


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss3_base_scores_match_the_nvd_calculator(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize("vector", ["CVSS:4.0/AV:N/AC:L", "CVSS:3.1/AV:X/AC:L", "nonsense"])
def test_unusable_vectors_give_none(vector: str) -> None:
    assert cvss3_base_score(vector) is None


@pytest.mark.parametrize(
    ("record", "severity"),
    [
        ({"database_specific": {"severity": "MODERATE"}}, "medium"),
        (
            {
                "severity": [
                    {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"}
                ]
            },
            "medium",
        ),
        ({"affected": [{"ecosystem_specific": {"severity": "CRITICAL"}}]}, "critical"),
        ({"summary": "nothing rated"}, None),
    ],
)
def test_osv_severity(record: dict[str, Any], severity: str | None) -> None:
    assert osv_severity(record) == severity


def test_local_service_speaks_the_osv_routes(osv_url: str) -> None:
    def post(route: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            osv_url + route, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    hit = post(
        "/v1/query", {"package": {"name": "Requests", "ecosystem": "PyPI"}, "version": "2.19.0"}
    )
    assert sorted(v["id"] for v in hit["vulns"]) == ["GHSA-test-req0-0001", "PYSEC-TEST-0001"]
    assert (
        post(
            "/v1/query", {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.20.0"}
        )
        == {}
    )
    batch = post(
        "/v1/querybatch",
        {"queries": [{"package": {"name": "jinja2", "ecosystem": "PyPI"}, "version": "2.10"}]},
    )
    assert sorted(v["id"] for v in batch["results"][0]["vulns"]) == [
        "GHSA-test-jin2-0002",
        "PYSEC-TEST-0003",
    ]
    records = fetch_records(
        osv_url, ["GHSA-test-jin2-0002", "NOPE-1"], policy=RetryPolicy(timeout_seconds=5)
    )
    assert list(records) == ["GHSA-test-jin2-0002"]


def test_fetch_from_an_unreachable_service_raises_one_line() -> None:
    async def no_wait(seconds: float) -> None:
        pass

    policy = RetryPolicy(max_attempts=2, timeout_seconds=2, sleep=no_wait)
    with pytest.raises(VulnerabilityDatabaseError, match="cannot connect") as caught:
        fetch_records("http://127.0.0.1:9", ["X-1"], policy=policy)
    assert "\n" not in str(caught.value)


def test_range_semantics() -> None:
    record = {
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "pkg"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.5"}]},
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "2.0"}, {"last_affected": "2.1"}],
                    },
                ],
            }
        ]
    }
    assert [
        v
        for v in ("0.9", "1.0", "1.4.9", "1.5", "2.0", "2.1", "2.1.1")
        if affects(record, "pkg", v)
    ] == [
        "1.0",
        "1.4.9",
        "2.0",
        "2.1",
    ]
