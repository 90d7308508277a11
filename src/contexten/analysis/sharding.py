"""Split a test suite into N shards balanced by recorded durations. Pure, no I/O.

Per-test estimate: the p90 (or median) of a bounded window of recent executions; tests
without history get the median of the known estimates. Assignment: longest processing
time first onto the least-loaded shard, then a local search that moves or swaps items out
of the longest shard while that shortens it. There is never an empty shard: with fewer
items than shards, the plan has fewer shards and says so.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from contexten.analysis.executions import TestStats, median

Statistic = Literal["p90", "median"]
DEFAULT_UNKNOWN_SECONDS = 1.0  # a new test when nothing at all is known


@dataclass(frozen=True, slots=True)
class ShardItem:
    key: str  # pytest node id, file path, or test name
    seconds: float
    known: bool = True  # False: estimated from the median of the known tests


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # 1-based, as CI matrices count
    items: tuple[ShardItem, ...]
    expected_seconds: float

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(item.key for item in self.items)


@dataclass(frozen=True, slots=True)
class ShardPlan:
    requested: int
    shards: tuple[Shard, ...]
    total_seconds: float
    lower_bound_seconds: float  # no plan can finish sooner than this
    unknown_items: int
    notes: tuple[str, ...] = ()

    @property
    def makespan_seconds(self) -> float:
        return max((s.expected_seconds for s in self.shards), default=0.0)

    @property
    def imbalance_percent(self) -> float:
        """Longest shard over the mean shard, in percent above it."""
        if not self.shards or self.total_seconds <= 0:
            return 0.0
        mean = self.total_seconds / len(self.shards)
        return (self.makespan_seconds / mean - 1.0) * 100.0


def estimate(stats: TestStats, statistic: Statistic = "p90") -> float | None:
    return stats.p90 if statistic == "p90" else stats.p50


def build_items(
    known: Mapping[str, float], keys: Sequence[str] | None = None
) -> tuple[list[ShardItem], int]:
    """Items for `keys` (default: every known key); unknown keys get the median estimate.

    Returns the items and how many were unknown.
    """
    fallback = median(known.values()) if known else DEFAULT_UNKNOWN_SECONDS
    wanted = list(dict.fromkeys(keys)) if keys is not None else sorted(known)
    items: list[ShardItem] = []
    unknown = 0
    for key in wanted:
        seconds = known.get(key)
        if seconds is None:
            unknown += 1
            items.append(ShardItem(key, fallback, known=False))
        else:
            items.append(ShardItem(key, max(seconds, 0.0)))
    return items, unknown


def plan_shards(items: Iterable[ShardItem], shards: int, *, unknown_items: int = 0) -> ShardPlan:
    """Balanced shards: LPT, then move/swap improvements on the longest shard."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    ordered = sorted(items, key=lambda i: (-i.seconds, i.key))
    notes: list[str] = []
    count = min(shards, len(ordered))
    if count < shards:
        notes.append(
            f"only {len(ordered)} items for {shards} shards: planned {count} shards so that"
            " none is empty"
        )
    if count == 0:
        return ShardPlan(shards, (), 0.0, 0.0, unknown_items, tuple(notes))
    bins: list[list[ShardItem]] = [[] for _ in range(count)]
    loads = [0.0] * count
    # Ties (zero-second items) go to the shard with fewest items: never an empty shard.
    heap = [(0.0, 0, i) for i in range(count)]
    for item in ordered:
        load, size, index = heapq.heappop(heap)
        bins[index].append(item)
        loads[index] = load + item.seconds
        heapq.heappush(heap, (loads[index], size + 1, index))
    _improve(bins, loads)
    total = sum(loads)
    lower = max(total / count, ordered[0].seconds)
    built = tuple(
        Shard(n + 1, tuple(sorted(b, key=lambda i: i.key)), loads[n]) for n, b in enumerate(bins)
    )
    if unknown_items:
        notes.append(f"{unknown_items} items without history were given the median estimate")
    return ShardPlan(shards, built, total, lower, unknown_items, tuple(notes))


def _improve(bins: list[list[ShardItem]], loads: list[float], max_rounds: int = 10_000) -> None:
    """Shorten the longest shard by moving one item out, or swapping a pair, while it helps."""
    eps = 1e-9
    for _ in range(max_rounds):
        top = max(range(len(bins)), key=lambda i: (loads[i], -i))
        improved = False
        for other in sorted(range(len(bins)), key=lambda i: loads[i]):
            if other == top:
                continue
            gap = loads[top] - loads[other]
            if gap <= eps:
                break
            move = _best_move(bins[top], gap)
            if move is not None:
                item = bins[top].pop(move)
                bins[other].append(item)
                loads[top] -= item.seconds
                loads[other] += item.seconds
                improved = True
                break
            swap = _best_swap(bins[top], bins[other], gap)
            if swap is not None:
                a, b = swap
                x, y = bins[top][a], bins[other][b]
                bins[top][a], bins[other][b] = y, x
                delta = x.seconds - y.seconds
                loads[top] -= delta
                loads[other] += delta
                improved = True
                break
        if not improved:
            return


def _best_move(source: list[ShardItem], gap: float) -> int | None:
    """Index of the item whose move shrinks the gap most: 0 < seconds < gap, near gap/2."""
    best: int | None = None
    best_score = 0.0
    for i, item in enumerate(source):
        if 1e-9 < item.seconds < gap - 1e-9:
            score = min(item.seconds, gap - item.seconds)
            if score > best_score:
                best, best_score = i, score
    return best


def _best_swap(
    source: list[ShardItem], target: list[ShardItem], gap: float
) -> tuple[int, int] | None:
    """A pair (x from source, y from target) with 0 < x - y < gap, x - y near gap/2."""
    if not target:
        return None
    order = sorted(range(len(target)), key=lambda j: target[j].seconds)
    values = [target[j].seconds for j in order]
    best: tuple[int, int] | None = None
    best_score = 0.0
    for i, x in enumerate(source):
        want = x.seconds - gap / 2  # ideal y
        pos = bisect_left(values, want)
        for k in (pos - 1, pos):
            if 0 <= k < len(values):
                d = x.seconds - values[k]
                if 1e-9 < d < gap - 1e-9:
                    score = min(d, gap - d)
                    if score > best_score:
                        best, best_score = (i, order[k]), score
    return best


# ----- pytest node ids --------------------------------------------------------------------


def pytest_node_id(file: str | None, classname: str | None, name: str) -> str | None:
    """`path/to/test_x.py::Class::test_name[params]` from JUnit fields, or None.

    pytest writes `classname="tests.test_x.TestClass"` and (with junit_family=xunit1)
    `file="tests/test_x.py"`. Without a file, the leading lower-case parts of the class
    name are the module path and the trailing capitalised parts are classes.
    """
    classes: list[str]
    if file and file.endswith(".py"):
        path = file
        module = file[:-3].replace("/", ".")
        if classname and classname.startswith(module + "."):
            classes = classname[len(module) + 1 :].split(".")
        elif classname and classname != module:
            classes = [p for p in classname.split(".") if p[:1].isupper()]
        else:
            classes = []
    else:
        if file or not classname:
            return None
        parts = classname.split(".")
        split = len(parts)
        while split > 0 and parts[split - 1][:1].isupper():
            split -= 1
        if split == 0:
            return None
        path = "/".join(parts[:split]) + ".py"
        classes = parts[split:]
    return "::".join([path, *classes, name])


def file_of_node_id(node_id: str) -> str:
    return node_id.split("::", 1)[0]
