"""``logs``: a task's stdout or stderr, from its node, or from the output container once
the node has no copy (the job deleted, the node gone); and the job preparation task's,
from each node that ran it (they stay on the nodes while the job exists)."""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from runner import fetch
from runner.clients import Clients
from runner.diagnosis import preparation_folder


def task_log(clients: Clients, job_id: str, task_id: str, stderr: bool) -> bytes | None:
    """The log's bytes; None when neither the node nor the container has it."""
    name = "stderr.txt" if stderr else "stdout.txt"
    try:
        return b"".join(clients.batch.download_task_file(job_id, task_id, name))
    except ResourceNotFoundError:
        pass
    container = clients.container(clients.outputs.containers.output)
    blob = f"{fetch.logs_prefix(job_id)}/{task_id}/{name}"
    try:
        return container.download_blob(blob).readall()
    except ResourceNotFoundError:
        return None


def preparation_logs(clients: Clients, job_id: str, stderr: bool) -> list[tuple[str, bytes]]:
    """(node id, log) for every node that ran the job's preparation task, as the job's
    preparation status lists them; empty when none has (or the job has none)."""
    name = "stderr.txt" if stderr else "stdout.txt"
    batch, pool_id = clients.batch, clients.outputs.poolId
    try:
        statuses = list(batch.list_job_preparation_and_release_task_status(job_id))
    except HttpResponseError:
        return []
    found = []
    for status in statuses:
        folder = preparation_folder(job_id, status.job_preparation_task_execution_info)
        try:
            content = b"".join(
                batch.download_node_file(pool_id, status.node_id or "", f"{folder}/{name}")
            )
        except ResourceNotFoundError:
            continue
        found.append((status.node_id or "", content))
    return found
