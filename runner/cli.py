"""The command line: parse, call the verb's module, print. No work happens here.

Exit statuses: 0 success, 1 some tasks failed, 2 usage or bad input, 3 stack, auth or
service error, 130 interrupted. Results go to stdout, progress and errors to stderr.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from azure.core.exceptions import AzureError

from contract.outputs import OutputsError
from runner import batch_job, delete, download, jobs, local, logs, monitor, stack, status, summary
from runner import wait as waiting
from runner.clients import Clients, connect
from runner.display import ProgressDisplay
from runner.durations import parse_duration
from runner.inputs import InputError, check_inputs
from runner.program import Program, Script, TopWords
from runner.results import TaskResult
from runner.submit import Request, run

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

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Run a program on every input file as one Azure Batch task each (on an Azure "
    "stack, or on the local stack by default), watch the job, and collect the results.",
)
local_app = typer.Typer(
    no_args_is_help=True, help="The local stack: Azurite and the Batch emulator."
)
app.add_typer(local_app, name="local")

OutOption = Annotated[Path | None, typer.Option(help="results directory (results/<job-id>)")]
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON document on stdout")]
TimeoutOption = Annotated[str | None, typer.Option(help="give up waiting after (90s, 15m, 2h)")]
JobArgument = Annotated[str, typer.Argument(help="the job id")]


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _exit(status: int, message: str) -> typer.Exit:
    _log(f"error: {message}")
    return typer.Exit(status)


# --- the options every command on a stack takes, declared once --------------------------


@dataclass(frozen=True)
class Target:
    """The stack a command works on (--stack or --outputs; else the local stack), and
    whether errors show their traceback (--debug)."""

    stack: str | None = None
    outputs: Path | None = None
    debug: bool = False

    def clients(self) -> Clients:
        return connect(stack.resolve(self.stack, self.outputs, _log))


StackOption = Annotated[str | None, typer.Option("--stack", help="a Pulumi stack's outputs")]
OutputsOption = Annotated[Path | None, typer.Option("--outputs", help="stack outputs JSON file")]
DebugOption = Annotated[bool, typer.Option("--debug", help="show tracebacks")]
_TARGET_OPTIONS = [
    inspect.Parameter(
        "stack", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=StackOption
    ),
    inspect.Parameter(
        "outputs", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=OutputsOption
    ),
    inspect.Parameter(
        "debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOption
    ),
]


def on_a_stack(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command --stack, --outputs and --debug (after its own options, as typer
    lists them); it receives them together as its ``target`` parameter."""
    own = inspect.signature(command, eval_str=True).parameters

    @functools.wraps(command)
    def with_target(
        *args: Any, stack: str | None = None, outputs: Path | None = None, debug: bool = False,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        command(*args, target=Target(stack, outputs, debug), **kwargs)

    parameters = [p for name, p in own.items() if name != "target"] + _TARGET_OPTIONS
    setattr(with_target, "__signature__", inspect.Signature(parameters))  # noqa: B010
    with_target.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_target


@contextmanager
def _errors(target: Target, resume: str | None = None) -> Iterator[None]:
    """Map what can go wrong to an exit status and one line, with no traceback."""
    try:
        yield
    except InputError as error:
        raise _exit(EXIT_USAGE, str(error)) from None
    except KeyboardInterrupt:
        _log(f"interrupted; to resume: {resume}" if resume else "interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (OutputsError, batch_job.JobError, monitor.MonitorTimeout, AzureError) as error:
        if target.debug:
            raise
        text = str(error)
        raise _exit(EXIT_STACK, text.splitlines()[0] if text else type(error).__name__) from None


def _duration(text: str | None, option: str) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as error:
        raise _exit(EXIT_USAGE, f"{option}: {error}") from None


def _table(collected: list[TaskResult], program: Program) -> str:
    rows = [("input", "task", "result", program.column)]
    for result in collected:
        outcome = "ok" if result.succeeded else "FAILED"
        rows.append((result.input, result.task_id, outcome, program.cell(result.output)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


def _report(job_id: str, collected: list[TaskResult], program: Program, as_json: bool) -> None:
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
        print(_table(collected, program))
    for result in collected:
        if not result.succeeded:
            _log(f"task {result.task_id} ({result.input}) failed: {result.failure}")
            for line in result.stderr_tail:
                _log(f"  | {line}")
    if not succeeded:
        raise typer.Exit(EXIT_FAILED_TASKS)


# --- the verbs -----------------------------------------------------------------------------


@app.command()
@on_a_stack
def submit(
    context: typer.Context,
    inputs: Annotated[list[str], typer.Argument(help="input files, one task each")] = [],  # noqa: B006
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
    *,
    target: Target,
) -> None:
    """Run one Batch task per input file: the top words of each, or your --script."""
    script_arguments: tuple[str, ...] = tuple((context.obj or {}).get("script_arguments", ()))
    if script_arguments and script is None:
        raise _exit(EXIT_USAGE, "arguments after '--' need --script")
    if script is not None and not script.is_file():
        raise _exit(EXIT_USAGE, f"script not found: {script}")
    program: Program = TopWords(top) if script is None else Script(script, script_arguments)
    limit = _duration(timeout, "--timeout")
    request = Request(
        program=program,
        job_id=job_id or program.new_job_id(),
        out=out,
        timeout=limit.total_seconds() if limit else None,
        task_retries=task_retries,
        task_timeout=_duration(task_timeout, "--task-timeout"),
        keep_inputs=keep_inputs,
    )
    with _errors(target, resume=f"python -m runner wait {request.job_id}"):
        checked = check_inputs(inputs)  # before touching any service
        clients = target.clients()
        with ProgressDisplay(len(checked)) as display:
            outcome = run(clients, checked, request, _log, display)
    _report(outcome.job_id, outcome.results, program, as_json)


@app.command()
@on_a_stack
def wait(
    job: JobArgument,
    out: OutOption = None,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
    *,
    target: Target,
) -> None:
    """Resume watching a job, then download its results and print them."""
    limit = _duration(timeout, "--timeout")
    request = Request(out=out, timeout=limit.total_seconds() if limit else None)
    with _errors(target, resume=f"python -m runner wait {job}"):
        clients = target.clients()
        expected, program = waiting.submitted(clients, job)
        with ProgressDisplay(len(expected)) as display:
            collected = waiting.finish(clients, job, expected, program, request, display, _log)
    _report(job, collected, program, as_json)


@app.command(name="download")
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
    """Download a job's results (only this job's) without waiting."""
    with _errors(target):
        fetched = download.download(target.clients(), job, out, with_logs)
    print(f"{fetched.files} files in {fetched.destination}")


@app.command(name="status")
@on_a_stack
def job_status(job: JobArgument, *, target: Target) -> None:
    """A job's state and task counts."""
    with _errors(target):
        found = status.job_status(target.clients(), job)
    print(
        f"{job}: {found.state}; active {found.active}, running {found.running}, "
        f"succeeded {found.succeeded}, failed {found.failed}"
    )


@app.command(name="jobs")
@on_a_stack
def list_jobs(
    limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20,
    *,
    target: Target,
) -> None:
    """Recent jobs, newest first."""
    with _errors(target):
        found = jobs.recent(target.clients(), limit)
    for job in found:
        print(f"{job.job_id}  {job.state}  {job.created:%Y-%m-%d %H:%M:%S}")


@app.command(name="logs")
@on_a_stack
def task_logs(
    job: JobArgument,
    task: Annotated[str, typer.Argument(help="the task id")],
    stderr: Annotated[
        bool, typer.Option("--stderr", help="stderr.txt instead of stdout.txt")
    ] = False,
    *,
    target: Target,
) -> None:
    """A task's stdout (or stderr), from its node, or from the output container after."""
    with _errors(target):
        content = logs.task_log(target.clients(), job, task, stderr)
    sys.stdout.write(content.decode(errors="replace"))


@app.command(name="delete")
@on_a_stack
def delete_job(
    job: JobArgument,
    inputs: Annotated[
        bool, typer.Option("--inputs", help="also delete its input and result blobs")
    ] = False,
    *,
    target: Target,
) -> None:
    """Delete a job (and, with --inputs, its blobs, even if the job is already gone)."""
    with _errors(target):
        deleted = delete.delete(target.clients(), job, inputs)
    if not deleted.job_was_there:
        print(f"job {job} was already deleted; deleted its {deleted.blobs} blobs")
    else:
        print(f"deleted job {job}" + (f" and its {deleted.blobs} blobs" if inputs else ""))


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


# --- the local stack: a program of its own, which these hand over to ----------------------


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
    """What follows '--' on a submit command line is the --script's own arguments: kept
    out of the parsing and handed to the command through its context."""
    argv = list(sys.argv[1:] if argv is None else argv)
    script_arguments: list[str] = []
    if argv[:1] == ["submit"] and "--" in argv:
        split = argv.index("--")
        argv, script_arguments = argv[:split], argv[split + 1 :]
    try:
        app(
            args=argv,
            prog_name="python -m runner",
            obj={"script_arguments": script_arguments},
        )
    except KeyboardInterrupt:
        _log("interrupted")
        sys.exit(EXIT_INTERRUPTED)
