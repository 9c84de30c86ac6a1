"""Jobs: create, get, list, update, terminate, delete, and their task counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator import errors, validate, wire
from emulator.records import Job, TaskCounts
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

    def create(self, body: Any) -> Job:
        spec = {**JOB_DEFAULTS, **validate.job(body)}
        job_id = spec["id"]
        if self.tables.has_job(job_id):
            raise errors.JobExists()
        spec["constraints"] = {
            "maxWallClockTime": wire.format_duration(wire.UNBOUNDED),
            "maxTaskRetryCount": 0,
            **spec.get("constraints", {}),
        }
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

    def update(self, job_id: str, body: Any) -> Job:
        """PATCH: replace only the properties given."""
        job = self.tables.job(job_id)
        changes = validate.job_patch(body)
        if job.state == "completed":
            raise errors.JobCompleted()
        now = self.tables.clock()
        job.spec.update({k: v for k, v in changes.items() if k != "constraints"})
        if "constraints" in changes:
            job.spec["constraints"] = {**job.spec["constraints"], **changes["constraints"]}
        self.tables.touch(job, now)
        with self.tables.store.transaction():
            self.tables.save(job)
            self.lifecycle.complete_job_if_done(job, now)
        return job

    def terminate(self, job_id: str, reason: str | None = None) -> None:
        job = self.tables.job(job_id)
        if job.state == "completed":
            raise errors.JobCompleted()
        with self.tables.store.transaction():
            self.lifecycle.terminate_job(job, reason or "UserTerminate", self.tables.clock())

    def delete(self, job_id: str) -> None:
        job = self.tables.job(job_id)
        with self.tables.store.transaction():
            for task in self.tables.tasks.get(job_id, {}).values():
                self.lifecycle.stop(task)
            self.tables.store.delete_prefix("task", f"{job_id}/")
            self.lifecycle.dependencies.forget_job(job_id)
            self.tables.forget(job)
        self.tables.remove_job(job_id)
        self.wake()

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
        if job.state == "completed":
            raise errors.JobCompleted()
        return job
