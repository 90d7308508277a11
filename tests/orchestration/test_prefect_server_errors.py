"""Starting the embedded Prefect server fails with a reason a person can act on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from contexten.orchestration.prefect_server import (
    PrefectServerError,
    PrefectServerProcess,
    last_line,
)


def test_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = PrefectServerProcess(home=tmp_path, port=port)
        with pytest.raises(PrefectServerError, match=f"port {port} on 127.0.0.1 is in use"):
            server.start(timeout=5)
    assert server.process is None  # nothing was started


def test_last_line_reads_only_what_was_written_since_start(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("old run: ERROR earlier failure\n")
    start = log.stat().st_size
    with log.open("a") as handle:
        handle.write(" ___ ___ banner\n|_ _| art |\n\nOSError: [Errno 98] address in use\n\n")
    assert last_line(log, start) == "OSError: [Errno 98] address in use"
    assert last_line(log, log.stat().st_size) == ""
    assert last_line(tmp_path / "missing.log") == ""
