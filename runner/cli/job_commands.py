"""The verbs on a job already submitted: wait, download, status, report, jobs, logs,
delete, and summary (a --json document as Markdown)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from runner.cli.common import (
    EXIT_FAILED_TASKS,
    EXIT_MEANINGS,
    EXIT_USAGE,
    Command,
    JobArgument,
    JsonOption,
    NoReportOption,
    NotFound,
    OutOption,
    Reply,
    StallOption,
    Target,
    TimeoutOption,
    app,
    check_job_id,
    check_out,
    duration,
    errors,
    fail,
    log,
    no_job,
    on_a_stack,
    runner_command,
    stall,
)
from runner.cli.outcome import print_outcome, write_report

if TYPE_CHECKING:
    from runner.clients import Clients


@app.command(cls=Command)
@on_a_stack
def wait(
    job: JobArgument,
    out: OutOption = None,
    timeout: TimeoutOption = None,
    stall_timeout: StallOption = "10m",
    as_json: JsonOption = False,
    no_report: NoReportOption = False,
    *,
    target: Target,
) -> None:
    """Resume watching JOB, then download its results and print them."""
    from runner import wait as waiting
    from runner.display import ProgressDisplay
    from runner.finishing import Request, finish

    reply = Reply(as_json)
    check_job_id(job, reply)
    check_out(out, reply)
    limit = duration(timeout, "--timeout", reply)
    request = Request(
        out=out,
        timeout=limit.total_seconds() if limit else None,
        stall_timeout=stall(stall_timeout, reply),
    )
    resume = runner_command("wait", job, *target.arguments(out, as_json, no_report))
    with errors(target, reply, lambda: resume):
        clients = target.clients()
        submitted = waiting.submitted(clients, job)
        with ProgressDisplay(len(submitted.expected)) as display:
            finished = finish(clients, job, submitted, request, display, log)
        report = write_report(clients, job, out, not no_report, target)
    print_outcome(job, finished, submitted.program, as_json, report)


@app.command(name="download", cls=Command)
@on_a_stack
def download_results(
    job: JobArgument,
    out: OutOption = None,
    with_logs: Annotated[
        bool, typer.Option("--logs", help="also every task's stdout and stderr, in DIR/logs/")
    ] = False,
    *,
    target: Target,
) -> None:
    """Download JOB's results (only this job's) without waiting."""
    from runner import batch_job, download

    check_job_id(job, Reply())
    check_out(out, Reply())
    with errors(target):
        clients = target.clients()
        fetched = download.download(clients, job, out, with_logs)
        if fetched.files == 0 and batch_job.find(clients, job) is None:
            raise no_job(job)
    print(f"{fetched.files} files in {fetched.destination}")


@app.command(name="status", cls=Command)
@on_a_stack
def job_status(job: JobArgument, *, target: Target) -> None:
    """JOB's state and task counts; exits 1 when any of its tasks failed."""
    from runner import batch_job, status

    check_job_id(job, Reply())
    with errors(target):
        clients = target.clients()
        if batch_job.find(clients, job) is None:
            raise no_job(job)
        found = status.job_status(clients, job)
    print(
        f"{job}: {found.state}; active {found.active}, running {found.running}, "
        f"succeeded {found.succeeded}, failed {found.failed}"
    )
    if found.failed:
        raise typer.Exit(EXIT_FAILED_TASKS)


@app.command(name="report", cls=Command)
@on_a_stack
def job_report(
    job: JobArgument,
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="the HTML file to write",
            show_default="results/<job-id>/report.html",
        ),
    ] = None,
    price_per_node_hour: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="PRICE",
            help="your price of a node-hour, for the cost estimate",
            show_default="from a table of VM sizes' prices",
        ),
    ] = None,
    *,
    target: Target,
) -> None:
    """JOB's report: one HTML file (no network needed to view it) with its tasks per
    node over time, durations, nodes, slowest and failed tasks, bytes and cost."""
    from runner import batch_job
    from runner import report as reporting

    check_job_id(job, Reply())
    path = out or reporting.default_path(job)
    with errors(target):
        clients = target.clients()
        if batch_job.find(clients, job) is None:
            raise no_job(job)
        try:
            written = reporting.write(clients, job, path, price_per_node_hour)
        except OSError as error:
            raise fail(EXIT_USAGE, f"--out {path}: {error.strerror or error}") from None
    print(written)


@app.command(name="jobs", cls=Command)
@on_a_stack
def list_jobs(
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="how many, newest first")] = 20,
    *,
    target: Target,
) -> None:
    """Recent jobs, newest first."""
    from runner import jobs

    with errors(target):
        found = jobs.recent(target.clients(), limit)
    rows = [("job", "state", "created")] + [
        (job.job_id, job.shown_state, f"{job.created:%Y-%m-%d %H:%M:%S}") for job in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for row in rows:
        print(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}")


@app.command(name="logs", cls=Command)
@on_a_stack
def task_logs(
    job: JobArgument,
    task: Annotated[str, typer.Argument(metavar="TASK")],
    stderr: Annotated[
        bool, typer.Option("--stderr", help="stderr.txt instead of stdout.txt")
    ] = False,
    *,
    target: Target,
) -> None:
    """TASK's stdout (or stderr) in JOB, from its node, or from the output container after;
    for the TASK jobpreparation, the job preparation task's on each node."""
    from runner import logs
    from runner.preparation import PREPARATION_ID

    check_job_id(job, Reply())
    with errors(target):
        clients = target.clients()
        if task == PREPARATION_ID:
            found = logs.preparation_logs(clients, job, stderr)
            if not found:
                raise NotFound(f"no node has run the preparation task of job {job}")
            for node_id, text in found:
                sys.stdout.write(f"== node {node_id} ==\n{text.decode(errors='replace')}")
            return
        content = logs.task_log(clients, job, task, stderr)
        if content is None:
            raise _no_task(clients, job, task)
    sys.stdout.write(content.decode(errors="replace"))


def _no_task(clients: Clients, job: str, task: str) -> NotFound:
    from runner import batch_job

    if batch_job.find(clients, job) is None:
        return NotFound(
            f"no job {job} on this stack and no logs stored for its task {task}; "
            f"{runner_command('jobs')} lists the jobs"
        )
    ids = sorted(batch_job.task_ids(clients, job))
    shown = ", ".join(ids[:5]) + (f" (and {len(ids) - 5} more)" if len(ids) > 5 else "")
    return NotFound(f"job {job} has no task {task}; its tasks: {shown or 'none'}")


@app.command(name="delete", cls=Command)
@on_a_stack
def delete_job(
    job: JobArgument,
    inputs: Annotated[
        bool, typer.Option("--inputs", help="also delete its input and result blobs")
    ] = False,
    *,
    target: Target,
) -> None:
    """Delete JOB (and, with --inputs, its blobs, even if the job is already gone)."""
    from azure.core.exceptions import ResourceNotFoundError

    from runner import delete
    from runner.display import plural

    check_job_id(job, Reply())
    with errors(target):
        try:
            deleted = delete.delete(target.clients(), job, inputs)
        except ResourceNotFoundError:
            raise no_job(job) from None
        if not deleted.job_was_there and deleted.blobs == 0:
            raise no_job(job)
    if not deleted.job_was_there:
        print(f"job {job} was already deleted; deleted its {plural(deleted.blobs, 'blob')}")
    elif inputs:
        print(f"deleted job {job} and its {plural(deleted.blobs, 'blob')}")
    elif deleted.kept:
        print(
            f"deleted job {job}; its {plural(deleted.kept, 'input and result blob')} stay in "
            f"storage: {runner_command('delete', job, '--inputs')} removes them"
        )
    else:
        print(f"deleted job {job}")


@app.command(name="summary", cls=Command)
def markdown_summary(
    document: Annotated[Path, typer.Argument(metavar="DOCUMENT")],
    exit_status: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="the runner's exit status, to explain a missing or partial document"
        ),
    ] = None,
) -> None:
    """A job's results as Markdown, for a pipeline's job summary: DOCUMENT is what
    `submit --json` wrote."""
    from runner import summary

    try:
        found = summary.read(document)
    except summary.SummaryError as error:
        raise fail(EXIT_USAGE, str(error)) from None
    if found is None and exit_status is None:
        raise fail(EXIT_USAGE, f"{document}: no such results document")
    meaning = EXIT_MEANINGS.get(exit_status or 0, "unexpected")
    sys.stdout.write(summary.render(found, exit_status, meaning))
