"""What every verb shares: the apps, exit statuses, how a failure is answered, the stack a
command works on, and the checks of options every verb parses the same way.

Only typer and the standard library are imported here, and each verb imports what does its
work when it runs: ``--help``, and a mistyped option, answer without loading the SDKs.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core
from typer import _click as click

from runner.safe_text import dumps, printable

if TYPE_CHECKING:
    from runner.clients import Clients

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


class Command(typer.core.TyperCommand):
    """A verb's help as click writes it: its arguments by name in the usage line (JOB, not
    typer's {JOB}) and described in its docstring, its options listed without type labels."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        options = [
            record
            for param in self.get_params(ctx)
            if param.param_type_name == "option" and (record := param.get_help_record(ctx))
        ]
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)


# Plain help (rich_markup_mode=None): click's own formatter, which wraps at the terminal's
# width instead of cutting defaults short, and starts without importing rich.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help="Run a program on every input file as one Azure Batch task each (on an Azure "
    "stack, or on the local stack by default), watch the job, and collect the results.",
)
local_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The local stack: Azurite and the Batch emulator.",
)
app.add_typer(local_app, name="local")

OutOption = Annotated[
    Path | None,
    typer.Option(metavar="DIR", help="results directory", show_default="results/<job-id>"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON document on stdout")]
NoReportOption = Annotated[
    bool,
    typer.Option("--no-report", help="write no report.html next to the results (see `report`)"),
]
TimeoutOption = Annotated[
    str | None,
    typer.Option(
        metavar="DURATION",
        help="give up waiting after (90s, 15m, 2h)",
        show_default="wait until done",
    ),
]
StallOption = Annotated[
    str,
    typer.Option(
        metavar="DURATION",
        help="give up on a job that cannot start (no nodes to be had, failed start tasks, "
        "no pool) after this long without progress; 0 waits on",
    ),
]
JobArgument = Annotated[str, typer.Argument(metavar="JOB")]


def log(line: str) -> None:
    """A line on stderr; what came from files (a name, a task's stderr) shown escaped."""
    print(printable(line), file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Reply:
    """How a command answers when it fails: one line on stderr, and with --json also one
    document on stdout, ``{"error": ..., "status": ..., "resume": ...}``."""

    as_json: bool = False

    def fail(self, status: int, message: str, resume: str | None = None) -> typer.Exit:
        log(f"error: {message}")
        if resume:
            log(f"to resume: {resume}")
        if self.as_json:
            document = {"error": message, "status": status, "resume": resume}
            print(dumps(document, indent=2))
        return typer.Exit(status)


def fail(status: int, message: str) -> typer.Exit:
    return Reply().fail(status, message)


def runner_command(*arguments: str) -> str:
    """A runner command line that works as printed: this interpreter, shell-quoted."""
    return shlex.join([sys.executable, "-m", "runner", *arguments])


class NotFound(LookupError):
    """Something the user named that does not exist; the message says what does."""


def no_job(job: str) -> NotFound:
    return NotFound(f"no job {job} on this stack; {runner_command('jobs')} lists them")


# --- the options every command on a stack takes, declared once --------------------------


@dataclass(frozen=True)
class Target:
    """The stack a command works on (--stack or --outputs; else the local stack), and
    whether errors show their traceback (--debug)."""

    stack: str | None = None
    outputs: Path | None = None
    debug: bool = False

    def clients(self) -> Clients:
        from runner import stack
        from runner.clients import connect

        return connect(stack.resolve(self.stack, self.outputs, log))

    def arguments(
        self, out: Path | None = None, as_json: bool = False, no_report: bool = False
    ) -> list[str]:
        """The options that make a resumed command answer as this one would: the same
        stack and results folder, and the same --json and --no-report."""
        arguments = ["--stack", self.stack] if self.stack else []
        if self.outputs:
            arguments += ["--outputs", str(self.outputs)]
        arguments += ["--out", str(out)] if out else []
        return arguments + (["--json"] if as_json else []) + (["--no-report"] if no_report else [])


StackOption = Annotated[
    str | None, typer.Option("--stack", metavar="NAME", help="a Pulumi stack's outputs")
]
OutputsOption = Annotated[
    Path | None, typer.Option("--outputs", metavar="FILE", help="stack outputs JSON file")
]
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
def errors(
    target: Target, reply: Reply = Reply(), resume: Callable[[], str | None] = lambda: None
) -> Iterator[None]:
    """Map what can go wrong to an exit status and one line, with no traceback."""
    from azure.core.exceptions import AzureError

    from contract.outputs import OutputsError
    from runner import batch_job, diagnosis, monitor
    from runner import wait as waiting
    from runner.display import first_line
    from runner.inputs import InputError
    from runner.workflow_identity import WorkflowIdentityError

    try:
        yield
    except InputError as error:
        raise reply.fail(EXIT_USAGE, str(error)) from None
    except waiting.JobNotFound as error:
        raise reply.fail(EXIT_USAGE, str(no_job(error.args[0]))) from None
    except (waiting.JobIncomplete, NotFound) as error:
        raise reply.fail(EXIT_USAGE, str(error)) from None
    except KeyboardInterrupt:
        raise reply.fail(EXIT_INTERRUPTED, "interrupted", resume()) from None
    except monitor.MonitorTimeout as error:
        raise reply.fail(EXIT_TIMEOUT, f"{error}; the job goes on", resume()) from None
    except diagnosis.Stalled as error:
        raise reply.fail(EXIT_STACK, str(error), None if error.ends_job else resume()) from None
    except (OutputsError, batch_job.JobError, WorkflowIdentityError, AzureError) as error:
        if target.debug:
            raise
        first = first_line(error)
        # The service may answer again later: say how to pick the job up then.
        again = resume() if isinstance(error, AzureError) and monitor.transient(error) else None
        raise reply.fail(EXIT_STACK, first, again) from None


def duration(text: str | None, option: str, reply: Reply) -> timedelta | None:
    if text is None:
        return None
    from runner.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise reply.fail(EXIT_USAGE, f"{option}: {error}") from None


def stall(text: str, reply: Reply, option: str = "--stall-timeout") -> float:
    """A duration option in seconds, ``option`` naming it in an error; 0 (or 0s, 0m) for
    never (--stall-timeout) or no wait (--wait-for-roles)."""
    if text.rstrip("smh").strip() in ("0", "0.0"):
        return 0.0
    limit = duration(text, option, reply)
    return limit.total_seconds() if limit else 0.0


def check_job_id(job_id: str, reply: Reply) -> None:
    if not JOB_ID.fullmatch(job_id):
        raise reply.fail(
            EXIT_USAGE,
            f"job id {job_id!r} is not one Batch accepts: use letters, digits, '-' and '_', "
            "at most 64 characters",
        )


def check_out(out: Path | None, reply: Reply) -> None:
    """--out (else ``results/``, where each job's folder goes) must be a folder this user
    can create and write: found before any upload by creating it and a file in it, then
    removing what was created, so a job refused later leaves nothing behind."""
    folder = out if out is not None else Path("results")
    option = f"--out {out}" if out is not None else f"the results folder {folder.absolute()}"
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        shown = existing if out is not None else existing.absolute()
        raise reply.fail(EXIT_USAGE, f"{option}: {shown} is a file, not a directory")
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".runner-probe-{os.getpid()}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise reply.fail(
            EXIT_USAGE, f"{option}: cannot create a folder there and write in it ({reason})"
        ) from None
    finally:
        for made in created:  # deepest first: the folders this check created, and no other
            try:
                if made.is_dir():
                    made.rmdir()
            except OSError:
                break
