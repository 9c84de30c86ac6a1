"""``download``: a job's results (only this job's), and with ``logs`` its tasks' logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError

from runner import results
from runner.clients import Clients


@dataclass(frozen=True)
class Downloaded:
    files: int
    destination: Path


def download(clients: Clients, job_id: str, out: Path | None, logs: bool) -> Downloaded:
    """Each input's results into ``DIR/<its path>/`` while the job exists (its tasks'
    display names hold the paths); once it is deleted, into ``DIR/<task id>/``."""
    destination = results.destination(job_id, out)
    container = clients.container(clients.outputs.containers.output)
    try:
        tasks = clients.batch.list_tasks(job_id, select=["id", "displayName"])
        places = {task.id: task.display_name for task in tasks if task.display_name}
    except ResourceNotFoundError:
        places = {}
    fetched = results.download(container, job_id, destination, logs=logs, places=places)
    return Downloaded(fetched, destination)
