"""Evidence blocks on real CI logs against the lines a person marked (tests/data/logs/real).

The labels were written down before the tool ran (see the README there). Each log must get
at least one labelled line (a hit) and most of the labelled lines within 30 evidence lines;
the logs the tool does not explain yet are listed in KNOWN_GAPS (strict xfail: an
improvement that fixes one makes the test fail until it is moved out of the list).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contexten.analysis.logs import diagnose

REAL = Path(__file__).resolve().parents[2] / "data" / "logs" / "real"
LABELS: dict[str, dict[str, object]] = json.loads((REAL / "labels.json").read_text("utf-8"))
KNOWN_GAPS: dict[str, str] = {}


def _params() -> list[object]:
    out = []
    for name in sorted(LABELS):
        marks = []
        if name in KNOWN_GAPS:
            marks.append(pytest.mark.xfail(reason=KNOWN_GAPS[name], strict=True))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


@pytest.mark.parametrize("name", _params())
def test_evidence_covers_the_labelled_lines(name: str) -> None:
    label = LABELS[name]
    wanted = set(label["chunk_lines"])  # type: ignore[arg-type]
    diagnosis = diagnose((REAL / name).read_bytes())
    got = {line.line for line in diagnosis.evidence}
    assert 0 < len(diagnosis.evidence) <= 30
    assert got & wanted, f"no labelled line among {sorted(got)}; wanted {sorted(wanted)}"
    recall = len(got & wanted) / len(wanted)
    assert recall >= 0.5, f"recall {recall:.2f}: missing {sorted(wanted - got)}"


@pytest.mark.parametrize("name", sorted(LABELS))
def test_blocks_hold_their_lines(name: str) -> None:
    diagnosis = diagnose((REAL / name).read_bytes())
    assert diagnosis.blocks
    for line in diagnosis.evidence:
        assert any(b.start <= line.line <= b.end for b in diagnosis.blocks)
    for block in diagnosis.blocks:
        assert block.start <= block.end
    # Blank lines are never shown.
    assert all(line.text.strip() for line in diagnosis.evidence)


def test_the_labels_are_real_lines_of_the_trimmed_logs() -> None:
    for name, label in LABELS.items():
        lines = (REAL / name).read_bytes().decode("utf-8", "replace").splitlines()
        for number in label["chunk_lines"]:  # type: ignore[union-attr]
            assert 1 <= number <= len(lines) and lines[number - 1].strip(), (name, number)
