"""``submit``: its options, checked before any service is touched, then handed to
runner.submit."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from runner.cli.common import (
    EXIT_USAGE,
    Command,
    JsonOption,
    NoReportOption,
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
    log,
    on_a_stack,
    runner_command,
    stall,
)
from runner.cli.outcome import print_outcome, write_report


@app.command(cls=Command)
@on_a_stack
def submit(
    context: typer.Context,
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...")] = [],  # noqa: B006
    from_file: Annotated[
        list[str],
        typer.Option(
            metavar="FILE",
            help="a file listing inputs, one per line ('-': standard input); a relative "
            "path is from the working directory, as on the command line",
        ),
    ] = [],  # noqa: B006
    include: Annotated[
        list[str],
        typer.Option(
            metavar="GLOB",
            help="in directories, only files matching this glob, matched as .gitignore "
            "does: at any depth below the directory ('/' first: at its top), a folder "
            "matching takes its files; repeatable",
        ),
    ] = [],  # noqa: B006
    exclude: Annotated[
        list[str],
        typer.Option(
            metavar="GLOB",
            help="in directories, not files matching this glob ('deep/*' leaves out "
            "a/deep/x too; '/deep/*' only the directory's own deep/); repeatable",
        ),
    ] = [],  # noqa: B006
    blobs: Annotated[
        list[str],
        typer.Option(
            metavar="PREFIX",
            help="blobs already in storage: CONTAINER/PREFIX (as the table names inputs: "
            "input/keep1 for the input container's keep1/), or PREFIX of the input container",
        ),
    ] = [],  # noqa: B006
    top: Annotated[int, typer.Option(min=1, metavar="N", help="words to keep per file")] = 3,
    job_id: Annotated[
        str | None,
        typer.Option(
            metavar="ID", help="job id; the same id resumes a job", show_default="a new one"
        ),
    ] = None,
    out: OutOption = None,
    timeout: TimeoutOption = None,
    stall_timeout: StallOption = "10m",
    as_json: JsonOption = False,
    task_retries: Annotated[
        int, typer.Option(min=0, metavar="N", help="retries of a failing task")
    ] = 1,
    task_timeout: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="a task's wall-clock limit (a task of several inputs: for them all)",
            show_default="none",
        ),
    ] = None,
    keep_inputs: Annotated[
        bool, typer.Option("--keep-inputs", help="keep the uploaded inputs after a successful job")
    ] = False,
    keep_logs: Annotated[
        bool,
        typer.Option(
            "--keep-logs", help="upload every task's stdout and stderr, not only failed tasks'"
        ),
    ] = False,
    script: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="your own per-file script; its arguments follow '--' ({input}, {output_dir})",
        ),
    ] = None,
    files_per_task: Annotated[
        str,
        typer.Option(
            metavar="N|auto",
            help="inputs per task, each still its own result: a number, or 'auto', "
            "which packs many small inputs (about 32 MB a task, at most 100, every slot "
            "of the pool still getting two tasks) and gives a task to each input of a "
            "small job or of large inputs; 1 for a task per input whatever the inputs",
        ),
    ] = "auto",
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
            metavar="FILE",
            help="your own merge script, run on the per-file results; its arguments follow "
            "a second '--' ({inputs_dir}, {output_dir})",
        ),
    ] = None,
    requirements: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="packages the script imports (pip's requirements format); each node "
            "installs them once, into an environment later jobs reuse",
        ),
    ] = None,
    code: Annotated[
        list[Path],
        typer.Option(
            metavar="PATH",
            help="a file or folder the script imports, staged beside it (repeatable)",
        ),
    ] = [],  # noqa: B006
    wheels: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="a folder of wheels to install from, with no index"),
    ] = None,
    no_report: NoReportOption = False,
    *,
    target: Target,
) -> None:
    """Run one Batch task per INPUT file (files or folders): the top words of each, or
    your --script."""
    from runner import bundle, packing
    from runner.display import ProgressDisplay
    from runner.finishing import Request
    from runner.inputs import Filters, InputError, check_inputs, read_list, with_stored
    from runner.merge import Merge
    from runner.program import Program, Script, TopWords
    from runner.stored import stored_inputs
    from runner.submit import Submission, run

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
        check_job_id(job_id, reply)
    check_out(out, reply)
    counts = merging and merge_script is None
    program: Program = TopWords(top, counts) if script is None else Script(script, script_arguments)
    how: Merge | None = None
    if merge_script is not None:
        how = Merge.of_script(merge_script, merge_arguments, merge_partial)
    elif merging:
        how = Merge.of_topwords(top, merge_partial)
    limit = duration(timeout, "--timeout", reply)
    try:
        per_task = packing.parse(files_per_task)
    except InputError as error:
        raise reply.fail(EXIT_USAGE, str(error)) from None
    request = Request(
        program=program,
        out=out,
        timeout=limit.total_seconds() if limit else None,
        task_retries=task_retries,
        task_timeout=duration(task_timeout, "--task-timeout", reply),
        stall_timeout=stall(stall_timeout, reply),
        keep_inputs=keep_inputs or bool(blobs),  # never delete data it did not upload
        keep_logs=keep_logs,
        files_per_task=per_task,
        merge=how,
    )
    submission = Submission(job_id or program.new_job_id())

    def resume() -> str:
        if submission.tasks_added:
            return runner_command(
                "wait", submission.job_id, *target.arguments(out, as_json, no_report)
            )
        again = list(given) + ([] if job_id else ["--job-id", submission.job_id])
        if merge_arguments:
            again += ["--", *script_arguments, "--", *merge_arguments]
        elif script_arguments:
            again += ["--", *script_arguments]
        return runner_command(*again)

    with errors(target, reply, resume):
        listed = [path for source in from_file for path in read_list(source)]
        filters = Filters(tuple(include), tuple(exclude))
        local_paths = [*inputs, *listed]
        # Local inputs are checked before touching any service; stored ones need it.
        checked = check_inputs(local_paths, filters, log) if local_paths or not blobs else []
        request = dataclasses.replace(request, environment=bundle.check(requirements, code, wheels))
        clients = target.clients()
        if blobs:
            checked = with_stored(checked, stored_inputs(clients, blobs))
        with ProgressDisplay(len(checked)) as display:
            finished = run(clients, checked, request, log, display, submission)
        report = write_report(clients, submission.job_id, out, not no_report, target)
    print_outcome(submission.job_id, finished, program, as_json, report)
