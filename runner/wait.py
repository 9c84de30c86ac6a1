"""``wait``: a job submitted earlier, read back from the service (its tasks, program and
merge stage, from its fingerprint), to be finished as ``submit`` finishes one."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from runner import batch_job, merge, packing, results
from runner.clients import Clients
from runner.fingerprint import Fingerprint
from runner.finishing import Job
from runner.inputs import node_name
from runner.program import Program, TopWords, for_script_blob


class JobNotFound(LookupError):
    """A job id this stack has no job for (the user's mistake: exit status 2); its
    argument is the id."""


class JobIncomplete(LookupError):
    """A job whose submit stopped before all its tasks were added: only the same
    submit again (with its --job-id) can add them; waiting would wait for nothing."""


def submitted(clients: Clients, job_id: str) -> Job:
    """A job submitted earlier: its tasks, their inputs named as submit named them (their
    display names hold their paths below the inputs' root, and the job's metadata what
    makes those the names given: ``packing.read_labels``), the program they run (from
    its fingerprint's script), whether its inputs are kept and its merge stage (from its
    fingerprint; kept and none when it has none)."""
    job = batch_job.find(clients, job_id)
    if job is None:
        raise JobNotFound(job_id)
    recorded = Fingerprint.read(job.metadata)
    listed = list(clients.batch.list_tasks(job_id, select=["id", "displayName"]))
    tasks = [task for task in listed if not merge.is_merge_task(task.id or "")]
    merge_tasks = len(listed) - len(tasks)
    per_task = recorded.files_per_task if recorded is not None else 1
    output = clients.container(clients.outputs.containers.output)
    if per_task > 1:
        expected = results.expected_from_manifests(packing.read_manifests(output, job_id))
    else:
        labels = packing.read_labels(output, job_id, job.metadata)
        expected = [
            results.Expected(
                task.id,
                node_name(task.display_name or task.id),
                labels.of(task.id, task.display_name or task.id),
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
