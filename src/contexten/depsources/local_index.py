"""A package index and vulnerability database on 127.0.0.1, for tests and the offline demo.

Serves the same shapes as the real services:
- `GET /pypi/{project}/json`: a PyPI JSON API project document (404 for unknown projects);
- `POST /v1/querybatch`: OSV's batch query, ids and `modified` only, with `next_page_token`
  when a query has more than `page_size` results;
- `GET /v1/vulns/{id}`: the full OSV record.

`failures` injects HTTP errors (e.g. a 503 then success) to exercise retries; `requests`
counts what was asked, so tests can check caching and batching.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.utils import canonicalize_name

from contexten.analysis.osv import advisory_from_osv

MAX_BODY_BYTES = 1024 * 1024


def release_files(
    name: str,
    version: str,
    *,
    uploaded: datetime | None = None,
    yanked: bool = False,
    requires_python: str | None = None,
    sha256: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The file entries of one release, as the PyPI JSON API lists them."""
    when = (uploaded or datetime(2024, 1, 1, tzinfo=UTC)).astimezone(UTC)
    digests = list(sha256) or [f"{abs(hash((name, version))):064x}"[:64]]
    return [
        {
            "filename": f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
            if i == 0
            else f"{name}-{version}.tar.gz",
            "packagetype": "bdist_wheel" if i == 0 else "sdist",
            "upload_time": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "upload_time_iso_8601": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "yanked": yanked,
            "yanked_reason": "broken" if yanked else None,
            "requires_python": requires_python,
            "digests": {"sha256": digest, "md5": digest[:32]},
            "size": 1000 + i,
            "url": f"https://files.invalid/{name}/{version}/{i}",
        }
        for i, digest in enumerate(digests)
    ]


def project_document(
    name: str, releases: Mapping[str, Mapping[str, Any]], *, now: datetime | None = None
) -> dict[str, Any]:
    """A PyPI JSON API document. `releases` maps a version to options: `age_days` (or
    `uploaded`), `yanked`, `requires_python`, `sha256` (a list)."""
    now = now or datetime.now(UTC)
    files: dict[str, list[dict[str, Any]]] = {}
    for version, options in releases.items():
        uploaded = options.get("uploaded") or now - timedelta(
            days=float(options.get("age_days", 30))
        )
        files[version] = release_files(
            name,
            version,
            uploaded=uploaded,
            yanked=bool(options.get("yanked", False)),
            requires_python=options.get("requires_python"),
            sha256=options.get("sha256", ()),
        )
    latest = list(releases)[-1] if releases else "0"
    return {
        "info": {"name": name, "version": latest, "summary": f"{name} (local index)"},
        "last_serial": 1,
        "releases": files,
        "urls": files.get(latest, []),
        "vulnerabilities": [],
    }


def osv_record(
    advisory_id: str,
    package: str,
    *,
    introduced: str = "0",
    fixed: str | None = None,
    severity: str | None = "HIGH",
    cvss: str | None = None,
    summary: str = "",
    aliases: Iterable[str] = (),
) -> dict[str, Any]:
    """An OSV record for one PyPI package and one affected range."""
    events: list[dict[str, str]] = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": advisory_id,
        "modified": "2024-06-01T00:00:00Z",
        "published": "2024-05-01T00:00:00Z",
        "aliases": list(aliases),
        "summary": summary or f"{package} advisory {advisory_id}",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package, "purl": f"pkg:pypi/{package}"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
    }
    if severity:
        record["database_specific"] = {"severity": severity}
    if cvss:
        record["severity"] = [{"type": "CVSS_V3", "score": cvss}]
    return record


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up (it gave up on a 503, its timeout ran out) is no error of the
    stand-in: nothing is printed to the stderr of the process it runs in."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LocalIndexServer:
    """Serve `projects` (canonical name -> PyPI JSON document) and `vulns` (OSV records)."""

    def __init__(
        self,
        projects: Mapping[str, Any] | None = None,
        vulns: Iterable[Mapping[str, Any]] = (),
        *,
        page_size: int = 1000,
    ) -> None:
        self.projects: dict[str, Any] = {
            canonicalize_name(k): v for k, v in (projects or {}).items()
        }
        self.vulns: dict[str, Any] = {str(v["id"]): dict(v) for v in vulns}
        self.page_size = max(1, page_size)
        self.failures: dict[str, list[int]] = {}  # path prefix -> statuses to answer first
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---
    def start(self) -> LocalIndexServer:
        handler = _handler_for(self)
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        # a short poll interval so stop() returns quickly
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalIndexServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local index is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def pypi_url(self) -> str:
        return f"{self.url}/pypi"

    # --- behaviour ---
    def fail(self, path_prefix: str, *statuses: int) -> None:
        with self._lock:
            self.failures.setdefault(path_prefix, []).extend(statuses)

    def _injected(self, path: str) -> int | None:
        with self._lock:
            self.requests[path] += 1
            for prefix, statuses in self.failures.items():
                if path.startswith(prefix) and statuses:
                    return statuses.pop(0)
        return None

    def _matches(self, name: str, version: str) -> list[str]:
        ids = []
        for vuln_id, record in sorted(self.vulns.items()):
            advisory = advisory_from_osv(record, name)
            if advisory is not None and advisory.affects(version):
                ids.append(vuln_id)
        return ids

    def querybatch(self, body: Any) -> tuple[int, Any]:
        queries = body.get("queries") if isinstance(body, dict) else None
        if not isinstance(queries, list):
            return 400, {"code": 3, "message": "queries must be a list"}
        results: list[dict[str, Any]] = []
        for query in queries:
            package = query.get("package") if isinstance(query, dict) else None
            if not isinstance(package, dict) or not isinstance(query.get("version"), str):
                return 400, {"code": 3, "message": "each query needs package and version"}
            ids = self._matches(str(package.get("name", "")), query["version"])
            offset = int(query.get("page_token") or 0)
            page = ids[offset : offset + self.page_size]
            result: dict[str, Any] = {}
            if page:
                result["vulns"] = [
                    {"id": i, "modified": self.vulns[i].get("modified", "")} for i in page
                ]
            if offset + self.page_size < len(ids):
                result["next_page_token"] = str(offset + self.page_size)
            results.append(result)
        return 200, {"results": results}


def _handler_for(index: LocalIndexServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet in tests

        def _send(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            status = index._injected(path)
            if status is not None:
                self._send(status, {"message": "injected failure"})
                return
            parts = [unquote(p) for p in path.strip("/").split("/")]
            if len(parts) == 3 and parts[0] == "pypi" and parts[2] == "json":
                document = index.projects.get(canonicalize_name(parts[1]))
                if document is None:
                    self._send(404, {"message": "Not Found"})
                else:
                    self._send(200, document)
                return
            if len(parts) == 3 and parts[:2] == ["v1", "vulns"]:
                record = index.vulns.get(parts[2])
                if record is None:
                    self._send(404, {"code": 5, "message": "Bug not found."})
                else:
                    self._send(200, record)
                return
            self._send(404, {"message": "Not Found"})

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(413, {"message": "body too large"})
                return
            raw = self.rfile.read(length)
            status = index._injected(path)
            if status is not None:
                self._send(status, {"message": "injected failure"})
                return
            if path != "/v1/querybatch":
                self._send(404, {"message": "Not Found"})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(400, {"code": 3, "message": "invalid JSON"})
                return
            status, payload = index.querybatch(body)
            self._send(status, payload)

    return Handler
