"""Tasks: add (one or a collection), get, list, terminate, delete, reactivate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from emulator import errors, validate, wire
from emulator.records import Job, Rejected, Spec, Task, TaskRun
from emulator.state.jobs import Jobs
from emulator.state.lifecycle import Lifecycle
from emulator.state.tables import Tables

COLLECTION_LIMIT = 100


class Tasks:
    def __init__(
        self, tables: Tables, lifecycle: Lifecycle, jobs: Jobs, wake: Callable[[], None]
    ) -> None:
        self.tables = tables
        self.lifecycle = lifecycle
        self.jobs = jobs
        self.wake = wake

    def _new(self, job: Job, spec: Spec, now: datetime) -> Task:
        spec = {
            "requiredSlots": 1,
            "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
            **spec,
            "constraints": {**_constraints(job), **spec.get("constraints", {})},
        }
        task = Task(
            id=spec["id"],
            url=f"{job.url}/tasks/{spec['id']}",
            state="active",
            state_since=now,
            job_id=job.id,
            spec=spec,
            created=now,
        )
        self.tables.touch(task, now)
        self.tables.add_task(task)
        self.lifecycle.dependencies.wait(task)
        self.tables.save(task)
        return task

    def add(self, job_id: str, body: Any) -> Task:
        job = self.jobs.active(job_id)
        spec = validate.task(body)
        validate.task_in_job(spec, job.spec)
        if self.tables.has_task(job_id, spec["id"]):
            raise errors.TaskExists()
        with self.tables.store.transaction():
            task = self._new(job, spec, self.tables.clock())
        self.wake()
        return task

    def add_collection(self, job_id: str, body: Any) -> list[Task | Rejected]:
        """Add up to 100 tasks; each gets its own result, as the service reports them."""
        job = self.jobs.active(job_id)
        values = validate.task_collection(body, COLLECTION_LIMIT)
        now = self.tables.clock()
        results: list[Task | Rejected] = []
        with self.tables.store.transaction():
            for value in values:
                try:
                    spec = validate.task(value)
                    validate.task_in_job(spec, job.spec)
                    if self.tables.has_task(job_id, spec["id"]):
                        raise errors.TaskExists()
                except errors.BatchServiceError as error:
                    task_id = value.get("id") if isinstance(value, dict) else None
                    name = task_id if isinstance(task_id, str) else ""
                    results.append(Rejected(name, error.code, error.detail, tuple(error.values)))
                    continue
                results.append(self._new(job, spec, now))
        self.wake()
        return results

    def get(self, job_id: str, task_id: str) -> Task:
        return self.tables.task(job_id, task_id)

    def update(self, job_id: str, task_id: str, body: Any) -> Task:
        """PUT: the task's constraints; those not given return to their defaults (the
        job's maxTaskRetryCount, no wall-clock limit, seven days' retention)."""
        task = self.tables.task(job_id, task_id)
        changes = validate.task_update(body)
        job = self.tables.job(job_id)
        task.spec["constraints"] = {
            **_constraints(job),
            **(changes.get("constraints") or {}),
        }
        now = self.tables.clock()
        self.tables.touch(task, now)
        self.tables.save(task)
        self.wake()
        return task

    def all(self, job_id: str) -> list[Task]:
        self.tables.job(job_id)
        return list(self.tables.tasks[job_id].values())

    def terminate(self, job_id: str, task_id: str) -> None:
        task = self.tables.task(job_id, task_id)
        if task.state == "completed":
            raise errors.TaskCompleted()
        now = self.tables.clock()
        with self.tables.store.transaction():
            self.lifecycle.end_by_request(task, now)
            self.lifecycle.complete_job_if_done(self.tables.jobs[job_id], now)
        self.wake()

    def delete(self, job_id: str, task_id: str) -> None:
        task = self.tables.task(job_id, task_id)
        self.lifecycle.stop(task)
        with self.tables.store.transaction():
            self.tables.forget(task)
            self.tables.remove_task(job_id, task_id)
            self.lifecycle.dependencies.removed(task)
            self.lifecycle.complete_job_if_done(self.tables.jobs[job_id], self.tables.clock())
        self.wake()

    def reactivate(self, job_id: str, task_id: str) -> None:
        task = self.tables.task(job_id, task_id)
        job = self.jobs.active(job_id)
        if task.state != "completed":
            raise errors.TaskNotCompleted()
        if task.run.result == "success":
            raise errors.TaskSucceeded()
        now = self.tables.clock()
        self.tables.transition(task, "active", now)
        self.lifecycle.dependencies.wait(task)  # a task ended while it waited waits again
        task.run = TaskRun()
        self.tables.touch(task, now)
        with self.tables.store.transaction():
            self.tables.save(task)
            self.tables.save(job)
        self.wake()


def _constraints(job: Job) -> Spec:
    """A task's constraints where it gives none: the job's retry count, no wall-clock
    limit, retained for seven days."""
    return {
        "maxWallClockTime": wire.format_duration(wire.UNBOUNDED),
        "retentionTime": "P7D",
        "maxTaskRetryCount": job.spec["constraints"].get("maxTaskRetryCount", 0),
    }
