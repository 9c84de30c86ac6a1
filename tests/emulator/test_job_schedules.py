"""Job schedules through the SDK: their operations, refusals, and the jobs they create on
time. Each test has an emulator of its own whose clock it moves, so a job is due exactly
when the test says; its jobs' tasks run until finished (none are added here)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from tests.emulator.conftest import client_for, pool_options, raises_batch_error, unique
from tests.emulator.fakes import FakeClock, FakeExecutor
from tests.emulator.inprocess import InProcess, serve

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
POLL: Any = 0.05  # the SDK pollers' interval, in seconds
STOP: Any = {"terminateReason": "Stopped by test"}  # azure-batch 15 cannot send no options


@pytest.fixture
def local(tmp_path: Path) -> Iterator[InProcess]:
    with serve(tmp_path, FakeExecutor(), FakeClock(START)) as emulator:
        yield emulator


@pytest.fixture
def client(local: InProcess) -> BatchClient:
    batch = client_for(local.url)
    batch.create_pool(pool_options("p", target_dedicated_nodes=0))
    return batch


def _create(batch: BatchClient, schedule: models.BatchJobScheduleConfiguration, **job: Any) -> str:
    schedule_id = unique("nightly")
    specification = models.BatchJobSpecification(pool_info=models.BatchPoolInfo(pool_id="p"), **job)
    batch.create_job_schedule(
        models.BatchJobScheduleCreateOptions(
            id=schedule_id, schedule=schedule, job_specification=specification
        )
    )
    return schedule_id


def _jobs(batch: BatchClient, schedule_id: str) -> list[str]:
    return sorted(str(job.id) for job in batch.list_jobs_from_schedule(schedule_id))


def _end(batch: BatchClient, job_id: str) -> None:
    batch.begin_terminate_job(job_id, STOP, polling_interval=POLL).result()


HOURLY = models.BatchJobScheduleConfiguration(recurrence_interval=timedelta(hours=1))


def test_a_job_on_creation_and_the_next_only_after_it_completes(client, local):
    schedule_id = _create(client, HOURLY, priority=7)
    first = f"{schedule_id}:job-1"
    assert _jobs(client, schedule_id) == [first]
    assert client.get_job(first).priority == 7
    schedule = client.get_job_schedule(schedule_id)
    assert schedule.state == "active"
    assert schedule.execution_info.recent_job.id == first
    assert schedule.execution_info.next_run_time > START

    local.clock.advance(timedelta(hours=1, minutes=1))  # due, but job-1 is still active
    assert _jobs(client, schedule_id) == [first]
    _end(client, first)
    assert _jobs(client, schedule_id) == [first, f"{schedule_id}:job-2"]
    next_run = client.get_job_schedule(schedule_id).execution_info.next_run_time
    assert abs(next_run - (START + timedelta(hours=2))) < timedelta(seconds=1)  # due-based


def test_a_run_that_cannot_start_within_its_window_is_lost(client, local):
    windowed = models.BatchJobScheduleConfiguration(
        recurrence_interval=timedelta(hours=1), start_window=timedelta(minutes=5)
    )
    schedule_id = _create(client, windowed)
    local.clock.advance(timedelta(hours=1, minutes=10))
    _end(client, f"{schedule_id}:job-1")  # too late for the run due at 10:00
    assert _jobs(client, schedule_id) == [f"{schedule_id}:job-1"]
    local.clock.advance(timedelta(minutes=50))  # 11:00: the next run
    assert _jobs(client, schedule_id) == [f"{schedule_id}:job-1", f"{schedule_id}:job-2"]


def test_do_not_run_until_and_a_single_run_that_completes_the_schedule(client, local):
    later = START + timedelta(days=1)
    once = models.BatchJobScheduleConfiguration(do_not_run_until=later)
    schedule_id = _create(client, once)
    assert _jobs(client, schedule_id) == []
    assert client.get_job_schedule(schedule_id).execution_info.next_run_time == later
    local.clock.advance(timedelta(days=1))
    assert _jobs(client, schedule_id) == [f"{schedule_id}:job-1"]
    assert client.get_job_schedule(schedule_id).execution_info.next_run_time is None
    _end(client, f"{schedule_id}:job-1")
    schedule = client.get_job_schedule(schedule_id)
    assert schedule.state == "completed"
    assert schedule.execution_info.end_time is not None


def test_get_exists_list_update_replace_disable_enable_terminate_delete(client, local):
    schedule_id = _create(client, HOURLY)
    assert client.job_schedule_exists(schedule_id)
    assert schedule_id in [s.id for s in client.list_job_schedules()]
    listed = client.list_job_schedules(filter=f"id eq '{schedule_id}'")
    assert [s.state for s in listed] == ["active"]

    client.update_job_schedule(
        schedule_id,
        models.BatchJobScheduleUpdateOptions(
            metadata=[models.BatchMetadataItem(name="team", value="a")]
        ),
    )
    schedule = client.get_job_schedule(schedule_id)
    assert [(m.name, m.value) for m in schedule.metadata] == [("team", "a")]
    assert schedule.schedule.recurrence_interval == timedelta(hours=1)

    daily = models.BatchJobScheduleConfiguration(recurrence_interval=timedelta(days=1))
    spec = models.BatchJobSpecification(pool_info=models.BatchPoolInfo(pool_id="p"), priority=3)
    client.replace_job_schedule(
        schedule_id, models.BatchJobSchedule(schedule=daily, job_specification=spec)
    )
    schedule = client.get_job_schedule(schedule_id)
    assert (schedule.metadata, schedule.job_specification.priority) == (None, 3)

    client.disable_job_schedule(schedule_id)
    assert client.get_job_schedule(schedule_id).state == "disabled"
    _end(client, f"{schedule_id}:job-1")
    local.clock.advance(timedelta(days=2))
    assert _jobs(client, schedule_id) == [f"{schedule_id}:job-1"]  # disabled: none due
    client.enable_job_schedule(schedule_id)
    assert _jobs(client, schedule_id) == [f"{schedule_id}:job-1", f"{schedule_id}:job-2"]
    assert client.get_job(f"{schedule_id}:job-2").priority == 3  # the replaced spec

    client.begin_terminate_job_schedule(schedule_id, polling_interval=POLL).result()
    assert client.get_job_schedule(schedule_id).state == "completed"
    assert client.get_job(f"{schedule_id}:job-2").state == "completed"
    raises_batch_error(
        lambda: client.disable_job_schedule(schedule_id), 409, "JobScheduleCompleted"
    )
    client.begin_delete_job_schedule(schedule_id, polling_interval=POLL).result()
    raises_batch_error(lambda: client.get_job_schedule(schedule_id), 404, "JobScheduleNotFound")
    assert f"{schedule_id}:job-1" not in [j.id for j in client.list_jobs()]


def _raw(batch: BatchClient, method: str, path: str, body: Any) -> tuple[int, str | None]:
    try:
        response = batch.send_request(
            HttpRequest(method, path, params={"api-version": "2025-06-01"}, json=body)
        )
    except HttpResponseError as error:
        response = error.response
    return response.status_code, (response.json() if response.text() else {}).get("code")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"schedule": {"recurrenceInterval": "PT30S"}}, "InvalidPropertyValue"),
        ({"schedule": {"startWindow": "PT10S"}}, "InvalidPropertyValue"),
        ({"schedule": {"doNotRunUntil": "tomorrow"}}, "InvalidPropertyValue"),
        ({"jobSpecification": None}, "MissingRequiredProperty"),
        ({"jobSpecification": {"priority": 1}}, "MissingRequiredProperty"),
        ({"jobSpecification": {"poolInfo": {"poolId": "p"}, "priority": 5000}},
         "InvalidPropertyValue"),
        ({"jobSpecification": {"poolInfo": {"poolId": "p"}, "id": "x"}}, "InvalidRequestBody"),
        ({"state": "disabled"}, "InvalidRequestBody"),
    ],
)  # fmt: skip
def test_bad_schedules_are_refused_and_not_created(client, body, code):
    schedule_id = unique("bad")
    valid = {"id": schedule_id, "schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "p"}}}
    assert _raw(client, "POST", "/jobschedules", {**valid, **body}) == (400, code)
    assert schedule_id not in [s.id for s in client.list_job_schedules()]


def test_a_second_schedule_of_the_same_id_and_a_missing_one(client):
    schedule_id = _create(client, HOURLY)
    spec = {"poolInfo": {"poolId": "p"}}
    again = {"id": schedule_id.upper(), "schedule": {}, "jobSpecification": spec}
    assert _raw(client, "POST", "/jobschedules", again) == (409, "JobScheduleExists")
    assert _raw(client, "PATCH", "/jobschedules/missing", {}) == (404, "JobScheduleNotFound")
    refused = _raw(client, "PATCH", f"/jobschedules/{schedule_id}", {"schedule": []})
    assert refused == (400, "InvalidPropertyValue")
    assert client.get_job_schedule(schedule_id).schedule.recurrence_interval == timedelta(hours=1)


def test_schedules_survive_a_restart(tmp_path):
    clock = FakeClock(START)
    with serve(tmp_path, FakeExecutor(), clock) as emulator:
        batch = client_for(emulator.url)
        batch.create_pool(pool_options("p", target_dedicated_nodes=0))
        schedule_id = _create(batch, HOURLY)
    with serve(tmp_path, FakeExecutor(), clock) as emulator:
        batch = client_for(emulator.url)
        _end(batch, f"{schedule_id}:job-1")
        clock.advance(timedelta(hours=1))
        assert _jobs(batch, schedule_id) == [f"{schedule_id}:job-1", f"{schedule_id}:job-2"]
