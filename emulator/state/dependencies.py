"""Task dependencies: which active tasks wait for their parents, and when they may go.

A task with dependsOn stays active but is held from the scheduler (``Tables.held``)
until every parent it names has satisfied it. A parent satisfies when it completes
with a dependencyAction of satisfy (``exits``: success by default); its id satisfies
taskIds (case-insensitively, as ids compare), and an integer id also satisfies its
number in taskIdRanges, leading zeros aside ("4", "04" and "004" are all 4, the first
to satisfy counts). A parent that blocks, or does not exist (yet), keeps its dependents
waiting: a task named later satisfies them when it completes. Satisfaction is kept per
job and never undone: not by reactivating the parent, nor by deleting it.

Nothing here scans a job: each waiting task counts the parents it still waits for, and
each job indexes the waiting tasks by the parent id (and number) they wait for, so a
completion touches only its own dependents. A range wider than ``EXPAND_LIMIT`` ids is
kept whole and checked against each numbered completion instead of indexed per number.
The satisfied ids are rows in the store; the rest is rebuilt from the tasks on load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.records import Satisfied, Task
from emulator.state.tables import Tables

KIND = "satisfied"
EXPAND_LIMIT = 10_000


@dataclass(eq=False)
class _Waiter:
    """A held task and the number of parent ids (and numbers) it still waits for."""

    task_id: str
    pending: int = 0
    wide: bool = False  # whether it is in its job's ``wide`` list


@dataclass
class _Job:
    names: set[str] = field(default_factory=set)  # satisfied ids, lower-cased
    numbers: set[int] = field(default_factory=set)  # satisfied integer ids
    waiting: dict[str, _Waiter] = field(default_factory=dict)
    by_name: dict[str, list[_Waiter]] = field(default_factory=dict)
    by_number: dict[int, list[_Waiter]] = field(default_factory=dict)
    wide: list[tuple[int, int, _Waiter]] = field(default_factory=list)


class Dependencies:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self._jobs: dict[str, _Job] = {}
        for row in tables.store.load(KIND, Satisfied):
            job = self._job(row.job_id)
            job.names.add(row.task_id.lower())
            number = _number(row.task_id)
            if number is not None:
                job.numbers.add(number)
        for tasks in tables.tasks.values():
            for task in tasks.values():
                if task.state == "active":
                    self.wait(task)

    def _job(self, job_id: str) -> _Job:
        return self._jobs.setdefault(job_id, _Job())

    def wait(self, task: Task) -> None:
        """Hold a task that is new or active again until its parents satisfy it."""
        depends = task.spec.get("dependsOn")
        if not depends:
            return
        self.removed(task)
        job = self._job(task.job_id)
        waiter = _Waiter(task.id)
        for name in {task_id.lower() for task_id in depends.get("taskIds") or []}:
            if name not in job.names:
                job.by_name.setdefault(name, []).append(waiter)
                waiter.pending += 1
        for start, end in _merged(depends.get("taskIdRanges") or []):
            if end - start < EXPAND_LIMIT:
                for number in range(start, end + 1):
                    if number not in job.numbers:
                        job.by_number.setdefault(number, []).append(waiter)
                        waiter.pending += 1
                continue
            done = sum(1 for number in job.numbers if start <= number <= end)
            if done <= end - start:
                waiter.pending += end - start + 1 - done
                job.wide.append((start, end, waiter))
                waiter.wide = True
        if waiter.pending:
            job.waiting[task.id] = waiter
            self.tables.hold(task)

    def completed(self, task: Task, dependency_action: str) -> None:
        """A task completed: it waits no more, and satisfies its dependents if its
        exit conditions say so."""
        self.removed(task)
        if dependency_action == "satisfy":
            self._satisfy(task)

    def removed(self, task: Task) -> None:
        """A task left the active state or the job: forget that it waits."""
        job = self._jobs.get(task.job_id)
        waiter = job.waiting.pop(task.id, None) if job else None
        if job and waiter and waiter.wide:
            job.wide = [entry for entry in job.wide if entry[2] is not waiter]

    def forget_job(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
        self.tables.store.delete_prefix(KIND, f"{job_id}/")

    def _satisfy(self, task: Task) -> None:
        job = self._job(task.job_id)
        name, number = task.id.lower(), _number(task.id)
        ready: list[_Waiter] = []
        fresh = name not in job.names
        if fresh:
            job.names.add(name)
            ready += job.by_name.pop(name, [])
        if number is not None and number not in job.numbers:
            fresh = True
            job.numbers.add(number)
            ready += job.by_number.pop(number, [])
            ready += [waiter for start, end, waiter in job.wide if start <= number <= end]
        if fresh:
            self.tables.store.put(KIND, f"{task.job_id}/{task.id}", Satisfied(task.job_id, task.id))
        for waiter in ready:
            if job.waiting.get(waiter.task_id) is not waiter:
                continue  # deleted, completed or waiting anew since it was indexed
            waiter.pending -= 1
            if waiter.pending == 0:
                self._release(task.job_id, job, waiter)

    def _release(self, job_id: str, job: _Job, waiter: _Waiter) -> None:
        del job.waiting[waiter.task_id]
        if waiter.wide:
            job.wide = [entry for entry in job.wide if entry[2] is not waiter]
        self.tables.release(job_id, waiter.task_id)


def _number(task_id: str) -> int | None:
    """The number a task id stands for in taskIdRanges, if it is all digits."""
    return int(task_id) if task_id.isascii() and task_id.isdigit() else None


def _merged(ranges: list[dict[str, int]]) -> list[tuple[int, int]]:
    """taskIdRanges as disjoint (start, end) pairs, so no number is counted twice."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((r["start"], r["end"]) for r in ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
