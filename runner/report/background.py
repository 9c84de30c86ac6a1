"""A job's report written after the command that finished the job has returned.

Drawing the page (Bokeh, the job's records) takes about a CPU-second, which a person at a
terminal would wait for before their prompt came back: ``submit`` and ``wait`` hand it to
a process of its own here and say where the page will be. In a pipeline (``CI`` set) the
report is written before the command ends, for the step after it to find.

A report that cannot be written leaves its one-line reason in ``report-error.txt`` beside
where the page would have been (the command that started it has exited by then).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ERROR_FILE = "report-error.txt"


def start(job_id: str, path: Path, stack: str | None, outputs: Path | None) -> None:
    """Start writing ``job_id``'s report to ``path`` in a detached process. The stack is
    named as the user named it (no key or token on the command line)."""
    command = [sys.executable, "-m", "runner.report.background", job_id, str(path)]
    command += ["--stack", stack] if stack else []
    command += ["--outputs", str(outputs)] if outputs else []
    subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C in the terminal after the prompt is not for it
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.report.background")
    parser.add_argument("job_id")
    parser.add_argument("path", type=Path)
    parser.add_argument("--stack")
    parser.add_argument("--outputs", type=Path)
    args = parser.parse_args(argv)
    error_file = args.path.with_name(ERROR_FILE)
    try:
        from runner import report, stack
        from runner.clients import connect

        # Never start the local stack: one stopped since the job ended stays stopped (a
        # server started here would outlive everyone who knows of it).
        outputs = stack.resolve(args.stack, args.outputs, lambda _: None, start=False)
        clients = connect(outputs)
        report.write(clients, args.job_id, args.path)
    except Exception as error:
        from runner.display import first_line

        args.path.parent.mkdir(parents=True, exist_ok=True)
        error_file.write_text(f"no report written for job {args.job_id}: {first_line(error)}\n")
        return 1
    error_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
