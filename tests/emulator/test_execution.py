"""How tasks run: environment, command lines, exit codes, retries, limits, termination."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from azure.batch import models

from tests.emulator.conftest import read_file, wait_for, wait_for_task

pytestmark = pytest.mark.served  # real processes, storage or authentication


def _run(batch, job, task_id, command_line, **settings):
    batch.create_task(
        job, models.BatchTaskCreateOptions(id=task_id, command_line=command_line, **settings)
    )
    return wait_for_task(batch, job, task_id)


def test_the_environment_a_task_sees(batch, job, pool):
    task = _run(
        batch,
        job,
        "env",
        "/usr/bin/env",
        environment_settings=[models.EnvironmentSetting(name="GREETING", value="hello")],
    )
    assert task.execution_info.exit_code == 0
    env = dict(
        line.split("=", 1) for line in read_file(batch, job, "env", "stdout.txt").splitlines()
    )
    assert env["GREETING"] == "hello"
    assert (env["AZ_BATCH_JOB_ID"], env["AZ_BATCH_TASK_ID"], env["AZ_BATCH_POOL_ID"]) == (
        job,
        "env",
        pool,
    )
    assert env["AZ_BATCH_NODE_ID"] == task.node_info.node_id
    assert env["AZ_BATCH_ACCOUNT_NAME"] == "devbatch"
    assert env["AZ_BATCH_ACCOUNT_URL"].startswith("http://127.0.0.1:")
    root = Path(env["AZ_BATCH_NODE_ROOT_DIR"])
    assert Path(env["AZ_BATCH_NODE_SHARED_DIR"]) == root / "shared"
    assert Path(env["AZ_BATCH_NODE_STARTUP_DIR"]) == root / "startup"
    task_dir = Path(env["AZ_BATCH_TASK_DIR"])
    assert task_dir == root / "workitems" / job / "job-1" / "env"
    assert Path(env["AZ_BATCH_TASK_WORKING_DIR"]) == task_dir / "wd"
    assert (task_dir / "stdout.txt").is_file()
    assert task.node_info.task_root_directory == f"workitems/{job}/job-1/env"


def test_the_command_line_runs_without_a_shell(batch, job):
    _run(batch, job, "literal", "/bin/echo $AZ_BATCH_TASK_ID 'two words'")
    assert read_file(batch, job, "literal", "stdout.txt") == "$AZ_BATCH_TASK_ID two words\n"
    _run(batch, job, "shell", "/bin/sh -c 'echo $AZ_BATCH_TASK_ID; pwd'")
    out = read_file(batch, job, "shell", "stdout.txt").splitlines()
    assert out[0] == "shell"
    assert out[1].endswith(f"workitems/{job}/job-1/shell/wd")


def test_exit_codes_and_failure_info(batch, job):
    ok = _run(batch, job, "ok", "/bin/true")
    assert (ok.execution_info.exit_code, ok.execution_info.result) == (0, "success")
    assert ok.execution_info.failure_info is None
    bad = _run(batch, job, "bad", "/bin/sh -c 'exit 7'")
    assert (bad.execution_info.exit_code, bad.execution_info.result) == (7, "failure")
    assert bad.execution_info.failure_info.code == "FailureExitCode"
    assert bad.execution_info.failure_info.category == "usererror"
    missing = _run(batch, job, "missing", "/no/such/program --flag")
    assert missing.execution_info.result == "failure"
    assert missing.execution_info.failure_info.code == "CommandProgramNotFound"
    assert missing.execution_info.exit_code is None


def test_a_failing_task_is_retried_max_task_retry_count_times(batch, job, tmp_path):
    counter = tmp_path / "attempts"
    task = _run(
        batch,
        job,
        "flaky",
        f"/bin/sh -c 'echo x >> {counter}; exit 1'",
        constraints=models.BatchTaskConstraints(max_task_retry_count=2),
    )
    assert task.execution_info.retry_count == 2
    assert task.execution_info.result == "failure"
    assert counter.read_text().count("x") == 3


def test_a_retry_that_succeeds_completes_the_task(batch, job, tmp_path):
    marker = tmp_path / "second-time"
    task = _run(
        batch,
        job,
        "second",
        f"/bin/sh -c 'test -e {marker} && exit 0; touch {marker}; exit 5'",
        constraints=models.BatchTaskConstraints(max_task_retry_count=3),
    )
    assert (task.execution_info.retry_count, task.execution_info.result) == (1, "success")


def test_max_wall_clock_time_ends_the_task(batch, job):
    task = _run(
        batch,
        job,
        "slow",
        "/bin/sleep 30",
        constraints=models.BatchTaskConstraints(max_wall_clock_time="PT1S"),
    )
    assert task.execution_info.result == "failure"
    assert task.execution_info.failure_info.code == "TaskEnded"
    elapsed = task.execution_info.end_time - task.execution_info.start_time
    assert elapsed.total_seconds() < 10


def _processes_with(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return found.stdout.split()


def test_terminate_kills_the_whole_process_group(batch, job):
    marker = f"{61 + uuid.uuid4().int % 1000 / 1000:.3f}"
    batch.create_task(
        job,
        models.BatchTaskCreateOptions(
            id="tree", command_line=f"/bin/sh -c 'sleep {marker} & sleep {marker}; wait'"
        ),
    )
    wait_for(lambda: len(_processes_with(f"sleep {marker}")) >= 2)
    batch.terminate_task(job, "tree")
    task = wait_for_task(batch, job, "tree")
    assert task.execution_info.failure_info.code == "TaskEnded"
    wait_for(lambda: not _processes_with(f"sleep {marker}"), timeout=5)


def test_deleting_a_running_task_kills_it(batch, job):
    marker = f"{71 + uuid.uuid4().int % 1000 / 1000:.3f}"
    batch.create_task(
        job, models.BatchTaskCreateOptions(id="doomed", command_line=f"/bin/sleep {marker}")
    )
    wait_for(lambda: _processes_with(f"sleep {marker}"))
    batch.delete_task(job, "doomed")
    wait_for(lambda: not _processes_with(f"sleep {marker}"), timeout=5)


def test_reactivate_runs_a_failed_task_again(batch, job, tmp_path):
    marker = tmp_path / "fixed"
    _run(batch, job, "again", f"/bin/sh -c 'test -e {marker}'")
    marker.touch()
    batch.reactivate_task(job, "again")
    task = wait_for(
        lambda: (
            (t := batch.get_task(job, "again")).state == "completed"
            and t.execution_info.result == "success"
            and t
        )
    )
    assert task.execution_info.exit_code == 0


def test_tasks_use_every_slot_and_no_more(batch, pool, job):
    slots = batch.get_pool(pool).task_slots_per_node * len(list(batch.list_nodes(pool)))
    tasks = [
        models.BatchTaskCreateOptions(id=f"s{i}", command_line="/bin/sleep 1")
        for i in range(slots + 2)
    ]
    batch.create_tasks(job, tasks)
    counts = wait_for(
        lambda: (c := batch.get_job_task_counts(job).task_counts).running == slots and c
    )
    assert counts.active == 2
    nodes = list(batch.list_nodes(pool))
    assert sum(n.running_task_slots_count for n in nodes) == slots
