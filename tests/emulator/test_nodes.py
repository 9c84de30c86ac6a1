"""Losing nodes through the SDK: remove nodes, resize, reboot, reimage, and their tasks.

Most tests run against an emulator of their own, served in-process with a fake executor
whose tasks run until the test finishes them (start tasks succeed at once), so a task is
reliably running when its node goes. The live test shows that a lost node's task dies
with its whole process group.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.batch.models._models import (  # azure-batch 15.0 does not export them
    BatchNodeRebootOptions,
    BatchNodeReimageOptions,
)

from emulator.executor import node_root
from tests.emulator.conftest import (
    client_for,
    pool_options,
    raises_batch_error,
    unique,
    wait_for,
    wait_for_task,
)
from tests.emulator.fakes import FakeExecutor, start_tasks_succeed
from tests.emulator.inprocess import InProcess, serve

POLL = 0.05  # the SDK pollers' interval (5 s by default)
REBOOT = BatchNodeRebootOptions(node_reboot_kind="requeue")
REIMAGE = BatchNodeReimageOptions(node_reimage_option="requeue")
# (azure-batch 15.0 cannot send reboot or reimage without options: no content type.)


def _pool(batch: BatchClient, nodes: int, **settings: Any) -> str:
    pool_id = unique("pool")
    options = {"target_dedicated_nodes": nodes, "task_slots_per_node": 1, **settings}
    batch.create_pool(pool_options(pool_id, **options))
    wait_for(lambda: [n.state for n in batch.list_nodes(pool_id)] == ["idle"] * nodes)
    return pool_id


def _job(batch: BatchClient, pool_id: str) -> str:
    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id))
    )
    return job_id


def _running(batch: BatchClient, job_id: str, task_id: str, command: str = "work") -> Any:
    """Add a task and wait until it runs; the task."""
    batch.create_task(job_id, models.BatchTaskCreateOptions(id=task_id, command_line=command))
    return wait_for(lambda: (t := batch.get_task(job_id, task_id)).state == "running" and t)


def _launches(local: InProcess, key: tuple[str, str, str]) -> int:
    return sum(1 for launch in local.executor.launches if launch.key == key)


def _remove(batch: BatchClient, pool_id: str, node_ids: list[str], option: str) -> Any:
    return batch.begin_remove_nodes(
        pool_id,
        models.BatchNodeRemoveOptions(node_ids=node_ids, node_deallocation_option=option),
        polling_interval=POLL,
    )


# --- remove nodes ----------------------------------------------------------------------


def test_removing_a_node_requeues_its_tasks_and_lowers_the_target(client, local):
    pool_id = _pool(client, 2)
    job_id = _job(client, pool_id)
    first = _running(client, job_id, "first")
    second = _running(client, job_id, "second")
    lost, kept = first.node_info.node_id, second.node_info.node_id
    assert lost != kept

    poller = _remove(client, pool_id, [lost], "requeue")
    assert client.get_pool(pool_id).allocation_state == "resizing"
    assert client.get_node(pool_id, lost).state == "leavingpool"
    requeued = client.get_task(job_id, "first")
    assert requeued.state == "active"
    info = requeued.execution_info
    assert (info.requeue_count, info.retry_count) == (1, 0)
    assert info.last_requeue_time is not None
    assert ("task", job_id, "first") in local.executor.killed
    poller.result()

    pool = client.get_pool(pool_id)
    assert pool.allocation_state == "steady"
    assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (1, 1)
    assert [node.id for node in client.list_nodes(pool_id)] == [kept]
    local.executor.finish(("task", job_id, "second"))
    wait_for(lambda: client.get_task(job_id, "first").state == "running")
    local.executor.finish(("task", job_id, "first"))
    done = wait_for_task(client, job_id, "first")
    assert done.execution_info.result == "success"
    assert (done.execution_info.requeue_count, done.execution_info.retry_count) == (1, 0)
    assert done.node_info.node_id == kept
    assert _launches(local, ("task", job_id, "first")) == 2


def test_removing_a_node_with_terminate_fails_its_tasks(client, local):
    pool_id = _pool(client, 2)
    job_id = _job(client, pool_id)
    lost = _running(client, job_id, "doomed").node_info.node_id

    _remove(client, pool_id, [lost], "terminate").result()

    task = wait_for_task(client, job_id, "doomed")
    info = task.execution_info
    assert info.result == "failure"
    assert (info.failure_info.code, info.failure_info.category) == ("TaskEnded", "usererror")
    assert "removed from the pool" in info.failure_info.message
    assert (info.requeue_count, info.retry_count) == (0, 0)
    assert ("task", job_id, "doomed") in local.executor.killed
    assert _launches(local, ("task", job_id, "doomed")) == 1
    assert client.get_pool(pool_id).target_dedicated_nodes == 1


def test_removing_a_node_with_taskcompletion_waits_for_its_tasks(client, local):
    pool_id = _pool(client, 2)
    job_id = _job(client, pool_id)
    leaving = _running(client, job_id, "long").node_info.node_id

    poller = _remove(client, pool_id, [leaving], "taskcompletion")
    later = _running(client, job_id, "later")  # goes to the other node, not the leaving one
    assert later.node_info.node_id != leaving
    poller.wait(timeout=1)  # longer than a node takes to leave
    assert not poller.done()
    assert client.get_node(pool_id, leaving).state == "leavingpool"
    assert client.get_task(job_id, "long").state == "running"

    local.executor.finish(("task", job_id, "long"))
    poller.result()
    task = wait_for_task(client, job_id, "long")
    assert task.execution_info.result == "success"
    assert task.execution_info.requeue_count == 0
    assert leaving not in [node.id for node in client.list_nodes(pool_id)]
    assert ("task", job_id, "long") not in local.executor.killed


# --- reboot and reimage ----------------------------------------------------------------


def _with_start_task(batch: BatchClient) -> str:
    start = models.BatchStartTask(command_line="/bin/true", wait_for_success=True)
    return _pool(batch, 1, start_task=start)


def test_reboot_requeues_tasks_reruns_the_start_task_and_keeps_the_disk(client, local, tmp_path):
    pool_id = _with_start_task(client)
    job_id = _job(client, pool_id)
    node_id = _running(client, job_id, "t").node_info.node_id
    marker = node_root(tmp_path, pool_id, node_id) / "shared" / "marker"
    marker.write_text("kept")
    booted = client.get_node(pool_id, node_id).last_boot_time

    poller = client.begin_reboot_node(
        pool_id,
        node_id,
        BatchNodeRebootOptions(node_reboot_kind="requeue"),
        polling_interval=POLL,
    )
    assert client.get_node(pool_id, node_id).state == "rebooting"
    poller.result()

    wait_for(lambda: client.get_task(job_id, "t").state == "running")
    node = client.get_node(pool_id, node_id)
    assert node.state == "running"
    assert node.last_boot_time > booted
    assert _launches(local, ("start", pool_id, node_id)) == 2
    assert marker.read_text() == "kept"
    local.executor.finish(("task", job_id, "t"))
    task = wait_for_task(client, job_id, "t")
    assert (task.execution_info.result, task.execution_info.requeue_count) == ("success", 1)
    assert task.execution_info.retry_count == 0


def test_reimage_wipes_the_node_and_requeues_its_tasks(client, local, tmp_path):
    pool_id = _with_start_task(client)
    job_id = _job(client, pool_id)
    node_id = _running(client, job_id, "t").node_info.node_id
    marker = node_root(tmp_path, pool_id, node_id) / "shared" / "marker"
    marker.write_text("gone")

    poller = client.begin_reimage_node(
        pool_id,
        node_id,
        BatchNodeReimageOptions(node_reimage_option="requeue"),
        polling_interval=POLL,
    )
    assert client.get_node(pool_id, node_id).state == "reimaging"
    poller.result()

    wait_for(lambda: client.get_task(job_id, "t").state == "running")
    assert not marker.exists()
    assert _launches(local, ("start", pool_id, node_id)) == 2
    local.executor.finish(("task", job_id, "t"))
    task = wait_for_task(client, job_id, "t")
    assert (task.execution_info.result, task.execution_info.requeue_count) == ("success", 1)


def test_reboot_with_terminate_and_an_idle_node(client, local):
    pool_id = _pool(client, 1)
    job_id = _job(client, pool_id)
    node_id = _running(client, job_id, "t").node_info.node_id
    client.begin_reboot_node(
        pool_id,
        node_id,
        BatchNodeRebootOptions(node_reboot_kind="terminate"),
        polling_interval=POLL,
    ).result()
    info = wait_for_task(client, job_id, "t").execution_info
    assert info.failure_info.code == "TaskEnded"
    assert "rebooted" in info.failure_info.message
    wait_for(lambda: client.get_node(pool_id, node_id).state == "idle")
    client.begin_reimage_node(
        pool_id,
        node_id,
        BatchNodeReimageOptions(node_reimage_option="taskcompletion"),
        polling_interval=POLL,
    ).result()
    wait_for(lambda: client.get_node(pool_id, node_id).state == "idle")


# --- resize ----------------------------------------------------------------------------


def test_resize_grows_and_shrinks_the_pool(client, local):
    pool_id = _pool(client, 1)
    client.begin_resize_pool(
        pool_id, models.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=POLL
    ).result()
    wait_for(lambda: [n.state for n in client.list_nodes(pool_id)] == ["idle"] * 3)
    job_id = _job(client, pool_id)
    busy = _running(client, job_id, "t").node_info.node_id

    client.begin_resize_pool(
        pool_id,
        models.BatchPoolResizeOptions(target_dedicated_nodes=1, node_deallocation_option="requeue"),
        polling_interval=POLL,
    ).result()
    pool = client.get_pool(pool_id)
    assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (1, 1)
    assert [node.id for node in client.list_nodes(pool_id)] == [busy]  # idle nodes go first
    assert client.get_task(job_id, "t").state == "running"


def test_stop_resize_keeps_the_nodes_still_waiting_for_their_tasks(client, local):
    pool_id = _pool(client, 2)
    job_id = _job(client, pool_id)
    node_id = _running(client, job_id, "t").node_info.node_id
    _remove(client, pool_id, [node_id], "taskcompletion")
    assert client.get_pool(pool_id).allocation_state == "resizing"

    client.begin_stop_pool_resize(pool_id, polling_interval=POLL).result()
    assert client.get_pool(pool_id).allocation_state == "steady"
    assert client.get_node(pool_id, node_id).state == "running"
    local.executor.finish(("task", job_id, "t"))
    wait_for_task(client, job_id, "t")
    assert node_id in [node.id for node in client.list_nodes(pool_id)]


# --- errors ----------------------------------------------------------------------------


def test_node_operations_refused_as_the_service_refuses_them(client, local):
    pool_id = _pool(client, 2)
    job_id = _job(client, pool_id)
    node_id = _running(client, job_id, "t").node_info.node_id

    raises_batch_error(
        lambda: _remove(client, pool_id, ["tvmps_nosuchnode"], "requeue"), 404, "NodeNotFound"
    )
    raises_batch_error(
        lambda: client.begin_reboot_node(pool_id, "tvmps_nosuchnode", REBOOT), 404, "NodeNotFound"
    )
    too_many = [f"node{i}" for i in range(101)]
    raises_batch_error(
        lambda: _remove(client, pool_id, too_many, "requeue"), 400, "InvalidPropertyValue"
    )
    raises_batch_error(
        lambda: _remove(client, pool_id, [node_id], "later"), 400, "InvalidPropertyValue"
    )
    raises_batch_error(
        lambda: client.begin_remove_nodes(
            pool_id,
            models.BatchNodeRemoveOptions(node_ids=[node_id], resize_timeout="PT1M"),
        ),
        400,
        "InvalidPropertyValue",
    )
    raises_batch_error(
        lambda: client.begin_reimage_node(
            pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="never")
        ),
        400,
        "InvalidPropertyValue",
    )
    assert client.get_task(job_id, "t").state == "running"  # nothing happened

    client.begin_reboot_node(
        pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="taskcompletion")
    )
    raises_batch_error(
        lambda: client.begin_reboot_node(pool_id, node_id, REBOOT), 409, "NodeBeingRebooted"
    )
    raises_batch_error(
        lambda: client.begin_reimage_node(pool_id, node_id, REIMAGE), 409, "NodeBeingRebooted"
    )

    other = next(n.id for n in client.list_nodes(pool_id) if n.id != node_id)
    _remove(client, pool_id, [node_id], "taskcompletion")
    raises_batch_error(
        lambda: _remove(client, pool_id, [other], "requeue"), 409, "PoolBeingResized"
    )
    raises_batch_error(
        lambda: client.begin_resize_pool(
            pool_id, models.BatchPoolResizeOptions(target_dedicated_nodes=5)
        ),
        409,
        "PoolBeingResized",
    )
    local.executor.finish(("task", job_id, "t"))
    wait_for(lambda: client.get_pool(pool_id).allocation_state == "steady")


# --- durability ------------------------------------------------------------------------


def test_a_restart_mid_reboot_finishes_the_reboot(tmp_path):
    with serve(tmp_path, FakeExecutor(start_tasks_succeed)) as before:
        batch = client_for(before.url)
        pool_id = _pool(batch, 1)
        job_id = _job(batch, pool_id)
        node_id = _running(batch, job_id, "t").node_info.node_id
        batch.begin_reboot_node(
            pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="taskcompletion")
        )
        assert batch.get_node(pool_id, node_id).state == "rebooting"
    with serve(tmp_path, FakeExecutor(start_tasks_succeed)) as after:
        batch = client_for(after.url)
        wait_for(lambda: batch.get_task(job_id, "t").state == "running")
        task = batch.get_task(job_id, "t")
        assert (task.execution_info.requeue_count, task.node_info.node_id) == (1, node_id)
        assert batch.get_node(pool_id, node_id).state == "running"
        after.executor.finish(("task", job_id, "t"))
        assert wait_for_task(batch, job_id, "t").execution_info.result == "success"


# --- live: the whole process group dies --------------------------------------------------


def _processes_of(job_id: str, task_id: str) -> dict[int, int]:
    """pid -> process group of every process running as that task (by its environment)."""
    wanted = {f"AZ_BATCH_JOB_ID={job_id}".encode(), f"AZ_BATCH_TASK_ID={task_id}".encode()}
    found: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as file:
                variables = set(file.read().split(b"\0"))
            if wanted <= variables:
                found[int(entry.name)] = os.getpgid(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.served
def test_a_rebooted_nodes_task_dies_with_its_whole_process_group(batch):
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=1, task_slots_per_node=1))
    job_id = _job(batch, pool_id)
    try:
        # The first run leaves a marker on the node and sleeps, with a child in the
        # background; the run after the reboot finds the marker (reboot keeps the disk).
        script = (
            'm="$AZ_BATCH_NODE_SHARED_DIR/ran"; [ -e "$m" ] && exit 0; touch "$m"; '
            "sleep 300 & sleep 300"
        )
        batch.create_task(
            job_id, models.BatchTaskCreateOptions(id="t", command_line=f"/bin/sh -c '{script}'")
        )
        processes = wait_for(lambda: len(p := _processes_of(job_id, "t")) == 3 and p)
        assert len(set(processes.values())) == 1  # one process group: sh and both sleeps
        node_id = batch.get_task(job_id, "t").node_info.node_id

        batch.begin_reboot_node(pool_id, node_id, REBOOT, polling_interval=POLL).result()

        wait_for(lambda: not _processes_of(job_id, "t"), timeout=10)
        task = wait_for_task(batch, job_id, "t")
        assert (task.execution_info.exit_code, task.execution_info.requeue_count) == (0, 1)
    finally:
        batch.begin_delete_job(job_id, polling_interval=POLL).result()
        batch.begin_delete_pool(pool_id, polling_interval=POLL).result()
