"""``status``: a job's state and task counts."""

from __future__ import annotations

from dataclasses import dataclass

from runner.clients import Clients, state_name


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: str
    active: int
    running: int
    succeeded: int
    failed: int


def job_status(clients: Clients, job_id: str) -> JobStatus:
    state = clients.batch.get_job(job_id, select=["state"]).state
    counts = clients.batch.get_job_task_counts(job_id).task_counts
    return JobStatus(
        job_id, state_name(state), counts.active, counts.running, counts.succeeded, counts.failed
    )
