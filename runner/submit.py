"""``submit``: inputs checked, staged, run as one Batch task each, watched, fetched.

A job records what it was submitted with (``fingerprint``). Submitting the same
--job-id again resumes it when the inputs and the program are the same: nothing is
uploaded that is there, no task is added twice, and the results are fetched. Anything
different is refused, naming what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from azure.batch import models

from runner import (
    batch_job,
    merge,
    monitor,
    packing,
    preparation,
    results,
    sas,
    staging,
)
from runner.bundle import Environment
from runner.clients import Clients
from runner.display import plural
from runner.fingerprint import Fingerprint
from runner.finishing import Finished, Job, Request, finish
from runner.inputs import Input, InputError, content_md5s
from runner.program import Program


@dataclass
class Submission:
    """How far a submit got: what an interrupted one must be resumed with."""

    job_id: str
    tasks_added: bool = False  # every task is in the job: `wait` resumes it


class JobConflict(InputError):
    """A --job-id that names a job submitted with other inputs or another program."""


def run(
    clients: Clients,
    inputs: Sequence[Input],
    request: Request,
    log: Callable[[str], None],
    on_progress: Callable[[monitor.Progress], None],
    submission: Submission,
) -> Finished:
    """Submit ``inputs`` (already checked by ``check_inputs``) as one job, and finish it."""
    program, job_id, merging = request.program, submission.job_id, request.merge
    md5s = content_md5s(inputs)
    job = batch_job.find(clients, job_id)
    recorded = Fingerprint.read(job.metadata) if job is not None else None
    per_task = files_per_task(clients, inputs, request.files_per_task, recorded)
    record = merging.record() if merging else ""
    fingerprint = Fingerprint.of(
        program,
        inputs,
        md5s,
        request.keep_inputs,
        per_task,
        record,
        request.environment.record(),
    )
    if recorded is not None and (differences := recorded.differences(fingerprint)):
        raise JobConflict(
            f"job {job_id} was submitted with other settings: {'; '.join(differences)}; "
            "give a new --job-id to run these"
        )
    groups = list(packing.pack(inputs, per_task))
    merges = merge.plan(job_id, groups, merging) if merging else []
    wanted = {group.task_id for group in groups} | {task.task_id for task in merges}
    if job is not None and wanted <= batch_job.task_ids(clients, job_id):
        log(f"job {job_id}: already submitted with these inputs; nothing to upload or add")
    else:
        added = (inputs, groups, md5s, merges)
        _stage_and_add(clients, *added, request, fingerprint, submission, log)
    submission.tasks_added = True
    job_to_finish = Job(
        results.expected_from_inputs(groups),
        program,
        request.keep_inputs,
        merge.Recorded.of(merging) if merging else None,
        len(merges),
    )
    del md5s, groups, wanted, merges  # a job of 100,000 inputs needs none of them to finish
    return finish(clients, job_id, job_to_finish, request, on_progress, log)


def files_per_task(
    clients: Clients,
    inputs: Sequence[Input],
    asked: int | None,
    recorded: Fingerprint | None = None,
) -> int:
    """The inputs per task: as asked, else (``auto``) as the job was submitted with when
    it is resumed (the pool's size may have changed since), else from the inputs and the
    pool's slots (``packing.auto``)."""
    if asked is not None:
        return asked
    if recorded is not None:
        return recorded.files_per_task
    total = sum(item.size for item in inputs)
    return packing.auto(len(inputs), total, lambda: batch_job.pool_slots(clients))


def folders_named(program: Program) -> tuple[str, ...]:
    """The folders a program's arguments name, which a task creates before running it."""
    named = (("{output_dir}", batch_job.OUTPUT_DIR), ("{merge_dir}", merge.MERGE_DIR))
    return tuple(
        folder
        for placeholder, folder in named
        if any(placeholder in argument for argument in program.arguments)
    )


def _stage_and_add(
    clients: Clients,
    inputs: Sequence[Input],
    groups: Sequence[packing.Group],
    md5s: dict[str, bytes],
    merges: Sequence[merge.MergeTask],
    request: Request,
    fingerprint: Fingerprint,
    submission: Submission,
    log: Callable[[str], None],
) -> None:
    """Upload and add a window of tasks at a time, so the first tasks run while later
    inputs are still being uploaded. The submission is marked as having all its tasks
    before that is said: a Ctrl-C after the line resumes with ``wait``."""
    job_id = submission.job_id
    containers = clients.outputs.containers
    application = clients.container(containers.application)
    packed = any(group.packed for group in groups)
    merging = request.merge
    merge_scripts = (merging.script, *merging.companions) if merging else ()
    environment = request.environment
    staged_program = preparation.stage(
        application,
        request.program.script,
        environment,
        packing.WRAPPER if packed else None,
        preparation.nodes_platform(clients) if environment.needs_install else None,
        folders_named(request.program),
    )
    if environment.code or environment.needs_install:
        log(f"job {job_id}: {_program_words(request.program.script, environment)}")
    scripts = batch_job.Scripts(
        staged_program,
        tuple(staging.upload_script(application, script) for script in merge_scripts),
    )
    wait = timedelta(seconds=request.timeout) if request.timeout else None
    access = batch_job.node_access(clients, wait, request.task_timeout, request.task_retries)
    if isinstance(access, sas.Signer):
        log(
            f"job {job_id}: the stack has no pool identity; nodes get {access.kind} SAS URLs "
            "(read one blob, write the output container) valid until "
            f"{access.expiry:%Y-%m-%d %H:%M} UTC"
        )
    staged = staging.Staged()
    input_container = clients.container(containers.input)
    existing = staging.existing_blobs(input_container, job_id)
    prefix = packing.label_prefix(inputs)

    def uploaded_first(window: Sequence[packing.Group]) -> None:
        nonlocal staged
        members = [item for group in window for item in group.members]
        staged += staging.upload_inputs(input_container, job_id, members, md5s, existing)
        if packed:
            packing.write_manifests(clients.container(containers.output), job_id, window)
        if prefix is None:  # no one prefix names the inputs: their names, beside the results
            packing.write_labels(clients.container(containers.output), job_id, window)

    plans = batch_job.plan_tasks(
        clients,
        job_id,
        groups,
        scripts,
        request.program,
        request.task_retries,
        request.task_timeout,
        access,
        request.keep_logs,
        merge.exit_conditions(merging),
        merge.handoffs(job_id, merges) if merging and merging.topwords else None,
    )
    merge_options = (
        batch_job.plan_merges(
            clients,
            job_id,
            merges,
            merging,
            scripts,
            request.task_retries,
            request.task_timeout,
            access,
            request.keep_logs,
        )
        if merging
        else []
    )
    labels = models.BatchMetadataItem(
        name=packing.LABELS_METADATA, value=packing.labels_record(prefix)
    )
    metadata = [*fingerprint.metadata(), labels]
    prepared = preparation.tasks(
        staged_program, batch_job.resources(clients, access), request.task_retries
    )
    added = batch_job.submit(
        clients, job_id, plans, metadata, uploaded_first, merge_options, prepared
    )
    submission.tasks_added = True
    stored = sum(1 for item in inputs if item.stored is not None)
    log(
        f"job {job_id}: staged {plural(len(inputs) - stored, 'input')} ({staged.uploaded} "
        f"uploaded, {staged.skipped} unchanged, {plural(staged.bytes_sent, 'byte')})"
        + (f"; {stored} read where they are stored" if stored else "")
    )
    per_task = f" ({fingerprint.files_per_task} inputs each)" if packed else ""
    merged = f", with a merge stage of {plural(len(merges), 'task')}" if merges else ""
    log(
        f"job {job_id}: {plural(added, 'task')} added{per_task} on pool "
        f"{clients.outputs.poolId}{merged}"
    )


def _program_words(script: Path, environment: Environment) -> str:
    """What each node prepares once for the job, in words."""
    said = script.name
    code = len(environment.code)
    if code:
        said += f" with {plural(code, '--code file')}"
    if environment.needs_install:
        parts = [environment.requirements.name] if environment.requirements else []
        parts += [plural(len(environment.wheels), "wheel")] if environment.wheels else []
        said += f" and an environment ({', '.join(parts)})"
    return f"each node prepares {said} once, before its first task of the job"
