"""``report``'s data: a job's records as the Batch service and storage hold them, shaped
into plain dataclasses (see runner/report.py for the page made of them).

Nothing comes from the runner's memory, so a job submitted from another machine gets
the same report: the job, its pool and the pool's nodes, every task with its execution
and node info (one listing, ``$select``-ed to what the report shows), the bytes of the
job's staged input blobs and of its result blobs (storage listings), and for the failed
tasks the tail of their stderr: the copy uploaded to the output container when a task
fails (``<job>/logs/<task>/stderr.txt``), else the one still on the task's node.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.batch import models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from runner import packing
from runner.clients import Clients, state_name
from runner.fetch import logs_prefix, results_prefix
from runner.fingerprint import Fingerprint
from runner.results import STDERR_TAIL_LINES

TASK_FIELDS = ["id", "displayName", "state", "creationTime", "executionInfo", "nodeInfo"]
"""What a task listing asks for: the report reads nothing else of a task."""
FAILED_DETAILS = 50
"""Failed tasks whose stderr (and, packed, whose inputs' own outcomes) the report fetches:
a request or two each, so a job where everything failed is not a request per task."""
STDERR_LINE_LIMIT = 400
PARALLEL = 16

SUCCEEDED, FAILED, RUNNING, WAITING = "succeeded", "failed", "running", "waiting"
OUTCOMES = (SUCCEEDED, FAILED, RUNNING, WAITING)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task as the service records it; ``start``/``end`` are its last attempt's."""

    task_id: str
    display_name: str
    state: str  # the service's: active, preparing, running, completed
    outcome: str  # one of OUTCOMES
    node_id: str | None
    created: datetime | None
    start: datetime | None
    end: datetime | None
    exit_code: int | None
    retries: int
    requeues: int
    failure: str | None = None  # failureInfo: "code: message"

    @property
    def seconds(self) -> float | None:
        """How long its last attempt ran; None unless it started and ended."""
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class JobInfo:
    job_id: str
    state: str
    pool_id: str | None
    created: datetime | None
    started: datetime | None
    ended: datetime | None
    vm_size: str | None  # the pool's, None when the pool is gone
    slots_per_node: int | None


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node the job's pool has now (nodes a job used may have left it since)."""

    node_id: str
    state: str
    vm_size: str | None
    allocated: datetime | None
    dedicated: bool | None


@dataclass(frozen=True, slots=True)
class BlobTotal:
    """Blobs under a prefix of a container, from a listing: how many, how many bytes."""

    container: str
    prefix: str
    count: int
    size: int


@dataclass(frozen=True, slots=True)
class StderrTail:
    """The last lines of a task's stderr and where they were read; no source: none found."""

    lines: tuple[str, ...] = ()
    source: str | None = None


@dataclass(frozen=True, slots=True)
class InputFailure:
    """An input of a packed task that failed on its own (from the task's status.json)."""

    label: str
    exit_code: int | None
    stderr_tail: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FailedTask:
    task: TaskRecord
    stderr: StderrTail
    inputs: tuple[InputFailure, ...] = ()  # a packed task's failed inputs
    packed_inputs: int = 0  # how many inputs a packed task carries (0: not packed)


@dataclass(frozen=True)
class ReportData:
    job: JobInfo
    tasks: list[TaskRecord]
    nodes: list[NodeRecord]
    inputs: BlobTotal
    results: BlobTotal
    failed: list[FailedTask]  # at most FAILED_DETAILS, the first to fail first
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))
    submitted: tuple[int, int] | None = None  # (inputs, bytes) as the runner recorded them


# --- shaping the SDK's records ----------------------------------------------------------


def outcome_of(state: str, info: Mapping[str, Any] | None) -> str:
    """A task's outcome from its state and its ``executionInfo``."""
    if state == "completed":
        result = state_name(info.get("result")) if info and info.get("result") else None
        if result is not None:
            return SUCCEEDED if result == "success" else FAILED
        # A record without a result (an older API version): the exit code tells.
        ok = info is not None and info.get("exitCode") == 0 and not info.get("failureInfo")
        return SUCCEEDED if ok else FAILED
    if state in ("running", "preparing"):
        return RUNNING
    return WAITING


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time as the service writes it (``2026-12-03T12:00:01.2608598Z``)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def task_record(task: Mapping[str, Any]) -> TaskRecord:
    """A task's record, read through the REST document's own keys: the SDK's models are
    mappings of them, and reading them so is 50 times faster than through the models'
    attributes, which convert each value on every access (a second for 10,000 tasks)."""
    info = task.get("executionInfo") or {}
    node = task.get("nodeInfo") or {}
    state = state_name(task.get("state") or "active")
    failure = info.get("failureInfo")
    exit_code = info.get("exitCode")
    return TaskRecord(
        task_id=str(task.get("id") or ""),
        display_name=str(task.get("displayName") or task.get("id") or ""),
        state=state,
        outcome=outcome_of(state, info),
        node_id=node.get("nodeId"),
        created=_time(task.get("creationTime")),
        start=_time(info.get("startTime")),
        end=_time(info.get("endTime")),
        exit_code=int(exit_code) if exit_code is not None else None,
        retries=int(info.get("retryCount") or 0),
        requeues=int(info.get("requeueCount") or 0),
        failure=f"{failure.get('code')}: {failure.get('message')}" if failure else None,
    )


def job_info(job: models.BatchJob, pool: models.BatchPool | None) -> JobInfo:
    executed = job.execution_info
    pool_id = (job.pool_info.pool_id if job.pool_info else None) or (
        executed.pool_id if executed else None
    )
    return JobInfo(
        job_id=job.id or "",
        state=state_name(job.state) if job.state else "unknown",
        pool_id=pool_id,
        created=job.creation_time,
        started=executed.start_time if executed else None,
        ended=executed.end_time if executed else None,
        vm_size=pool.vm_size if pool is not None else None,
        slots_per_node=pool.task_slots_per_node if pool is not None else None,
    )


def node_record(node: models.BatchNode) -> NodeRecord:
    return NodeRecord(
        node_id=node.id or "",
        state=state_name(node.state) if node.state else "unknown",
        vm_size=node.vm_size,
        allocated=node.allocation_time,
        dedicated=node.is_dedicated,
    )


def tail(data: bytes, count: int = STDERR_TAIL_LINES) -> tuple[str, ...]:
    """The last ``count`` lines of a log, each cut at STDERR_LINE_LIMIT characters."""
    lines = data.decode("utf-8", errors="replace").splitlines()[-count:]
    return tuple(
        line if len(line) <= STDERR_LINE_LIMIT else line[:STDERR_LINE_LIMIT] + " [...]"
        for line in lines
    )


def first_failed(tasks: Iterable[TaskRecord], count: int = FAILED_DETAILS) -> list[TaskRecord]:
    """The failed tasks in the order they ended (then by id), the first ``count``."""
    failed = [task for task in tasks if task.outcome == FAILED]
    far = datetime.max.replace(tzinfo=UTC)
    failed.sort(key=lambda task: (task.end or far, task.task_id))
    return failed[:count]


# --- reading them from the service and storage ------------------------------------------


def fetch(clients: Clients, job_id: str, now: datetime | None = None) -> ReportData:
    """Everything the report shows, read concurrently: the task listing, the pool and its
    nodes, and the two blob listings take one round of requests between them (then a
    request or two per failed task shown, for its stderr). Raises ResourceNotFoundError
    when there is no such job."""
    batch = clients.batch
    job = batch.get_job(job_id)
    pool_id = job_info(job, None).pool_id
    containers = clients.outputs.containers
    with ThreadPoolExecutor(4) as pool:
        tasks_f = pool.submit(
            lambda: [task_record(t) for t in batch.list_tasks(job_id, select=TASK_FIELDS)]
        )
        inputs_f = pool.submit(_blob_total, clients, containers.input, f"{job_id}/")
        results_f = pool.submit(
            _blob_total, clients, containers.output, f"{results_prefix(job_id)}/"
        )
        found_pool = _pool(clients, pool_id)
        nodes = _nodes(clients, pool_id) if found_pool is not None else []
        tasks = tasks_f.result()
        inputs, results = inputs_f.result(), results_f.result()
    failed = failed_details(clients, job_id, first_failed(tasks))
    tasks.sort(key=lambda task: task.task_id)
    recorded = Fingerprint.read(job.metadata)
    submitted = None
    if recorded is not None and recorded.input_bytes is not None:
        submitted = (int(recorded.inputs.split(":")[0]), recorded.input_bytes)
    return ReportData(
        job=job_info(job, found_pool),
        tasks=tasks,
        nodes=nodes,
        inputs=inputs,
        results=results,
        failed=failed,
        generated=now or datetime.now(UTC),
        submitted=submitted,
    )


def _pool(clients: Clients, pool_id: str | None) -> models.BatchPool | None:
    if not pool_id:
        return None
    try:
        return clients.batch.get_pool(pool_id, select=["id", "vmSize", "taskSlotsPerNode"])
    except ResourceNotFoundError:
        return None


def _nodes(clients: Clients, pool_id: str | None) -> list[NodeRecord]:
    if not pool_id:
        return []
    fields = ["id", "state", "vmSize", "allocationTime", "isDedicated"]
    try:
        return [node_record(node) for node in clients.batch.list_nodes(pool_id, select=fields)]
    except ResourceNotFoundError:
        return []


_CONTENT_LENGTH = re.compile(r"<Content-Length>(\d+)</Content-Length>")


def _blob_total(clients: Clients, container: str, prefix: str) -> BlobTotal:
    """How many blobs a listing of ``prefix`` finds, and their bytes.

    The storage SDK turns each listed blob into a BlobProperties of some twenty fields,
    half a millisecond each in Python: 10,000 blobs took 7 s. So the listing is the
    names-only one (which skips that), and the sizes are read from each page's answer as
    it arrives (``raw_response_hook``): the ``Content-Length`` of every ``Blob`` in the
    List Blobs XML. A page asked again (a retry) replaces its first answer."""
    pages: dict[str, int] = {}

    def sizes(response: Any) -> None:
        answer = response.http_response
        if answer.status_code != 200:
            return
        marker = parse_qs(urlsplit(answer.request.url).query).get("marker", [""])[0]
        pages[marker] = sum(int(size) for size in _CONTENT_LENGTH.findall(answer.text()))

    count = 0
    try:
        listing = clients.container(container).list_blob_names(
            name_starts_with=prefix, raw_response_hook=sizes
        )
        count = sum(1 for _ in listing)
    except ResourceNotFoundError:  # no such container: nothing stored
        pages.clear()
    return BlobTotal(container, prefix, count, sum(pages.values()))


def failed_details(clients: Clients, job_id: str, failed: Sequence[TaskRecord]) -> list[FailedTask]:
    """Each failed task with its stderr tail and, for a task packed with several inputs,
    which of them failed: requests made in parallel, a few per task."""
    if not failed:
        return []
    output = clients.container(clients.outputs.containers.output)
    ids = [task.task_id for task in failed]
    manifests = packing.read_json_blobs(
        output, [f"{packing.groups_prefix(job_id)}/{i}.json" for i in ids]
    )
    statuses = packing.read_statuses(output, job_id, ids)

    def detail(task: TaskRecord) -> FailedTask:
        manifest = manifests.get(f"{packing.groups_prefix(job_id)}/{task.task_id}.json")
        inputs = _failed_inputs(manifest, statuses.get(task.task_id))
        count = len(manifest.get("inputs", [])) if isinstance(manifest, dict) else 0
        return FailedTask(task, stderr_tail(clients, job_id, task), inputs, count)

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(detail, failed))


def _failed_inputs(manifest: Any, status: Any) -> tuple[InputFailure, ...]:
    """A packed task's inputs that failed, by their labels, from its status.json."""
    if not isinstance(manifest, dict) or not isinstance(status, dict):
        return ()
    labels = {item.get("key"): item.get("label", item.get("key")) for item in manifest["inputs"]}
    failed = []
    for key, entry in status.items():
        code = entry.get("exit_code") if isinstance(entry, dict) else None
        if code == 0:
            continue
        lines = entry.get("stderr_tail", []) if isinstance(entry, dict) else []
        failed.append(
            InputFailure(
                str(labels.get(key, key)),
                code if isinstance(code, int) else None,
                tuple(str(line)[:STDERR_LINE_LIMIT] for line in lines[-STDERR_TAIL_LINES:]),
            )
        )
    return tuple(failed)


def stderr_tail(clients: Clients, job_id: str, task: TaskRecord) -> StderrTail:
    """A failed task's stderr tail: the copy uploaded when it failed, else the file on its
    node (while the task has one), else none."""
    output = clients.container(clients.outputs.containers.output)
    blob = f"{logs_prefix(job_id)}/{task.task_id}/stderr.txt"
    try:
        return StderrTail(tail(output.download_blob(blob).readall()), "uploaded logs")
    except ResourceNotFoundError:
        pass
    if task.node_id:
        try:
            data = b"".join(clients.batch.download_task_file(job_id, task.task_id, "stderr.txt"))
        except HttpResponseError:  # the node or the file is gone
            return StderrTail()
        return StderrTail(tail(data), f"stderr.txt on node {task.node_id}")
    return StderrTail()
