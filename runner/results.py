"""Fetching a job's results (only this job's blobs) and reading them back per input."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.storage.blob import ContainerClient

from runner.inputs import Input

PARALLEL_DOWNLOADS = 16
STDERR_TAIL_LINES = 10


def download(container: ContainerClient, job_id: str, destination: Path) -> int:
    """Download ``<job-id>/...`` from the output container; returns the files fetched."""
    names = [blob.name for blob in container.list_blobs(name_starts_with=f"{job_id}/")]

    def fetch(name: str) -> None:
        target = destination / name[len(job_id) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.part")
        with open(temporary, "wb") as file:
            container.download_blob(name).readinto(file)
        temporary.replace(target)

    with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
        list(pool.map(fetch, names))
    return len(names)


@dataclass
class TaskResult:
    input: str
    task_id: str
    state: str
    exit_code: int | None
    seconds: float | None
    top: list[tuple[str, int]] = field(default_factory=list)
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
            "top": [[word, count] for word, count in self.top],
            **(
                {"failure": self.failure, "stderr_tail": self.stderr_tail}
                if not self.succeeded
                else {}
            ),
        }


@dataclass(frozen=True)
class Expected:
    """A task the job should have: its id, its input's name on the node, a label to show."""

    task_id: str
    name: str
    label: str


def expected_from_inputs(inputs: Sequence[Input]) -> list[Expected]:
    return [Expected(item.task_id, item.name, str(item.path)) for item in inputs]


def expected_from_job(batch: BatchClient, job_id: str) -> list[Expected]:
    """For a job submitted earlier: its tasks, named by their display names (input names)."""
    return [
        Expected(task.id, task.display_name or task.id, task.display_name or task.id)
        for task in batch.list_tasks(job_id, select=["id", "displayName"])
    ]


def collect(
    batch: BatchClient, job_id: str, expected: Sequence[Expected], results: Path
) -> list[TaskResult]:
    """Each input's outcome, from one task listing and the downloaded files."""
    tasks = {
        task.id: task for task in batch.list_tasks(job_id, select=["id", "state", "executionInfo"])
    }
    collected = []
    for item in expected:
        task = tasks.get(item.task_id)
        info = task.execution_info if task else None
        directory = results / item.task_id
        result = TaskResult(
            input=item.label,
            task_id=item.task_id,
            state=str(getattr(task.state, "value", task.state)) if task else "missing",
            exit_code=info.exit_code if info else None,
            seconds=(info.end_time - info.start_time).total_seconds()
            if info and info.start_time and info.end_time
            else None,
        )
        if info and info.failure_info:
            result.failure = f"{info.failure_info.code}: {info.failure_info.message}"
        document = directory / f"{Path(item.name).stem}_OUTPUT.json"
        if document.is_file():
            result.top = [(word, count) for word, count in json.loads(document.read_text())["top"]]
        if not result.succeeded:
            result.failure = result.failure or f"exit code {result.exit_code}"
            stderr = directory / "stderr.txt"
            if stderr.is_file():
                result.stderr_tail = stderr.read_text(errors="replace").splitlines()[
                    -STDERR_TAIL_LINES:
                ]
        collected.append(result)
    return collected
