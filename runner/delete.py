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
    blobs: int


def delete(clients: Clients, job_id: str, inputs: bool) -> Deleted:
    try:
        clients.batch.begin_delete_job(job_id, polling_interval=1).result()
        job_was_there = True
    except ResourceNotFoundError:
        if not inputs:
            raise
        job_was_there = False
    names = clients.outputs.containers
    blobs = sum(
        staging.remove_blobs(clients.container(name), job_id)
        for name in ((names.input, names.output) if inputs else ())
    )
    return Deleted(job_was_there, blobs)
