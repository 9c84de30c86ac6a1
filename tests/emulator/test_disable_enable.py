"""Disabling and enabling a job, and scheduling on a node, through the SDK.

Each test runs against an emulator of its own with a fake executor whose tasks run until
the test finishes them (start tasks succeed at once), so a task is reliably running when
its job or node is disabled. That a disabled job or node is given no task is shown by a
barrier: another task placed in the same scheduler pass (or a later one) while the
disabled one's task stays active.
"""

from __future__ import annotations

from typing import Any

from azure.batch import BatchClient, models
from azure.batch.models._models import BatchNodeRebootOptions  # azure-batch 15.0: not exported
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

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

POLL: Any = 0.05  # the SDK pollers' interval (5 s by default; typed int, sleeps a float)
API = {"api-version": "2025-06-01"}


def _pool(batch: BatchClient, nodes: int, slots: int = 1) -> str:
    pool_id = unique("pool")
    batch.create_pool(
        pool_options(pool_id, target_dedicated_nodes=nodes, task_slots_per_node=slots)
    )
    wait_for(lambda: [n.state for n in batch.list_nodes(pool_id)] == ["idle"] * nodes)
    return pool_id


def _job(batch: BatchClient, pool_id: str, **settings: Any) -> str:
    job_id = unique("job")
    pool_info = models.BatchPoolInfo(pool_id=pool_id)
    batch.create_job(models.BatchJobCreateOptions(id=job_id, pool_info=pool_info, **settings))
    return job_id


def _add(batch: BatchClient, job_id: str, task_id: str) -> None:
    batch.create_task(job_id, models.BatchTaskCreateOptions(id=task_id, command_line="work"))


def _running(batch: BatchClient, job_id: str, task_id: str) -> Any:
    """Add a task and wait until it runs; the task."""
    _add(batch, job_id, task_id)
    return wait_for(lambda: (t := batch.get_task(job_id, task_id)).state == "running" and t)


def _disable(batch: BatchClient, job_id: str, option: str) -> Any:
    options = models.BatchJobDisableOptions(disable_tasks=option)
    return batch.begin_disable_job(job_id, options, polling_interval=POLL)


def _enable(batch: BatchClient, job_id: str) -> None:
    batch.begin_enable_job(job_id, polling_interval=POLL).result()


def _disable_node(batch: BatchClient, pool_id: str, node_id: str, option: str) -> None:
    options = models.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option=option)
    batch.disable_node_scheduling(pool_id, node_id, options)


def _launches(local: InProcess, key: tuple[str, str, str]) -> int:
    return sum(1 for launch in local.executor.launches if launch.key == key)


def _raw(batch: BatchClient, method: str, path: str, body: Any = None) -> Any:
    """The response as sent, error or not (the SDK raises on an error status)."""
    try:
        return batch.send_request(HttpRequest(method, path, params=API, json=body))
    except HttpResponseError as error:
        return error.response


# --- jobs ------------------------------------------------------------------------------


def test_disable_requeue_puts_running_tasks_back_and_enable_runs_them_again(client, local):
    pool_id = _pool(client, 1, slots=2)
    job_id = _job(client, pool_id)
    _running(client, job_id, "first")
    _running(client, job_id, "second")

    _disable(client, job_id, "requeue").result()

    job = client.get_job(job_id)
    assert (job.state, job.previous_state) == ("disabled", "disabling")
    for task_id in ("first", "second"):
        task = client.get_task(job_id, task_id)
        assert task.state == "active"
        info = task.execution_info
        assert (info.requeue_count, info.retry_count) == (1, 0)  # no retry charged
        assert info.last_requeue_time is not None
        assert info.result is None
        assert ("task", job_id, task_id) in local.executor.killed
    _add(client, job_id, "added")  # a disabled job still takes tasks

    other = _job(client, pool_id)
    _running(client, other, "barrier")  # placed on the slots the disabled job left free
    assert {t.state for t in client.list_tasks(job_id)} == {"active"}

    _enable(client, job_id)
    job = client.get_job(job_id)
    assert (job.state, job.previous_state) == ("active", "enabling")
    local.executor.finish(("task", other, "barrier"))
    running = {"first", "second"}  # the requeued ones first: they were active before
    wait_for(lambda: {t.id for t in client.list_tasks(job_id) if t.state == "running"} == running)
    local.executor.finish(("task", job_id, "first"))
    done = wait_for_task(client, job_id, "first")
    assert done.execution_info.result == "success"
    assert (done.execution_info.requeue_count, done.execution_info.retry_count) == (1, 0)
    assert _launches(local, ("task", job_id, "first")) == 2


def test_disable_terminate_ends_running_tasks_for_good(client, local):
    pool_id = _pool(client, 1)
    job_id = _job(client, pool_id)
    _running(client, job_id, "doomed")
    _add(client, job_id, "waiting")

    _disable(client, job_id, "terminate").result()

    assert client.get_job(job_id).state == "disabled"
    task = client.get_task(job_id, "doomed")
    info = task.execution_info
    assert (task.state, info.result) == ("completed", "failure")
    failure = info.failure_info
    assert (failure.category, failure.code) == ("usererror", "TaskEnded")
    assert (info.requeue_count, info.retry_count) == (0, 0)
    assert ("task", job_id, "doomed") in local.executor.killed
    assert client.get_task(job_id, "waiting").state == "active"

    _enable(client, job_id)
    wait_for(lambda: client.get_task(job_id, "waiting").state == "running")
    assert _launches(local, ("task", job_id, "doomed")) == 1


def test_disable_wait_lets_running_tasks_finish_and_starts_no_new_one(client, local):
    pool_id = _pool(client, 1, slots=2)
    job_id = _job(client, pool_id)
    _running(client, job_id, "long")

    poller = _disable(client, job_id, "wait")
    _add(client, job_id, "later")
    other = _job(client, pool_id)
    _running(client, other, "barrier")  # the free slot goes to the other job
    assert client.get_job(job_id).state == "disabling"
    assert client.get_task(job_id, "long").state == "running"
    assert client.get_task(job_id, "later").state == "active"
    assert not poller.done()  # the SDK polls until the job is no longer disabling

    local.executor.finish(("task", job_id, "long"))
    poller.result()
    job = client.get_job(job_id)
    assert (job.state, job.previous_state) == ("disabled", "disabling")
    long = client.get_task(job_id, "long")
    assert (long.state, long.execution_info.result) == ("completed", "success")
    assert ("task", job_id, "long") not in local.executor.killed

    _enable(client, job_id)
    wait_for(lambda: client.get_task(job_id, "later").state == "running")


def test_a_disabled_job_whose_tasks_all_completed_ends_when_it_terminates_so(client, local):
    """onAllTasksComplete terminatejob takes precedence over a disabled job (Azure/
    batch-shipyard issue 227)."""
    pool_id = _pool(client, 1)
    job_id = _job(client, pool_id)
    _running(client, job_id, "only")
    client.update_job(job_id, models.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))

    _disable(client, job_id, "terminate").result()

    job = wait_for(lambda: (j := client.get_job(job_id)).state == "completed" and j)
    assert job.execution_info.termination_reason == "AllTasksComplete"


def test_job_disable_and_enable_refused_as_the_service_refuses_them(client, local):
    pool_id = _pool(client, 1)
    job_id = _job(client, pool_id)

    missing = _raw(client, "POST", f"/jobs/{job_id}/disable", {})
    assert missing.status_code == 400
    assert missing.json()["code"] == "MissingRequiredProperty"
    assert missing.json()["values"] == [{"key": "PropertyName", "value": "disableTasks"}]
    invalid = _raw(client, "POST", f"/jobs/{job_id}/disable", {"disableTasks": "later"})
    assert invalid.status_code == 400
    assert invalid.json()["code"] == "InvalidPropertyValue"
    assert {"key": "PropertyValue", "value": "later"} in invalid.json()["values"]
    raises_batch_error(lambda: _disable(client, "nosuchjob", "requeue"), 404, "JobNotFound")
    raises_batch_error(lambda: _enable(client, "nosuchjob"), 404, "JobNotFound")
    assert client.get_job(job_id).state == "active"  # nothing happened

    accepted = _raw(client, "POST", f"/jobs/{job_id}/disable", {"disableTasks": "Requeue"})
    assert accepted.status_code == 202
    job = client.get_job(job_id)
    assert accepted.headers["ETag"] == job.etag
    assert accepted.headers["DataServiceId"] == f"{job.url}/disable"
    # "If you try to disable a Job that is in any state other than active, disabling, or
    # disabled, the request fails with status code 409": disabled again is accepted.
    _disable(client, job_id, "wait").result()
    assert client.get_job(job_id).state == "disabled"

    enabled = _raw(client, "POST", f"/jobs/{job_id}/enable")
    assert enabled.status_code == 202
    assert enabled.headers["DataServiceId"] == f"{job.url}/enable"
    _enable(client, job_id)  # an active job: the service documents no refusal
    assert client.get_job(job_id).state == "active"

    stop: Any = {"terminateReason": "done"}  # azure-batch 15 cannot send no options
    client.begin_terminate_job(job_id, options=stop, polling_interval=POLL).result()
    wait_for(lambda: client.get_job(job_id).state == "completed")
    raises_batch_error(lambda: _disable(client, job_id, "requeue"), 409, "JobCompleted")
    raises_batch_error(lambda: _enable(client, job_id), 409, "JobCompleted")


# --- node scheduling --------------------------------------------------------------------


def test_disabling_scheduling_requeues_the_nodes_tasks_and_takes_it_offline(client, local):
    pool_id = _pool(client, 2)
    job_id = _job(client, pool_id)
    aside = _running(client, job_id, "moved").node_info.node_id
    other = next(node.id for node in client.list_nodes(pool_id) if node.id != aside)

    _disable_node(client, pool_id, aside, "requeue")

    node = client.get_node(pool_id, aside)
    assert (node.scheduling_state, node.state) == ("disabled", "offline")
    assert ("task", job_id, "moved") in local.executor.killed
    moved = wait_for(lambda: (t := client.get_task(job_id, "moved")).state == "running" and t)
    assert moved.node_info.node_id == other
    assert (moved.execution_info.requeue_count, moved.execution_info.retry_count) == (1, 0)
    counts = next(c for c in client.list_pool_node_counts() if c.pool_id == pool_id)
    assert (counts.dedicated.offline, counts.dedicated.running) == (1, 1)

    client.enable_node_scheduling(pool_id, aside)
    node = client.get_node(pool_id, aside)
    assert (node.scheduling_state, node.state) == ("enabled", "idle")
    assert _running(client, job_id, "next").node_info.node_id == aside


def test_disabling_scheduling_with_terminate_ends_the_nodes_tasks(client, local):
    pool_id = _pool(client, 1)
    job_id = _job(client, pool_id)
    node_id = _running(client, job_id, "doomed").node_info.node_id

    _disable_node(client, pool_id, node_id, "terminate")

    task = client.get_task(job_id, "doomed")
    assert (task.state, task.execution_info.result) == ("completed", "failure")
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert ("task", job_id, "doomed") in local.executor.killed
    node = client.get_node(pool_id, node_id)
    assert (node.scheduling_state, node.state) == ("disabled", "offline")
    assert node.recent_tasks[-1].task_state == "completed"


def test_disabling_scheduling_with_taskcompletion_lets_tasks_finish(client, local):
    pool_id = _pool(client, 2)
    job_id = _job(client, pool_id)
    aside = _running(client, job_id, "long").node_info.node_id
    busy = _running(client, job_id, "busy").node_info.node_id

    _disable_node(client, pool_id, aside, "taskcompletion")
    node = client.get_node(pool_id, aside)
    assert (node.scheduling_state, node.state) == ("disabled", "running")
    _add(client, job_id, "later")
    local.executor.finish(("task", job_id, "long"))
    wait_for(lambda: client.get_node(pool_id, aside).state == "offline")
    assert wait_for_task(client, job_id, "long").execution_info.result == "success"

    local.executor.finish(("task", job_id, "busy"))
    later = wait_for(lambda: (t := client.get_task(job_id, "later")).state == "running" and t)
    assert later.node_info.node_id == busy  # never the node taken aside
    assert ("task", job_id, "long") not in local.executor.killed


def test_node_scheduling_refused_as_the_service_refuses_it(client, local):
    pool_id = _pool(client, 1)
    node_id = next(iter(client.list_nodes(pool_id))).id

    raises_batch_error(
        lambda: client.enable_node_scheduling(pool_id, node_id),
        409,
        "NodeAlreadyInTargetSchedulingState",
    )
    raises_batch_error(
        lambda: _disable_node(client, pool_id, node_id, "retaineddata"),
        400,
        "InvalidPropertyValue",
    )
    raises_batch_error(
        lambda: _disable_node(client, pool_id, "tvmps_nosuchnode", "requeue"), 404, "NodeNotFound"
    )
    raises_batch_error(
        lambda: client.enable_node_scheduling("nosuchpool", node_id), 404, "PoolNotFound"
    )
    assert client.get_node(pool_id, node_id).scheduling_state == "enabled"

    # azure-batch 15 cannot send it without options; the service's default is requeue.
    path = f"/pools/{pool_id}/nodes/{node_id}/disablescheduling"
    response = client.send_request(HttpRequest("POST", path, params=API))
    assert response.status_code == 200
    node_url = client.get_node(pool_id, node_id).url
    assert response.headers["DataServiceId"] == f"{node_url}/disablescheduling"
    assert "ETag" not in response.headers  # nodes have none
    raises_batch_error(
        lambda: _disable_node(client, pool_id, node_id, "requeue"),
        409,
        "NodeAlreadyInTargetSchedulingState",
    )


def test_an_offline_node_stays_offline_across_a_reboot(client, local):
    pool_id = _pool(client, 1)
    node_id = next(iter(client.list_nodes(pool_id))).id
    _disable_node(client, pool_id, node_id, "requeue")

    options = BatchNodeRebootOptions(node_reboot_kind="requeue")
    client.begin_reboot_node(pool_id, node_id, options, polling_interval=POLL).result()

    node = wait_for(lambda: (n := client.get_node(pool_id, node_id)).state == "offline" and n)
    assert node.scheduling_state == "disabled"


# --- durability --------------------------------------------------------------------------


def test_disabled_jobs_and_nodes_survive_a_restart(tmp_path):
    with serve(tmp_path, FakeExecutor(start_tasks_succeed)) as before:
        batch = client_for(before.url)
        pool_id = _pool(batch, 2)
        job_id = _job(batch, pool_id)
        kept = _running(batch, job_id, "long").node_info.node_id
        aside = next(node.id for node in batch.list_nodes(pool_id) if node.id != kept)
        _disable_node(batch, pool_id, aside, "requeue")
        _disable(batch, job_id, "wait")
        assert batch.get_job(job_id).state == "disabling"

    with serve(tmp_path, FakeExecutor(start_tasks_succeed)) as after:
        batch = client_for(after.url)
        # The run the restart interrupted is requeued, so nothing runs: the job is disabled.
        job = wait_for(lambda: (j := batch.get_job(job_id)).state == "disabled" and j)
        assert job.previous_state == "disabling"
        task = batch.get_task(job_id, "long")
        assert task.execution_info is not None
        assert (task.state, task.execution_info.requeue_count) == ("active", 1)
        node = batch.get_node(pool_id, aside)
        assert (node.scheduling_state, node.state) == ("disabled", "offline")

        _enable(batch, job_id)
        task = wait_for(lambda: (t := batch.get_task(job_id, "long")).state == "running" and t)
        assert task.node_info.node_id == kept
