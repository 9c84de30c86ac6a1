"""``submit``: inputs checked, staged, run as one Batch task each, watched, fetched.

A plain function: the command line maps its exceptions to exit statuses.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner import jobs, monitor, results, sas, staging
from runner.clients import Clients
from runner.inputs import Input

TOPWORDS = Path(__file__).resolve().parent.parent / "task" / "topwords.py"


@dataclass(frozen=True)
class Request:
    top: int = 3
    job_id: str | None = None
    out: Path | None = None
    timeout: float | None = None
    task_retries: int = 1
    task_timeout: timedelta | None = None
    poll_interval: float = 1.0
    keep_inputs: bool = False  # else the job's input blobs go once every task succeeded
    script: Path | None = None  # a user's per-file script instead of topwords
    script_arguments: tuple[str, ...] = ("{input}", "{output_dir}")


@dataclass(frozen=True)
class Outcome:
    job_id: str
    results: list[results.TaskResult]
    staged: staging.Staged
    added: int

    @property
    def succeeded(self) -> bool:
        return all(result.succeeded for result in self.results)


def new_job_id() -> str:
    return f"topwords-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def run(
    clients: Clients,
    inputs: Sequence[Input],
    request: Request,
    log: Callable[[str], None],
    on_progress: Callable[[monitor.Progress], None],
) -> Outcome:
    """Submit ``inputs`` (already checked by ``check_inputs``) as one job, and finish it."""
    job_id = request.job_id or new_job_id()
    containers = clients.outputs.containers
    staged = staging.upload_inputs(clients.container(containers.input), job_id, inputs)
    log(
        f"job {job_id}: staged {len(inputs)} inputs ({staged.uploaded} uploaded, "
        f"{staged.skipped} unchanged, {staged.bytes_sent} bytes)"
    )
    script = request.script or TOPWORDS
    arguments = request.script_arguments if request.script else jobs.topwords_arguments(request.top)
    staged_script = staging.upload_script(clients.container(containers.application), script)
    wait = timedelta(seconds=request.timeout) if request.timeout else None
    access = jobs.node_access(clients, wait, request.task_timeout, request.task_retries)
    if isinstance(access, sas.Signer):
        log(
            f"job {job_id}: the stack has no pool identity; nodes get {access.kind} SAS URLs "
            "(read one blob, write the output container) valid until "
            f"{access.expiry:%Y-%m-%d %H:%M} UTC"
        )
    plans = jobs.plan_tasks(
        clients,
        job_id,
        inputs,
        staged_script,
        arguments,
        request.task_retries,
        request.task_timeout,
        access,
    )
    added = jobs.submit(clients, job_id, plans)
    log(f"job {job_id}: {added} tasks added on pool {clients.outputs.poolId}")
    expected = results.expected_from_inputs(inputs)
    collected = finish(clients, job_id, expected, request, on_progress, log)
    outcome = Outcome(job_id, collected, staged, added)
    if not request.keep_inputs and outcome.succeeded:
        removed = staging.remove_blobs(clients.container(containers.input), job_id)
        log(f"job {job_id}: removed its {removed} input blobs (--keep-inputs keeps them)")
    return outcome


def finish(
    clients: Clients,
    job_id: str,
    expected: Sequence[results.Expected],
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
    return results.collect(clients.batch, container, job_id, expected, destination)
