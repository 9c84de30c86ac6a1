"""Job schedules: create, get, list, update, replace, disable, enable, terminate, delete,
and the jobs they create on time under the emulator's clock.

The rules are the service's (BatchJobScheduleConfiguration): the first job is due at
doNotRunUntil, or at once; with a recurrenceInterval the next is due that long after the
previous one was due, and without one there is only the first. A schedule has at most one
active job: a job falling due while the last is not completed waits for it, and if it
cannot be created within the startWindow after its due time that run is lost. No job is
due after doNotRunAfter. A schedule with no job left to create completes once its last job
has. ``tick`` creates what is due; the scheduler calls it each pass, and the schedule
operations before they answer, so a test that moves the clock sees the result at once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from emulator import errors, validate, wire
from emulator.records import Job, JobSchedule
from emulator.state.jobs import Jobs
from emulator.state.tables import Tables

KIND = "jobschedule"


class Schedules:
    def __init__(
        self, tables: Tables, jobs: Jobs, wake: Callable[[], None], account_url: str
    ) -> None:
        self.tables = tables
        self.jobs = jobs
        self.wake = wake
        self.account_url = account_url
        self.schedules: dict[str, JobSchedule] = {
            schedule.id: schedule for schedule in tables.store.load(KIND, JobSchedule)
        }

    # --- the operations -------------------------------------------------------------------

    def create(self, body: Any) -> JobSchedule:
        spec = validate.job_schedule(body, "create")
        if spec["id"].lower() in {schedule_id.lower() for schedule_id in self.schedules}:
            raise errors.JobScheduleExists()
        now = self.tables.clock()
        schedule = JobSchedule(
            id=spec["id"],
            url=f"{self.account_url}/jobschedules/{spec['id']}",
            state="active",
            state_since=now,
            spec=spec,
            created=now,
        )
        schedule.next_run = _first_run(schedule, now)
        self._save(schedule, now)
        self.tick()
        return schedule

    def get(self, schedule_id: str) -> JobSchedule:
        self.tick()
        schedule = self.schedules.get(schedule_id)
        if schedule is None:
            raise errors.JobScheduleNotFound()
        return schedule

    def all(self) -> list[JobSchedule]:
        self.tick()
        return list(self.schedules.values())

    def jobs_of(self, schedule_id: str) -> list[Job]:
        self.get(schedule_id)
        prefix = f"{schedule_id}:job-"
        return [job for job in self.tables.jobs.values() if job.id.startswith(prefix)]

    def update(self, schedule_id: str, body: Any, replace: bool) -> JobSchedule:
        """PATCH (what is given replaces what was) or PUT (``replace``: metadata not given
        is removed). New settings apply to the jobs created from now on."""
        schedule = self._open(schedule_id)
        changes = validate.job_schedule(body, "replace" if replace else "update")
        now = self.tables.clock()
        if replace:
            schedule.spec.pop("metadata", None)
        schedule.spec.update(changes)
        if "schedule" in changes:
            schedule.next_run = _first_run(schedule, now) if schedule.state == "active" else None
        self._save(schedule, now)
        self.tick()
        return schedule

    def disable(self, schedule_id: str) -> JobSchedule:
        """No job is created until it is enabled; its jobs go on."""
        schedule = self._open(schedule_id)
        now = self.tables.clock()
        schedule.transition("disabled", now)
        schedule.next_run = None
        self._save(schedule, now)
        return schedule

    def enable(self, schedule_id: str) -> JobSchedule:
        schedule = self._open(schedule_id)
        if schedule.state == "disabled":
            now = self.tables.clock()
            schedule.transition("active", now)
            schedule.next_run = _first_run(schedule, now)
            self._save(schedule, now)
            self.tick()
        return schedule

    def terminate(self, schedule_id: str) -> JobSchedule:
        """Its active job is terminated, and it creates no more: completed."""
        schedule = self._open(schedule_id)
        now = self.tables.clock()
        schedule.transition("terminating", now)
        job = self._active_job(schedule)
        if job is not None and job.state in ("active", "disabling", "disabled"):
            self.jobs.terminate(job.id, "UserTerminate")
        self._complete(schedule, now)
        return schedule

    def delete(self, schedule_id: str) -> None:
        """The schedule and every job it created are deleted."""
        schedule = self.get(schedule_id)
        for job in self.jobs_of(schedule_id):
            if job.state != "deleting":
                self.jobs.delete(job.id)
        del self.schedules[schedule.id]
        self.tables.store.delete(KIND, schedule.id)

    # --- the clock ------------------------------------------------------------------------

    def tick(self) -> None:
        """Create the jobs now due, skip the runs missed, complete the schedules done."""
        now = self.tables.clock()
        for schedule in list(self.schedules.values()):
            if schedule.state == "active":
                self._run(schedule, now)

    def _run(self, schedule: JobSchedule, now: datetime) -> None:
        settings = schedule.spec["schedule"]
        window = _duration(settings, "startWindow")
        while schedule.next_run is not None and now >= schedule.next_run:
            if window is not None and now > schedule.next_run + window:
                schedule.next_run = _after(schedule, schedule.next_run)  # that run is lost
                self._save(schedule, now)
                continue
            if self._active_job(schedule) is not None:
                return  # one active job at a time: this run waits for it
            self._create_job(schedule, now)
            schedule.next_run = _after(schedule, schedule.next_run)
            self._save(schedule, now)
        if schedule.next_run is None and self._active_job(schedule) is None:
            self._complete(schedule, now)

    def _create_job(self, schedule: JobSchedule, now: datetime) -> None:
        schedule.jobs_created += 1
        job_id = f"{schedule.id}:job-{schedule.jobs_created}"
        self.jobs.create(copy.deepcopy(schedule.spec["jobSpecification"]), job_id=job_id)
        schedule.recent_job = job_id

    def _active_job(self, schedule: JobSchedule) -> Job | None:
        job = self.tables.jobs.get(schedule.recent_job or "")
        return job if job is not None and job.state != "completed" else None

    def _complete(self, schedule: JobSchedule, now: datetime) -> None:
        schedule.transition("completed", now)
        schedule.next_run, schedule.end_time = None, now
        self._save(schedule, now)

    def _open(self, schedule_id: str) -> JobSchedule:
        """The schedule, if it can still change (not completed, not terminating)."""
        schedule = self.get(schedule_id)
        if schedule.state == "completed":
            raise errors.JobScheduleCompleted()
        if schedule.state == "terminating":
            raise errors.JobScheduleBeingTerminated()
        return schedule

    def _save(self, schedule: JobSchedule, now: datetime) -> None:
        self.tables.touch(schedule, now)
        self.schedules[schedule.id] = schedule
        self.tables.store.put(KIND, schedule.id, schedule)
        self.wake()


def _duration(settings: dict[str, Any], name: str) -> timedelta | None:
    value = settings.get(name)
    return None if value is None else wire.parse_duration(value, name)


def _first_run(schedule: JobSchedule, now: datetime) -> datetime | None:
    """When its next job is due from now: doNotRunUntil, or now; None past doNotRunAfter."""
    until, after = validate.schedule_times(schedule.spec["schedule"])
    due = max(now, until) if until is not None else now
    return None if after is not None and due > after else due


def _after(schedule: JobSchedule, due: datetime) -> datetime | None:
    """The run after the one due at ``due``: a recurrenceInterval later, if it has one
    and that is not past doNotRunAfter."""
    interval = _duration(schedule.spec["schedule"], "recurrenceInterval")
    if interval is None:
        return None
    _, after = validate.schedule_times(schedule.spec["schedule"])
    following = due + interval
    return None if after is not None and following > after else following
