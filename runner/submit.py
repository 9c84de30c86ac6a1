"""``submit``: inputs checked, staged, run as one Batch task each, watched, fetched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from runner import batch_job, monitor, results, sas, staging
from runner.clients import Clients
from runner.inputs import Input
from runner.program import Program, TopWords
from runner.wait import finish


@dataclass(frozen=True)
class Request:
    program: Program = field(default_factory=TopWords)
    job_id: str | None = None  # else the program names a new job
    out: Path | None = None
    timeout: float | None = None
    task_retries: int = 1
    task_timeout: timedelta | None = None
    poll_interval: float = 1.0
    keep_inputs: bool = False  # else the job's input blobs go once every task succeeded


@dataclass(frozen=True)
class Outcome:
    job_id: str
    results: list[results.TaskResult]

    @property
    def succeeded(self) -> bool:
        return all(result.succeeded for result in self.results)


def run(
    clients: Clients,
    inputs: Sequence[Input],
    request: Request,
    log: Callable[[str], None],
    on_progress: Callable[[monitor.Progress], None],
) -> Outcome:
    """Submit ``inputs`` (already checked by ``check_inputs``) as one job, and finish it."""
    program = request.program
    job_id = request.job_id or program.new_job_id()
    containers = clients.outputs.containers
    staged = staging.upload_inputs(clients.container(containers.input), job_id, inputs)
    log(
        f"job {job_id}: staged {len(inputs)} inputs ({staged.uploaded} uploaded, "
        f"{staged.skipped} unchanged, {staged.bytes_sent} bytes)"
    )
    staged_script = staging.upload_script(clients.container(containers.application), program.script)
    wait = timedelta(seconds=request.timeout) if request.timeout else None
    access = batch_job.node_access(clients, wait, request.task_timeout, request.task_retries)
    if isinstance(access, sas.Signer):
        log(
            f"job {job_id}: the stack has no pool identity; nodes get {access.kind} SAS URLs "
            "(read one blob, write the output container) valid until "
            f"{access.expiry:%Y-%m-%d %H:%M} UTC"
        )
    plans = batch_job.plan_tasks(
        clients,
        job_id,
        inputs,
        staged_script,
        program.arguments,
        request.task_retries,
        request.task_timeout,
        access,
    )
    added = batch_job.submit(clients, job_id, plans)
    log(f"job {job_id}: {added} tasks added on pool {clients.outputs.poolId}")
    expected = results.expected_from_inputs(inputs)
    collected = finish(clients, job_id, expected, program, request, on_progress, log)
    outcome = Outcome(job_id, collected)
    if not request.keep_inputs and outcome.succeeded:
        removed = staging.remove_blobs(clients.container(containers.input), job_id)
        log(f"job {job_id}: removed its {removed} input blobs (--keep-inputs keeps them)")
    return outcome
