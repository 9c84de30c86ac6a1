"""The command line: parsing and exit statuses only; the work is in the other modules.

Exit statuses: 0 success, 1 some tasks failed, 2 usage or bad input, 3 stack, auth or
service error, 130 interrupted. Results go to stdout, progress and errors to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from azure.core.exceptions import AzureError, ResourceNotFoundError

from contract.outputs import OutputsError
from runner import jobs, local, monitor, results, stack, staging, summary
from runner.clients import Clients, connect
from runner.display import ProgressDisplay
from runner.inputs import InputError, check_inputs
from runner.submit import Request, finish, new_job_id, run

EXIT_FAILED_TASKS = 1
EXIT_USAGE = 2
EXIT_STACK = 3
EXIT_INTERRUPTED = 130
EXIT_MEANINGS = {
    0: "success",
    EXIT_FAILED_TASKS: "some tasks failed",
    EXIT_USAGE: "usage or bad input",
    EXIT_STACK: "stack, auth or service error",
    EXIT_INTERRUPTED: "interrupted",
}

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
local_app = typer.Typer(
    no_args_is_help=True, help="The local stack: Azurite and the Batch emulator."
)
app.add_typer(local_app, name="local")

_SCRIPT_ARGUMENTS: list[str] = []
"""What follows '--' on a submit command line: the --script's own arguments."""

StackOption = Annotated[str | None, typer.Option("--stack", help="a Pulumi stack's outputs")]
OutputsOption = Annotated[Path | None, typer.Option("--outputs", help="stack outputs JSON file")]
DebugOption = Annotated[bool, typer.Option(help="show tracebacks")]
OutOption = Annotated[Path | None, typer.Option(help="results directory (results/<job-id>)")]
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON document on stdout")]
TimeoutOption = Annotated[str | None, typer.Option(help="give up waiting after (90s, 15m, 2h)")]


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _exit(status: int, message: str) -> typer.Exit:
    _log(f"error: {message}")
    return typer.Exit(status)


@contextmanager
def _service_errors(debug: bool, resume: Callable[[], str] | None = None) -> Iterator[None]:
    """Map what can go wrong to an exit status and one line, with no traceback."""
    try:
        yield
    except InputError as error:
        raise _exit(EXIT_USAGE, str(error)) from None
    except KeyboardInterrupt:
        _log(f"interrupted; to resume: {resume()}" if resume else "interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (
        OutputsError,
        jobs.JobError,
        monitor.MonitorTimeout,
        AzureError,
    ) as error:
        if debug:
            raise
        text = str(error)
        raise _exit(EXIT_STACK, text.splitlines()[0] if text else type(error).__name__) from None


def _clients(stack_name: str | None, outputs: Path | None) -> Clients:
    return connect(stack.resolve(stack_name, outputs, _log))


def _duration(text: str | None, option: str) -> timedelta | None:
    """'90s', '15m', '2h' or a number of seconds."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = -1
    if seconds <= 0:
        raise _exit(EXIT_USAGE, f"{option} must be a duration such as 90s, 15m or 2h, got {text!r}")
    return timedelta(seconds=seconds)


def _table(collected: list[results.TaskResult]) -> str:
    rows = [("input", "task", "result", "top words")]
    for result in collected:
        words = ", ".join(f"{word} ({count})" for word, count in result.top)
        rows.append((result.input, result.task_id, "ok" if result.succeeded else "FAILED", words))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


def _report(job_id: str, collected: list[results.TaskResult], as_json: bool) -> None:
    """Results on stdout, failures on stderr; exit 1 if any task failed."""
    succeeded = all(result.succeeded for result in collected)
    if as_json:
        document = {
            "job_id": job_id,
            "succeeded": succeeded,
            "tasks": [result.to_dict() for result in collected],
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(_table(collected))
    for result in collected:
        if not result.succeeded:
            _log(f"task {result.task_id} ({result.input}) failed: {result.failure}")
            for line in result.stderr_tail:
                _log(f"  | {line}")
    if not succeeded:
        raise typer.Exit(EXIT_FAILED_TASKS)


# --- submit and the job commands -------------------------------------------------------


@app.command()
def submit(
    inputs: Annotated[list[str], typer.Argument(help="text files, one task each")] = [],  # noqa: B006
    top: Annotated[int, typer.Option(min=1, help="words to keep per file")] = 3,
    job_id: Annotated[str | None, typer.Option(help="job id; the same id resumes a job")] = None,
    out: OutOption = None,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
    task_retries: Annotated[int, typer.Option(min=0, help="retries of a failing task")] = 1,
    task_timeout: Annotated[str | None, typer.Option(help="a task's wall-clock limit")] = None,
    keep_inputs: Annotated[
        bool, typer.Option(help="keep the uploaded inputs after a successful job")
    ] = False,
    script: Annotated[
        Path | None,
        typer.Option(
            help="your own per-file script; its arguments follow '--' ({input}, {output_dir})"
        ),
    ] = None,
    stack_name: StackOption = None,
    outputs: OutputsOption = None,
    debug: DebugOption = False,
) -> None:
    """Run one Batch task per input file and print the top words of each."""
    script_arguments = tuple(_SCRIPT_ARGUMENTS)
    if script_arguments and script is None:
        raise _exit(EXIT_USAGE, "arguments after '--' need --script")
    if script is not None and not script.is_file():
        raise _exit(EXIT_USAGE, f"script not found: {script}")
    limit = _duration(timeout, "--timeout")
    request = Request(
        top=top,
        job_id=job_id or new_job_id(),
        out=out,
        timeout=limit.total_seconds() if limit else None,
        task_retries=task_retries,
        task_timeout=_duration(task_timeout, "--task-timeout"),
        keep_inputs=keep_inputs,
        script=script,
        script_arguments=script_arguments or Request.script_arguments,
    )
    resume = f"python -m runner wait {request.job_id}"
    with _service_errors(debug, resume=lambda: resume):
        checked = check_inputs(inputs)  # before touching any service
        clients = _clients(stack_name, outputs)
        with ProgressDisplay(len(checked)) as display:
            outcome = run(clients, checked, request, _log, display)
    _report(outcome.job_id, outcome.results, as_json)


@app.command()
def wait(
    job: Annotated[str, typer.Argument(help="the job id")],
    out: OutOption = None,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
    stack_name: StackOption = None,
    outputs: OutputsOption = None,
    debug: DebugOption = False,
) -> None:
    """Resume watching a job, then download its results and print them."""
    limit = _duration(timeout, "--timeout")
    request = Request(out=out, timeout=limit.total_seconds() if limit else None)
    with _service_errors(debug, resume=lambda: f"python -m runner wait {job}"):
        clients = _clients(stack_name, outputs)
        expected = results.expected_from_job(clients.batch, job)
        with ProgressDisplay(len(expected)) as display:
            collected = finish(clients, job, expected, request, display, _log)
    _report(job, collected, as_json)


@app.command()
def download(
    job: Annotated[str, typer.Argument(help="the job id")],
    out: OutOption = None,
    logs: Annotated[
        bool, typer.Option("--logs", help="also every task's stdout and stderr, in DIR/logs/")
    ] = False,
    stack_name: StackOption = None,
    outputs: OutputsOption = None,
    debug: DebugOption = False,
) -> None:
    """Download a job's results (only this job's) without waiting."""
    with _service_errors(debug):
        clients = _clients(stack_name, outputs)
        destination = results.destination(job, out)
        container = clients.container(clients.outputs.containers.output)
        fetched = results.download(container, job, destination, logs=logs)
    print(f"{fetched} files in {destination}")


@app.command()
def status(
    job: Annotated[str, typer.Argument(help="the job id")],
    stack_name: StackOption = None,
    outputs: OutputsOption = None,
    debug: DebugOption = False,
) -> None:
    """A job's state and task counts."""
    with _service_errors(debug):
        batch = _clients(stack_name, outputs).batch
        state = batch.get_job(job, select=["state"]).state
        counts = batch.get_job_task_counts(job).task_counts
    print(
        f"{job}: {getattr(state, 'value', state)}; active {counts.active}, running "
        f"{counts.running}, succeeded {counts.succeeded}, failed {counts.failed}"
    )


@app.command(name="jobs")
def list_jobs(
    limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20,
    stack_name: StackOption = None,
    outputs: OutputsOption = None,
    debug: DebugOption = False,
) -> None:
    """Recent jobs, newest first."""
    with _service_errors(debug):
        batch = _clients(stack_name, outputs).batch
        found = list(batch.list_jobs(select=["id", "state", "creationTime"]))
    found.sort(key=lambda job: job.creation_time, reverse=True)
    for job in found[:limit]:
        state = getattr(job.state, "value", job.state)
        print(f"{job.id}  {state}  {job.creation_time:%Y-%m-%d %H:%M:%S}")


@app.command()
def logs(
    job: Annotated[str, typer.Argument(help="the job id")],
    task: Annotated[str, typer.Argument(help="the task id")],
    stderr: Annotated[
        bool, typer.Option("--stderr", help="stderr.txt instead of stdout.txt")
    ] = False,
    stack_name: StackOption = None,
    outputs: OutputsOption = None,
    debug: DebugOption = False,
) -> None:
    """A task's stdout (or stderr), from its node, or from the output container after."""
    name = "stderr.txt" if stderr else "stdout.txt"
    with _service_errors(debug):
        clients = _clients(stack_name, outputs)
        try:
            content = b"".join(clients.batch.download_task_file(job, task, name))
        except ResourceNotFoundError:
            container = clients.container(clients.outputs.containers.output)
            content = container.download_blob(f"{results.logs_prefix(job)}/{task}/{name}").readall()
    sys.stdout.write(content.decode(errors="replace"))


@app.command()
def delete(
    job: Annotated[str, typer.Argument(help="the job id")],
    inputs: Annotated[
        bool, typer.Option("--inputs", help="also delete its input and result blobs")
    ] = False,
    stack_name: StackOption = None,
    outputs: OutputsOption = None,
    debug: DebugOption = False,
) -> None:
    """Delete a job (and, with --inputs, its blobs, even if the job is already gone)."""
    with _service_errors(debug):
        clients = _clients(stack_name, outputs)
        already_gone = False
        try:
            clients.batch.begin_delete_job(job, polling_interval=1).result()
        except ResourceNotFoundError:
            if not inputs:
                raise
            already_gone = True
        names = clients.outputs.containers
        removed = sum(
            staging.remove_blobs(clients.container(name), job)
            for name in ((names.input, names.output) if inputs else ())
        )
    if already_gone:
        print(f"job {job} was already deleted; deleted its {removed} blobs")
    else:
        print(f"deleted job {job}" + (f" and its {removed} blobs" if inputs else ""))


@app.command(name="summary")
def markdown_summary(
    document: Annotated[Path, typer.Argument(help="what 'submit --json' wrote")],
    exit_status: Annotated[
        int | None,
        typer.Option(help="the runner's exit status, to explain a missing or partial document"),
    ] = None,
) -> None:
    """A job's results as Markdown, for a pipeline's job summary."""
    try:
        found = summary.read(document)
    except summary.SummaryError as error:
        raise _exit(EXIT_USAGE, str(error)) from None
    if found is None and exit_status is None:
        raise _exit(EXIT_USAGE, f"{document}: no such results document")
    meaning = EXIT_MEANINGS.get(exit_status or 0, "unexpected")
    sys.stdout.write(summary.render(found, exit_status, meaning))


# --- the local stack -------------------------------------------------------------------


@local_app.command("up")
def local_up() -> None:
    """Start Azurite and the emulator (if not running), provision them, write outputs."""
    raise typer.Exit(local.run("up"))


@local_app.command("down")
def local_down() -> None:
    """Stop Azurite and the emulator. Their data stays in .local/."""
    raise typer.Exit(local.run("down"))


@local_app.command("status")
def local_status() -> None:
    """Show the endpoints and the pool's node states."""
    raise typer.Exit(local.run("status"))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["submit"] and "--" in argv:
        split = argv.index("--")
        _SCRIPT_ARGUMENTS[:] = argv[split + 1 :]
        argv = argv[:split]
    try:
        app(args=argv, prog_name="python -m runner")
    except KeyboardInterrupt:
        _log("interrupted")
        sys.exit(EXIT_INTERRUPTED)
