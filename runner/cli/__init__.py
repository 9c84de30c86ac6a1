"""The command line: parse, call the verb's module, print. No work happens here.

Exit statuses (``EXIT_MEANINGS``): 0 success, 1 some tasks failed, 2 usage or bad input,
3 stack, auth or service error, 4 still running after --timeout, 130 interrupted. Results
go to stdout, progress and errors to stderr. The verbs live in the modules beside this
one, each registered on ``app`` when imported here.
"""

from __future__ import annotations

import logging
import sys

import typer

# The verbs, registered in the order --help lists them.
# isort: off
from runner.cli import submit_command, job_commands, stack_commands  # noqa: F401

# isort: on
from runner.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_MEANINGS,
    EXIT_USAGE,
    Reply,
    Target,
    app,
    errors,
    log,
    runner_command,
)

__all__ = ["EXIT_MEANINGS", "Target", "app", "errors", "main", "runner_command"]


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
        log("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status if isinstance(status, int) else 0)
