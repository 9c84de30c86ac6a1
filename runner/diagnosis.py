"""Why a job's tasks are not running: its pool, looked at as a user would in the portal.

The common reasons a Batch job makes no progress are not task failures: the pool has no
node yet (or cannot get one: a quota), the start task failed on every node, the nodes are
unusable, the autoscale formula fails, the pool is gone. ``diagnose`` reads the pool and
its nodes (a few requests, made only when a job has stalled) and names the first cause it
finds in one line, saying whether it can resolve itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from azure.batch import BatchClient, models
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from runner.clients import state_name

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


class Stalled(RuntimeError):
    """A job that made no progress for the stall timeout, for a lasting cause (the
    message): the job stays, and ``wait`` resumes it once the cause is fixed."""


@dataclass
class Stall:
    """Watches for a job with active tasks and no progress: after ``LOOK_EVERY`` seconds
    (or the timeout, if shorter) it asks ``diagnose`` why, logs each new cause once, and
    raises Stalled when a lasting cause has held for ``timeout`` seconds (0: never)."""

    diagnose: Callable[[], Cause | None]
    log: Callable[[str], None]
    timeout: float = STALL_TIMEOUT
    since: float = 0.0  # the last progress
    looked: float = 0.0
    said: str | None = None

    def progressed(self, now: float) -> None:
        self.since = self.looked = now
        self.said = None

    def check(self, now: float, active: int) -> None:
        wait = min(LOOK_EVERY, self.timeout) if self.timeout else LOOK_EVERY
        if not active or now - self.looked < wait:
            return
        self.looked = now
        try:
            cause = self.diagnose()
        except AzureError:  # a look that failed says nothing; the next may not
            return
        if cause is None:
            return
        if cause.line != self.said:
            self.log(cause.line)
            self.said = cause.line
        if cause.lasting and self.timeout and now - self.since >= self.timeout:
            raise Stalled(cause.line)


def diagnose(batch: BatchClient, pool_id: str) -> Cause | None:
    """The first reason the pool runs no task, or None when it has nodes ready for them."""
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
    return nodes_cause(batch, pool, list(batch.list_nodes(pool_id)))


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
    try:
        stderr = b"".join(batch.download_node_file(pool_id, node.id or "", START_TASK_STDERR))
    except HttpResponseError:
        return line
    tail = [text for text in stderr.decode(errors="replace").splitlines() if text.strip()]
    return line + (": " + " | ".join(tail[-STDERR_TAIL_LINES:]) if tail else "")
