"""``wait``: watch a job (submitted now or earlier) to its end, then fetch its results.

``finish`` is the one way a job ends, from ``submit`` or from ``wait``: watch, download
this job's results, read them back, and remove its inputs if every task succeeded and
the job was not submitted with --keep-inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from runner import batch_job, diagnosis, monitor, packing, results, staging
from runner.clients import Clients
from runner.display import plural
from runner.fingerprint import Fingerprint
from runner.inputs import node_name
from runner.program import Program, TopWords, for_script_blob

if TYPE_CHECKING:
    from runner.submit import Request


class JobNotFound(LookupError):
    """A job id this stack has no job for (the user's mistake: exit status 2); its
    argument is the id."""


class JobIncomplete(LookupError):
    """A job whose submit stopped before all its tasks were added: only the same
    submit again (with its --job-id) can add them; waiting would wait for nothing."""


def finish(
    clients: Clients,
    job_id: str,
    expected: Sequence[results.Expected],
    program: Program,
    request: Request,
    on_progress: Callable[[monitor.Progress], None] | None = None,
    log: Callable[[str], None] = lambda line: None,
    keep_inputs: bool = True,
) -> list[results.TaskResult]:
    """Watch (if asked), download this job's results, read them back, clean up."""
    if on_progress is not None:
        monitor.watch(
            clients.batch,
            job_id,
            len({item.task_id for item in expected}),  # several inputs may share a task
            on_progress,
            request.timeout,
            request.poll_interval,
            log=log,
            stall=diagnosis.Stall(
                lambda: diagnosis.diagnose(clients.batch, clients.outputs.poolId),
                lambda line: log(f"job {job_id}: {line}"),
                request.stall_timeout,
            ),
        )
    destination = results.destination(job_id, request.out)
    container = clients.container(clients.outputs.containers.output)
    fetched = results.download(container, job_id, destination, places=results.places_of(expected))
    log(f"job {job_id}: downloaded {plural(fetched, 'file')} to {destination}")
    collected = results.collect(clients.batch, container, job_id, expected, destination, program)
    if not keep_inputs and all(result.succeeded for result in collected):
        inputs = clients.container(clients.outputs.containers.input)
        removed = staging.remove_blobs(inputs, job_id)
        if removed:
            blobs = plural(removed, "input blob")
            log(f"job {job_id}: removed its {blobs} (--keep-inputs keeps them)")
    return collected


def submitted(clients: Clients, job_id: str) -> tuple[list[results.Expected], Program, bool]:
    """A job submitted earlier: its tasks, named by their display names (input names),
    the program they run (from the script its first task stages), and whether its
    inputs are kept (from its fingerprint; kept when it has none)."""
    job = batch_job.find(clients, job_id)
    if job is None:
        raise JobNotFound(job_id)
    recorded = Fingerprint.read(job.metadata)
    tasks = list(clients.batch.list_tasks(job_id, select=["id", "displayName"]))
    per_task = recorded.files_per_task if recorded is not None else 1
    if per_task > 1:
        output = clients.container(clients.outputs.containers.output)
        expected = results.expected_from_manifests(packing.read_manifests(output, job_id))
    else:
        expected = [
            results.Expected(
                task.id,
                node_name(task.display_name or task.id),
                task.display_name or task.id,
                task.display_name or task.id,
            )
            for task in tasks
        ]
    inputs_count = int(recorded.inputs.split(":")[0]) if recorded is not None else None
    expected_tasks = -(-inputs_count // per_task) if inputs_count is not None else None
    if not tasks or (expected_tasks is not None and len(tasks) < expected_tasks):
        of = f" of {expected_tasks}" if expected_tasks is not None else ""
        raise JobIncomplete(
            f"job {job_id} has {len(tasks)}{of} tasks: its submit stopped before adding them "
            f"all; run the same submit again with --job-id {job_id}"
        )
    program: Program = TopWords()
    if tasks:
        first = clients.batch.get_task(job_id, tasks[0].id, select=["resourceFiles"])
        for resource in first.resource_files or []:
            path = unquote(urlsplit(resource.http_url or "").path)
            if "/scripts/" in path and not path.endswith(f"/{packing.WRAPPER.name}"):
                program = for_script_blob("scripts/" + path.split("/scripts/", 1)[1])
                break
    return expected, program, recorded.keep_inputs if recorded is not None else True
