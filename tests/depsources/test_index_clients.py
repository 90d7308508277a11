"""The PyPI JSON and OSV clients against the local index server over real sockets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contexten.analysis.osv import advisory_from_osv, cvss3_base_score, severity_of_score
from contexten.depsources.local_index import LocalIndexServer, osv_record, project_document
from contexten.integrations.http import RetryPolicy
from contexten.integrations.osv import OSVDatabase
from contexten.integrations.packages import PackageIndexError, VulnerabilityDatabaseError
from contexten.integrations.pypi import PyPIJsonIndex, package_info_from_json

NOW = datetime(2025, 3, 1, tzinfo=UTC)


async def test_pypi_releases_files_and_unknown(
    index_server: LocalIndexServer, fast_retries: RetryPolicy
) -> None:
    index_server.projects["requests"] = project_document(
        "Requests",
        {
            "2.30.0": {"age_days": 40, "sha256": ["a" * 64, "b" * 64]},
            "2.31.0": {"age_days": 2, "requires_python": ">=3.8"},
            "2.32.0": {"yanked": True},
        },
        now=NOW,
    )
    client = PyPIJsonIndex(index_server.pypi_url, policy=fast_retries)
    try:
        info = await client.package("requests")
        assert info is not None and info.name == "requests"
        by_version = {r.version: r for r in info.releases}
        assert by_version["2.30.0"].sha256 == ("a" * 64, "b" * 64)
        assert by_version["2.30.0"].uploaded_at == datetime(2025, 1, 20, tzinfo=UTC)
        assert by_version["2.31.0"].requires_python == ">=3.8"
        assert by_version["2.32.0"].yanked and not by_version["2.31.0"].yanked
        assert await client.package("no-such-package") is None
        many = await client.packages(["Requests", "requests", "missing"])
        assert list(many) == ["requests"]
    finally:
        await client.aclose()
    # names are asked for in canonical form, once each
    assert index_server.requests["/pypi/requests/json"] == 2


async def test_pypi_retries_transient_errors_then_gives_up(
    index_server: LocalIndexServer, fast_retries: RetryPolicy
) -> None:
    index_server.projects["six"] = project_document("six", {"1.16.0": {}})
    index_server.fail("/pypi/six", 503, 429)
    client = PyPIJsonIndex(index_server.pypi_url, policy=fast_retries)
    try:
        info = await client.package("six")
        assert info is not None and [r.version for r in info.releases] == ["1.16.0"]
        assert index_server.requests["/pypi/six/json"] == 3
        index_server.fail("/pypi/six", 500, 500, 500)
        with pytest.raises(PackageIndexError) as caught:
            await client.package("six")
        assert "HTTP 500" in str(caught.value) and caught.value.transient
    finally:
        await client.aclose()


def test_pypi_document_without_releases_uses_latest() -> None:
    document = {
        "info": {"name": "Tiny", "version": "1.0"},
        "urls": [{"upload_time_iso_8601": "2024-05-01T10:00:00.000000Z", "yanked": False}],
    }
    info = package_info_from_json("tiny", document)
    assert [(r.version, r.uploaded_at) for r in info.releases] == [
        ("1.0", datetime(2024, 5, 1, 10, tzinfo=UTC))
    ]
    with pytest.raises(ValueError, match="not a PyPI JSON project document"):
        package_info_from_json("x", {"releases": {}})


async def test_pypi_garbage_answer_is_an_index_error(fast_retries: RetryPolicy) -> None:
    server = LocalIndexServer({"bad": {"unexpected": True}}).start()
    client = PyPIJsonIndex(server.pypi_url, policy=fast_retries)
    try:
        with pytest.raises(PackageIndexError, match="bad: unexpected answer"):
            await client.package("bad")
    finally:
        await client.aclose()
        server.stop()


async def test_osv_querybatch_pages_and_records(fast_retries: RetryPolicy) -> None:
    vulns = [
        osv_record("GHSA-1111", "jinja2", fixed="2.11.3", severity="MODERATE", aliases=["CVE-1"]),
        osv_record("GHSA-2222", "jinja2", introduced="2.0", fixed="3.1.4", severity="HIGH"),
        osv_record("PYSEC-3", "jinja2", fixed="2.5", severity=None),
        osv_record("GHSA-other", "flask", fixed="9.0"),
    ]
    server = LocalIndexServer(vulns=vulns, page_size=1).start()  # one id per page
    database = OSVDatabase(server.url, policy=fast_retries)
    try:
        found = await database.advisories([("Jinja2", "2.4.1"), ("flask", "8.0"), ("idna", "3.7")])
        assert sorted(a.id for a in found["jinja2"]) == ["GHSA-1111", "GHSA-2222", "PYSEC-3"]
        assert [a.id for a in found["flask"]] == ["GHSA-other"]
        assert "idna" not in found
        by_id = {a.id: a for a in found["jinja2"]}
        assert by_id["GHSA-1111"].severity == "medium"
        assert by_id["GHSA-1111"].aliases == ("CVE-1",)
        assert by_id["GHSA-2222"].fixed_versions == ("3.1.4",)
        assert by_id["GHSA-2222"].url == "https://osv.dev/vulnerability/GHSA-2222"
        # three pages for jinja2 (page size 1), each record fetched once
        assert server.requests["/v1/querybatch"] == 3
        assert server.requests["/v1/vulns/GHSA-1111"] == 1
        await database.advisories([("jinja2", "2.4.1")])
        assert server.requests["/v1/vulns/GHSA-1111"] == 1  # cached
        assert await database.advisories([]) == {}
    finally:
        await database.aclose()
        server.stop()


async def test_osv_errors(fast_retries: RetryPolicy) -> None:
    server = LocalIndexServer(vulns=[osv_record("GHSA-1", "a", fixed="2")]).start()
    database = OSVDatabase(server.url, policy=fast_retries)
    try:
        server.fail("/v1/querybatch", 502)
        assert [a.id for a in (await database.advisories([("a", "1")]))["a"]] == ["GHSA-1"]
        server.fail("/v1/querybatch", 400)
        with pytest.raises(VulnerabilityDatabaseError, match="HTTP 400"):
            await database.advisories([("a", "1")])
    finally:
        await database.aclose()
        server.stop()


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 2.0),
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", None),  # CVSS v2
        ("CVSS:3.1/AV:N", None),
    ],
)
def test_cvss3_base_scores(vector: str, score: float | None) -> None:
    assert cvss3_base_score(vector) == score


def test_severity_from_record() -> None:
    record = osv_record(
        "PYSEC-9",
        "lib",
        fixed="1.1",
        severity=None,
        cvss="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    )
    advisory = advisory_from_osv(record, "LIB")
    assert advisory is not None and advisory.severity == "critical" and advisory.package == "lib"
    assert advisory.affects("1.0.9") and not advisory.affects("1.1")
    assert advisory_from_osv(record, "other") is None
    assert advisory_from_osv({"no": "id"}, "lib") is None
    assert [severity_of_score(s) for s in (0.0, 3.9, 4.0, 7.0, 9.0)] == [
        "unknown",
        "low",
        "medium",
        "high",
        "critical",
    ]


def test_osv_range_semantics() -> None:
    record = {
        "id": "X",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "lib"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "0"},
                            {"fixed": "1.5"},
                            {"introduced": "2.0"},
                            {"last_affected": "2.3"},
                        ],
                    },
                    {"type": "GIT", "events": [{"introduced": "abc"}]},
                ],
                "versions": ["3.0.1"],
            }
        ],
    }
    advisory = advisory_from_osv(record, "lib")
    assert advisory is not None
    checks = {"1.0": True, "1.5": False, "1.9": False, "2.0": True, "2.3": True, "2.4": False}
    checks["3.0.1"] = True
    assert {v: advisory.affects(v) for v in checks} == checks
