"""How a job ends, from ``submit`` or from ``wait``: what was asked (``Request``), what the
job is (``Job``), and ``finish``: watch, download this job's results, read them back, and
remove its inputs if every task succeeded and the job was not submitted with --keep-inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError

from runner import diagnosis, fetch, merge, monitor, results, staging
from runner.bundle import Environment
from runner.clients import Clients
from runner.diagnosis import STALL_TIMEOUT
from runner.display import first_line, plural
from runner.program import Program, TopWords


@dataclass(frozen=True)
class Request:
    program: Program = field(default_factory=TopWords)
    out: Path | None = None
    timeout: float | None = None
    task_retries: int = 1
    task_timeout: timedelta | None = None
    poll_interval: float = 1.0
    stall_timeout: float = STALL_TIMEOUT  # 0: wait for a stalled job whatever the cause
    keep_inputs: bool = False  # else the job's input blobs go once every task succeeded
    keep_logs: bool = False  # else only failed tasks' stdout and stderr are uploaded
    files_per_task: int | None = None  # None: chosen from the inputs and the pool (auto)
    merge: merge.Merge | None = None  # a merge stage after the per-file tasks
    environment: Environment = field(default_factory=Environment)  # --requirements ...


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
    destination = fetch.destination(job_id, request.out)
    container = clients.container(clients.outputs.containers.output)
    places = results.places_of(job.expected)
    named = fetch.input_names(job.expected, job.program)
    try:
        tally = fetch.Tally()
        fetch.download(container, job_id, destination, places=places, named=named, tally=tally)
        collected = results.collect(
            clients.batch, container, job_id, job.expected, destination, job.program
        )
        merged = None
        if job.merge is not None:
            failed = [result.input for result in collected if not result.succeeded]
            merged = merge.collect(
                clients.batch, container, job_id, destination, job.merge, failed, tally
            )
    except fetch.DownloadError as error:
        raise fetch.DownloadError(f"job {job_id}: {error}; {_elsewhere(job_id)}") from None
    there = f" ({tally.present} already there)" if tally.present else ""
    log(f"job {job_id}: downloaded {plural(tally.fetched, 'file')} to {destination}{there}")
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


def _elsewhere(job_id: str) -> str:
    return f"its results stay in storage: `download {job_id} --out DIR` fetches them"


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
