"""A local OSV-shaped vulnerability service on 127.0.0.1, for tests and offline demos.

Serves the OSV v1 API routes pip-audit and the audit use, from records given in memory:
  POST /v1/query        {"package": {"name", "ecosystem"}, "version"} -> {"vulns": [...]}
  POST /v1/querybatch   {"queries": [...]} -> {"results": [{"vulns": [{"id", "modified"}]}]}
  GET  /v1/vulns/{id}   the record, or 404
Matching follows the OSV schema: explicit `versions`, or ECOSYSTEM ranges of
introduced / fixed / last_affected events compared as PEP 440 versions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

MAX_REQUEST_BYTES = 1024 * 1024


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: list[dict[str, str]]) -> bool:
    affected = False
    for event in events:
        for kind, raw in event.items():
            at = Version("0") if raw == "0" else _version(raw)
            if at is None:
                continue
            if kind == "introduced" and version >= at:
                affected = True
            elif (kind == "fixed" and version >= at) or (kind == "last_affected" and version > at):
                affected = False
    return affected


def affects(record: dict[str, Any], name: str, version_text: str) -> bool:
    version = _version(version_text)
    wanted = canonicalize_name(name)
    for affected in record.get("affected", []):
        package = affected.get("package", {})
        if (
            package.get("ecosystem") != "PyPI"
            or canonicalize_name(package.get("name", "")) != wanted
        ):
            continue
        if version_text in affected.get("versions", []):
            return True
        if version is None:
            continue
        for rng in affected.get("ranges", []):
            if rng.get("type") == "ECOSYSTEM" and _in_range(version, rng.get("events", [])):
                return True
    return False


class OsvRecords:
    def __init__(self, records: Iterable[dict[str, Any]]) -> None:
        self.by_id = {str(r["id"]): r for r in records}

    def query(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        package = body.get("package") or {}
        name, version = str(package.get("name", "")), str(body.get("version", ""))
        return [r for r in self.by_id.values() if affects(r, name, version)]


def _handler(records: OsvRecords) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> dict[str, Any] | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_REQUEST_BYTES:
                return None
            try:
                data = json.loads(self.rfile.read(length))
            except ValueError:
                return None
            return data if isinstance(data, dict) else None

        def do_GET(self) -> None:
            prefix = "/v1/vulns/"
            if self.path.startswith(prefix) and self.path[len(prefix) :] in records.by_id:
                self._send(200, records.by_id[self.path[len(prefix) :]])
            else:
                self._send(404, {"code": 5, "message": "Bug not found."})

        def do_POST(self) -> None:
            body = self._body()
            if body is None:
                self._send(400, {"code": 3, "message": "Invalid query."})
            elif self.path == "/v1/query":
                vulns = records.query(body)
                self._send(200, {"vulns": vulns} if vulns else {})
            elif self.path == "/v1/querybatch":
                results = [
                    {
                        "vulns": [
                            {"id": r["id"], "modified": r.get("modified", "")}
                            for r in records.query(q)
                        ]
                    }
                    for q in body.get("queries", [])
                    if isinstance(q, dict)
                ]
                self._send(200, {"results": results})
            else:
                self._send(404, {"code": 5, "message": "Not found."})

    return Handler


@contextmanager
def serve_osv(records: Iterable[dict[str, Any]], port: int = 0) -> Iterator[str]:
    """Serve `records` on 127.0.0.1; yields the base URL (use it as OSV_API_URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(OsvRecords(records)))
    thread = threading.Thread(target=server.serve_forever, name="osv-local", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
