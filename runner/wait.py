"""``wait``: watch a job (submitted now or earlier) to its end, then fetch its results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from runner import monitor, results
from runner.clients import Clients
from runner.program import Program, TopWords, for_script_blob

if TYPE_CHECKING:
    from runner.submit import Request


def finish(
    clients: Clients,
    job_id: str,
    expected: Sequence[results.Expected],
    program: Program,
    request: Request,
    on_progress: Callable[[monitor.Progress], None] | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> list[results.TaskResult]:
    """Watch (if asked), download this job's results and read them back."""
    if on_progress is not None:
        monitor.watch(
            clients.batch,
            job_id,
            len(expected),
            on_progress,
            request.timeout,
            request.poll_interval,
        )
    destination = results.destination(job_id, request.out)
    container = clients.container(clients.outputs.containers.output)
    fetched = results.download(container, job_id, destination)
    log(f"job {job_id}: downloaded {fetched} files to {destination}")
    return results.collect(clients.batch, container, job_id, expected, destination, program)


def submitted(clients: Clients, job_id: str) -> tuple[list[results.Expected], Program]:
    """A job submitted earlier: its tasks, named by their display names (input names),
    and the program they run, known from the script its first task stages."""
    tasks = list(clients.batch.list_tasks(job_id, select=["id", "displayName"]))
    expected = [
        results.Expected(task.id, task.display_name or task.id, task.display_name or task.id)
        for task in tasks
    ]
    program: Program = TopWords()
    if tasks:
        first = clients.batch.get_task(job_id, tasks[0].id, select=["resourceFiles"])
        for resource in first.resource_files or []:
            path = unquote(urlsplit(resource.http_url or "").path)
            if "/scripts/" in path:
                program = for_script_blob("scripts/" + path.split("/scripts/", 1)[1])
                break
    return expected, program
