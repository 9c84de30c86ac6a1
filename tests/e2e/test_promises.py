"""The runner keeps its promises, tried as a user would on the local stack: one line per
error with its documented status, local checks before any upload, resume commands that
work as printed, resubmits that say what they do, and one JSON document with --json."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from contract.outputs import StackOutputs
from tests.e2e.conftest import (
    Gate,
    batch_client,
    container_client,
    interruptible,
    job_exists,
    runner,
)


def _inputs(outputs: StackOutputs) -> ContainerClient:
    return container_client(outputs, outputs.containers.input)


def _one_line_error(result: subprocess.CompletedProcess[str], status: int, text: str) -> None:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert text in errors[0], errors[0]


def _resume_line(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith("to resume: ")]
    return line.removeprefix("to resume: ")


def _as_printed(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A printed command, run by a shell as a user pasting it would."""
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize("job_id", ["v1.2", "my job", "x" * 65, ""])
def test_a_job_id_batch_would_refuse_is_refused_before_any_upload(
    stack, stack_outputs, tmp_path, job_id
):
    (tmp_path / "a.txt").write_text("words words")
    result = runner("submit", "a.txt", "--outputs", str(stack), "--job-id", job_id, cwd=tmp_path)
    _one_line_error(result, 2, "is not one Batch accepts")
    assert not any(_inputs(stack_outputs).list_blobs(name_starts_with=job_id or "/"))


def test_an_out_that_is_a_file_is_refused_before_any_upload(
    stack, stack_outputs, job_ids, tmp_path
):
    job_id = job_ids("e2e-out-file")
    (tmp_path / "a.txt").write_text("words words")
    (tmp_path / "taken").write_text("a file")
    result = runner(
        "submit", "a.txt", "--outputs", str(stack), "--job-id", job_id,
        "--out", "taken/results", cwd=tmp_path,
    )  # fmt: skip
    _one_line_error(result, 2, "is a file, not a directory")
    assert not any(_inputs(stack_outputs).list_blobs(name_starts_with=f"{job_id}/"))
    assert not job_exists(batch_client(stack_outputs), job_id)


def test_what_does_not_exist_is_the_users_mistake_said_in_one_line(stack, job_ids, tmp_path):
    outputs = ["--outputs", str(stack)]
    for command in (
        ["status", "nosuchjob"],
        ["wait", "nosuchjob"],
        ["download", "nosuchjob"],
        ["delete", "nosuchjob", "--inputs"],
        ["logs", "nosuchjob", "sometask"],
    ):
        result = runner(*command, *outputs, cwd=tmp_path)
        _one_line_error(result, 2, "no job nosuchjob on this stack")
        assert "-m runner jobs" in result.stderr
    (tmp_path / "a.txt").write_text("one two two")
    logged = job_ids("e2e-logs")
    done = runner("submit", "a.txt", *outputs, "--job-id", logged, "--keep-logs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.splitlines()[1].split()[1]
    missing = runner("logs", logged, "nosuchtask", *outputs, cwd=tmp_path)
    _one_line_error(missing, 2, f"job {logged} has no task nosuchtask; its tasks: {task_id}")
    assert runner("delete", logged, *outputs, cwd=tmp_path).returncode == 0
    for _ in range(2):  # the fallback to the output container, with no traceback, each time
        after = runner("logs", logged, task_id, *outputs, cwd=tmp_path)
        assert after.returncode == 0, after.stderr
        assert "top 3:" in after.stdout
        assert after.stderr == ""
    # Without --keep-logs a successful task's logs stay on its node only: gone with the job.
    unlogged = job_ids("e2e-nologs")
    quiet = runner("submit", "a.txt", *outputs, "--job-id", unlogged, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    quiet_task = quiet.stdout.splitlines()[1].split()[1]
    assert runner("logs", unlogged, quiet_task, *outputs, cwd=tmp_path).returncode == 0
    assert runner("delete", unlogged, *outputs, cwd=tmp_path).returncode == 0
    gone = runner("logs", unlogged, quiet_task, *outputs, cwd=tmp_path)
    _one_line_error(gone, 2, "no logs stored for its task")


def test_a_resubmit_resumes_or_says_what_differs(stack, stack_outputs, job_ids, tmp_path):
    job_id = job_ids("e2e-again")
    (tmp_path / "a.txt").write_text("red red red blue blue green")
    outputs = ["--outputs", str(stack), "--job-id", job_id]
    first = runner("submit", "a.txt", "--top", "2", *outputs, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "removed its 1 input blob " in first.stderr

    same = runner("submit", "a.txt", "--top", "2", *outputs, cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert "nothing to upload or add" in same.stderr
    assert "staged" not in same.stderr  # the inputs were removed, and are not sent again
    assert same.stdout == first.stdout
    assert not any(_inputs(stack_outputs).list_blobs(name_starts_with=f"{job_id}/"))

    other_top = runner("submit", "a.txt", "--top", "1", *outputs, cwd=tmp_path)
    _one_line_error(other_top, 2, "the arguments (")
    assert "--top 2" in other_top.stderr
    assert "--top 1" in other_top.stderr
    assert "new --job-id" in other_top.stderr

    (tmp_path / "a.txt").write_text("changed content")
    other_input = runner("submit", "a.txt", "--top", "2", *outputs, cwd=tmp_path)
    _one_line_error(other_input, 2, "the inputs (same count, other names or contents)")

    script = tmp_path / "count.py"
    script.write_text("import sys\n")
    other_program = runner(
        "submit", "a.txt", *outputs, "--script", str(script), "--", "{input}", cwd=tmp_path
    )
    _one_line_error(other_program, 2, "the script (topwords.py then, count.py now)")


def test_with_json_stdout_is_always_one_document(stack, tmp_path):
    unknown = runner("wait", "nosuchjob", "--outputs", str(stack), "--json", cwd=tmp_path)
    assert unknown.returncode == 2
    document = json.loads(unknown.stdout)
    assert document["status"] == 2
    assert document["error"].startswith("no job nosuchjob")
    assert document["resume"] is None

    bad = runner("submit", "missing.txt", "--outputs", str(stack), "--json", cwd=tmp_path)
    assert bad.returncode == 2
    assert json.loads(bad.stdout) == {
        "error": "input not found: missing.txt",
        "status": 2,
        "resume": None,
    }


def test_a_wait_that_runs_out_of_timeout_has_its_status_and_a_resume_command(
    stack, job_ids, tmp_path
):
    gate = Gate(tmp_path)  # the task runs until the wait has timed out (or 2 s on Azure)
    job_id = job_ids("e2e-timeout")
    (tmp_path / "a.txt").write_text("a")
    result = runner(
        "submit", "a.txt", "--outputs", str(stack), "--job-id", job_id, "--json",
        "--no-report", "--timeout", "1s", "--script", *gate.arguments(2), cwd=tmp_path,
    )  # fmt: skip
    gate.open()
    _one_line_error(result, 4, "did not finish within 1s; the job goes on")
    document = json.loads(result.stdout)
    assert document["status"] == 4
    resume = _resume_line(result.stderr)
    assert resume == document["resume"]
    assert shlex.split(resume)[:5] == [sys.executable, "-m", "runner", "wait", job_id]
    assert {"--json", "--no-report"} <= set(shlex.split(resume))  # it answers as submit would
    resumed = _as_printed(resume, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["succeeded"] is True  # one JSON document, as asked
    assert "a.txt.done" in resumed.stdout
    assert not (tmp_path / "results" / job_id / "report.html").exists()
    # wait finishes as submit would: the inputs of a successful job are removed
    assert "removed its 1 input blob " in resumed.stderr


def _interrupted(
    stack: Path, cwd: Path, arguments: list[str], when: Callable[[], bool]
) -> subprocess.CompletedProcess[str]:
    """Start a submit, send it SIGINT once ``when()`` holds, and return what it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "submit", *arguments, "--outputs", str(stack)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    deadline = time.monotonic() + 120
    while not when() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _many_inputs(directory: Path, count: int, size: int) -> list[str]:
    names = []
    for i in range(count):
        name = f"doc{i:04d}.txt"
        (directory / name).write_text(f"word{i % 7} " * (size // 6))
        names.append(name)
    return names


@pytest.mark.parametrize("moment", ["during upload", "after job creation", "while watching"])
def test_an_interrupted_submit_prints_a_resume_command_that_works(
    stack, stack_outputs, job_ids, tmp_path, moment
):
    """150 small inputs, 10 to a task: their upload (all before any task is added) lasts
    long enough to be caught, and 15 tasks on the pool's slots leave the job unfinished
    when the first completes. A task per input would add nothing to what is promised."""
    names = _many_inputs(tmp_path, 150, 2_000)
    job_id = job_ids(f"e2e-interrupted-{moment.replace(' ', '-')}")
    inputs, batch = _inputs(stack_outputs), batch_client(stack_outputs)

    def uploading() -> bool:
        return any(True for _ in inputs.list_blobs(name_starts_with=f"{job_id}/"))

    def watching() -> bool:
        return (
            job_exists(batch, job_id)
            and batch.get_job_task_counts(job_id).task_counts.completed > 0
        )

    when = {"during upload": uploading, "after job creation": lambda: job_exists(batch, job_id)}
    arguments = [*names, "--job-id", job_id, "--files-per-task", "10"]
    result = _interrupted(stack, tmp_path, arguments, when.get(moment, watching))
    assert result.returncode == 130, result.stderr
    resume = _resume_line(result.stderr)
    verb = shlex.split(resume)[3]
    if moment == "during upload":
        assert verb == "submit"  # no task was added yet: the same submit, with its job id
    if moment == "while watching":
        assert verb == "wait"
    resumed = _as_printed(resume, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    rows = resumed.stdout.splitlines()[1:]
    assert len(rows) == len(names)
    assert all(" ok " in row for row in rows)


def test_two_runners_on_one_job_and_one_folder_at_once(stack, job_ids, tmp_path):
    job_id = job_ids("e2e-twice")
    names = _many_inputs(tmp_path, 20, 5_000)
    command = [
        sys.executable, "-m", "runner", "submit", *names, "--outputs", str(stack),
        "--job-id", job_id, "--json",
    ]  # fmt: skip
    first, second = (
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    )
    results = [process.communicate(timeout=300) for process in (first, second)]
    for process, (stdout, stderr) in zip((first, second), results, strict=True):
        assert process.returncode == 0, stderr.decode()
        assert b"Traceback" not in stderr
        assert json.loads(stdout)["succeeded"] is True
    folder = tmp_path / "results" / job_id
    assert not list(folder.rglob("*.part"))
    assert len(list(folder.glob("*/*_OUTPUT.json"))) == len(names)


def test_help_takes_h_and_shows_the_defaults():
    shown = subprocess.run(
        [sys.executable, "-m", "runner", "submit", "-h"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())  # wrapped at the terminal's width
    assert "[default: (wait until done)]" in text
    assert "[default: (none)]" in text


def test_waiting_on_a_job_whose_tasks_were_never_added_says_to_submit_again(
    stack, stack_outputs, job_ids, tmp_path
):
    from azure.batch import models

    job_id = job_ids("e2e-empty")
    batch = batch_client(stack_outputs)
    batch.create_job(
        models.BatchJobCreateOptions(
            id=job_id, pool_info=models.BatchPoolInfo(pool_id=stack_outputs.poolId)
        )
    )
    try:
        result = runner("wait", job_id, "--outputs", str(stack), cwd=tmp_path)
        _one_line_error(result, 2, f"job {job_id} has 0 tasks")
        assert f"run the same submit again with --job-id {job_id}" in result.stderr
    finally:  # a job with no tasks would stay active on the stack for good
        batch.begin_delete_job(job_id)
