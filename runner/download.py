"""``download``: a job's results (only this job's), and with ``logs`` its tasks' logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError

from runner import batch_job, fetch, merge, packing, results
from runner.clients import Clients
from runner.fingerprint import Fingerprint
from runner.inputs import node_name
from runner.program import for_script_blob


@dataclass(frozen=True)
class Downloaded:
    files: int  # in the folder: fetched now, or downloaded before and unchanged
    destination: Path
    fetched: int = 0  # of them, fetched now


def download(clients: Clients, job_id: str, out: Path | None, logs: bool) -> Downloaded:
    """Each input's results into ``DIR/<its path>/``: the paths are in the tasks' display
    names while the job exists, and for inputs packed several to a task in the manifests
    beside the results; an input whose path is unknown gets ``DIR/<task id>/``. A merge
    stage's result goes into ``DIR`` itself. A file already there, complete and unchanged,
    is not fetched again; a document naming its input names it as submit did."""
    destination = fetch.destination(job_id, out)
    container = clients.container(clients.outputs.containers.output)
    expected = results.expected_from_manifests(packing.read_manifests(container, job_id))
    packed_tasks = {item.task_id for item in expected}  # their display names name no path
    job = batch_job.find(clients, job_id)
    if job is not None:
        labels = packing.read_labels(container, job_id, job.metadata)
        try:
            tasks = clients.batch.list_tasks(job_id, select=["id", "displayName"])
            expected += [
                results.Expected(
                    task.id,
                    node_name(task.display_name),
                    labels.of(task.id, task.display_name),
                    task.display_name,
                )
                for task in tasks
                if task.display_name
                and task.id not in packed_tasks
                and not merge.is_merge_task(task.id)
            ]
        except ResourceNotFoundError:  # deleted since
            job = None
    recorded = Fingerprint.read(job.metadata) if job is not None else None
    named = (
        fetch.input_names(expected, for_script_blob(recorded.script))
        if recorded is not None
        else None
    )
    tally = fetch.Tally()
    try:
        fetch.download(
            container,
            job_id,
            destination,
            logs=logs,
            places=results.places_of(expected),
            named=named,
            tally=tally,
        )
        merge.fetch_merged(container, job_id, destination, tally)
    except fetch.DownloadError as error:
        raise fetch.DownloadError(f"job {job_id}: {error}") from None
    return Downloaded(tally.files, destination, tally.fetched)
