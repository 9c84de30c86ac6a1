"""What the scheduler asks and reports: nodes to start, tasks to place, how runs ended.

The scheduler asks ``pending_start_tasks``, ``assign`` and ``pending_hooks`` (jobs'
preparation and release tasks) what to run, and reports back through
``start_task_started``/``start_task_finished``, ``task_started``/``task_process``/
``task_finished`` and ``hook_started``/``hook_process``/``hook_finished``. A report about
a task that was ended, deleted or requeued meanwhile changes nothing: the scheduler says
which run it reports on by the task's requeue count when it was placed, so a run its lost
node's requeue killed cannot end the task's next run (a hook's run, by its generation).
A task placed where its job's preparation must run first is held back from ``assign``
until that has succeeded (see ``preparation``). Nodes that are leaving, rebooting or
reimaging are handed out by ``node_changes`` once they run nothing, and come back
through ``node_changed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from emulator.failures import Outcome
from emulator.records import Node, Placement, Pool, StartTaskRun, Task
from emulator.state.lifecycle import RUNNING, Lifecycle
from emulator.state.nodes import CHANGING
from emulator.state.preparation import PREPARATION, HookRun, Waiting, preparation_of
from emulator.state.tables import Tables


@dataclass(frozen=True)
class Assignment:
    """A task placed on a node slot, for the scheduler to run."""

    task: Task
    pool: Pool
    node: Node
    preparation_id: str | None = None  # the job's preparation task's, if it has one


class Scheduling:
    def __init__(self, tables: Tables, lifecycle: Lifecycle, wake: Callable[[], None]) -> None:
        self.tables = tables
        self.lifecycle = lifecycle
        self.preparations = lifecycle.preparations
        self.wake = wake
        self._ready: list[Waiting] = []  # tasks whose preparation has just succeeded

    # --- start tasks --------------------------------------------------------------------

    def pending_start_tasks(self) -> list[tuple[Pool, Node]]:
        """Nodes whose start task runs now and is not yet handed out: starting ones, and
        those whose start task failed and is to run again."""
        return [
            (self.tables.pools[pool_id], node)
            for pool_id, nodes in self.tables.nodes.items()
            for node in nodes.values()
            if not node.start_task_launched and (node.state == "starting" or _rerun(node))
        ]

    def start_task_started(self, pool_id: str, node_id: str) -> bool:
        """The start task is about to run; False if the node was removed meanwhile."""
        node = self.tables.nodes.get(pool_id, {}).get(node_id)
        if node is None or node.start_task_launched:
            return False
        now = self.tables.clock()
        if _rerun(node) and node.start_task is not None:
            node.start_task.start_time, node.start_task.end_time = now, None  # as the service
        elif node.state == "starting":
            pool = self.tables.pools[pool_id]
            waits = pool.waits_for_start_task
            node.transition("waitingforstarttask" if waits else node.resting_state, now)
            node.start_task_spec = pool.start_task  # as it is now: updates reach a reboot
            if pool.start_task is not None:
                node.start_task = StartTaskRun(start_time=now)
        else:
            return False
        node.start_task_launched = True
        self.tables.save(node)
        self.wake()
        return True

    def start_task_finished(self, pool_id: str, node_id: str, outcome: Outcome) -> None:
        """A failed start task runs again up to the pool's startTask.maxTaskRetryCount
        times; then, with waitForSuccess, the node is starttaskfailed and takes no task."""
        node = self.tables.nodes.get(pool_id, {}).get(node_id)
        if node is None or node.state in CHANGING:
            return  # the pool was deleted or the node lost meanwhile: the run was killed
        now = self.tables.clock()
        pool = self.tables.pools[pool_id]
        run = node.start_task
        if run is not None:
            retries = pool.start_task_retries
            if not outcome.succeeded and (retries == -1 or run.retry_count < retries):
                run.retry_count += 1
                if outcome.exit_code is not None:
                    run.exit_code = outcome.exit_code
                node.start_task_launched = False  # handed out again: see ``_rerun``
                self.tables.save(node)
                self.wake()
                return
            run.state = "completed"
            run.end(outcome, now)
            if not outcome.succeeded and pool.waits_for_start_task:
                node.transition("starttaskfailed", now)
            elif node.state == "waitingforstarttask":
                node.transition(node.resting_state, now)
        self.tables.save(node)
        self.wake()

    # --- tasks --------------------------------------------------------------------------

    def assign(self) -> list[Assignment]:
        """Place active tasks of active jobs on free node slots (spread across nodes); the
        tasks whose job's preparation must run first on their node wait for it there."""
        assignments = self._ready_to_start()
        now = self.tables.clock()
        with self.tables.store.transaction():
            for job in self.tables.jobs.values():
                pool = self.tables.pools.get(job.pool_id or "")
                if job.state != "active" or pool is None or pool.state != "active":
                    continue
                preparation = preparation_of(job)
                nodes = [
                    node
                    for node in self.tables.nodes[pool.id].values()
                    if node.state in ("idle", "running")
                    and node.scheduling_state == "enabled"
                    and (preparation is None or self.preparations.eligible(job, node))
                ]
                active = self.tables.active.get(job.id, {})
                while nodes and active:  # placing a task takes it out of ``active``
                    task = self.tables.tasks[job.id][next(iter(active))]
                    free = [
                        node
                        for node in nodes
                        if pool.slots_per_node - node.running_slots >= task.required_slots
                    ]
                    if not free:
                        break
                    node = min(free, key=lambda n: n.running_slots)
                    self._place(task, node, now)
                    if preparation is None:
                        assignments.append(Assignment(task, pool, node))
                    elif self.preparations.place(job, task, node):
                        assignments.append(Assignment(task, pool, node, preparation["id"]))
        return assignments

    def _ready_to_start(self) -> list[Assignment]:
        """The tasks whose preparation succeeded, if still placed where they waited."""
        ready, self._ready = self._ready, []
        assignments: list[Assignment] = []
        for waiting in ready:
            task = self.tables.tasks.get(waiting.job_id, {}).get(waiting.task_id)
            job = self.tables.jobs.get(waiting.job_id)
            node = self.tables.nodes.get(waiting.pool_id, {}).get(waiting.node_id)
            pool = self.tables.pools.get(waiting.pool_id)
            if task is None or job is None or node is None or pool is None:
                continue
            if not _waits_there(task, waiting):
                continue
            preparation = preparation_of(job)
            prepared = preparation["id"] if preparation else None
            assignments.append(Assignment(task, pool, node, prepared))
        return assignments

    # --- jobs' preparation and release tasks --------------------------------------------

    def pending_hooks(self) -> list[HookRun]:
        """The jobs' preparation and release tasks to run now, each handed out once."""
        with self.tables.store.transaction():
            return self.preparations.pending(self.tables.clock())

    def hook_started(self, run: HookRun, started: datetime) -> bool:
        """The process is about to start; False if the run was killed meanwhile."""
        with self.tables.store.transaction():
            return self.preparations.started(run, started)

    def hook_process(self, run: HookRun, group: int) -> None:
        self.preparations.process(run, group)

    def hook_finished(self, run: HookRun, outcome: Outcome) -> None:
        """A preparation ended: the tasks waiting for it start, or go back to active; a
        release ended: its job ends if it was the last."""
        now = self.tables.clock()
        with self.tables.store.transaction():
            if run.kind == PREPARATION:
                verdict = self.preparations.preparation_finished(run, outcome, now)
                self._ready += verdict.ready
                for waiting in verdict.back:
                    task = self.tables.tasks.get(waiting.job_id, {}).get(waiting.task_id)
                    if task is not None and _waits_there(task, waiting):
                        self.lifecycle.unplace(task, now)
            elif self.preparations.release_finished(run, outcome, now):
                self.lifecycle.released(run.job_id, now)
        self.wake()

    def _place(self, task: Task, node: Node, now: datetime) -> None:
        node.running.append((task.job_id, task.id))
        node.running_slots += task.required_slots
        node.transition("running", now)
        task.node = Placement(node.pool_id, node.id, node.url)
        self.tables.transition(task, "preparing", now)
        node.saw(task)  # its recentTasks
        self.tables.touch(task, now)
        self.tables.save(task)
        self.tables.save(node)

    def _placed(self, job_id: str, task_id: str, requeues: int | None) -> Task | None:
        """The task, if that run of it is still placed or running (not ended, deleted or
        requeued); requeues is its requeue count when placed (None: the current run)."""
        task = self.tables.tasks.get(job_id, {}).get(task_id)
        if task is None or task.state not in RUNNING:
            return None
        if requeues is not None and task.run.requeue_count != requeues:
            return None
        return task

    def task_started(
        self, job_id: str, task_id: str, started: datetime, requeues: int | None = None
    ) -> bool:
        """The process is about to start; False if the task was ended or deleted meanwhile."""
        task = self._placed(job_id, task_id, requeues)
        if task is None or task.state != "preparing":
            return False
        task.run.start_time = started
        self.tables.transition(task, "running", started)
        self.tables.touch(task, started)
        self.tables.save(task)
        return True

    def task_process(self, job_id: str, task_id: str, group: int) -> None:
        """Remember the task's process group, to end it if the emulator dies meanwhile."""
        task = self.tables.tasks.get(job_id, {}).get(task_id)
        if task is not None:
            task.process_group = group
            self.tables.save(task)

    def task_finished(
        self, job_id: str, task_id: str, outcome: Outcome, requeues: int | None = None
    ) -> None:
        task = self._placed(job_id, task_id, requeues)
        if task is None:
            return
        now = self.tables.clock()
        node = self.tables.node_of(task)
        run = task.run
        with self.tables.store.transaction():
            self.lifecycle.release_slot(task)
            if node is not None:
                node.total_tasks_run += 1
                node.total_tasks_succeeded += 1 if outcome.succeeded else 0
                self.tables.save(node)
            can_retry = task.max_retries == -1 or run.retry_count < task.max_retries
            if not outcome.succeeded and can_retry and outcome.failure is None:
                run.retry_count += 1
                run.last_retry_time = now
                if outcome.exit_code is not None:
                    run.exit_code = outcome.exit_code
                self.tables.transition(task, "active", now)
            else:
                run.start_time = run.start_time or outcome.started or now
                run.end(outcome, now)
                self.tables.transition(task, "completed", now)
            task.process_group = None
            self.tables.touch(task, now)
            self.tables.save(task)
            if task.state == "completed":
                self.lifecycle.finished(task, outcome, now)
            self.lifecycle.complete_job_if_done(self.tables.jobs[job_id], now)
        self.wake()

    # --- nodes leaving, rebooting, reimaging ---------------------------------------------

    def node_changes(self) -> list[Node]:
        """Changing nodes that run nothing any more, each handed out once."""
        ready: list[Node] = []
        with self.tables.store.transaction():
            for nodes in self.tables.nodes.values():
                for node in nodes.values():
                    if node.state in CHANGING and not node.running and not node.change_launched:
                        node.change_launched = True
                        self.tables.save(node)
                        self.lifecycle.node_changing(node, node.state, self.tables.clock())
                        ready.append(node)
        return ready

    def node_changed(self, pool_id: str, node_id: str, change: str) -> None:
        """The change is done: a leaving node is gone, a rebooted or reimaged one starts.

        Ignored if the node changed otherwise meanwhile (a rebooting node removed)."""
        node = self.tables.nodes.get(pool_id, {}).get(node_id)
        if node is None or node.state != change or not node.change_launched:
            return
        now = self.tables.clock()
        with self.tables.store.transaction():
            if change == "leavingpool":
                self._leave(node, now)
            else:
                node.transition("starting", now)
                node.booted = now
                node.deallocation = None
                node.change_launched = False
                node.start_task_launched = False
                self.tables.save(node)
        self.wake()

    def _leave(self, node: Node, now: datetime) -> None:
        pool = self.tables.pools[node.pool_id]
        if node.dedicated:
            pool.current_dedicated -= 1
        else:
            pool.current_low_priority -= 1
        self.tables.forget(node)
        self.tables.remove_node(node)
        if not any(n.state == "leavingpool" for n in self.tables.nodes[pool.id].values()):
            pool.allocate("steady", now)
        self.tables.touch(pool, now)
        self.tables.save(pool)


def _rerun(node: Node) -> bool:
    """Whether the node's start task failed and is to run again (not yet handed out)."""
    run = node.start_task
    still_up = node.state in ("waitingforstarttask", "idle", "running", "offline")
    return still_up and run is not None and run.state == "running" and run.retry_count > 0


def _waits_there(task: Task, waiting: Waiting) -> bool:
    """Whether the task is still placed where (and as when) it began to wait."""
    return (
        task.state == "preparing"
        and task.node is not None
        and (task.node.pool_id, task.node.node_id) == (waiting.pool_id, waiting.node_id)
        and task.run.requeue_count == waiting.requeues
    )
