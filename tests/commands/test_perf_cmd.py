"""`contexten perf ...`: import saved GitHub JSON, compare branches, find change points."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contexten.cli import main

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def run_doc(
    run_id: int, branch: str, start: datetime, tests: float, build: float = 60.0
) -> dict[str, Any]:
    job_start = start + timedelta(seconds=15)
    build_end = job_start + timedelta(seconds=build)
    end = build_end + timedelta(seconds=tests)
    return {
        "id": run_id,
        "name": "CI",
        "head_branch": branch,
        "head_sha": f"{run_id:040x}",
        "run_attempt": 1,
        "event": "push",
        "conclusion": "success",
        "created_at": iso(start),
        "run_started_at": iso(start),
        "updated_at": iso(end),
        "jobs": [
            {
                "id": run_id * 10,
                "name": "test",
                "conclusion": "success",
                "created_at": iso(start),
                "started_at": iso(job_start),
                "completed_at": iso(end),
                "steps": [
                    {
                        "name": "Build",
                        "number": 1,
                        "conclusion": "success",
                        "started_at": iso(job_start),
                        "completed_at": iso(build_end),
                    },
                    {
                        "name": "Run tests",
                        "number": 2,
                        "conclusion": "success",
                        "started_at": iso(build_end),
                        "completed_at": iso(end),
                    },
                ],
            }
        ],
    }


def write_history(tmp: Path, regress: bool) -> list[Path]:
    rng = np.random.default_rng(1)
    develop = [
        run_doc(100 + i, "develop", T0 + timedelta(hours=i), float(rng.normal(400, 15)))
        for i in range(12)
    ]
    factor = 1.4 if regress else 1.0
    feature = [
        run_doc(
            200 + i,
            "feature",
            T0 + timedelta(hours=i, minutes=20),
            float(rng.normal(400 * factor, 15)),
        )
        for i in range(12)
    ]
    paths = [tmp / "develop.json", tmp / "feature.json"]
    paths[0].write_text(json.dumps({"total_count": 12, "workflow_runs": develop}))
    paths[1].write_text(json.dumps(feature))
    return paths


def perf(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["perf", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_compare_and_plot(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    paths = write_history(tmp_path, regress=True)
    code, out, _ = perf(capsys, "import", *map(str, paths), "-R", "o/r")
    assert code == 0 and "12 runs, 48 timings stored" in out
    plot = tmp_path / "trend.png"
    code, out, _ = perf(
        capsys,
        "compare",
        "--head",
        "feature",
        "-R",
        "o/r",
        "--json",
        "--plot",
        str(plot),
        "--fail-on-regression",
    )
    assert code == 1
    data = json.loads(out)
    assert data["regressed"]
    (workflow,) = data["workflows"]
    assert workflow["baseline_branch"] == "develop"  # BASELINE_BRANCH default
    assert workflow["run_time"]["verdict"] == "regressed"
    assert workflow["queue_time"]["verdict"] == "same"
    assert [g["step"] for g in workflow["grown"]] == [None, "Run tests"]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    code, out, _ = perf(capsys, "compare", "--head", "feature", "-R", "o/r")
    assert code == 0  # without --fail-on-regression the report is all
    assert "regressed" in out


def test_compare_without_regression(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    perf(capsys, "import", *map(str, write_history(tmp_path, regress=False)), "-R", "o/r")
    code, out, _ = perf(
        capsys, "compare", "--head", "feature", "-R", "o/r", "--json", "--fail-on-regression"
    )
    assert code == 0
    assert json.loads(out)["workflows"][0]["run_time"]["verdict"] == "same"


def test_bad_input(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = perf(capsys, "compare", "--head", "feature", "-R", "o/r")
    assert code == 2 and "no CI timings for o/r" in err
    code, _, err = perf(capsys, "compare", "--head", "develop", "-R", "o/r")
    assert code == 2 and "both 'develop'" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    code, _, err = perf(capsys, "import", str(bad), "-R", "o/r")
    assert code == 2 and "bad.json: item 0 is not a workflow run" in err
    code, _, err = perf(capsys, "compare", "--head", "x")
    assert code == 2 and "no repository" in err


def test_trend_finds_the_run_where_it_got_slower(
    contexten_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    docs = [
        run_doc(
            300 + i,
            "develop",
            T0 + timedelta(hours=i),
            float(rng.normal(300 if i < 20 else 420, 8)),
        )
        for i in range(40)
    ]
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(docs))
    perf(capsys, "import", str(path), "-R", "o/r")
    code, out, _ = perf(capsys, "trend", "-b", "develop", "-w", "CI", "-R", "o/r", "--json")
    assert code == 0
    (point,) = json.loads(out)["change_points"]
    assert point["run_id"] == 320
    assert 30 < point["change_percent"] < 45
    code, out, _ = perf(capsys, "trend", "-b", "develop", "-w", "CI", "-R", "o/r", "--job", "test")
    assert code == 0 and "run 320" in out
