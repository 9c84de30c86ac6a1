"""Fetching a job's results (only this job's blobs) and reading them back per input."""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from runner import packing
from runner.clients import state_name
from runner.inputs import node_name, windows
from runner.packing import Group
from runner.program import Program

PARALLEL_DOWNLOADS = 16
STDERR_TAIL_LINES = 10
TAKEN_NAMES = frozenset({"logs", "report.html", "merged_OUTPUT.txt", "merged_OUTPUT.json"})
"""What the runner itself writes at the top of a results folder (the failed tasks' logs,
the job's report, --merge's result): an input by one of these names gets its results in
a folder named after its task id instead, so neither overwrites the other."""


def destination(job_id: str, out: Path | None = None) -> Path:
    """Where a job's results are downloaded to: ``out``, or ``results/<job-id>/``."""
    return out or Path("results") / job_id


def results_prefix(job_id: str) -> str:
    """Where in the output container a job's results go: ``<job>/results/<task>/...``."""
    return f"{job_id}/results"


def logs_prefix(job_id: str) -> str:
    """Where a job's task logs go: ``<job>/logs/<task>/stdout.txt`` (and stderr.txt).

    Apart from the results, so fetching results never fetches logs, and a result file
    may have any name.
    """
    return f"{job_id}/logs"


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def download(
    container: ContainerClient,
    job_id: str,
    destination: Path,
    logs: bool = False,
    places: Mapping[str, str] | None = None,
    warn: Callable[[str], None] = _warn,
) -> int:
    """Download this job's results from the output container, each input's into
    ``DIR/<its path>/`` (``places``: task id to the input's relative path; a task it does
    not name gets ``DIR/<task id>/``), and if asked the task logs into ``DIR/logs/<task>/``;
    returns the number of files fetched. A blob whose name would place it outside
    ``destination`` (``..`` in it: a task may name its outputs as it likes) is skipped,
    with a warning through ``warn``; the others are fetched."""
    prefixes = [results_prefix(job_id)] + ([logs_prefix(job_id)] if logs else [])
    remove_partial(destination)

    def found() -> Iterator[tuple[str, Path]]:
        for prefix in prefixes:
            for blob in container.list_blobs(name_starts_with=f"{prefix}/"):
                local = _local_name(blob.name, job_id, places or {})
                if escapes(local):
                    warn(
                        f"warning: skipped the blob {blob.name!r}: "
                        f"it would be written outside {destination}"
                    )
                    continue
                yield blob.name, destination / local

    return sum(1 for _ in fetch_all(container, found()))


_PARTIAL = re.compile(r"\..+\.(\d+)-[0-9a-f]{8}\.part")
"""A download in progress: ``.<name>.<pid of its runner>-<random>.part``."""


def remove_partial(destination: Path) -> int:
    """Remove the partial downloads a runner killed mid-download left (kill -9 leaves
    them; anything milder removes its own). Another runner's download in progress is
    kept: its process is alive. Returns how many were removed."""
    removed = 0
    for folder, _, names in os.walk(destination):
        for name in names:
            match = _PARTIAL.fullmatch(name)
            if match and not _alive(int(match.group(1))):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def escapes(relative: str) -> bool:
    """Whether a relative path may leave the folder it is joined to."""
    return relative.startswith("/") or ".." in relative.split("/")


def fetch_all(
    container: ContainerClient, found: Iterable[tuple[str, Path]], missing_ok: bool = False
) -> Iterator[tuple[str, Path]]:
    """Download blobs in parallel, each to a temporary name renamed when complete, so no
    half-written file is left; yields those fetched (all, unless ``missing_ok`` skips
    blobs that do not exist). The blobs are read from ``found`` a window at a time, as
    they are listed: a job's 200,000 result files are never all in memory."""

    def fetch(item: tuple[str, Path]) -> bool:
        name, target = item
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per download, so two runners fetching the same job into the
        # same folder never write one file; the last rename wins with identical content.
        temporary = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
        try:
            with open(temporary, "wb") as file:
                container.download_blob(name).readinto(file)
        except ResourceNotFoundError:
            temporary.unlink(missing_ok=True)
            if missing_ok:
                return False
            raise
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        temporary.replace(target)
        return True

    with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
        for window in windows(found):
            fetched = list(pool.map(fetch, window))
            yield from (item for item, ok in zip(window, fetched, strict=True) if ok)


def _local_name(name: str, job_id: str, places: Mapping[str, str]) -> str:
    """``<job>/results/<task>/f`` -> ``<input's path>/f`` (``<job>/results/<task>/<key>/f``
    the same for an input packed with others); ``<job>/logs/<task>/f`` ->
    ``logs/<task>/f``. ``places`` maps inputs' own task ids (a packed input's key is its
    own task id) to their paths."""
    relative = name[len(job_id) + 1 :]
    if not relative.startswith("results/"):
        return relative
    task, _, rest = relative.removeprefix("results/").partition("/")
    key, _, below_key = rest.partition("/")
    if task not in places and key in places:
        return f"{place(key, places)}/{below_key}"
    return f"{place(task, places)}/{rest}"


def place(input_id: str, places: Mapping[str, str]) -> str:
    """Where below the results folder an input's results go: its relative path (so the
    results mirror the inputs' tree), or its own task id if that path is unknown, could
    leave the folder or starts with a name in TAKEN_NAMES."""
    relative = places.get(input_id, "")
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts) or parts[0] in TAKEN_NAMES:
        return input_id
    return relative


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
    found = [(name, results / _local_name(name, job_id, {})) for name in wanted]
    # A request per failed task, not a listing of every task's logs; a task that never
    # ran has no stderr blob.
    for name, path in fetch_all(container, found, missing_ok=True):
        lines = path.read_text(errors="replace").splitlines()
        wanted[name].stderr_tail = lines[-STDERR_TAIL_LINES:]
