"""The command line: parse, call the verb's module, print. No work happens here.

Exit statuses (``EXIT_MEANINGS``): 0 success, 1 some tasks failed, 2 usage or bad input,
3 stack, auth or service error, 4 still running after --timeout, 130 interrupted. Results
go to stdout, progress and errors to stderr.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from azure.core.exceptions import AzureError, ResourceNotFoundError

from contract.outputs import OutputsError
from runner import (
    batch_job,
    bundle,
    delete,
    diagnosis,
    download,
    jobs,
    local,
    logs,
    monitor,
    packing,
    stack,
    status,
    summary,
)
from runner import doctor as doctoring
from runner import wait as waiting
from runner.clients import Clients, connect
from runner.display import ProgressDisplay, first_line
from runner.durations import parse_duration
from runner.inputs import Filters, InputError, check_inputs, read_list, with_stored
from runner.merge import Merge
from runner.preparation import PREPARATION_ID
from runner.program import Program, Script, TopWords
from runner.results import TaskResult
from runner.stored import stored_inputs
from runner.submit import Request, Submission, run
from runner.wait import Finished

EXIT_FAILED_TASKS = 1
EXIT_USAGE = 2
EXIT_STACK = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130
EXIT_MEANINGS = {
    0: "success",
    EXIT_FAILED_TASKS: "some tasks failed",
    EXIT_USAGE: "usage or bad input",
    EXIT_STACK: "stack, auth or service error",
    EXIT_TIMEOUT: "still running after --timeout",
    EXIT_INTERRUPTED: "interrupted",
}
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Batch's rule for job ids: letters, digits, '-' and '_', at most 64 characters."""

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Run a program on every input file as one Azure Batch task each (on an Azure "
    "stack, or on the local stack by default), watch the job, and collect the results.",
)
local_app = typer.Typer(
    no_args_is_help=True, help="The local stack: Azurite and the Batch emulator."
)
app.add_typer(local_app, name="local")

OutOption = Annotated[Path | None, typer.Option(help="results directory (results/<job-id>)")]
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON document on stdout")]
NoReportOption = Annotated[
    bool,
    typer.Option("--no-report", help="write no report.html next to the results (see `report`)"),
]
TimeoutOption = Annotated[
    str | None,
    typer.Option(help="give up waiting after (90s, 15m, 2h)", show_default="wait until done"),
]
StallOption = Annotated[
    str,
    typer.Option(
        help="give up on a job that cannot start (no nodes to be had, failed start tasks, "
        "no pool) after this long without progress; 0 waits on"
    ),
]
JobArgument = Annotated[str, typer.Argument(help="the job id")]


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Reply:
    """How a command answers when it fails: one line on stderr, and with --json also one
    document on stdout, ``{"error": ..., "status": ..., "resume": ...}``."""

    as_json: bool = False

    def fail(self, status: int, message: str, resume: str | None = None) -> typer.Exit:
        _log(f"error: {message}")
        if resume:
            _log(f"to resume: {resume}")
        if self.as_json:
            document = {"error": message, "status": status, "resume": resume}
            print(json.dumps(document, indent=2, ensure_ascii=False))
        return typer.Exit(status)


def _exit(status: int, message: str) -> typer.Exit:
    return Reply().fail(status, message)


def runner_command(*arguments: str) -> str:
    """A runner command line that works as printed: this interpreter, shell-quoted."""
    return shlex.join([sys.executable, "-m", "runner", *arguments])


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
def _errors(
    target: Target, reply: Reply = Reply(), resume: Callable[[], str | None] = lambda: None
) -> Iterator[None]:
    """Map what can go wrong to an exit status and one line, with no traceback."""
    try:
        yield
    except InputError as error:
        raise reply.fail(EXIT_USAGE, str(error)) from None
    except waiting.JobNotFound as error:
        raise reply.fail(EXIT_USAGE, str(_no_job(error.args[0]))) from None
    except (waiting.JobIncomplete, NotFound) as error:
        raise reply.fail(EXIT_USAGE, str(error)) from None
    except KeyboardInterrupt:
        raise reply.fail(EXIT_INTERRUPTED, "interrupted", resume()) from None
    except monitor.MonitorTimeout as error:
        raise reply.fail(EXIT_TIMEOUT, f"{error}; the job goes on", resume()) from None
    except diagnosis.Stalled as error:
        raise reply.fail(EXIT_STACK, str(error), None if error.ends_job else resume()) from None
    except (OutputsError, batch_job.JobError, AzureError) as error:
        if target.debug:
            raise
        first = first_line(error)
        # The service may answer again later: say how to pick the job up then.
        again = resume() if isinstance(error, AzureError) and monitor.transient(error) else None
        raise reply.fail(EXIT_STACK, first, again) from None


class NotFound(LookupError):
    """Something the user named that does not exist; the message says what does."""


def _no_job(job: str) -> NotFound:
    return NotFound(f"no job {job} on this stack; {runner_command('jobs')} lists them")


def _duration(text: str | None, option: str, reply: Reply) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as error:
        raise reply.fail(EXIT_USAGE, f"{option}: {error}") from None


def _stall(text: str, reply: Reply) -> float:
    """--stall-timeout in seconds; 0 (or 0s, 0m) for never."""
    if text.rstrip("smh").strip() in ("0", "0.0"):
        return 0.0
    limit = _duration(text, "--stall-timeout", reply)
    return limit.total_seconds() if limit else 0.0


def _check_job_id(job_id: str, reply: Reply) -> None:
    if not JOB_ID.fullmatch(job_id):
        raise reply.fail(
            EXIT_USAGE,
            f"job id {job_id!r} is not one Batch accepts: use letters, digits, '-' and '_', "
            "at most 64 characters",
        )


def _check_out(out: Path | None, reply: Reply) -> None:
    """--out must be a directory this user can create and write, found before any upload."""
    if out is None:
        return
    existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise reply.fail(EXIT_USAGE, f"--out {out}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise reply.fail(EXIT_USAGE, f"--out {out}: {existing} is not writable")


def _table(collected: list[TaskResult], program: Program) -> Iterator[str]:
    """The results table, a line at a time (a job may have 100,000 rows)."""

    def row(result: TaskResult) -> tuple[str, str, str]:
        return (result.input, result.task_id, "ok" if result.succeeded else "FAILED")

    header = ("input", "task", "result")
    widths = [len(name) for name in header]
    for result in collected:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row(result), strict=True)]

    def line(cells: tuple[str, str, str], last: str) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + last

    yield line(header, program.column)
    for result in collected:
        yield line(row(result), program.cell(result.output))


def _json_document(job_id: str, finished: Finished) -> Iterator[str]:
    """``{"job_id", "succeeded", "tasks": [...], "merged"}``, a task a line, written as it
    goes; ``merged`` only for a job with a merge stage."""
    collected, merged = finished.results, finished.merged
    yield "{"
    yield f'  "job_id": {json.dumps(job_id)},'
    yield f'  "succeeded": {json.dumps(finished.succeeded)},'
    yield '  "tasks": ['
    for index, result in enumerate(collected):
        comma = "," if index < len(collected) - 1 else ""
        yield f"    {json.dumps(result.to_dict(), ensure_ascii=False)}{comma}"
    yield "  ]" + ("," if merged is not None else "")
    if merged is not None:
        yield f'  "merged": {json.dumps(merged.to_dict(), ensure_ascii=False)}'
    yield "}"


def _write_report(clients: Clients, job_id: str, out: Path | None, wanted: bool) -> Path | None:
    """The job's report next to its results (``--no-report``: none). A report that cannot
    be made is a warning: the job and its results are what the command is for."""
    if not wanted:
        return None
    from runner import report as reporting  # only when written: every command starts faster

    try:
        return reporting.write(clients, job_id, reporting.default_path(job_id, out))
    except (OSError, AzureError) as error:
        first = first_line(error)
        _log(f"warning: job {job_id}: no report written: {first}")
        return None


def _print_outcome(
    job_id: str,
    finished: Finished,
    program: Program,
    as_json: bool,
    report: Path | None = None,
) -> None:
    """Results on stdout, failures on stderr; exit 1 if any task (or the merge) failed."""
    if as_json:
        lines = _json_document(job_id, finished)
    else:
        merged = [finished.merged.line()] if finished.merged is not None else []
        lines = itertools.chain(_table(finished.results, program), merged)
    sys.stdout.writelines(f"{line}\n" for line in lines)
    sys.stdout.flush()
    for result in finished.results:
        if not result.succeeded:
            _log(f"task {result.task_id} ({result.input}) failed: {result.failure}")
            for line in result.stderr_tail:
                _log(f"  | {line}")
    if finished.merged is not None and not finished.merged.succeeded:
        _log(f"merge failed: {finished.merged.failure}")
        for line in finished.merged.stderr_tail:
            _log(f"  | {line}")
    if report is not None:
        _log(f"job {job_id}: report in {report}")
    if not finished.succeeded:
        raise typer.Exit(EXIT_FAILED_TASKS)


# --- the verbs -----------------------------------------------------------------------------


@app.command()
@on_a_stack
def submit(
    context: typer.Context,
    inputs: Annotated[
        list[str], typer.Argument(help="input files or directories, one task per file")
    ] = [],  # noqa: B006
    from_file: Annotated[
        list[str],
        typer.Option(help="a file listing inputs, one per line ('-': standard input)"),
    ] = [],  # noqa: B006
    include: Annotated[
        list[str], typer.Option(help="in directories, only files matching this glob")
    ] = [],  # noqa: B006
    exclude: Annotated[
        list[str], typer.Option(help="in directories, not files matching this glob")
    ] = [],  # noqa: B006
    blobs: Annotated[
        list[str],
        typer.Option(
            help="blobs already in storage: PREFIX of the input container, or CONTAINER/PREFIX"
        ),
    ] = [],  # noqa: B006
    top: Annotated[int, typer.Option(min=1, help="words to keep per file")] = 3,
    job_id: Annotated[str | None, typer.Option(help="job id; the same id resumes a job")] = None,
    out: OutOption = None,
    timeout: TimeoutOption = None,
    stall_timeout: StallOption = "10m",
    as_json: JsonOption = False,
    task_retries: Annotated[int, typer.Option(min=0, help="retries of a failing task")] = 1,
    task_timeout: Annotated[
        str | None, typer.Option(help="a task's wall-clock limit", show_default="none")
    ] = None,
    keep_inputs: Annotated[
        bool, typer.Option(help="keep the uploaded inputs after a successful job")
    ] = False,
    keep_logs: Annotated[
        bool,
        typer.Option(help="upload every task's stdout and stderr, not only failed tasks'"),
    ] = False,
    script: Annotated[
        Path | None,
        typer.Option(
            help="your own per-file script; its arguments follow '--' ({input}, {output_dir})"
        ),
    ] = None,
    files_per_task: Annotated[
        str,
        typer.Option(
            help="inputs per task, each still its own result: a number, or 'auto' "
            "(from the inputs' sizes and the pool's slots)"
        ),
    ] = "1",
    merge: Annotated[
        bool,
        typer.Option(
            "--merge", help="also the top words across all inputs (merged_OUTPUT.txt, .json)"
        ),
    ] = False,
    merge_partial: Annotated[
        bool,
        typer.Option(
            "--merge-partial", help="merge what succeeded even if some inputs failed (--merge)"
        ),
    ] = False,
    merge_script: Annotated[
        Path | None,
        typer.Option(
            help="your own merge script, run on the per-file results; its arguments follow "
            "a second '--' ({inputs_dir}, {output_dir})"
        ),
    ] = None,
    requirements: Annotated[
        Path | None,
        typer.Option(
            help="packages the script imports (pip's requirements format); each node "
            "installs them once, into an environment later jobs reuse"
        ),
    ] = None,
    code: Annotated[
        list[Path],
        typer.Option(help="a file or folder the script imports, staged beside it (repeatable)"),
    ] = [],  # noqa: B006
    wheels: Annotated[
        Path | None,
        typer.Option(help="a folder of wheels to install from, with no package index"),
    ] = None,
    no_report: NoReportOption = False,
    *,
    target: Target,
) -> None:
    """Run one Batch task per input file: the top words of each, or your --script."""
    reply = Reply(as_json)
    given = (context.obj or {}).get("argv", [])
    script_arguments: tuple[str, ...] = tuple((context.obj or {}).get("script_arguments", ()))
    merge_arguments: tuple[str, ...] = tuple((context.obj or {}).get("merge_arguments", ()))
    if script_arguments and script is None:
        raise reply.fail(EXIT_USAGE, "arguments after '--' need --script")
    if merge_arguments and merge_script is None:
        raise reply.fail(EXIT_USAGE, "arguments after a second '--' need --merge-script")
    for path, option in ((script, "script"), (merge_script, "merge script")):
        if path is not None and not path.is_file():
            raise reply.fail(EXIT_USAGE, f"{option} not found: {path}")
    merging = merge or merge_partial or merge_script is not None
    if merging and script is not None and merge_script is None:
        raise reply.fail(
            EXIT_USAGE, "a --script job merges with its own --merge-script (--merge is topwords')"
        )
    if job_id is not None:
        _check_job_id(job_id, reply)
    _check_out(out, reply)
    counts = merging and merge_script is None
    program: Program = TopWords(top, counts) if script is None else Script(script, script_arguments)
    how: Merge | None = None
    if merge_script is not None:
        how = Merge.of_script(merge_script, merge_arguments, merge_partial)
    elif merging:
        how = Merge.of_topwords(top, merge_partial)
    limit = _duration(timeout, "--timeout", reply)
    try:
        per_task = packing.parse(files_per_task)
    except InputError as error:
        raise reply.fail(EXIT_USAGE, str(error)) from None
    request = Request(
        program=program,
        out=out,
        timeout=limit.total_seconds() if limit else None,
        task_retries=task_retries,
        task_timeout=_duration(task_timeout, "--task-timeout", reply),
        stall_timeout=_stall(stall_timeout, reply),
        keep_inputs=keep_inputs or bool(blobs),  # never delete data it did not upload
        keep_logs=keep_logs,
        files_per_task=per_task,
        merge=how,
    )
    submission = Submission(job_id or program.new_job_id())

    def resume() -> str:
        if submission.tasks_added:
            return runner_command("wait", submission.job_id, *_target_arguments(target, out))
        again = list(given) + ([] if job_id else ["--job-id", submission.job_id])
        if merge_arguments:
            again += ["--", *script_arguments, "--", *merge_arguments]
        elif script_arguments:
            again += ["--", *script_arguments]
        return runner_command(*again)

    with _errors(target, reply, resume):
        listed = [path for source in from_file for path in read_list(source)]
        filters = Filters(tuple(include), tuple(exclude))
        local_paths = [*inputs, *listed]
        # Local inputs are checked before touching any service; stored ones need it.
        checked = check_inputs(local_paths, filters) if local_paths or not blobs else []
        request = dataclasses.replace(request, environment=bundle.check(requirements, code, wheels))
        clients = target.clients()
        if blobs:
            checked = with_stored(checked, stored_inputs(clients, blobs))
        with ProgressDisplay(len(checked)) as display:
            finished = run(clients, checked, request, _log, display, submission)
        report = _write_report(clients, submission.job_id, out, not no_report)
    _print_outcome(submission.job_id, finished, program, as_json, report)


def _target_arguments(target: Target, out: Path | None = None) -> list[str]:
    """The options that point a resumed command at the same stack and results folder."""
    arguments = ["--stack", target.stack] if target.stack else []
    if target.outputs:
        arguments += ["--outputs", str(target.outputs)]
    return arguments + (["--out", str(out)] if out else [])


@app.command()
def doctor(
    stack_name: Annotated[
        str | None, typer.Option("--stack", help="the Pulumi stack", show_default="local")
    ] = None,
    outputs: Annotated[
        Path | None, typer.Option(help="a stack outputs JSON file", show_default="none")
    ] = None,
    probe: Annotated[
        bool, typer.Option(help="also run a one-task job and time it end to end")
    ] = False,
    requirements: Annotated[
        Path | None,
        typer.Option(help="with --probe: also build this environment on a node, and time it"),
    ] = None,
    wheels: Annotated[
        Path | None, typer.Option(help="with --requirements: a folder of wheels to install from")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check that the stack can run jobs, each check ok, warn or FAIL with its fix."""
    reply = Reply(as_json)
    if (requirements or wheels) and not probe:
        raise reply.fail(EXIT_USAGE, "--requirements and --wheels go with --probe")
    try:
        environment = bundle.check(requirements, [], wheels)
    except InputError as error:
        raise reply.fail(EXIT_USAGE, str(error)) from None
    checks = []
    load = functools.partial(stack.resolve, stack_name, outputs, _log)
    for check in doctoring.run(load, probe, environment=environment):
        checks.append(check)
        if not as_json:
            print(check.line(), flush=True)
    document = doctoring.as_document(checks)
    if as_json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    raise typer.Exit(0 if document["ok"] else EXIT_STACK)


@app.command()
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
    """Resume watching a job, then download its results and print them."""
    reply = Reply(as_json)
    _check_job_id(job, reply)
    _check_out(out, reply)
    limit = _duration(timeout, "--timeout", reply)
    request = Request(
        out=out,
        timeout=limit.total_seconds() if limit else None,
        stall_timeout=_stall(stall_timeout, reply),
    )
    resume = runner_command("wait", job, *_target_arguments(target, out))
    with _errors(target, reply, lambda: resume):
        clients = target.clients()
        submitted = waiting.submitted(clients, job)
        with ProgressDisplay(len(submitted.expected)) as display:
            finished = waiting.finish(clients, job, submitted, request, display, _log)
        report = _write_report(clients, job, out, not no_report)
    _print_outcome(job, finished, submitted.program, as_json, report)


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
    _check_job_id(job, Reply())
    _check_out(out, Reply())
    with _errors(target):
        clients = target.clients()
        fetched = download.download(clients, job, out, with_logs)
        if fetched.files == 0 and batch_job.find(clients, job) is None:
            raise _no_job(job)
    print(f"{fetched.files} files in {fetched.destination}")


@app.command(name="status")
@on_a_stack
def job_status(job: JobArgument, *, target: Target) -> None:
    """A job's state and task counts."""
    _check_job_id(job, Reply())
    with _errors(target):
        clients = target.clients()
        if batch_job.find(clients, job) is None:
            raise _no_job(job)
        found = status.job_status(clients, job)
    print(
        f"{job}: {found.state}; active {found.active}, running {found.running}, "
        f"succeeded {found.succeeded}, failed {found.failed}"
    )


@app.command(name="report")
@on_a_stack
def job_report(
    job: JobArgument,
    out: Annotated[
        Path | None,
        typer.Option(help="the HTML file to write", show_default="results/<job-id>/report.html"),
    ] = None,
    price_per_node_hour: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="your price of a node-hour, for the cost estimate",
            show_default="from a table of VM sizes' prices",
        ),
    ] = None,
    *,
    target: Target,
) -> None:
    """A job's report: one HTML file (no network needed to view it) with its tasks per
    node over time, durations, nodes, slowest and failed tasks, bytes and cost."""
    from runner import report as reporting  # as in _write_report

    _check_job_id(job, Reply())
    path = out or reporting.default_path(job)
    with _errors(target):
        clients = target.clients()
        if batch_job.find(clients, job) is None:
            raise _no_job(job)
        try:
            written = reporting.write(clients, job, path, price_per_node_hour)
        except OSError as error:
            raise _exit(EXIT_USAGE, f"--out {path}: {error.strerror or error}") from None
    print(written)


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
    rows = [("job", "state", "created")] + [
        (job.job_id, job.state, f"{job.created:%Y-%m-%d %H:%M:%S}") for job in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for row in rows:
        print(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}")


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
    """A task's stdout (or stderr), from its node, or from the output container after;
    for the task id jobpreparation, the job preparation task's on each node."""
    _check_job_id(job, Reply())
    with _errors(target):
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
    if batch_job.find(clients, job) is None:
        return NotFound(
            f"no job {job} on this stack and no logs stored for its task {task}; "
            f"{runner_command('jobs')} lists the jobs"
        )
    ids = sorted(batch_job.task_ids(clients, job))
    shown = ", ".join(ids[:5]) + (f" (and {len(ids) - 5} more)" if len(ids) > 5 else "")
    return NotFound(f"job {job} has no task {task}; its tasks: {shown or 'none'}")


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
    _check_job_id(job, Reply())
    with _errors(target):
        try:
            deleted = delete.delete(target.clients(), job, inputs)
        except ResourceNotFoundError:
            raise _no_job(job) from None
        if not deleted.job_was_there and deleted.blobs == 0:
            raise _no_job(job)
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
def local_up(
    faults: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="fail this fraction of Batch and storage requests (0.05)"),
    ] = None,
    fault_seed: Annotated[
        int | None, typer.Option(help="the faults' seed", show_default="random")
    ] = None,
    fault_kinds: Annotated[
        str | None,
        typer.Option(help="comma-separated, of 500,503,429,reset,cut,partial", show_default="all"),
    ] = None,
    core_quota: Annotated[
        int | None,
        typer.Option(min=0, help="the account's core quota: pools get the nodes that fit"),
    ] = None,
    pool_quota: Annotated[int | None, typer.Option(min=0, help="the account's pool quota")] = None,
    autoscale: Annotated[
        bool, typer.Option(help="the pool follows its autoscale formula (every 5s)")
    ] = False,
) -> None:
    """Start Azurite and the emulator (if not running), provision them, write outputs.
    Without --faults, faults are off (servers that ran with them are restarted); the
    same for the quotas (default: unlimited) and --autoscale (default: fixed nodes)."""
    options = [] if faults is None else ["--faults", f"{faults:g}"]
    options += [] if fault_seed is None else ["--fault-seed", str(fault_seed)]
    options += [] if fault_kinds is None else ["--fault-kinds", fault_kinds]
    options += [] if core_quota is None else ["--core-quota", str(core_quota)]
    options += [] if pool_quota is None else ["--pool-quota", str(pool_quota)]
    options += ["--autoscale"] if autoscale else []
    raise typer.Exit(local.run("up", *options))


@local_app.command("down")
def local_down() -> None:
    """Stop Azurite and the emulator. Their data stays in .local/."""
    raise typer.Exit(local.run("down"))


@local_app.command("status")
def local_status() -> None:
    """Show the endpoints and the pool's node states."""
    raise typer.Exit(local.run("status"))


def main(argv: list[str] | None = None) -> None:
    """What follows '--' on a submit command line is the --script's own arguments, and
    after a second '--' the --merge-script's: kept out of the parsing and handed to the
    command through its context."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # The Azure SDKs log what they recover from (a streamed download's error body, say)
    # with a traceback, which Python would print: the runner's own line says what failed.
    logging.getLogger("azure").addHandler(logging.NullHandler())
    script_arguments: list[str] = []
    merge_arguments: list[str] = []
    if argv[:1] == ["submit"] and "--" in argv:
        split = argv.index("--")
        argv, script_arguments = argv[:split], argv[split + 1 :]
        if "--" in script_arguments and any(a.startswith("--merge-script") for a in argv):
            split = script_arguments.index("--")
            script_arguments, merge_arguments = (
                script_arguments[:split],
                script_arguments[split + 1 :],
            )
    try:
        status = app(
            args=argv,
            prog_name="python -m runner",
            obj={
                "script_arguments": script_arguments,
                "merge_arguments": merge_arguments,
                "argv": argv,
            },
            standalone_mode=False,
        )
    except typer.exceptions.TyperException as error:  # the command line did not parse
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare group: its help
            error.show()  # type: ignore[attr-defined]
            sys.exit(EXIT_USAGE)
        message = error.format_message()
        sys.exit(Reply("--json" in argv).fail(EXIT_USAGE, message).exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _log("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status if isinstance(status, int) else 0)
