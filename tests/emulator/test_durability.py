"""Kill -9 the emulator, start it again: everything is still there, nothing runs twice."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from azure.batch import models

from local_stack import servers
from tests.emulator.conftest import client_for, pool_options, wait_for

pytestmark = pytest.mark.served  # real processes, storage or authentication


def _pids(pattern: str) -> set[str]:
    return set(
        subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    )


def test_state_survives_a_kill_and_running_tasks_are_requeued(tmp_path):
    data, log = tmp_path / "state", tmp_path / "emulator.log"
    runs = tmp_path / "runs"
    server = servers.start_emulator(data, log)
    try:
        batch = client_for(server.url)
        batch.create_pool(pool_options("durable", target_dedicated_nodes=1, task_slots_per_node=2))
        batch.create_job(
            models.BatchJobCreateOptions(
                id="job", pool_info=models.BatchPoolInfo(pool_id="durable")
            )
        )
        quick = [
            models.BatchTaskCreateOptions(
                id=f"quick{i}", command_line=f"/bin/sh -c 'echo quick{i} >> {runs}'"
            )
            for i in range(3)
        ]
        batch.create_tasks("job", quick)
        wait_for(lambda: batch.get_job_task_counts("job").task_counts.completed == 3)
        marker = "67.891"
        batch.create_task(
            "job",
            models.BatchTaskCreateOptions(
                id="long", command_line=f"/bin/sh -c 'echo long >> {runs}; sleep {marker}'"
            ),
        )
        wait_for(lambda: batch.get_task("job", "long").state == "running")
        wait_for(lambda: "long" in runs.read_text())
        before = _pids(f"sleep {marker}")
        assert before
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
    finally:
        servers.stop(server)

    server = servers.start_emulator(data, log, port=server.port)
    try:
        batch = client_for(server.url)
        assert batch.get_pool("durable").id == "durable"
        assert batch.get_job("job").state == "active"
        assert {t.id for t in batch.list_tasks("job")} == {"quick0", "quick1", "quick2", "long"}
        # The orphaned processes of the interrupted task were ended, as on a lost node.
        assert not before & _pids(f"sleep {marker}")
        long = wait_for(lambda: (t := batch.get_task("job", "long")).state == "running" and t)
        assert long.execution_info.requeue_count == 1
        assert long.execution_info.retry_count == 0
        batch.terminate_task("job", "long")
        for i in range(3):
            assert batch.get_task("job", f"quick{i}").execution_info.result == "success"
        lines = runs.read_text().splitlines()
        assert sorted(line for line in lines if line.startswith("quick")) == [
            "quick0",
            "quick1",
            "quick2",
        ]
        assert lines.count("long") == 2  # once before the kill, once after
        content = b"".join(batch.download_task_file("job", "quick0", "stdout.txt"))
        assert content == b""
    finally:
        servers.stop(server)
