"""What the scheduler asks and reports: nodes to start, tasks to place, how runs ended.

The scheduler asks ``pending_start_tasks`` and ``assign`` what to run, and reports back
through ``start_task_started``/``start_task_finished`` and ``task_started``/
``task_process``/``task_finished``. A report about a task that was ended, deleted or
requeued meanwhile changes nothing: the scheduler says which run it reports on by the
task's requeue count when it was placed, so a run its lost node's requeue killed cannot
end the task's next run. Nodes that are leaving, rebooting or reimaging are handed out by
``node_changes`` once they run nothing, and come back through ``node_changed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from emulator.failures import Outcome
from emulator.records import Node, Placement, Pool, StartTaskRun, Task
from emulator.state.lifecycle import RUNNING, Lifecycle
from emulator.state.nodes import CHANGING
from emulator.state.tables import Tables


@dataclass(frozen=True)
class Assignment:
    """A task placed on a node slot, for the scheduler to run."""

    task: Task
    pool: Pool
    node: Node


class Scheduling:
    def __init__(self, tables: Tables, lifecycle: Lifecycle, wake: Callable[[], None]) -> None:
        self.tables = tables
        self.lifecycle = lifecycle
        self.wake = wake

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
            node.transition("waitingforstarttask" if pool.waits_for_start_task else "idle", now)
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
                node.transition("idle", now)
        self.tables.save(node)
        self.wake()

    # --- tasks --------------------------------------------------------------------------

    def assign(self) -> list[Assignment]:
        """Place active tasks of active jobs on free node slots (spread across nodes)."""
        assignments: list[Assignment] = []
        now = self.tables.clock()
        with self.tables.store.transaction():
            for job in self.tables.jobs.values():
                pool = self.tables.pools.get(job.pool_id or "")
                if job.state != "active" or pool is None or pool.state != "active":
                    continue
                nodes = [
                    node
                    for node in self.tables.nodes[pool.id].values()
                    if node.state in ("idle", "running") and node.scheduling_state == "enabled"
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
                    assignments.append(Assignment(task, pool, node))
        return assignments

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
    still_up = node.state in ("waitingforstarttask", "idle", "running")
    return still_up and run is not None and run.state == "running" and run.retry_count > 0
