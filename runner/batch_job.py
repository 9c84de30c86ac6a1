"""The Batch job for a submit: a task per input (or per group of inputs, see
runner/packing.py), idempotent under a retried submit.

The job is created with onAllTasksComplete=noaction, its missing tasks are added with
``create_tasks`` (any number, chunked and concurrent), and only then is it switched to
terminatejob, as the service recommends: a job with no tasks yet counts as complete.
Task ids come from the input names, so submitting the same --job-id again adds nothing.
Inputs and the script reach the node as resource files read with the pool's managed
identity, and results leave as output files: no SAS or key on any command line. Only a
stack without a pool identity gets SAS URLs instead (see runner/sas.py), in those same
resource and output file URLs; ``node_access`` makes that choice.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from azure.batch import models
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, ContainerClient

from runner import merge, packing, preparation, sas
from runner.clients import Clients
from runner.fetch import logs_prefix, results_prefix
from runner.inputs import Input
from runner.packing import Group
from runner.program import Program

PLAN_WINDOW = 1000
"""Tasks planned and added at a time: ten add-task-collection requests of 100."""
INPUT_WINDOW = 1000
"""Inputs uploaded before their tasks are added."""
OUTPUT_DIR = "out"
"""The working-directory folder a task writes its results to; its files are collected."""


class JobError(RuntimeError):
    """The job cannot be submitted as asked (exit status 3)."""


NodeAccess = models.BatchNodeIdentityReference | sas.Signer
"""How nodes reach storage: the pool's managed identity, or else SAS URLs."""


@dataclass(frozen=True)
class TaskPlan:
    group: Group
    options: models.BatchTaskCreateOptions


@dataclass(frozen=True)
class Scripts:
    """What a job's tasks run: the program as its preparation task stages it on each
    node, and the merge script (then what is staged beside it) as blob names."""

    staged: preparation.Staged
    merge: tuple[str, ...] = ()


def node_access(
    clients: Clients,
    wait: timedelta | None,
    task_timeout: timedelta | None,
    task_retries: int,
) -> NodeAccess:
    """The pool's identity if the stack has one; only otherwise a SAS signer for the job.

    The SAS last as long as the runner waits for the job (``wait``, its --timeout) and at
    least as long as one task's every attempt, plus a margin: ``sas.lifetime``.
    """
    outputs = clients.outputs
    if outputs.poolIdentityResourceId:
        return models.BatchNodeIdentityReference(resource_id=outputs.poolIdentityResourceId)
    try:
        return sas.signer(clients.blobs, sas.lifetime(wait, task_timeout, task_retries + 1))
    except sas.SasError as error:
        raise JobError(str(error)) from None


def plan_tasks(
    clients: Clients,
    job_id: str,
    groups: Iterable[Group],
    scripts: Scripts,
    program: Program,
    task_retries: int,
    task_timeout: timedelta | None,
    access: NodeAccess,
    keep_logs: bool = False,
    exit_conditions: models.ExitConditions | None = None,
    handed_to: Mapping[str, str] | None = None,
) -> Iterator[TaskPlan]:
    """A task per group of inputs: the staged script run on its input, with the
    program's arguments after it, or for a packed group each.py running it on each.

    In the arguments, ``{input}`` becomes the input's file name on the node,
    ``{output_dir}`` the directory whose files are collected as results and
    ``{merge_dir}`` the one whose files only the merge stage reads, handed to the blob
    prefix ``handed_to`` gives (``merge.handoffs``). The node reads and writes blobs
    with ``access`` (from ``node_access``).
    """
    handed_to = handed_to or {}
    staged = clients.container(clients.outputs.containers.input)
    single = dataclasses.replace(scripts.staged, wrapper=None)  # a task of one input
    results_url, identity = _output_container(clients, access)
    results_at, logs_at = results_prefix(job_id), logs_prefix(job_id)
    hands_over = any("{merge_dir}" in argument for argument in program.arguments)
    for group in groups:
        outputs_of_task = [
            _output(f"{OUTPUT_DIR}/**/*", results_url, f"{results_at}/{group.task_id}", identity),
            _logs_output(results_url, f"{logs_at}/{group.task_id}", identity, keep_logs),
        ]
        if hands_over:
            handed = handed_to.get(group.task_id, f"{merge.handed_prefix(job_id)}/{group.task_id}")
            outputs_of_task.append(
                _output(f"{merge.MERGE_DIR}/**/*", results_url, handed.rstrip("/"), identity)
            )
        if group.packed:
            if scripts.staged.wrapper is None:
                raise ValueError("a packed task needs the staged wrapper")
            command = preparation.task_command(
                scripts.staged, program.arguments, program.in_process
            )
            resources = [
                _resource(
                    _input_blob(clients, staged, job_id, item),
                    f"{packing.INPUTS_DIR}/{item.task_id}/{item.name}",
                    access,
                )
                for item in group.members
            ]
            outputs_of_task.append(
                _output(
                    packing.STATUS_FILE,
                    results_url,
                    f"{packing.status_prefix(job_id)}/{group.task_id}.json",
                    identity,
                )
            )
        else:
            (item,) = group.members
            expanded = [
                argument.replace("{input}", item.name)
                .replace("{output_dir}", OUTPUT_DIR)
                .replace("{merge_dir}", merge.MERGE_DIR)
                for argument in program.arguments
            ]
            command = preparation.task_command(single, expanded)
            resources = [_resource(_input_blob(clients, staged, job_id, item), item.name, access)]
        options = models.BatchTaskCreateOptions(
            id=group.task_id,
            display_name=group.display_name,
            command_line=command,
            resource_files=resources,
            output_files=outputs_of_task,
            constraints=models.BatchTaskConstraints(
                max_task_retry_count=task_retries,
                max_wall_clock_time=task_timeout,
            ),
            exit_conditions=exit_conditions,
        )
        yield TaskPlan(group, options)


def plan_merges(
    clients: Clients,
    job_id: str,
    tasks: Iterable[merge.MergeTask],
    how: merge.Merge,
    scripts: Scripts,
    task_retries: int,
    task_timeout: timedelta | None,
    access: NodeAccess,
    keep_logs: bool = False,
) -> list[models.BatchTaskCreateOptions]:
    """The merge tasks (see runner/merge.py): each runs the staged merge script on what
    the tasks it depends on left under its ``sources``, read by blob prefix."""
    application = clients.container(clients.outputs.containers.application)
    results = clients.container(clients.outputs.containers.output)
    results_url, identity = _output_container(clients, access)
    staged = [
        _resource(application.get_blob_client(name), name.rsplit("/", 1)[-1], access, "0755")
        for name in scripts.merge
    ]
    read_url = access.read_container(results) if isinstance(access, sas.Signer) else results.url
    reader = None if isinstance(access, sas.Signer) else access
    planned = []
    for task in tasks:
        sources = [
            models.ResourceFile(
                storage_container_url=read_url,
                blob_prefix=source,
                file_path=f"{merge.INPUTS_DIR}/{folder}".rstrip("/"),
                identity_reference=reader,
            )
            for source, folder in task.sources
        ]
        outputs_of_task = [
            _output(f"{merge.OUTPUT_DIR}/**/*", results_url, task.output.rstrip("/"), identity),
            _logs_output(results_url, f"{logs_prefix(job_id)}/{task.task_id}", identity, keep_logs),
        ]
        planned.append(
            models.BatchTaskCreateOptions(
                id=task.task_id,
                display_name="merge of all inputs" if task.root else f"merge {task.task_id}",
                command_line=merge.command_line(how, task),
                resource_files=[*staged, *sources],
                output_files=outputs_of_task,
                depends_on=models.BatchTaskDependencies(task_ids=list(task.depends_on)),
                exit_conditions=merge.exit_conditions(how),
                constraints=models.BatchTaskConstraints(
                    max_task_retry_count=task_retries, max_wall_clock_time=task_timeout
                ),
            )
        )
    return planned


def resources(clients: Clients, access: NodeAccess) -> preparation.ResourceMaker:
    """Resource files for blobs of the application container, read with ``access``."""
    application = clients.container(clients.outputs.containers.application)

    def make(name: str, file_path: str, mode: str | None) -> models.ResourceFile:
        return _resource(application.get_blob_client(name), file_path, access, mode)

    return make


def _output_container(
    clients: Clients, access: NodeAccess
) -> tuple[str, models.BatchNodeIdentityReference | None]:
    """The output container's URL for nodes to write to, and the identity they use."""
    results = clients.container(clients.outputs.containers.output)
    if isinstance(access, sas.Signer):
        return access.write_container(results), None
    return results.url, access


def _logs_output(
    container_url: str,
    path: str,
    identity: models.BatchNodeIdentityReference | None,
    keep_logs: bool,
) -> models.OutputFile:
    """A failed task's stdout and stderr always; a successful one's with keep_logs (they
    stay on the node for `logs` while the job exists)."""
    condition = "taskcompletion" if keep_logs else "taskfailure"
    return _output("../std*.txt", container_url, path, identity, condition)


def _input_blob(clients: Clients, staged: ContainerClient, job_id: str, item: Input) -> BlobClient:
    """Where a task reads its input: the blob staged for the job, or where it is stored."""
    if item.stored is not None:
        return clients.container(item.stored.container).get_blob_client(item.stored.blob)
    return staged.get_blob_client(f"{job_id}/{item.blob}")


def _resource(
    blob: BlobClient, file_path: str, access: NodeAccess, file_mode: str | None = None
) -> models.ResourceFile:
    if isinstance(access, sas.Signer):
        return models.ResourceFile(
            http_url=access.read_blob(blob), file_path=file_path, file_mode=file_mode
        )
    return models.ResourceFile(
        http_url=blob.url, file_path=file_path, file_mode=file_mode, identity_reference=access
    )


def _output(
    pattern: str,
    container_url: str,
    path: str,
    identity: models.BatchNodeIdentityReference | None,
    condition: str = "taskcompletion",
) -> models.OutputFile:
    return models.OutputFile(
        file_pattern=pattern,
        destination=models.OutputFileDestination(
            container=models.OutputFileBlobContainerDestination(
                container_url=container_url, path=path, identity_reference=identity
            )
        ),
        upload_options=models.OutputFileUploadConfiguration(upload_condition=condition),
    )


def _windows(plans: Iterable[TaskPlan]) -> Iterator[list[TaskPlan]]:
    """The plans in windows of at most PLAN_WINDOW tasks and about INPUT_WINDOW inputs."""
    window: list[TaskPlan] = []
    inputs = 0
    for plan in plans:
        window.append(plan)
        inputs += len(plan.group.members)
        if len(window) >= PLAN_WINDOW or inputs >= INPUT_WINDOW:
            yield window
            window, inputs = [], 0
    if window:
        yield window


def _options(
    window: Sequence[TaskPlan], before_adding: Callable[[Sequence[Group]], None]
) -> list[models.BatchTaskCreateOptions]:
    before_adding([plan.group for plan in window])
    return [plan.options for plan in window]


def pool_slots(clients: Clients) -> int:
    """The task slots the stack's pool has or is heading for (at least one node's)."""
    pool = clients.batch.get_pool(clients.outputs.poolId)
    nodes = max(
        (pool.current_dedicated_nodes or 0) + (pool.current_low_priority_nodes or 0),
        (pool.target_dedicated_nodes or 0) + (pool.target_low_priority_nodes or 0),
        1,
    )
    return nodes * (pool.task_slots_per_node or 1)


def find(clients: Clients, job_id: str) -> models.BatchJob | None:
    """The job, or None if there is none with this id."""
    try:
        return clients.batch.get_job(job_id)
    except ResourceNotFoundError:
        return None


def task_ids(clients: Clients, job_id: str) -> set[str]:
    return {task.id for task in clients.batch.list_tasks(job_id, select=["id"])}


def submit(
    clients: Clients,
    job_id: str,
    plans: Iterable[TaskPlan],
    metadata: Sequence[models.BatchMetadataItem] = (),
    before_adding: Callable[[Sequence[Group]], None] = lambda window: None,
    merges: Sequence[models.BatchTaskCreateOptions] = (),
    prepared: preparation.JobTasks | None = None,
) -> int:
    """Create the job if new and add the tasks it lacks; returns how many were added.

    The plans are read a window at a time (``plan_tasks`` makes them as they are read),
    so a job of 100,000 inputs never has all its task bodies in memory; each window's
    groups go to ``before_adding`` (which uploads their inputs) before its tasks are
    added, so the first tasks run while the later inputs are uploaded."""
    batch = clients.batch
    try:
        batch.create_job(
            models.BatchJobCreateOptions(
                id=job_id,
                pool_info=models.BatchPoolInfo(pool_id=clients.outputs.poolId),
                all_tasks_complete_mode="noaction",
                metadata=list(metadata) or None,
                uses_task_dependencies=True if merges else None,
                job_preparation_task=prepared[0] if prepared else None,
                job_release_task=prepared[1] if prepared else None,
            )
        )
    except ResourceExistsError:
        job = batch.get_job(job_id)
        if job.pool_info is None or job.pool_info.pool_id != clients.outputs.poolId:
            raise JobError(f"job {job_id} exists and runs on another pool") from None
    existing = task_ids(clients, job_id)
    added, checked = 0, False
    windows = _windows(plans)
    for options in itertools.chain(
        (_options(window, before_adding) for window in windows), [merges]
    ):
        missing = [option for option in options if option.id not in existing]
        if not missing:
            continue
        if not checked and batch.get_job(job_id).state != "active":
            raise JobError(f"job {job_id} is already complete; choose another --job-id")
        checked = True
        result = batch.create_tasks(job_id, missing, max_concurrency=4)
        # TaskExists: another runner on the same job added it first; it is there.
        failed = [
            r
            for r in result.result_values or []
            if r.status != "success" and not (r.error and r.error.code == "TaskExists")
        ]
        if failed:
            codes = ", ".join(
                f"{r.task_id}: {r.error.code if r.error else r.status}" for r in failed[:5]
            )
            raise JobError(f"the service refused {len(failed)} task(s): {codes}")
        added += len(missing)
    if batch.get_job(job_id).state == "active":
        batch.update_job(
            job_id, models.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob")
        )
    return added
