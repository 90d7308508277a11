"""Balanced shards: completeness, no empty shard, balance at least as good as LPT."""

from __future__ import annotations

import heapq

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contexten.analysis.sharding import (
    ShardItem,
    build_items,
    file_of_node_id,
    plan_shards,
    pytest_node_id,
)


def lpt_makespan(seconds: list[float], shards: int) -> float:
    heap = [0.0] * shards
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(heap, heap[0] + s)
    return max(heap)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=600.0, allow_nan=False), min_size=1, max_size=80),
    st.integers(min_value=1, max_value=12),
)
def test_plan_is_complete_balanced_and_never_empty(seconds: list[float], shards: int) -> None:
    items = [ShardItem(f"t{i}", s) for i, s in enumerate(seconds)]
    plan = plan_shards(items, shards)
    assert len(plan.shards) == min(shards, len(items))
    assert all(shard.items for shard in plan.shards)
    keys = [k for shard in plan.shards for k in shard.keys]
    assert sorted(keys) == sorted(i.key for i in items)
    for shard in plan.shards:
        assert shard.expected_seconds == pytest.approx(sum(i.seconds for i in shard.items))
    assert plan.makespan_seconds <= lpt_makespan(seconds, len(plan.shards)) + 1e-6
    assert plan.makespan_seconds >= plan.lower_bound_seconds - 1e-6


def test_count_based_split_is_beaten() -> None:
    # One heavy module and many light ones: splitting by count leaves one shard far longer.
    items = [ShardItem(f"heavy{i}", 60.0) for i in range(10)]
    items += [ShardItem(f"light{i}", 1.0) for i in range(90)]
    plan = plan_shards(items, 4)
    assert plan.makespan_seconds == pytest.approx(180.0)  # optimal: 690 s / 4 → 172.5, 60 s items
    assert plan.imbalance_percent < 5.0
    assert [s.index for s in plan.shards] == [1, 2, 3, 4]


def test_local_search_improves_on_lpt() -> None:
    # The textbook case where LPT is 4/3 off: 2m+1 jobs.
    seconds = [5, 5, 4, 4, 3, 3, 3]
    assert lpt_makespan(seconds, 3) == 11
    plan = plan_shards([ShardItem(str(i), float(s)) for i, s in enumerate(seconds)], 3)
    assert plan.makespan_seconds == pytest.approx(9.0)


def test_fewer_items_than_shards_plans_fewer_shards_with_a_note() -> None:
    plan = plan_shards([ShardItem("a", 1.0), ShardItem("b", 2.0)], 5)
    assert len(plan.shards) == 2
    assert "none is empty" in plan.notes[0]
    assert plan_shards([], 3).shards == ()
    with pytest.raises(ValueError):
        plan_shards([ShardItem("a", 1.0)], 0)


def test_unknown_tests_get_the_median_estimate() -> None:
    items, unknown = build_items({"a": 1.0, "b": 3.0, "c": 10.0}, ["a", "new", "c", "new"])
    assert unknown == 1
    assert [(i.key, i.seconds, i.known) for i in items] == [
        ("a", 1.0, True),
        ("new", 3.0, False),
        ("c", 10.0, True),
    ]
    items, unknown = build_items({}, ["x"])
    assert items[0].seconds == 1.0 and unknown == 1


@pytest.mark.parametrize(
    ("file", "classname", "name", "expected"),
    [
        (None, "tests.test_a.TestX", "test_y[1-2]", "tests/test_a.py::TestX::test_y[1-2]"),
        (None, "tests.test_a", "test_y", "tests/test_a.py::test_y"),
        (
            "tests/test_a.py",
            "tests.test_a.TestX.TestInner",
            "t",
            "tests/test_a.py::TestX::TestInner::t",
        ),
        ("tests/test_a.py", "tests.test_a", "t", "tests/test_a.py::t"),
        ("src/a.test.js", "", "t", None),
        (None, "TestOnlyClass", "t", None),
        (None, None, "t", None),
    ],
)
def test_pytest_node_id(
    file: str | None, classname: str | None, name: str, expected: str | None
) -> None:
    assert pytest_node_id(file, classname, name) == expected


def test_file_of_node_id() -> None:
    assert file_of_node_id("tests/test_a.py::TestX::t") == "tests/test_a.py"
