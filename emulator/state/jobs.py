"""Jobs: create, get, list, update, terminate, delete, their task counts and the status
of their preparation and release tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator import errors, validate, wire
from emulator.records import Job, NodePreparation, TaskCounts
from emulator.state import preparation
from emulator.state.lifecycle import RUNNING, Lifecycle
from emulator.state.tables import Tables

JOB_DEFAULTS = {
    "usesTaskDependencies": False,
    "priority": 0,
    "allowTaskPreemption": False,
    "maxParallelTasks": -1,
    "onAllTasksComplete": "noaction",
    "onTaskFailure": "noaction",
}


class Jobs:
    def __init__(
        self, tables: Tables, lifecycle: Lifecycle, wake: Callable[[], None], account_url: str
    ) -> None:
        self.tables = tables
        self.lifecycle = lifecycle
        self.wake = wake
        self.account_url = account_url

    def create(self, body: Any, job_id: str | None = None) -> Job:
        """A job from its body; ``job_id``: a job schedule's, named by it (its
        jobSpecification, checked when the schedule was, has no id)."""
        named = body if job_id is None else {**body, "id": "scheduled"}
        spec = {**JOB_DEFAULTS, **validate.job(named)}
        if job_id is not None:
            spec["id"] = job_id
        job_id = spec["id"]
        if self.tables.has_job(job_id):
            raise errors.JobExists()
        spec["constraints"] = {
            "maxWallClockTime": wire.format_duration(wire.UNBOUNDED),
            "maxTaskRetryCount": 0,
            **spec.get("constraints", {}),
        }
        preparation.with_defaults(spec, wire.format_duration(wire.UNBOUNDED))
        now = self.tables.clock()
        job = Job(
            id=job_id,
            url=f"{self.account_url}/jobs/{job_id}",
            state="active",
            state_since=now,
            spec=spec,
            created=now,
            pool_id=spec["poolInfo"].get("poolId"),
        )
        self.tables.touch(job, now)
        with self.tables.store.transaction():
            self.tables.add_job(job)
            self.tables.save(job)
            self.lifecycle.complete_job_if_done(job, now)
        return job

    def get(self, job_id: str) -> Job:
        return self.tables.job(job_id)

    def all(self) -> list[Job]:
        return list(self.tables.jobs.values())

    def update(self, job_id: str, body: Any, replace: bool = False) -> Job:
        """PATCH (only the properties given change) or PUT (``replace``: those not given
        return to their defaults). Everything is checked before anything changes."""
        job = self.tables.job(job_id)
        changes = validate.job_update(body, replace)
        _not_ending(job)
        if job.state == "completed":
            raise errors.JobCompleted()
        if replace:
            changes = {**_REPLACED, **changes}
            changes["constraints"] = {**_CONSTRAINTS, **changes.get("constraints", {})}
        _changeable(job, changes)
        now = self.tables.clock()
        if replace:
            job.spec.pop("metadata", None)
        job.spec.update({k: v for k, v in changes.items() if k != "constraints"})
        if "constraints" in changes:
            job.spec["constraints"] = {**job.spec["constraints"], **changes["constraints"]}
        job.pool_id = job.spec["poolInfo"].get("poolId")
        self.tables.touch(job, now)
        with self.tables.store.transaction():
            self.tables.save(job)
            self.lifecycle.complete_job_if_done(job, now)
        self.wake()
        return job

    def terminate(self, job_id: str, reason: str | None = None, force: bool = False) -> None:
        """The job's running tasks end, its releases run, then it is completed (``force``:
        at once, not waiting for its releases)."""
        job = self.tables.job(job_id)
        _not_ending(job)
        if job.state == "completed":
            raise errors.JobCompleted()
        with self.tables.store.transaction():
            now = self.tables.clock()
            self.lifecycle.terminate_job(job, reason or "UserTerminate", now, force)
        self.wake()

    def disable(self, job_id: str, body: Any) -> Job:
        """disable: from active, disabling or disabled; any other state is a 409, as the
        API says (JobCompleted, JobBeingTerminated, JobBeingDeleted)."""
        job = self.tables.job(job_id)
        option = validate.job_disable(body)
        _not_ending(job)
        if job.state == "completed":
            raise errors.JobCompleted()
        with self.tables.store.transaction():
            self.lifecycle.disable_job(job, option, self.tables.clock())
        self.wake()
        return job

    def enable(self, job_id: str) -> Job:
        """enable: a disabled or disabling job is active again; an active one stays so
        (the service documents no refusal for it)."""
        job = self.tables.job(job_id)
        _not_ending(job)
        if job.state == "completed":
            raise errors.JobCompleted()
        with self.tables.store.transaction():
            self.lifecycle.enable_job(job, self.tables.clock())
        self.wake()
        return job

    def delete(self, job_id: str, force: bool = False) -> None:
        """The job's tasks are killed and gone; it is deleting until its releases have
        run, then gone (``force``: at once)."""
        job = self.tables.job(job_id)
        if job.state == "deleting":
            raise errors.JobBeingDeleted()
        with self.tables.store.transaction():
            self.lifecycle.delete_job(job, self.tables.clock(), force)
        self.wake()

    def preparation_status(self, job_id: str) -> tuple[Job, list[NodePreparation]]:
        """The job, and its preparation and release task's runs on each node that ran
        them; JobPreparationTaskNotSpecified for a job that has neither."""
        job = self.tables.job(job_id)
        if preparation.preparation_of(job) is None:
            raise errors.JobPreparationTaskNotSpecified()
        return job, self.lifecycle.preparations.statuses(job_id)

    def task_counts(self, job_id: str) -> TaskCounts:
        self.tables.job(job_id)
        counts = dict.fromkeys(("active", "running", "completed", "succeeded", "failed"), 0)
        slots = dict(counts)
        for task in self.tables.tasks[job_id].values():
            state = "running" if task.state in RUNNING else task.state
            counts[state] += 1
            slots[state] += task.required_slots
            if state == "completed":
                outcome = "succeeded" if task.run.result == "success" else "failed"
                counts[outcome] += 1
                slots[outcome] += task.required_slots
        return TaskCounts(counts, slots)

    def active(self, job_id: str) -> Job:
        """The job, if tasks may still be added to it or reactivated in it."""
        job = self.tables.job(job_id)
        _not_ending(job)
        if job.state == "completed":
            raise errors.JobCompleted()
        return job


_CONSTRAINTS = {"maxWallClockTime": wire.format_duration(wire.UNBOUNDED), "maxTaskRetryCount": 0}
_REPLACED = {
    key: JOB_DEFAULTS[key]
    for key in ("priority", "allowTaskPreemption", "maxParallelTasks", "onAllTasksComplete")
}
"""What a job's PUT sets the properties it does not give to: the create's defaults."""


def _changeable(job: Job, changes: dict[str, Any]) -> None:
    """The state rules of an update: another pool only while the job is disabled (the
    service documents the refusal, not its code: here InvalidPropertyValue); automatic
    termination, once on, cannot be turned off."""
    pool_id = (changes.get("poolInfo") or {}).get("poolId")
    moves = pool_id is not None and str(pool_id).lower() != str(job.pool_id).lower()
    if moves and job.state != "disabled":
        raise errors.invalid_property(
            "poolInfo", pool_id,
            "The pool of a job can be changed only while the job is disabled.",
        )  # fmt: skip
    complete = changes.get("onAllTasksComplete")
    if complete == "noaction" and job.terminates_when_tasks_complete:
        raise errors.invalid_property(
            "onAllTasksComplete", complete,
            "A job's onAllTasksComplete cannot be changed from terminatejob to noaction.",
        )  # fmt: skip


def _not_ending(job: Job) -> None:
    """Refuse a change to a job on its way out: JobBeingTerminated, JobBeingDeleted."""
    if job.state == "terminating":
        raise errors.JobBeingTerminated()
    if job.state == "deleting":
        raise errors.JobBeingDeleted()
