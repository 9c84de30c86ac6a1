"""The records in memory, id-keyed, each change written through to the store.

Lookups raise the service's not-found errors; ``save`` and ``forget`` keep the store in
step; ``touch`` stamps lastModified and a fresh ETag; ``transition`` moves a record to a
new state and keeps the index of active tasks the scheduler reads.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime

from emulator import errors, wire
from emulator.records import Entity, Job, Node, Pool, Task
from emulator.store import Store

Clock = Callable[[], datetime]


class Tables:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._sequence = itertools.count()
        self.pools: dict[str, Pool] = {pool.id: pool for pool in store.load("pool", Pool)}
        self.nodes: dict[str, dict[str, Node]] = {pool_id: {} for pool_id in self.pools}
        for node in store.load("node", Node):
            self.nodes.setdefault(node.pool_id, {})[node.id] = node
        self.jobs: dict[str, Job] = {job.id: job for job in store.load("job", Job)}
        self.tasks: dict[str, dict[str, Task]] = {job_id: {} for job_id in self.jobs}
        self.active: dict[str, dict[str, None]] = {}  # job -> active task ids, in order
        for task in store.load("task", Task):
            self.tasks.setdefault(task.job_id, {})[task.id] = task
            self.index(task)

    # --- lookups ------------------------------------------------------------------------

    def pool(self, pool_id: str) -> Pool:
        pool = self.pools.get(pool_id)
        if pool is None:
            raise errors.PoolNotFound()
        return pool

    def node(self, pool_id: str, node_id: str) -> Node:
        self.pool(pool_id)
        node = self.nodes.get(pool_id, {}).get(node_id)
        if node is None:
            raise errors.NodeNotFound()
        return node

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise errors.JobNotFound()
        return job

    def task(self, job_id: str, task_id: str) -> Task:
        self.job(job_id)
        task = self.tasks[job_id].get(task_id)
        if task is None:
            raise errors.TaskNotFound()
        return task

    def node_of(self, task: Task) -> Node | None:
        if task.node is None:
            return None
        return self.nodes.get(task.node.pool_id, {}).get(task.node.node_id)

    # --- changes ------------------------------------------------------------------------

    def touch(self, entity: Entity, now: datetime) -> None:
        entity.last_modified = now
        entity.etag = wire.etag(now, next(self._sequence))

    def transition(self, entity: Entity, state: str, now: datetime) -> None:
        entity.transition(state, now)
        if isinstance(entity, Task):
            self.index(entity)

    def index(self, task: Task) -> None:
        active = self.active.setdefault(task.job_id, {})
        if task.state == "active":
            active[task.id] = None
        else:
            active.pop(task.id, None)

    def save(self, record: Entity) -> None:
        self.store.put(*_row(record), record)

    def forget(self, record: Entity) -> None:
        """Delete a record from the store (the caller drops it from the maps)."""
        self.store.delete(*_row(record))


def _row(record: Entity) -> tuple[str, str]:
    """(kind, key) of a record in the store."""
    if isinstance(record, Pool):
        return "pool", record.id
    if isinstance(record, Node):
        return "node", f"{record.pool_id}/{record.id}"
    if isinstance(record, Job):
        return "job", record.id
    if isinstance(record, Task):
        return "task", f"{record.job_id}/{record.id}"
    raise TypeError(f"not a record: {record!r}")
