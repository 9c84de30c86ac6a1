"""Updates checked as creates are: a job's PATCH and PUT, a task's PUT, a pool's PATCH and
updateproperties, through the SDK and, for what the SDK cannot send, signed raw requests.
Every refusal leaves the entity as it was."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from tests.emulator.conftest import pool_options, raises_batch_error, unique

API = {"api-version": "2024-02-01.19.0"}  # what azure-cli 2.91 sends


def _send(batch: BatchClient, method: str, path: str, body: Any) -> Any:
    """The response as sent, error or not; its ``code`` read from the body."""
    try:
        response = batch.send_request(HttpRequest(method, path, params=API, json=body))
    except HttpResponseError as error:
        response = error.response
    return response


def _code(response: Any) -> tuple[int, str | None]:
    body = response.json() if response.text() else {}
    return response.status_code, body.get("code")


def _job(batch: BatchClient, pool: str, **settings: Any) -> str:
    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(
            id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool), **settings
        )
    )
    return job_id


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"priority": 5000}, "InvalidPropertyValue"),
        ({"priority": "high"}, "InvalidPropertyValue"),
        ({"maxParallelTasks": "abc"}, "InvalidPropertyValue"),
        ({"maxParallelTasks": 0}, "InvalidPropertyValue"),
        ({"allowTaskPreemption": "yes"}, "InvalidPropertyValue"),
        ({"constraints": {"maxWallClockTime": "an hour"}}, "InvalidPropertyValue"),
        ({"constraints": {"maxTaskRetryCount": -2}}, "InvalidPropertyValue"),
        ({"onAllTasksComplete": "finish"}, "InvalidPropertyValue"),
        ({"metadata": [{"value": "no name"}]}, "MissingRequiredProperty"),
        ({"id": "renamed"}, "InvalidRequestBody"),
        ({"state": "completed"}, "InvalidRequestBody"),
        ({"colour": "blue"}, "InvalidRequestBody"),
        ({"poolInfo": {"poolId": "elsewhere"}}, "InvalidPropertyValue"),
    ],
)
def test_a_refused_job_patch_changes_nothing(batch, pool, body, code):
    job_id = _job(batch, pool, priority=3)
    before = batch.get_job(job_id)
    response = _send(batch, "PATCH", f"/jobs/{job_id}", {"priority": 7, **body})
    assert _code(response) == (400, code)
    after = batch.get_job(job_id)
    assert (after.priority, after.etag, after.pool_info.pool_id) == (3, before.etag, pool)
    assert [j.id for j in batch.list_jobs() if j.id == job_id] == [job_id]  # still listable
    assert "colour" not in _send(batch, "GET", f"/jobs/{job_id}", None).json()


def test_the_unknown_property_is_named_as_the_service_names_it(batch, pool):
    job_id = _job(batch, pool)
    body = _send(batch, "PATCH", f"/jobs/{job_id}", {"id": "renamed"}).json()
    [detail] = body["values"]
    assert detail["key"] == "ErrorMessage"
    assert "The property 'id' does not exist on type" in detail["value"]
    assert "JobPatchParameter" in detail["value"]
    raises_batch_error(lambda: batch.get_job("renamed"), 404, "JobNotFound")


def test_patch_changes_only_what_it_gives_and_put_resets_the_rest(batch, pool):
    job_id = _job(batch, pool, priority=3, max_parallel_tasks=4)
    batch.update_job(job_id, models.BatchJobUpdateOptions(priority=-1000))
    job = batch.get_job(job_id)
    assert (job.priority, job.max_parallel_tasks) == (-1000, 4)
    patched = _send(
        batch, "PATCH", f"/jobs/{job_id}",
        {"metadata": [{"name": "team", "value": "a"}], "constraints": {"maxTaskRetryCount": 2}},
    )  # fmt: skip
    assert patched.status_code == 200
    job = batch.get_job(job_id)
    assert [(m.name, m.value) for m in job.metadata] == [("team", "a")]
    assert job.constraints.max_task_retry_count == 2

    replaced = _send(batch, "PUT", f"/jobs/{job_id}", {"poolInfo": {"poolId": pool}, "priority": 9})
    assert replaced.status_code == 200
    job = batch.get_job(job_id)
    assert (job.priority, job.max_parallel_tasks, job.metadata) == (9, -1, None)
    assert job.constraints.max_task_retry_count == 0
    assert job.constraints.max_wall_clock_time > timedelta(days=3650)
    missing = _send(batch, "PUT", f"/jobs/{job_id}", {"priority": 1})
    assert _code(missing) == (400, "MissingRequiredProperty")


def test_the_pool_of_a_job_changes_only_while_it_is_disabled(batch, pool):
    other = unique("pool")
    batch.create_pool(pool_options(other, target_dedicated_nodes=0))
    job_id = _job(batch, pool)
    move = models.BatchJobUpdateOptions(pool_info=models.BatchPoolInfo(pool_id=other))
    raises_batch_error(lambda: batch.update_job(job_id, move), 400, "InvalidPropertyValue")
    same = models.BatchJobUpdateOptions(pool_info=models.BatchPoolInfo(pool_id=pool.upper()))
    batch.update_job(job_id, same)  # the same pool is no change
    disable = models.BatchJobDisableOptions(disable_tasks="requeue")
    batch.begin_disable_job(job_id, disable, polling_interval=0.05).result()  # type: ignore[arg-type]
    batch.update_job(job_id, move)
    assert batch.get_job(job_id).pool_info.pool_id == other
    assert batch.get_job(job_id).execution_info.pool_id == other


def test_automatic_termination_cannot_be_turned_off(batch, pool):
    job_id = _job(batch, pool)
    hold = models.BatchTaskCreateOptions(id="hold", command_line="sleep 600")  # runs on
    batch.create_task(job_id, hold)
    on = models.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob")
    batch.update_job(job_id, on)
    off = models.BatchJobUpdateOptions(all_tasks_complete_mode="noaction")
    raises_batch_error(lambda: batch.update_job(job_id, off), 400, "InvalidPropertyValue")
    reset = _send(batch, "PUT", f"/jobs/{job_id}", {"poolInfo": {"poolId": pool}})
    assert _code(reset) == (400, "InvalidPropertyValue")  # PUT's default is noaction
    assert batch.get_job(job_id).all_tasks_complete_mode == "terminatejob"
    batch.terminate_task(job_id, "hold")


def test_a_task_put_replaces_its_constraints(batch, pool):
    job_id = _job(batch, pool, constraints=models.BatchJobConstraints(max_task_retry_count=1))
    batch.create_task(
        job_id,
        models.BatchTaskCreateOptions(
            id="t", command_line="x",
            constraints=models.BatchTaskConstraints(max_task_retry_count=5),
        ),
    )  # fmt: skip
    changed = models.BatchTaskConstraints(retention_time=timedelta(hours=1))
    batch.replace_task(job_id, "t", models.BatchTask(constraints=changed))
    constraints = batch.get_task(job_id, "t").constraints
    assert constraints.retention_time == timedelta(hours=1)
    assert constraints.max_task_retry_count == 1  # not given: the job's again
    for body, code in (
        ({"constraints": {"retentionTime": "soon"}}, "InvalidPropertyValue"),
        ({"commandLine": "other"}, "InvalidRequestBody"),
    ):
        assert _code(_send(batch, "PUT", f"/jobs/{job_id}/tasks/t", body)) == (400, code)
    assert batch.get_task(job_id, "t").command_line == "x"


def test_a_pool_patch_and_updateproperties(batch):
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=0))
    start = models.BatchStartTask(command_line="/bin/setup", wait_for_success=False)
    batch.update_pool(pool_id, models.BatchPoolUpdateOptions(start_task=start))
    pool = batch.get_pool(pool_id)
    assert (pool.start_task.command_line, pool.start_task.wait_for_success) == (
        "/bin/setup",
        False,
    )
    assert pool.start_task.user_identity is not None  # the service's defaults filled in
    metadata = [models.BatchMetadataItem(name="team", value="a")]
    batch.replace_pool_properties(
        pool_id,
        models.BatchPoolReplaceOptions(application_package_references=[], metadata=metadata),
    )
    pool = batch.get_pool(pool_id)
    assert pool.start_task is None  # not given to updateproperties: removed
    assert [(m.name, m.value) for m in pool.metadata] == [("team", "a")]


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("PATCH", "", {"startTask": {}}, "MissingRequiredProperty"),
        ("PATCH", "", {"startTask": {"commandLine": "x", "waitForSuccess": "no"}},
         "InvalidPropertyValue"),
        ("PATCH", "", {"targetNodeCommunicationMode": "fast"}, "InvalidPropertyValue"),
        ("PATCH", "", {"vmSize": "standard_d4s_v5"}, "InvalidPropertyValue"),
        ("PATCH", "", {"id": "renamed"}, "InvalidRequestBody"),
        ("PATCH", "", {"applicationPackageReferences": [{"applicationId": "a"}]},
         "InvalidPropertyValue"),
        ("POST", "/updateproperties", {"metadata": []}, "MissingRequiredProperty"),
        ("POST", "/updateproperties", {"metadata": [], "certificateReferences": [],
         "applicationPackageReferences": [], "displayName": "x"}, "InvalidRequestBody"),
    ],
)  # fmt: skip
def test_a_refused_pool_update_changes_nothing(batch, method, path, body, code):
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=0))
    before = batch.get_pool(pool_id)
    response = _send(batch, method, f"/pools/{pool_id}{path}", body)
    assert _code(response) == (400, code)
    assert batch.get_pool(pool_id).etag == before.etag
