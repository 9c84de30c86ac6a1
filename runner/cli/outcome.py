"""How a finished job is shown: the results table or the --json document on stdout,
failures on stderr, the report beside the results, and the exit status."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from runner.cli.common import EXIT_FAILED_TASKS, Target, log
from runner.safe_text import dumps, printable, width

if TYPE_CHECKING:
    from runner.clients import Clients
    from runner.finishing import Finished
    from runner.program import Program
    from runner.results import TaskResult


def table(collected: list[TaskResult], program: Program) -> Iterator[str]:
    """The results table, a line at a time (a job may have 100,000 rows)."""

    def row(result: TaskResult) -> tuple[str, str, str]:
        return (printable(result.input), result.task_id, "ok" if result.succeeded else "FAILED")

    header = ("input", "task", "result")
    widths = [len(name) for name in header]
    for result in collected:
        widths = [max(w, width(cell)) for w, cell in zip(widths, row(result), strict=True)]

    def line(cells: tuple[str, str, str], last: str) -> str:
        padded = (c + " " * (w - width(c)) for c, w in zip(cells, widths, strict=True))
        return "  ".join(padded) + "  " + printable(last)

    yield line(header, program.column)
    for result in collected:
        yield line(row(result), program.cell(result.output))


def json_document(job_id: str, finished: Finished) -> Iterator[str]:
    """``{"job_id", "succeeded", "tasks": [...], "merged"}``, a task a line, written as it
    goes; ``merged`` only for a job with a merge stage."""
    collected, merged = finished.results, finished.merged
    yield "{"
    yield f'  "job_id": {dumps(job_id)},'
    yield f'  "succeeded": {dumps(finished.succeeded)},'
    yield '  "tasks": ['
    for index, result in enumerate(collected):
        comma = "," if index < len(collected) - 1 else ""
        yield f"    {dumps(result.to_dict())}{comma}"
    yield "  ]" + ("," if merged is not None else "")
    if merged is not None:
        yield f'  "merged": {dumps(merged.to_dict())}'
    yield "}"


def write_report(
    clients: Clients, job_id: str, out: Path | None, wanted: bool, target: Target
) -> str | None:
    """The job's report next to its results (``--no-report``: none), and how to say where
    it is. Written in the background unless in a pipeline (see runner.report.background).
    A report that cannot be made is a warning: the job and its results are what the
    command is for."""
    if not wanted:
        return None
    from runner.fetch import destination
    from runner.report.page import default_path  # not runner.report: no Bokeh here

    path = default_path(job_id, out)
    if not os.environ.get("CI"):
        from runner.report import background

        destination(job_id, out).mkdir(parents=True, exist_ok=True)
        background.start(job_id, path, target.stack, target.outputs)
        return f"{path} (being written: ready in a few seconds)"
    from azure.core.exceptions import AzureError

    from runner import report as reporting
    from runner.display import first_line

    try:
        return str(reporting.write(clients, job_id, path))
    except (OSError, AzureError) as error:
        log(f"warning: job {job_id}: no report written: {first_line(error)}")
        return None


def print_outcome(
    job_id: str,
    finished: Finished,
    program: Program,
    as_json: bool,
    report: str | None = None,
) -> None:
    """Results on stdout, failures on stderr; exit 1 if any task (or the merge) failed."""
    if as_json:
        lines = json_document(job_id, finished)
    else:
        merged = [printable(finished.merged.line())] if finished.merged is not None else []
        lines = itertools.chain(table(finished.results, program), merged)
    sys.stdout.writelines(f"{line}\n" for line in lines)
    sys.stdout.flush()
    for result in finished.results:
        if not result.succeeded:
            log(f"task {result.task_id} ({result.input}) failed: {result.failure}")
            for line in result.stderr_tail:
                log(f"  | {line}")
    if finished.merged is not None and not finished.merged.succeeded:
        log(f"merge failed: {finished.merged.failure}")
        for line in finished.merged.stderr_tail:
            log(f"  | {line}")
    if report is not None:
        log(f"job {job_id}: report in {report}")
    if not finished.succeeded:
        raise typer.Exit(EXIT_FAILED_TASKS)
