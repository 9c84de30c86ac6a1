"""``jobs``: the account's recent jobs, newest first, with how many of their tasks failed
(a job whose every task failed is ``completed`` to the service, and must not look done)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from azure.batch import models

from runner.clients import Clients, state_name

PARALLEL_COUNTS = 8
"""Task-count requests in flight at once: one a job listed."""


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    state: str
    created: datetime
    tasks: int = 0
    failed: int = 0

    @property
    def shown_state(self) -> str:
        """``completed``, or ``completed, 3 of 3 tasks failed``."""
        if not self.failed:
            return self.state
        return f"{self.state}, {self.failed} of {self.tasks} tasks failed"


def recent(clients: Clients, limit: int) -> list[JobSummary]:
    listed = sorted(
        clients.batch.list_jobs(select=["id", "state", "creationTime"]),
        key=lambda job: job.creation_time,
        reverse=True,
    )[:limit]

    def summary(job: models.BatchJob) -> JobSummary:
        counts = clients.batch.get_job_task_counts(job.id).task_counts
        total = counts.active + counts.running + counts.completed
        return JobSummary(job.id, state_name(job.state), job.creation_time, total, counts.failed)

    with ThreadPoolExecutor(PARALLEL_COUNTS) as pool:
        return list(pool.map(summary, listed))
