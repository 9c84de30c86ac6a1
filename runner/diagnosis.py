"""Why a job's tasks are not running: its pool, looked at as a user would in the portal.

The common reasons a Batch job makes no progress are not task failures: the pool has no
node yet (or cannot get one: a quota), the start task failed on every node, the nodes are
unusable, the autoscale formula fails, the pool is gone, or the job's preparation task
failed on every node that could run it (Batch then keeps its tasks off them for good).
``diagnose`` reads the pool, its nodes and the job's preparation status (a few requests,
made only when a job has stalled or its tasks went back to active) and names the first
cause it finds in one line, saying whether it can resolve itself, or ends the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from azure.batch import BatchClient, models
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from runner.clients import state_name
from runner.preparation import PREPARATION_ID

LOOK_EVERY = 30.0
"""Seconds without progress between two looks at the pool: a job that progresses costs
no request more than its polls."""
STALL_TIMEOUT = 600.0
STDERR_TAIL_LINES = 3
START_TASK_STDERR = "startup/stderr.txt"  # a Linux node's start task output


@dataclass(frozen=True)
class Cause:
    line: str
    lasting: bool  # it cannot resolve itself: waiting longer will not help
    ends_job: bool = False  # only a new job can get past it: this one is to be ended


class Stalled(RuntimeError):
    """A job that made no progress for the stall timeout, for a lasting cause (the
    message): the job stays, and ``wait`` resumes it once the cause is fixed; unless
    ``ends_job``: then no fix reaches this job (its preparation failed everywhere)."""

    def __init__(self, line: str, ends_job: bool = False) -> None:
        super().__init__(line)
        self.ends_job = ends_job


@dataclass
class Stall:
    """Watches for a job with active tasks and no progress: after ``LOOK_EVERY`` seconds
    (or the timeout, if shorter) it asks ``diagnose`` why, logs each new cause once, and
    raises Stalled when a lasting cause has held for ``timeout`` seconds (0: never).

    Tasks that go back to active (``went_back``) are looked into at the next check: that
    is how a failed job preparation shows (or a lost node, or a retry). A cause that
    ends the job is raised at once: no wait can help it."""

    diagnose: Callable[[], Cause | None]
    log: Callable[[str], None]
    timeout: float = STALL_TIMEOUT
    since: float = 0.0  # the last progress
    looked: float = 0.0
    said: str | None = None
    soon: bool = False  # look at the next check

    def progressed(self, now: float) -> None:
        self.since = self.looked = now
        self.said = None

    def went_back(self) -> None:
        self.soon = True

    def check(self, now: float, active: int) -> None:
        wait = min(LOOK_EVERY, self.timeout) if self.timeout else LOOK_EVERY
        if not active or (now - self.looked < wait and not self.soon):
            return
        self.looked, self.soon = now, False
        try:
            cause = self.diagnose()
        except AzureError:  # a look that failed says nothing; the next may not
            return
        if cause is None:
            return
        if cause.line != self.said:
            self.log(cause.line)
            self.said = cause.line
        if cause.ends_job and self.timeout:
            raise Stalled(cause.line, ends_job=True)
        if cause.lasting and self.timeout and now - self.since >= self.timeout:
            raise Stalled(cause.line)


def diagnose(batch: BatchClient, pool_id: str, job_id: str | None = None) -> Cause | None:
    """The first reason the pool runs no task (of ``job_id``, if given), or None when it
    has nodes ready for them."""
    try:
        pool = batch.get_pool(pool_id)
    except ResourceNotFoundError:
        return Cause(f"pool {pool_id} does not exist: deploy the stack again", True)
    if pool.resize_errors:
        resize = pool.resize_errors[0]
        return Cause(f"pool {pool_id} cannot get nodes: {resize.code}: {resize.message}", True)
    run = pool.auto_scale_run
    if run is not None and run.error is not None:
        failed = f"{run.error.code}: {run.error.message}"
        return Cause(f"pool {pool_id}'s autoscale formula failed: {failed}", False)
    nodes = list(batch.list_nodes(pool_id))
    cause = nodes_cause(batch, pool, nodes)
    if cause is None and job_id is not None:
        return preparation_cause(batch, job_id, pool_id, nodes)
    return cause


def preparation_cause(
    batch: BatchClient, job_id: str, pool_id: str, nodes: list[models.BatchNode]
) -> Cause | None:
    """The job's preparation task failed on every node that could run its tasks: the
    service then keeps them from the job for good, and its tasks wait forever."""
    ready = [node.id for node in nodes if state_name(node.state) in ("idle", "running")]
    try:
        statuses = list(batch.list_job_preparation_and_release_task_status(job_id))
    except HttpResponseError:  # a job without a preparation task, or gone
        return None
    failed = {
        status.node_id: info
        for status in statuses
        if (info := status.job_preparation_task_execution_info) is not None
        and state_name(info.state) == "completed"
        and state_name(info.result) == "failure"
    }
    if not ready or not all(node in failed for node in ready):
        return None
    node_id = ready[0] or ""
    info = failed[node_id]
    how = f"exit code {info.exit_code}" if info.exit_code is not None else "no exit code"
    if info.failure_info is not None and info.exit_code is None:
        how = f"{info.failure_info.code}: {info.failure_info.message}"
    line = f"the job preparation task failed on every node (node {node_id}: {how})"
    stderr = f"{preparation_folder(job_id, info)}/stderr.txt"
    return Cause(line + _stderr_tail(batch, pool_id, node_id, stderr), True, True)


def preparation_folder(
    job_id: str, info: models.BatchJobPreparationTaskExecutionInfo | None
) -> str:
    """The preparation task's folder on its node, as the node file API names it: from
    its taskRootDirectoryUrl (``.../nodes/<n>/files/<path>``), or where Linux nodes
    keep it."""
    url = info.task_root_directory_url if info is not None else None
    if url and "/files/" in url:
        return unquote(url.split("/files/", 1)[1]).strip("/")
    return f"workitems/{job_id}/job-1/{PREPARATION_ID}"


def nodes_cause(
    batch: BatchClient, pool: models.BatchPool, nodes: list[models.BatchNode]
) -> Cause | None:
    """Why a pool's nodes take no task (its pool-level errors aside), or None when some
    are ready for them: ``diagnose``'s second half, for a caller that has both read."""
    pool_id = pool.id or ""
    states = [state_name(node.state) for node in nodes]
    if any(state in ("idle", "running") for state in states):
        return None
    if nodes and all(state == "starttaskfailed" for state in states):
        return Cause(_start_task_failed(batch, pool_id, nodes[0]), True)
    if nodes and all(state == "unusable" for state in states):
        return Cause(f"every node of pool {pool_id} is unusable: reboot or reimage them", False)
    current = (pool.current_dedicated_nodes or 0) + (pool.current_low_priority_nodes or 0)
    target = (pool.target_dedicated_nodes or 0) + (pool.target_low_priority_nodes or 0)
    allocation = state_name(pool.allocation_state)
    found = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "none yet"
    return Cause(
        f"waiting for nodes: pool {pool_id} has {current} of {target} nodes "
        f"({allocation}; nodes: {found})",
        False,
    )


def _start_task_failed(batch: BatchClient, pool_id: str, node: models.BatchNode) -> str:
    info = node.start_task_info
    code = info.exit_code if info is not None else None
    line = f"the start task failed on every node of pool {pool_id} (exit code {code})"
    return line + _stderr_tail(batch, pool_id, node.id or "", START_TASK_STDERR)


def _stderr_tail(batch: BatchClient, pool_id: str, node_id: str, path: str) -> str:
    """``: `` and the last lines of a node's file, or nothing if it cannot be read."""
    try:
        stderr = b"".join(batch.download_node_file(pool_id, node_id, path))
    except HttpResponseError:
        return ""
    tail = [text for text in stderr.decode(errors="replace").splitlines() if text.strip()]
    return ": " + " | ".join(tail[-STDERR_TAIL_LINES:]) if tail else ""
