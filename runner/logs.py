"""``logs``: a task's stdout or stderr, from its node, or from the output container once
the node has no copy (the job deleted, the node gone)."""

from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError

from runner import results
from runner.clients import Clients


def task_log(clients: Clients, job_id: str, task_id: str, stderr: bool) -> bytes | None:
    """The log's bytes; None when neither the node nor the container has it."""
    name = "stderr.txt" if stderr else "stdout.txt"
    try:
        return b"".join(clients.batch.download_task_file(job_id, task_id, name))
    except ResourceNotFoundError:
        pass
    container = clients.container(clients.outputs.containers.output)
    blob = f"{results.logs_prefix(job_id)}/{task_id}/{name}"
    try:
        return container.download_blob(blob).readall()
    except ResourceNotFoundError:
        return None
