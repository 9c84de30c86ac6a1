"""``jobs``: the account's recent jobs, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from runner.clients import Clients, state_name


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    state: str
    created: datetime


def recent(clients: Clients, limit: int) -> list[JobSummary]:
    found = [
        JobSummary(job.id, state_name(job.state), job.creation_time)
        for job in clients.batch.list_jobs(select=["id", "state", "creationTime"])
    ]
    found.sort(key=lambda job: job.created, reverse=True)
    return found[:limit]
