"""The command line: parsing and exit statuses only; the work is in the other modules.

Exit statuses: 0 success, 2 usage or bad input, 3 stack, auth or service error,
130 interrupted. Results go to stdout, progress and errors to stderr.
"""

from __future__ import annotations

import json
import shlex
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from azure.core.exceptions import AzureError

from runner import jobs, local, monitor, services, stack
from runner.clients import connect
from runner.inputs import InputError, check_inputs
from runner.outputs import OutputsError
from runner.results import TaskResult
from runner.submit import Request, run

EXIT_FAILED_TASKS = 1
EXIT_USAGE = 2
EXIT_STACK = 3

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
local_app = typer.Typer(
    no_args_is_help=True, help="The local stack: Azurite and the Batch emulator."
)
app.add_typer(local_app, name="local")


def _progress(line: str) -> None:
    print(f"local: {line}", file=sys.stderr, flush=True)


def _fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(EXIT_STACK)


@local_app.command("up")
def local_up() -> None:
    """Start Azurite and the emulator (if not running), provision them, write outputs."""
    try:
        outputs = local.up(progress=_progress)
    except (local.LocalStackError, services.ServiceError) as error:
        raise _fail(str(error)) from None
    print(f"Batch:   {outputs.batchAccountEndpoint} (account {outputs.batchAccountName})")
    print(f"Storage: {outputs.blobEndpoint}")
    print(f"Pool:    {outputs.poolId}")
    print(f"Outputs: {local.default_paths().outputs}")


@local_app.command("down")
def local_down() -> None:
    """Stop Azurite and the emulator. Their data stays in .local/."""
    stopped = local.down()
    print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")


@local_app.command("status")
def local_status() -> None:
    """Show the endpoints and the pool's node states."""
    state = local.status()
    for name, port in (("azurite", state.azurite), ("emulator", state.emulator)):
        print(f"{name:<9} " + (f"running on http://127.0.0.1:{port}" if port else "stopped"))
    for node_id, node_state in sorted(state.nodes.items()):
        print(f"  node {node_id}: {node_state}")
    if state.azurite is None or state.emulator is None:
        raise typer.Exit(EXIT_STACK)


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
        print(
            f"error: {option} must be a duration such as 90s, 15m or 2h, got {text!r}",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_USAGE)
    return timedelta(seconds=seconds)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _show_progress(progress: monitor.Progress) -> None:
    _log(
        f"active {progress.active}, running {progress.running}, succeeded {progress.succeeded}, "
        f"failed {progress.failed} ({progress.elapsed:.0f}s)"
    )


def _table(results: list[TaskResult]) -> str:
    rows = [("input", "task", "result", "top words")]
    for result in results:
        words = ", ".join(f"{word} ({count})" for word, count in result.top)
        rows.append((result.input, result.task_id, "ok" if result.succeeded else "FAILED", words))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


@app.command()
def submit(
    inputs: Annotated[list[str], typer.Argument(help="text files, one task each")] = [],  # noqa: B006
    top: Annotated[int, typer.Option(min=1, help="words to keep per file")] = 3,
    job_id: Annotated[str | None, typer.Option(help="job id; the same id resumes a job")] = None,
    out: Annotated[Path | None, typer.Option(help="results directory (results/<job-id>)")] = None,
    timeout: Annotated[
        str | None, typer.Option(help="give up waiting after (90s, 15m, 2h)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document on stdout")] = False,
    task_retries: Annotated[int, typer.Option(min=0, help="retries of a failing task")] = 1,
    task_timeout: Annotated[str | None, typer.Option(help="a task's wall-clock limit")] = None,
    stack_name: Annotated[str | None, typer.Option("--stack", help="a Pulumi stack")] = None,
    outputs: Annotated[Path | None, typer.Option(help="stack outputs JSON file")] = None,
    script: Annotated[
        Path | None,
        typer.Option(
            help="your own per-file script; its arguments follow '--' ({input}, {output_dir})"
        ),
    ] = None,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Run one Batch task per input file and print the top words of each."""
    script_arguments = tuple(_SCRIPT_ARGUMENTS)
    if script_arguments and script is None:
        print("error: arguments after '--' need --script", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE)
    if script is not None and not script.is_file():
        print(f"error: script not found: {script}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE)
    limit = _duration(timeout, "--timeout")
    request = Request(
        paths=inputs,
        top=top,
        job_id=job_id,
        out=out,
        timeout=limit.total_seconds() if limit else None,
        task_retries=task_retries,
        task_timeout=_duration(task_timeout, "--task-timeout"),
        script=script,
        script_arguments=script_arguments or Request.script_arguments,
    )
    try:
        check_inputs(inputs)  # before touching any service
        clients = connect(stack.resolve(stack_name, outputs, _log))
        outcome = run(clients, request, _log, _show_progress)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        resume = ["python", "-m", "runner", "submit", *inputs, "--job-id", request.job_id or "?"]
        _log(f"interrupted; to resume: {shlex.join(resume)}")
        raise typer.Exit(130) from None
    except (
        OutputsError,
        jobs.JobError,
        monitor.MonitorTimeout,
        local.LocalStackError,
        services.ServiceError,
        AzureError,
    ) as error:
        if debug:
            raise
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _fail(message) from None
    if as_json:
        document = {
            "job_id": outcome.job_id,
            "succeeded": outcome.succeeded,
            "tasks": [result.to_dict() for result in outcome.results],
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(_table(outcome.results))
    for result in outcome.results:
        if not result.succeeded:
            _log(f"task {result.task_id} ({result.input}) failed: {result.failure}")
            for line in result.stderr_tail:
                _log(f"  | {line}")
    if not outcome.succeeded:
        raise typer.Exit(EXIT_FAILED_TASKS)


_SCRIPT_ARGUMENTS: list[str] = []
"""What follows '--' on a submit command line: the --script's own arguments."""


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["submit"] and "--" in argv:
        split = argv.index("--")
        _SCRIPT_ARGUMENTS[:] = argv[split + 1 :]
        argv = argv[:split]
    try:
        app(args=argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
