"""``report``'s figures, computed from the task records alone (runner/report/data.py):
the timeline's bars and lanes, nodes in use over time, node time, durations.

Each task that started is a bar on its node from its (last attempt's) start to its end,
or to the report's time while it runs. Concurrent tasks on one node (a node has task
slots) get lanes of their node's row so no bar hides another. The node count is what
the task records tell: a node is in use by the job from its first task's start to its
last task's end, and the job's node-hours are those spans added up. The pool may hold
nodes longer (idle, or running other jobs), which only the pool's own history tells.
"""

from __future__ import annotations

import heapq
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from runner.report.data import FAILED, RUNNING, SUCCEEDED, TaskRecord


@dataclass(frozen=True, slots=True)
class Bar:
    """A task on the timeline: its node's row, and its lane of that row's ``lanes``."""

    task: TaskRecord
    start: datetime
    end: datetime  # the task's end, or the report's time while it runs
    row: int
    lane: int
    lanes: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class Timeline:
    nodes: list[str]  # one row each, in order
    bars: list[Bar]


def timeline(tasks: Iterable[TaskRecord], now: datetime) -> Timeline:
    """A bar per task that started on a node (succeeded, failed or running)."""
    by_node: dict[str, list[TaskRecord]] = defaultdict(list)
    for task in tasks:
        if task.start is not None and task.node_id and task.outcome in (SUCCEEDED, FAILED, RUNNING):
            by_node[task.node_id].append(task)
    nodes = sorted(by_node)
    bars: list[Bar] = []
    for row, node in enumerate(nodes):
        placed = _lanes(by_node[node], now)
        count = 1 + max(lane for *_, lane in placed)
        bars.extend(Bar(task, start, end, row, lane, count) for task, start, end, lane in placed)
    return Timeline(nodes, bars)


def _lanes(
    tasks: list[TaskRecord], now: datetime
) -> list[tuple[TaskRecord, datetime, datetime, int]]:
    """Interval partitioning: each task takes the lowest lane free at its start."""
    started = [(task.start, task) for task in tasks if task.start is not None]
    started.sort(key=lambda item: (item[0], item[1].task_id))
    busy: list[tuple[datetime, int]] = []  # (end, lane) of the tasks still running
    free: list[int] = []
    placed = []
    for start, task in started:
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        lane = heapq.heappop(free) if free else len(busy) + len(free)
        end = max(task.end or now, start)
        heapq.heappush(busy, (end, lane))
        placed.append((task, start, end, lane))
    return placed


def busy_intervals(bars: Iterable[Bar]) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per node, the merged spans when it ran at least one of the job's tasks."""
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for bar in bars:
        spans[bar.task.node_id or ""].append((bar.start, bar.end))
    merged: dict[str, list[tuple[datetime, datetime]]] = {}
    for node, intervals in spans.items():
        intervals.sort()
        out = [intervals[0]]
        for start, end in intervals[1:]:
            last_start, last_end = out[-1]
            if start <= last_end:
                out[-1] = (last_start, max(last_end, end))
            else:
                out.append((start, end))
        merged[node] = out
    return merged


def in_use(bars: Iterable[Bar]) -> dict[str, tuple[datetime, datetime]]:
    """Per node, the span from its first task's start to its last task's end."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for bar in bars:
        node = bar.task.node_id or ""
        first, last = spans.get(node, (bar.start, bar.end))
        spans[node] = (min(first, bar.start), max(last, bar.end))
    return spans


def nodes_over_time(bars: Iterable[Bar]) -> list[tuple[datetime, int]]:
    """(time, nodes in use by the job from then on), a step per change: a node is in use
    from its first task's start to its last task's end (``in_use``), so the area under
    the steps is ``node_time().span_hours``."""
    events: list[tuple[datetime, int]] = []
    for start, end in in_use(bars).values():
        events += [(start, 1), (end, -1)]
    events.sort()
    steps: list[tuple[datetime, int]] = []
    count = 0
    for index, (when, change) in enumerate(events):
        count += change
        if index + 1 < len(events) and events[index + 1][0] == when:
            continue  # one step per moment, after all its changes
        if steps and steps[-1][1] == count:
            continue
        steps.append((when, count))
    return steps


@dataclass(frozen=True, slots=True)
class NodeTime:
    """Node-hours this job's tasks account for."""

    span_hours: float  # each node from its first task's start to its last task's end
    busy_hours: float  # only while it ran at least one task
    nodes: int


def node_time(bars: Sequence[Bar]) -> NodeTime:
    spans = in_use(bars)
    span = sum((end - start).total_seconds() for start, end in spans.values())
    busy = sum(
        (end - start).total_seconds()
        for intervals in busy_intervals(bars).values()
        for start, end in intervals
    )
    return NodeTime(span / 3600, busy / 3600, len(spans))


def slowest(bars: Iterable[Bar], count: int = 10) -> list[Bar]:
    return sorted(bars, key=lambda bar: (-bar.seconds, bar.task.task_id))[:count]


@dataclass(frozen=True, slots=True)
class Durations:
    count: int
    total: float
    median: float | None
    p95: float | None
    longest: float | None


def durations(seconds: Sequence[float]) -> Durations:
    if not seconds:
        return Durations(0, 0.0, None, None, None)
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return Durations(len(ordered), sum(ordered), statistics.median(ordered), p95, ordered[-1])
