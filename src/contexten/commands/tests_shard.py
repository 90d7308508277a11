"""`contexten tests shard`: split the suite into N shards balanced by recorded durations."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from contexten.commands._common import EXIT_OK, fail, print_json
from contexten.commands.tests_common import (
    BranchOption,
    RepositoryOption,
    WindowOption,
    history_error,
    history_store,
    print_test_table,
    report_options,
)


def _read_collected(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--collect {path}: cannot read: {exc}")
    items = []
    for line in text.splitlines():
        line = line.strip()
        # `pytest --collect-only -q` ends with a summary line ("12 tests collected in 0.1s").
        if not line or line.startswith("#") or " collected" in line or line.startswith("no tests"):
            continue
        items.append(line)
    if not items:
        fail(
            f"--collect {path}: no test ids in the file"
            " (expected `pytest --collect-only -q` output)"
        )
    return items


def shard(
    shards: int = typer.Option(..., "--shards", "-n", min=1, max=1024),
    index: int | None = typer.Option(
        None, "--index", "-i", min=1, help="print one shard (1-based)"
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json or pytest"),
    by: str = typer.Option("test", "--by", help="test (node ids) or file"),
    statistic: str = typer.Option("p90", "--estimate", help="p90 or median of recent runs"),
    collect: Path | None = typer.Option(
        None, "--collect", help="`pytest --collect-only -q` output: shard exactly these tests"
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", help="write shard-N.txt (one id per line) for every shard"
    ),
    repository: str | None = RepositoryOption,
    branch: str | None = BranchOption,
    window_days: int = WindowOption,
) -> None:
    """Split the suite into N shards balanced by recorded durations."""
    from contexten.store.test_history import TestHistoryError, identities
    from contexten.testhistory.report import (
        ShardRequest,
        collect_stats,
        plan_from_history,
        shard_json,
        shard_table,
    )

    if fmt not in ("text", "json", "pytest"):
        fail(f"--format {fmt!r}: expected text, json or pytest")
    if by not in ("test", "file"):
        fail(f"--by {by!r}: expected test or file")
    if statistic not in ("p90", "median"):
        fail(f"--estimate {statistic!r}: expected p90 or median")
    collected = _read_collected(collect) if collect is not None else None
    options = report_options(repository, branch, window_days)
    store = history_store()
    try:
        snapshot = collect_stats(store, options)
        known = identities(store, test_ids=snapshot.stats)
    except TestHistoryError as exc:
        history_error(exc)
    if not snapshot.stats and collected is None:
        fail(
            "no test history in the window: ingest JUnit reports first, or pass --collect"
            " to split collected tests evenly"
        )
    plan = plan_from_history(
        snapshot,
        known,
        ShardRequest(shards, statistic, by, collected),  # type: ignore[arg-type]
    )
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if index is not None and index > len(plan.shards):
        fail(
            f"--index {index}: the plan has {len(plan.shards)} shards (never an empty one);"
            f" run with --shards {len(plan.shards)}"
        )
    if output_dir is not None:
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            for s in plan.shards:
                (output_dir / f"shard-{s.index}.txt").write_text(
                    "".join(k + "\n" for k in s.keys), encoding="utf-8"
                )
        except OSError as exc:
            fail(f"--output-dir {output_dir}: cannot write: {exc.strerror or exc}")
    chosen = [s for s in plan.shards if index is None or s.index == index]
    if fmt == "json":
        data = shard_json(plan)
        if index is not None:
            data["shards"] = [s for s in data["shards"] if s["index"] == index]
        print_json(data)
    elif fmt == "pytest":
        odd = sum(1 for s in chosen for k in s.keys if by == "test" and "::" not in k)
        if odd:
            print(
                f"note: {odd} items are not pytest node ids (the history holds non-pytest"
                " reports); filter with --collect",
                file=sys.stderr,
            )
        for s in chosen:
            sys.stdout.write("".join(k + "\n" for k in s.keys))
    else:
        print_test_table(shard_table(plan))
        if index is not None:
            for key in chosen[0].keys:
                print(key)
    raise typer.Exit(EXIT_OK)
