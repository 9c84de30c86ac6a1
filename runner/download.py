"""``download``: a job's results (only this job's), and with ``logs`` its tasks' logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError

from runner import merge, packing, results
from runner.clients import Clients


@dataclass(frozen=True)
class Downloaded:
    files: int
    destination: Path


def download(clients: Clients, job_id: str, out: Path | None, logs: bool) -> Downloaded:
    """Each input's results into ``DIR/<its path>/``: the paths are in the tasks' display
    names while the job exists, and for inputs packed several to a task in the manifests
    beside the results; an input whose path is unknown gets ``DIR/<task id>/``. A merge
    stage's result goes into ``DIR`` itself."""
    destination = results.destination(job_id, out)
    container = clients.container(clients.outputs.containers.output)
    packed = results.expected_from_manifests(packing.read_manifests(container, job_id))
    places = results.places_of(packed)
    packed_tasks = {item.task_id for item in packed}  # their display names name no path
    try:
        tasks = clients.batch.list_tasks(job_id, select=["id", "displayName"])
        places |= {
            task.id: task.display_name
            for task in tasks
            if task.display_name and task.id not in packed_tasks
        }
    except ResourceNotFoundError:
        pass
    fetched = results.download(container, job_id, destination, logs=logs, places=places)
    fetched += len(merge.fetch_merged(container, job_id, destination))
    return Downloaded(fetched, destination)
