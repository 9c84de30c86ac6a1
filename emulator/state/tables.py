"""The records in memory, id-keyed, each change written through to the store.

Lookups raise the service's not-found errors; ``save`` and ``forget`` keep the store in
step; ``touch`` stamps lastModified and a fresh ETag; ``transition`` moves a record to a
new state and keeps the indexes up to date: the active tasks the scheduler reads (less
those ``held`` for their dependencies: see ``dependencies``), the tasks not yet completed
(a job ends when there are none), and the ids folded to one case (the service's ids are
case-insensitive: ``Job1`` and ``job1`` are one job), so nothing that runs per task or per
request scans a job's tasks.
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
        self.pools: dict[str, Pool] = {}
        self.nodes: dict[str, dict[str, Node]] = {}
        self.jobs: dict[str, Job] = {}
        self.tasks: dict[str, dict[str, Task]] = {}
        self.active: dict[str, dict[str, None]] = {}  # job -> active task ids, in order
        self.held: dict[str, set[str]] = {}  # job -> active tasks waiting for their parents
        self.incomplete: dict[str, set[str]] = {}  # job -> ids of tasks not completed
        self._pool_ids: set[str] = set()  # lower-cased, as are the next two
        self._job_ids: set[str] = set()
        self._task_ids: dict[str, set[str]] = {}  # job -> its tasks' ids
        for pool in store.load("pool", Pool):
            self.add_pool(pool, [])
        for node in store.load("node", Node):
            self.nodes.setdefault(node.pool_id, {})[node.id] = node
        for job in store.load("job", Job):
            self.add_job(job)
        for task in store.load("task", Task):
            self.add_task(task)

    # --- what exists, case-insensitively ----------------------------------------------

    def has_pool(self, pool_id: str) -> bool:
        return pool_id.lower() in self._pool_ids

    def has_job(self, job_id: str) -> bool:
        return job_id.lower() in self._job_ids

    def has_task(self, job_id: str, task_id: str) -> bool:
        return task_id.lower() in self._task_ids.get(job_id, set())

    def add_pool(self, pool: Pool, nodes: list[Node]) -> None:
        self.pools[pool.id] = pool
        self.nodes[pool.id] = {node.id: node for node in nodes}
        self._pool_ids.add(pool.id.lower())

    def remove_pool(self, pool_id: str) -> None:
        del self.pools[pool_id]
        self.nodes.pop(pool_id, None)
        self._pool_ids.discard(pool_id.lower())

    def remove_node(self, node: Node) -> None:
        self.nodes.get(node.pool_id, {}).pop(node.id, None)

    def add_job(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.tasks.setdefault(job.id, {})
        self._job_ids.add(job.id.lower())

    def remove_job(self, job_id: str) -> None:
        del self.jobs[job_id]
        for index in (self.tasks, self.active, self.held, self.incomplete, self._task_ids):
            index.pop(job_id, None)
        self._job_ids.discard(job_id.lower())

    def add_task(self, task: Task) -> None:
        self.tasks.setdefault(task.job_id, {})[task.id] = task
        self._task_ids.setdefault(task.job_id, set()).add(task.id.lower())
        self.index(task)

    def remove_task(self, job_id: str, task_id: str) -> None:
        del self.tasks[job_id][task_id]
        self._task_ids.get(job_id, set()).discard(task_id.lower())
        self.active.get(job_id, {}).pop(task_id, None)
        self.held.get(job_id, set()).discard(task_id)
        self.incomplete.get(job_id, set()).discard(task_id)

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
        incomplete = self.incomplete.setdefault(task.job_id, set())
        if task.state == "active":
            if task.id not in self.held.get(task.job_id, ()):
                active[task.id] = None
        else:
            active.pop(task.id, None)
            self.held.get(task.job_id, set()).discard(task.id)
        if task.state == "completed":
            incomplete.discard(task.id)
        else:
            incomplete.add(task.id)

    def hold(self, task: Task) -> None:
        """Keep an active task from the scheduler until ``release``."""
        self.held.setdefault(task.job_id, set()).add(task.id)
        self.active.get(task.job_id, {}).pop(task.id, None)

    def release(self, job_id: str, task_id: str) -> None:
        """Hand a held task to the scheduler (behind the tasks already active)."""
        self.held.get(job_id, set()).discard(task_id)
        task = self.tasks.get(job_id, {}).get(task_id)
        if task is not None:
            self.index(task)

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
