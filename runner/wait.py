"""``wait``: watch a job (submitted now or earlier) to its end, then fetch its results.

``finish`` is the one way a job ends, from ``submit`` or from ``wait``: watch, download
this job's results, read them back, and remove its inputs if every task succeeded and
the job was not submitted with --keep-inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import AzureError, HttpResponseError

from runner import batch_job, diagnosis, merge, monitor, packing, results, staging
from runner.clients import Clients
from runner.display import first_line, plural
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


@dataclass(frozen=True)
class Job:
    """What finishing a job needs to know of it: the inputs it should have results for,
    its program, whether its inputs are kept, and its merge stage if it has one."""

    expected: list[results.Expected]
    program: Program
    keep_inputs: bool = True
    merge: merge.Recorded | None = None
    merge_tasks: int = 0

    @property
    def tasks(self) -> int:
        """How many tasks the job has: several inputs may share one; and its merges."""
        return len({item.task_id for item in self.expected}) + self.merge_tasks


@dataclass(frozen=True)
class Finished:
    results: list[results.TaskResult]
    merged: merge.Merged | None = None

    @property
    def succeeded(self) -> bool:
        merged = self.merged is None or self.merged.succeeded
        return merged and all(result.succeeded for result in self.results)


def finish(
    clients: Clients,
    job_id: str,
    job: Job,
    request: Request,
    on_progress: Callable[[monitor.Progress], None] | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> Finished:
    """Watch (if asked), download this job's results, read them back, clean up."""
    if on_progress is not None:
        unblock = (
            merge.Unblock(clients.batch, job_id, job.merge_tasks, log)
            if job.merge is not None and not job.merge.partial
            else lambda progress: None
        )
        try:
            monitor.watch(
                clients.batch,
                job_id,
                job.tasks,
                on_progress,
                request.timeout,
                request.poll_interval,
                log=log,
                stall=diagnosis.Stall(
                    lambda: diagnosis.diagnose(clients.batch, clients.outputs.poolId, job_id),
                    lambda line: log(f"job {job_id}: {line}"),
                    request.stall_timeout,
                ),
                settle=unblock,
            )
        except diagnosis.Stalled as stalled:
            if not stalled.ends_job:
                raise
            end(clients, job_id)  # its nodes would otherwise stay up for tasks never run
            raise diagnosis.Stalled(
                f"{stalled}; job {job_id} is terminated: fix what failed and submit again",
                ends_job=True,
            ) from None
    destination = results.destination(job_id, request.out)
    container = clients.container(clients.outputs.containers.output)
    places = results.places_of(job.expected)
    fetched = results.download(container, job_id, destination, places=places)
    log(f"job {job_id}: downloaded {plural(fetched, 'file')} to {destination}")
    collected = results.collect(
        clients.batch, container, job_id, job.expected, destination, job.program
    )
    merged = None
    if job.merge is not None:
        failed = [result.input for result in collected if not result.succeeded]
        merged = merge.collect(clients.batch, container, job_id, destination, job.merge, failed)
    if not job.keep_inputs and all(result.succeeded for result in collected):
        inputs = clients.container(clients.outputs.containers.input)
        try:
            removed = staging.remove_blobs(inputs, job_id)
        except AzureError as error:  # the results are in: clean-up failing is no failure
            first = first_line(error)
            log(
                f"job {job_id}: warning: its inputs were not all removed ({first}); "
                f"`delete {job_id} --inputs` removes them"
            )
            removed = 0
        if removed:
            blobs = plural(removed, "input blob")
            log(f"job {job_id}: removed its {blobs} (--keep-inputs keeps them)")
    return Finished(collected, merged)


def end(clients: Clients, job_id: str) -> None:
    """Terminate a job whose preparation failed (one already ending is left as it is)."""
    try:
        # The request only: its end is not awaited. azure-batch 15 sends none without a
        # body, and exports no model for it: the body as the REST API reads it.
        reason: Any = {"terminateReason": "PreparationFailed"}
        clients.batch.begin_terminate_job(job_id, reason)
    except HttpResponseError as error:
        if error.status_code != 409:  # JobCompleted, or being terminated already
            raise


def submitted(clients: Clients, job_id: str) -> Job:
    """A job submitted earlier: its tasks, named by their display names (input names),
    the program they run (from its fingerprint's script), whether its inputs
    are kept and its merge stage (from its fingerprint; kept and none when it has none)."""
    job = batch_job.find(clients, job_id)
    if job is None:
        raise JobNotFound(job_id)
    recorded = Fingerprint.read(job.metadata)
    listed = list(clients.batch.list_tasks(job_id, select=["id", "displayName"]))
    tasks = [task for task in listed if not merge.is_merge_task(task.id or "")]
    merge_tasks = len(listed) - len(tasks)
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
    if recorded is not None:
        program = for_script_blob(recorded.script)
    elif tasks:  # a job submitted without a fingerprint: its first task names the script
        first = clients.batch.get_task(job_id, tasks[0].id, select=["resourceFiles"])
        for resource in first.resource_files or []:
            path = unquote(urlsplit(resource.http_url or "").path)
            if "/scripts/" in path and not path.endswith(f"/{packing.WRAPPER.name}"):
                program = for_script_blob("scripts/" + path.split("/scripts/", 1)[1])
                break
    merged = merge.Recorded.read(recorded.merge) if recorded is not None else None
    keep = recorded.keep_inputs if recorded is not None else True
    return Job(expected, program, keep, merged, merge_tasks)
