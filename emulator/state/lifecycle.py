"""Transitions that span entities: a task leaving its node, a job ending with its tasks,
a task's completion reaching its dependents and, by its exit conditions, its job.

Used by the operations on pools, jobs and tasks and by the scheduler's reports alike, so
each rule lives once: a slot is released in one place, a job completes in one place.
A job whose release task must run first (``preparation``) ends in two steps: terminating
(or deleting) while its releases run, then completed (or gone) when the last has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from emulator import failures
from emulator.failures import Failure, Outcome
from emulator.records import Job, Node, RunKey, Task, TaskRun, task_run
from emulator.state import exits
from emulator.state.dependencies import Dependencies
from emulator.state.preparation import Preparations
from emulator.state.tables import Tables
from emulator.validate import performs_exit_options

Kill = Callable[[RunKey], None]
RUNNING = ("preparing", "running")
_OPEN = ("active", "disabling", "disabled")
"""States of a job that has not begun to end."""


class Lifecycle:
    def __init__(
        self,
        tables: Tables,
        kill: Kill,
        dependencies: Dependencies,
        preparations: Preparations,
    ) -> None:
        self.tables = tables
        self.kill = kill
        self.dependencies = dependencies
        self.preparations = preparations

    def release_slot(self, task: Task) -> None:
        """Take a task off its node's slots (the node goes idle, or offline, when none is
        left); a job disabling until its running tasks end is disabled with the last."""
        self._disabled_without(task)
        node = self.tables.node_of(task)
        if node is None:
            return
        entry = (task.job_id, task.id)
        if entry in node.running:
            node.running.remove(entry)
            node.running_slots -= task.required_slots
        if not node.running and node.state == "running":
            node.transition(node.resting_state, self.tables.clock())
        self.tables.save(node)

    def _disabled_without(self, task: Task) -> None:
        """A disabling job is disabled once no task of it but ``task`` runs any more."""
        job = self.tables.jobs.get(task.job_id)
        if job is None or job.state != "disabling":
            return
        tasks = self.tables.tasks.get(job.id, {}).values()
        if not any(other.state in RUNNING and other is not task for other in tasks):
            now = self.tables.clock()
            job.transition("disabled", now)
            self.tables.touch(job, now)
            self.tables.save(job)

    def stop(self, task: Task) -> None:
        """Free the slot of a task that is placed or running, and kill its process."""
        if task.state in RUNNING:
            self.release_slot(task)
            self.kill(task_run(task.job_id, task.id))

    def unplace(self, task: Task, now: datetime) -> None:
        """Back to active as if it had never been placed: the job's preparation, which it
        waited for, failed for good on its node (no retry or requeue counted)."""
        self.release_slot(task)
        task.node = None
        self.tables.transition(task, "active", now)
        self.tables.touch(task, now)
        self.tables.save(task)

    def requeue(self, task: Task, now: datetime) -> None:
        """Back to active without using a retry, as when a node is lost."""
        self.release_slot(task)
        task.run = TaskRun(
            retry_count=task.run.retry_count,
            requeue_count=task.run.requeue_count + 1,
            last_retry_time=task.run.last_retry_time,
            last_requeue_time=now,
        )
        task.node = None
        self.tables.transition(task, "active", now)
        self.tables.touch(task, now)
        self.tables.save(task)

    def end_by_request(
        self, task: Task, now: datetime, failure: Failure = failures.TASK_ENDED_BY_REQUEST
    ) -> None:
        """Complete a task as failed, TaskEnded, killing its process if it runs. Without an
        exit code of its own, its exitConditions' default decides for its dependents;
        its job is left as it is (an ended task is no failure of its run)."""
        self.stop(task)
        task.run.start_time = task.run.start_time or now
        task.run.end_time = now
        task.run.result = "failure"
        task.run.failure = failure
        self.tables.transition(task, "completed", now)
        self.tables.touch(task, now)
        self.tables.save(task)
        action = exits.action(task.spec.get("exitConditions"), None, failure)
        self.dependencies.completed(task, action.dependency_action)

    def finished(self, task: Task, outcome: Outcome, now: datetime) -> None:
        """A task's run completed it: its exit conditions decide for its dependents and,
        when the job's onTaskFailure is performexitoptionsjobaction, for its job."""
        action = exits.action(task.spec.get("exitConditions"), outcome.exit_code, outcome.failure)
        self.dependencies.completed(task, action.dependency_action)
        job = self.tables.jobs[task.job_id]
        if job.state != "active" or not performs_exit_options(job.spec):
            return
        if action.job_action == "terminate":
            self.terminate_job(job, "TaskFailed", now)
        elif action.job_action == "disable":  # "equivalent to ... disableTasks requeue"
            self.disable_job(job, "requeue", now)

    def terminate_job(self, job: Job, reason: str, now: datetime, force: bool = False) -> None:
        """End the job's running tasks, then run its release task where its preparation
        ran: it is terminating until they have ended (``force``: not waiting for them)."""
        job.terminate_reason = reason
        for task in self.tables.tasks.get(job.id, {}).values():
            if task.state in RUNNING:
                self.end_by_request(task, now)
        self.preparations.end_job(job, now, release=True)
        job.transition("terminating", now)
        self.tables.touch(job, now)
        self.tables.save(job)
        if force or not self.preparations.releasing(job.id):
            self._complete(job, now)

    def _complete(self, job: Job, now: datetime) -> None:
        job.transition("completed", now)
        job.end_time = now
        self.tables.touch(job, now)
        self.tables.save(job)

    def delete_job(self, job: Job, now: datetime, force: bool = False) -> None:
        """Kill the job's tasks and forget them; the job is deleting until the releases
        it runs have ended, and gone after (``force``: at once). A job that had ended runs
        none (its ran then), nor waits for those a forced terminate left running."""
        for task in self.tables.tasks.get(job.id, {}).values():
            self.stop(task)
        self.tables.store.delete_prefix("task", f"{job.id}/")
        for task_id in list(self.tables.tasks.get(job.id, {})):
            self.tables.remove_task(job.id, task_id)
        self.dependencies.forget_job(job.id)
        ended = job.state == "completed"
        if job.state != "terminating" and not ended:
            self.preparations.end_job(job, now, release=True)
        job.transition("deleting", now)
        self.tables.touch(job, now)
        self.tables.save(job)
        if force or ended or not self.preparations.releasing(job.id):
            self._remove(job)

    def _remove(self, job: Job) -> None:
        self.preparations.forget_job(job.id)
        self.tables.forget(job)
        self.tables.remove_job(job.id)

    def released(self, job_id: str, now: datetime) -> None:
        """A release of the job ended or was dropped: end the job if it was the last."""
        job = self.tables.jobs.get(job_id)
        if job is None or self.preparations.releasing(job_id):
            return
        if job.state == "terminating":
            self._complete(job, now)
        elif job.state == "deleting":
            self._remove(job)

    def node_changing(self, node: Node, change: str, now: datetime) -> None:
        """A node's reboot, reimage or leaving is under way: what the jobs' preparations
        and releases do about it (see ``preparation``)."""
        for job_id in self.preparations.node_changing(node, change, now):
            self.released(job_id, now)

    def requeue_running(self, task: Task, now: datetime) -> None:
        """Kill a placed or running task and put it back to active, as a requeue."""
        self.stop(task)
        self.requeue(task, now)

    def end_node_tasks(self, node: Node, option: str, failure: Failure, now: datetime) -> None:
        """A node takes no more tasks (it leaves, restarts, or scheduling on it is
        disabled): its running tasks go by the request's option. requeue: killed and back
        to active; terminate: killed and completed as failed with ``failure``; any other:
        left to finish. The node's recentTasks keep each as its run there ended."""
        if option not in ("requeue", "terminate"):
            return
        ended: set[str] = set()
        for job_id, task_id in list(node.running):
            task = self.tables.tasks.get(job_id, {}).get(task_id)
            if task is None:
                continue
            seen = node.saw(task)  # its run here, in the node's recentTasks
            if option == "requeue":
                self.requeue_running(task, now)
            else:
                self.end_by_request(task, now, failure)
                ended.add(job_id)
            seen.state = task.state
        for job_id in ended:
            self.complete_job_if_done(self.tables.jobs[job_id], now)

    def disable_job(self, job: Job, option: str, now: datetime) -> None:
        """The disable Job API (and a task's exit jobAction disable): the job is disabling
        while its running tasks go by ``option`` (disableTasks), then disabled, and starts
        no task until enabled. requeue: killed and back to active (requeueCount + 1, no
        retry used); terminate: killed and completed as TaskEnded; wait: left to finish,
        the job disabled when the last has ended (``release_slot``). A disabled job is
        left as it is; a disabling one deals with its running tasks by the new option."""
        if job.state == "disabled":
            return
        job.transition("disabling", now)
        self.tables.touch(job, now)
        running = [t for t in self.tables.tasks.get(job.id, {}).values() if t.state in RUNNING]
        for task in running:
            if option == "requeue":
                self.requeue_running(task, now)
            elif option == "terminate":
                self.end_by_request(task, now)
        if not any(task.state in RUNNING for task in running):
            job.transition("disabled", now)
        self.tables.save(job)
        self.complete_job_if_done(job, now)

    def enable_job(self, job: Job, now: datetime) -> None:
        """The enable Job API: a disabled (or still disabling) job is enabling, then
        active, and its active tasks are scheduled again; an active job is left as it is."""
        if job.state == "active":
            return
        job.transition("enabling", now)
        job.transition("active", now)
        self.tables.touch(job, now)
        self.tables.save(job)

    def complete_job_if_done(self, job: Job, now: datetime) -> None:
        """onAllTasksComplete=terminatejob: end the job once every task has completed,
        a disabled job too (it "takes precedence": Azure/batch-shipyard issue 227)."""
        if job.state not in _OPEN or not job.terminates_when_tasks_complete:
            return
        if not self.tables.incomplete.get(job.id):
            self.terminate_job(job, "AllTasksComplete", now)
