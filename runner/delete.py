"""``delete``: a job, and with ``inputs`` its input, result and log blobs (those also
once the job is gone)."""

from __future__ import annotations

from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError

from runner import staging
from runner.clients import Clients


@dataclass(frozen=True)
class Deleted:
    job_was_there: bool
    blobs: int  # deleted (with ``inputs``)
    kept: int = 0  # left in storage (without): the user is told they stay


def delete(clients: Clients, job_id: str, inputs: bool) -> Deleted:
    try:
        clients.batch.begin_delete_job(job_id, polling_interval=1).result()
        job_was_there = True
    except ResourceNotFoundError:
        if not inputs:
            raise
        job_was_there = False
    names = clients.outputs.containers
    containers = [clients.container(name) for name in (names.input, names.output)]
    if not inputs:
        prefix = f"{job_id}/"
        kept = sum(1 for c in containers for _ in c.list_blobs(name_starts_with=prefix))
        return Deleted(job_was_there, 0, kept)
    return Deleted(job_was_there, sum(staging.remove_blobs(c, job_id) for c in containers))
