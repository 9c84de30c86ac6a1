"""A job's results read back per input, from the files ``fetch`` put in its results folder
and the service's task records: what each input's task made of it, and why one failed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.storage.blob import ContainerClient

from runner import packing
from runner.clients import state_name
from runner.fetch import fetch_all, local_name, logs_prefix, place
from runner.inputs import node_name
from runner.packing import Group
from runner.program import Program

STDERR_TAIL_LINES = 10


@dataclass(slots=True)
class TaskResult:
    input: str
    task_id: str
    state: str
    exit_code: int | None
    seconds: float | None
    output: dict[str, Any] = field(default_factory=dict)  # what its program read
    failure: str | None = None
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.state == "completed" and self.failure is None and self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "task_id": self.task_id,
            "state": self.state,
            "exit_code": self.exit_code,
            "seconds": self.seconds,
            **self.output,
            **(
                {"failure": self.failure, "stderr_tail": self.stderr_tail}
                if not self.succeeded
                else {}
            ),
        }


@dataclass(frozen=True, slots=True)
class Expected:
    """An input the job should have a result for: its task's id, its name on the node, a
    label to show, and for an input packed with others its key in that task."""

    task_id: str
    name: str
    label: str
    relative: str  # the input's path below the inputs' root: where its results go
    key: str | None = None

    @property
    def input_id(self) -> str:
        """The input's own task id: its task's, or its key in a packed task."""
        return self.key or self.task_id


def expected_from_inputs(groups: Iterable[Group]) -> list[Expected]:
    return [
        Expected(
            group.task_id,
            item.name,
            item.path,
            item.relative,
            item.task_id if group.packed else None,
        )
        for group in groups
        for item in group.members
    ]


def expected_from_manifests(manifests: Iterable[Mapping[str, Any]]) -> list[Expected]:
    """The inputs of packed tasks, from the manifests written when they were added."""
    return [
        Expected(
            doc["task"],
            node_name(item["relative"]),
            item["label"],
            item["relative"],
            item["key"],
        )
        for doc in manifests
        for item in doc["inputs"]
    ]


def places_of(expected: Sequence[Expected]) -> dict[str, str]:
    return {item.input_id: item.relative for item in expected}


def collect(
    batch: BatchClient,
    container: ContainerClient,
    job_id: str,
    expected: Sequence[Expected],
    results: Path,
    program: Program,
) -> list[TaskResult]:
    """Each input's outcome, from one task listing, the packed tasks' status files and
    the downloaded results; the stderr of the tasks that failed is fetched too (into
    ``DIR/logs/<task>/``), for its tail."""
    tasks = {
        task.id: task for task in batch.list_tasks(job_id, select=["id", "state", "executionInfo"])
    }
    packed = sorted({item.task_id for item in expected if item.key is not None})
    statuses = packing.read_statuses(container, job_id, packed) if packed else {}
    collected = []
    for item in expected:
        task = tasks.get(item.task_id)
        info = task.execution_info if task else None
        directory = results / place(item.input_id, {item.input_id: item.relative})
        result = TaskResult(
            input=item.label,
            task_id=item.task_id,
            state=state_name(task.state) if task else "missing",
            exit_code=info.exit_code if info else None,
            seconds=(info.end_time - info.start_time).total_seconds()
            if info and info.start_time and info.end_time
            else None,
        )
        if info and info.failure_info:
            result.failure = f"{info.failure_info.code}: {info.failure_info.message}"
        if item.key is not None:
            _own_outcome(result, statuses.get(item.task_id, {}).get(item.key))
        result.output = program.read(directory, item.name)
        if not result.succeeded:
            result.failure = result.failure or f"exit code {result.exit_code}"
        collected.append(result)
    unpacked_failed = [
        result
        for result, item in zip(collected, expected, strict=True)
        if not result.succeeded and item.key is None
    ]
    _read_stderr_tails(container, job_id, unpacked_failed, results)
    return collected


def _own_outcome(result: TaskResult, status: dict[str, Any] | None) -> None:
    """An input packed with others: its own exit status, time and stderr, from the
    task's status file. The task failing as a whole (it never ran, it timed out) is kept
    as its failure when the input has no outcome of its own."""
    if status is None:
        if result.state == "completed" and result.failure is None:
            result.exit_code = None
            result.failure = "the task ended without running this input"
        return
    result.exit_code = int(status.get("exit_code", 1))
    result.seconds = status.get("seconds")
    result.stderr_tail = list(status.get("stderr_tail", []))
    result.failure = None  # its own exit status tells; a neighbour failing fails the task


def _read_stderr_tails(
    container: ContainerClient, job_id: str, failed: Sequence[TaskResult], results: Path
) -> None:
    wanted = {f"{logs_prefix(job_id)}/{result.task_id}/stderr.txt": result for result in failed}
    found = [(name, results / local_name(name, job_id, {})) for name in wanted]
    # A request per failed task, not a listing of every task's logs; a task that never
    # ran has no stderr blob.
    for name, path in fetch_all(container, found, missing_ok=True):
        lines = path.read_text(errors="replace").splitlines()
        wanted[name].stderr_tail = lines[-STDERR_TAIL_LINES:]
