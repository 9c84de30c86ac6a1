"""Node and pool fields clients read, and file properties, as the 2025-06-01 specification
has them: its Nodes_GetNode, Nodes_Get_DualStackNetworking, Pools_GetPool_Basic and
Tasks_ListTaskFiles examples, and its FileProperties model (contentLength: int64 as a
string). Driven through azure-batch 15.x and, for the raw JSON, ``send_request``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from azure.batch import BatchClient, models
from azure.batch.models._models import BatchNodeRebootOptions  # not exported by 15.x
from azure.core.rest import HttpRequest

from emulator import failures
from emulator.executor import node_root, task_directory
from emulator.records import Node, Task
from emulator.store import decode, encode
from tests.emulator.conftest import client_for, pool_options, unique, wait_for
from tests.emulator.inprocess import serve

API = {"api-version": "2025-06-01"}
POLL = 0.05  # seconds between an operation poller's reads

IMAGE = models.BatchVmImageReference(
    publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
)


def _configuration() -> models.VirtualMachineConfiguration:
    return models.VirtualMachineConfiguration(
        image_reference=IMAGE, node_agent_sku_id="batch.node.ubuntu 24.04"
    )


def _one_node_pool(batch: BatchClient, **settings: object) -> tuple[str, str]:
    """A pool of one idle node with one slot; (pool id, node id)."""
    pool_id = unique("pool")
    options = {"virtual_machine_configuration": _configuration(), "task_slots_per_node": 1}
    batch.create_pool(pool_options(pool_id, **{**options, **settings}))
    node = wait_for(lambda: (n := next(iter(batch.list_nodes(pool_id)))).state == "idle" and n)
    return pool_id, node.id


def _job(batch: BatchClient, pool_id: str) -> str:
    job_id = unique("job")
    info = models.BatchPoolInfo(pool_id=pool_id)
    batch.create_job(models.BatchJobCreateOptions(id=job_id, pool_info=info))
    return job_id


def test_start_task_defaults_and_the_node_fields_of_the_get_node_example(batch: BatchClient):
    pool_id, node_id = _one_node_pool(batch, start_task=models.BatchStartTask(command_line="true"))
    try:
        start = batch.get_pool(pool_id).start_task
        assert start is not None
        assert start.user_identity is not None
        assert start.user_identity.auto_user is not None
        assert start.user_identity.auto_user.scope == "task"
        assert start.user_identity.auto_user.elevation_level == "nonadmin"
        assert start.max_task_retry_count == 0
        assert start.wait_for_success is True

        node = batch.get_node(pool_id, node_id)
        assert node.start_task == start  # the pool's, as the node got it
        assert node.node_agent_info is not None
        assert node.node_agent_info.version
        assert node.node_agent_info.last_update_time == node.last_boot_time
        assert node.virtual_machine_info.image_reference.exact_version == "latest"
        assert node.recent_tasks is None  # present once a task has run on the node

        raw = batch.send_request(
            HttpRequest("GET", f"/pools/{pool_id}/nodes/{node_id}", params=API)
        )
        assert {
            "id", "url", "state", "schedulingState", "stateTransitionTime", "lastBootTime",
            "allocationTime", "ipAddress", "affinityId", "vmSize", "totalTasksRun",
            "totalTasksSucceeded", "runningTasksCount", "runningTaskSlotsCount", "isDedicated",
            "startTask", "startTaskInfo", "nodeAgentInfo", "virtualMachineInfo",
        } <= set(raw.json())  # fmt: skip
        assert set(raw.json()["nodeAgentInfo"]) == {"version", "lastUpdateTime"}
    finally:
        batch.begin_delete_pool(pool_id, polling_interval=POLL).result()


def test_start_task_settings_given_are_kept(batch: BatchClient):
    pool_id = unique("pool")
    admin = models.UserIdentity(
        auto_user=models.AutoUserSpecification(scope="pool", elevation_level="admin")
    )
    start = models.BatchStartTask(
        command_line="true", user_identity=admin, max_task_retry_count=2, wait_for_success=False
    )
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=0, start_task=start))
    try:
        got = batch.get_pool(pool_id).start_task
        assert got is not None
        assert (got.user_identity, got.max_task_retry_count, got.wait_for_success) == (
            admin,
            2,
            False,
        )
    finally:
        batch.begin_delete_pool(pool_id, polling_interval=POLL).result()


def test_recent_tasks_are_the_last_ten_a_node_ran(batch: BatchClient):
    pool_id, node_id = _one_node_pool(batch)
    job_id = _job(batch, pool_id)
    try:
        ids = [f"t{i:02}" for i in range(11)]
        batch.create_tasks(
            job_id, [models.BatchTaskCreateOptions(id=i, command_line="true") for i in ids]
        )
        tasks = wait_for(
            lambda: (
                (ts := list(batch.list_tasks(job_id)))
                and all(t.state == "completed" for t in ts)
                and ts
            )
        )
        by_start = sorted(tasks, key=lambda t: t.execution_info.start_time)
        recent = batch.get_node(pool_id, node_id).recent_tasks or []
        assert [entry.task_id for entry in recent] == [t.id for t in by_start[1:]]  # ten
        job_url = batch.get_job(job_id).url
        for entry in recent:
            assert entry.job_id == job_id
            assert entry.task_url == f"{job_url}/tasks/{entry.task_id}"
            assert entry.task_state == "completed"
            assert entry.execution_info is not None
            assert entry.execution_info.exit_code == 0

        def newest() -> models.BatchTaskInfo:
            return (batch.get_node(pool_id, node_id).recent_tasks or [])[-1]

        batch.create_task(job_id, models.BatchTaskCreateOptions(id="long", command_line="sleep 9"))
        wait_for(lambda: newest().task_id == "long" and newest().task_state == "running")
        batch.terminate_task(job_id, "long")
        ended = wait_for(lambda: (e := newest()).task_state == "completed" and e)
        assert ended.execution_info.failure_info.code == "TaskEnded"

        batch.create_task(job_id, models.BatchTaskCreateOptions(id="lost", command_line="sleep 9"))
        wait_for(lambda: newest().task_id == "lost" and newest().task_state == "running")
        reboot = BatchNodeRebootOptions(node_reboot_kind="requeue")
        poller = batch.begin_reboot_node(pool_id, node_id, reboot, polling_interval=POLL)
        requeued = newest()  # before the node is back (it takes a moment) and runs it again
        assert (requeued.task_id, requeued.task_state) == ("lost", "active")  # back in the queue
        assert requeued.execution_info.start_time is not None  # its run on this node
        poller.result()

        raw = batch.send_request(HttpRequest("GET", f"/pools/{pool_id}/nodes", params=API))
        (node,) = raw.json()["value"]
        assert set(node["recentTasks"][-1]) == {
            "taskUrl",
            "jobId",
            "taskId",
            "taskState",
            "executionInfo",
        }
    finally:
        batch.begin_delete_job(job_id, polling_interval=POLL).result()
        batch.begin_delete_pool(pool_id, polling_interval=POLL).result()


def test_file_content_length_is_an_int64_string(tmp_path: Path):
    with serve(tmp_path) as emulator:
        batch = client_for(emulator.url)
        pool_id, node_id = _one_node_pool(batch)
        job_id = _job(batch, pool_id)
        batch.create_task(job_id, models.BatchTaskCreateOptions(id="t", command_line="sleep 9"))
        wait_for(lambda: batch.get_task(job_id, "t").state == "running")
        root = node_root(tmp_path, pool_id, node_id)
        directory = task_directory(root, job_id, "t")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "stdout.txt").write_text("hello")  # what the task wrote

        (listed,) = [f for f in batch.list_task_files(job_id, "t") if f.name == "stdout.txt"]
        assert listed.properties.content_length == 5  # the SDK reads the string as an int
        files = batch.list_node_files(pool_id, node_id, recursive=True)
        node_file = f"workitems/{job_id}/job-1/t/stdout.txt"
        assert {f.name: f.properties.content_length for f in files}[node_file] == 5

        request = HttpRequest("GET", f"/jobs/{job_id}/tasks/t/files", params=API)
        (raw,) = [f for f in batch.send_request(request).json()["value"] if not f["isDirectory"]]
        assert raw["properties"]["contentLength"] == "5"
        assert "creationTime" not in raw["properties"]  # not returned on Linux nodes
        emulator.executor.kill_all()


def test_nodes_stored_before_these_fields_load_and_new_ones_round_trip():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    node = Node(
        id="n",
        url="u/n",
        state="idle",
        state_since=now,
        pool_id="p",
        dedicated=True,
        vm_size="standard_d2s_v3",
        image_reference={"publisher": "canonical"},
        allocated=now,
        start_task_spec={"commandLine": "true"},
    )
    task = Task(
        id="t", url="u/t", state="completed", state_since=now, job_id="j", spec={}, created=now
    )
    task.run.failure = failures.TASK_ENDED_BY_REQUEST
    node.saw(task)
    assert decode(Node, encode(node)) == node

    old = {k: v for k, v in encode(node).items() if k not in ("recent_tasks", "start_task_spec")}
    loaded = decode(Node, old)
    assert (loaded.recent_tasks, loaded.start_task_spec) == ([], None)
