"""Nodes lost under a running job, through the SDK as on Azure: one removed from the pool
with requeue, another rebooted. The runner's job still ends with every result, and the
tasks that were requeued used no retry."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from azure.batch import models
from azure.batch.models._models import BatchNodeRebootOptions  # not exported by 15.0

from contract.outputs import StackOutputs
from tests.e2e.conftest import Gate, batch_client, job_exists


@pytest.mark.emulator_only("removes a node from a pool of its own")
def test_a_node_removed_and_one_rebooted_under_a_job_lose_nothing(stacks, job_ids, tmp_path):
    """Its own stack: removing a node shrinks the pool, which the other tests share."""
    gate = Gate(tmp_path)  # the tasks run until both nodes are lost: then they end
    data = tmp_path / "data"
    data.mkdir()
    names = [f"in {i}.txt" for i in range(8)]  # two for each slot of the local pool
    for name in names:
        (data / name).write_text("words " * 10)
    with stacks.running(tmp_path / "stack") as paths:
        outputs = StackOutputs.read(paths.outputs)
        batch = batch_client(outputs)
        pool_id, job_id = outputs.poolId, job_ids("e2e-node-loss")
        nodes = [node.id for node in batch.list_nodes(pool_id)]
        assert len(nodes) >= 2, "the local pool has a node per CPU: this needs two"
        command = [
            sys.executable, "-m", "runner", "submit", *names, "--outputs", str(paths.outputs),
            "--job-id", job_id, "--out", str(tmp_path / "out"), "--files-per-task", "1",
            "--script", *gate.arguments(120),
        ]  # fmt: skip
        submit = subprocess.Popen(
            command, cwd=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

        def running_on(node_id: str) -> bool:
            if not job_exists(batch, job_id):
                return False
            tasks = batch.list_tasks(job_id, select=["id", "state", "nodeInfo"])
            return any(
                task.state == "running" and task.node_info and task.node_info.node_id == node_id
                for task in tasks
            )

        deadline = time.monotonic() + 120
        while not (running_on(nodes[0]) and running_on(nodes[1])):
            assert submit.poll() is None, submit.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        batch.begin_remove_nodes(
            pool_id,
            models.BatchNodeRemoveOptions(node_ids=[nodes[0]], node_deallocation_option="requeue"),
            polling_interval=0.1,
        ).result()
        batch.begin_reboot_node(
            pool_id, nodes[1], BatchNodeRebootOptions(node_reboot_kind="requeue")
        )
        gate.open()
        stdout, stderr = submit.communicate(timeout=300)
        assert submit.returncode == 0, stderr
        rows = stdout.splitlines()[1:]
        assert len(rows) == len(names), stdout
        assert all(" ok " in row for row in rows), stdout
        assert len(list((tmp_path / "out").rglob("*.done"))) == len(names)
        tasks = list(batch.list_tasks(job_id))
        assert len(tasks) == len(names)
        requeued = [task for task in tasks if task.execution_info.requeue_count > 0]
        assert len(requeued) >= 2, "both nodes' running tasks go back to the queue"
        assert all(task.execution_info.retry_count == 0 for task in requeued)
        assert nodes[0] not in [node.id for node in batch.list_nodes(pool_id)]
