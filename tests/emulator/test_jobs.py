"""Jobs: lifecycle, updates, termination and task counts."""

from __future__ import annotations

from azure.batch import models

from tests.emulator.conftest import raises_batch_error, unique, wait_for, wait_for_task


def _job(batch, pool, **settings):
    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(
            id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool), **settings
        )
    )
    return job_id


def test_create_get_list_delete(batch, pool):
    job_id = _job(batch, pool)
    job = batch.get_job(job_id)
    assert (job.id, job.state, job.pool_info.pool_id) == (job_id, "active", pool)
    assert job.all_tasks_complete_mode == "noaction"
    assert job.execution_info.pool_id == pool
    assert job_id in [j.id for j in batch.list_jobs()]
    batch.begin_delete_job(job_id, polling_interval=0).result()
    raises_batch_error(lambda: batch.get_job(job_id), 404, "JobNotFound")


def test_duplicate_and_missing_jobs(batch, pool):
    job_id = _job(batch, pool)
    raises_batch_error(lambda: _create_again(batch, pool, job_id), 409, "JobExists")
    raises_batch_error(lambda: batch.get_job("no-such-job"), 404, "JobNotFound")
    raises_batch_error(lambda: batch.get_job_task_counts("no-such-job"), 404, "JobNotFound")


def _create_again(batch, pool, job_id):
    batch.create_job(
        models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool))
    )


def test_job_without_pool_info_is_missing_required_property(batch):
    raises_batch_error(
        lambda: batch.create_job({"id": unique("job")}), 400, "MissingRequiredProperty"
    )


def test_update_sets_all_tasks_complete_and_the_job_terminates(batch, pool):
    job_id = _job(batch, pool)
    batch.create_task(job_id, models.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    wait_for_task(batch, job_id, "t")
    assert batch.get_job(job_id).state == "active"  # noaction: nothing happens
    batch.update_job(job_id, models.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    job = wait_for(lambda: (j := batch.get_job(job_id)).state == "completed" and j)
    assert job.execution_info.termination_reason == "AllTasksComplete"
    assert job.execution_info.end_time is not None


def test_terminatejob_with_no_tasks_completes_at_once(batch, pool):
    # As the service documents: a job with no tasks has all its tasks complete.
    job_id = _job(batch, pool, all_tasks_complete_mode="terminatejob")
    assert batch.get_job(job_id).state == "completed"


def test_terminate_then_add_task_is_job_completed(batch, pool):
    job_id = _job(batch, pool)
    # azure-batch 15.1 cannot send a terminate request without options (an SDK bug), and
    # its options model is not exported: the JSON body it stands for does the same.
    stop = {"terminateReason": "Cancelled by test"}
    batch.begin_terminate_job(job_id, options=stop, polling_interval=0).result()
    job = batch.get_job(job_id)
    assert job.state == "completed"
    assert job.execution_info.termination_reason == "Cancelled by test"
    raises_batch_error(
        lambda: batch.create_task(
            job_id, models.BatchTaskCreateOptions(id="late", command_line="/bin/true")
        ),
        409,
        "JobCompleted",
    )
    raises_batch_error(lambda: batch.begin_terminate_job(job_id, options=stop), 409, "JobCompleted")


def test_task_counts(batch, pool):
    job_id = _job(batch, pool)
    tasks = [
        models.BatchTaskCreateOptions(id="ok-1", command_line="/bin/true"),
        models.BatchTaskCreateOptions(id="ok-2", command_line="/bin/true"),
        models.BatchTaskCreateOptions(id="bad", command_line="/bin/false"),
        models.BatchTaskCreateOptions(id="slow", command_line="/bin/sleep 30", required_slots=2),
    ]
    batch.create_task_collection(job_id, models.BatchTaskGroup(task_values=tasks))
    for task_id in ("ok-1", "ok-2", "bad"):
        wait_for_task(batch, job_id, task_id)
    wait_for(lambda: batch.get_task(job_id, "slow").state == "running")
    counts = batch.get_job_task_counts(job_id)
    assert counts.task_counts.as_dict() == {
        "active": 0,
        "running": 1,
        "completed": 3,
        "succeeded": 2,
        "failed": 1,
    }
    assert counts.task_slot_counts.running == 2
    batch.terminate_task(job_id, "slow")
