"""kill -9 midway: every acknowledged delivery becomes exactly one run (small version).

The scenario lives in benchmarks/webhook_durability.py (1,000 deliveries there); this
runs it with 200 against a real `contexten webhook serve` subprocess on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "webhook_durability.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_durability", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(180)
def test_sigkill_midway_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, data_dir: Path
) -> None:
    durability = _load()
    report = durability.run(deliveries=200, kill_after=80, connections=8, workdir=tmp_path)
    assert report.acknowledged_before_kill == 80
    assert report.refused_by_kill > 0  # the kill really cut deliveries off
    assert len(report.acknowledged) == 200  # after redelivery every one got an answer
    assert report.missing_runs == []
    assert report.not_dispatched == []
    assert report.runs == 200
    assert report.unexpected_runs == 0
    assert report.duplicates_answered >= 1  # redelivered acknowledged ones were deduped
    assert report.retriggered <= durability.DISPATCH_CONCURRENCY
    assert report.clean_exit_code == 0
    assert report.ok
