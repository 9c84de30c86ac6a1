"""Killed with kill -9 and started again: the runner at any moment of a submit, the
emulator in the middle of a job. Nothing is lost, no task is added twice, and no task
that had completed runs again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from contract.outputs import StackOutputs
from local_stack import servers
from runner.inputs import node_name
from tests.e2e.conftest import batch_client, container_client, job_exists, runner


def _inputs(directory: Path, count: int) -> list[str]:
    directory.mkdir()
    names = []
    for i in range(count):
        name = f"doc {i:03d}.txt"  # a space: the names must survive the restarts too
        (directory / name).write_text(f"alpha{i % 5} beta gamma{i} " * 400)
        names.append(name)
    return names


def _killed_when(command: list[str], cwd: Path, when: Callable[[], bool]) -> bool:
    """Run a command and kill -9 it once ``when()`` holds; False if it ended first."""
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while process.poll() is None and not when():
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.01)
    ended = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return not ended


@pytest.mark.parametrize("moment", ["starting", "uploading", "job created", "watching"])
def test_a_runner_killed_at_any_moment_finishes_with_the_same_submit(
    stack, stack_outputs, job_ids, tmp_path, moment
):
    data = tmp_path / "data"
    names = _inputs(data, 20)
    job_id = job_ids(f"e2e-kill-{moment.replace(' ', '-')}")
    out = tmp_path / "out"
    arguments = ["submit", *names, "--outputs", str(stack), "--job-id", job_id]
    arguments += ["--out", str(out), "--files-per-task", "1"]  # a task per input
    batch = batch_client(stack_outputs)
    staged = container_client(stack_outputs, stack_outputs.containers.input)
    started = time.monotonic()

    moments: dict[str, Callable[[], bool]] = {
        "starting": lambda: time.monotonic() - started > 0.3,
        "uploading": lambda: any(True for _ in staged.list_blobs(name_starts_with=f"{job_id}/")),
        "job created": lambda: job_exists(batch, job_id),
        "watching": lambda: (
            job_exists(batch, job_id)
            and batch.get_job_task_counts(job_id).task_counts.completed > 0
        ),
    }
    assert _killed_when([sys.executable, "-m", "runner", *arguments], data, moments[moment])
    again = runner(*arguments, cwd=data)
    assert again.returncode == 0, again.stderr
    rows = again.stdout.splitlines()[1:]
    assert len(rows) == len(names), again.stdout
    assert all(" ok " in row for row in rows), again.stdout
    assert len(list(batch.list_tasks(job_id, select=["id"]))) == len(names)
    assert len(list(out.rglob("*_OUTPUT.txt"))) == len(names)
    assert not list(out.rglob("*.part"))


RUNS_ONCE_SCRIPT = """\
import os, pathlib, sys, time
name, out, ledger, gate = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]
# The first runs end at once; the others wait until the test opens the gate (once the
# emulator is back), so that the kill finds tasks completed and tasks still running.
first = not os.path.exists(ledger) or len(pathlib.Path(ledger).read_text().splitlines()) < 3
deadline = time.monotonic() + 120
while not first and not os.path.exists(gate) and time.monotonic() < deadline:
    time.sleep(0.05)
out.mkdir(parents=True, exist_ok=True)
(out / (name + ".done")).write_text("done")
with open(ledger, "a") as runs:  # after the work: a run killed half-way is not counted
    runs.write(name + "\\n")
"""


@pytest.mark.emulator_only("kills the emulator")
def test_the_emulator_killed_mid_job_and_started_again_finishes_it(stacks, job_ids, tmp_path):
    """Its own stack: the session's is not killed under the other tests."""
    data = tmp_path / "data"
    names = _inputs(data, 8)  # two rounds of the pool's 4 slots: one ends, one waits
    script = tmp_path / "once.py"
    script.write_text(RUNS_ONCE_SCRIPT)
    ledger, gate = tmp_path / "ledger.txt", tmp_path / "gate.open"
    with stacks.running(tmp_path / "stack") as paths:
        batch = batch_client(StackOutputs.read(paths.outputs))
        job_id = job_ids("e2e-emulator-killed")
        command = [
            sys.executable, "-m", "runner", "submit", *names, "--outputs", str(paths.outputs),
            "--job-id", job_id, "--script", str(script), "--out", str(tmp_path / "out"),
            "--files-per-task", "1",
            "--", "{input}", "{output_dir}", str(ledger), str(gate),
        ]  # fmt: skip
        submit = subprocess.Popen(
            command, cwd=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 120

        def completed() -> set[str]:
            try:
                tasks = batch.list_tasks(job_id, select=["id", "state"])
                return {task.id for task in tasks if task.state == "completed"}
            except Exception:  # the job is not there yet
                return set()

        while len(done_before := completed()) < 3:
            assert submit.poll() is None, submit.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        emulator = int(paths.pid("emulator").read_text())
        os.kill(emulator, signal.SIGKILL)
        while servers.alive(emulator):
            time.sleep(0.01)
        stacks.up(paths)
        gate.touch()
        stdout, stderr = submit.communicate(timeout=300)
        assert submit.returncode == 0, stderr
        rows = stdout.splitlines()[1:]
        assert len(rows) == len(names), stdout
        assert all(" ok " in row for row in rows), stdout
        assert len(list(batch.list_tasks(job_id, select=["id"]))) == len(names)
        runs = ledger.read_text().splitlines()
        assert sorted(set(runs)) == sorted(node_name(name) for name in names)
        display = {t.id: t.display_name for t in batch.list_tasks(job_id)}
        for task_id in done_before:
            ran = runs.count(node_name(display[task_id]))
            assert ran == 1, f"{display[task_id]} had completed and ran again"
