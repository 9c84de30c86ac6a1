"""Tasks: creation rules, collections, listing with OData, and task files."""

from __future__ import annotations

import pytest
from azure.batch import models
from azure.core.rest import HttpRequest

from tests.emulator.conftest import raises_batch_error, read_file, wait_for, wait_for_task

API = {"api-version": "2025-06-01"}


def _task(
    task_id: str, command_line: str = "/bin/true", **settings
) -> models.BatchTaskCreateOptions:
    return models.BatchTaskCreateOptions(id=task_id, command_line=command_line, **settings)


def test_create_get_and_duplicate(batch, job):
    batch.create_task(job, _task("one"))
    task = batch.get_task(job, "one")
    assert (task.id, task.command_line) == ("one", "/bin/true")
    assert task.state in ("active", "preparing", "running", "completed")
    assert task.etag
    assert task.url.endswith(f"/jobs/{job}/tasks/one")
    raises_batch_error(lambda: batch.create_task(job, _task("one")), 409, "TaskExists")
    raises_batch_error(lambda: batch.get_task(job, "nope"), 404, "TaskNotFound")
    raises_batch_error(lambda: batch.create_task("no-job", _task("x")), 404, "JobNotFound")


def test_invalid_tasks_are_rejected(batch, job):
    raises_batch_error(
        lambda: batch.create_task(job, {"id": "no-command"}), 400, "MissingRequiredProperty"
    )
    raises_batch_error(lambda: batch.create_task(job, _task("x" * 65)), 400, "InvalidPropertyValue")
    raises_batch_error(
        lambda: batch.create_task(
            job,
            _task(
                "bad-duration", constraints=models.BatchTaskConstraints(max_wall_clock_time="soon")
            ),
        ),
        400,
        "InvalidPropertyValue",
    )


def test_a_collection_of_101_tasks_is_request_body_too_large(batch, job):
    group = models.BatchTaskGroup(task_values=[_task(f"t{i}") for i in range(101)])
    error = raises_batch_error(
        lambda: batch.create_task_collection(job, group), 413, "RequestBodyTooLarge"
    )
    assert error.status_code == 413
    assert list(batch.list_tasks(job)) == []


def test_create_tasks_chunks_any_number(batch, job):
    result = batch.create_tasks(job, [_task(f"t{i:03d}") for i in range(250)], max_concurrency=4)
    assert len(result.result_values) == 250
    assert {r.status for r in result.result_values} == {"success"}
    assert len(list(batch.list_tasks(job))) == 250


def test_a_collection_reports_each_task(batch, job):
    batch.create_task(job, _task("exists"))
    group = models.BatchTaskGroup(
        task_values=[
            _task("new"),
            _task("exists"),
            models.BatchTaskCreateOptions(id="bad id", command_line="x"),
        ]
    )
    results = {r.task_id: r for r in batch.create_task_collection(job, group).result_values}
    assert results["new"].status == "success"
    assert results["exists"].status == "clienterror"
    assert results["exists"].error.code == "TaskExists"
    assert results["bad id"].error.code == "InvalidPropertyValue"


def test_list_filters_selects_and_pages(batch, job):
    batch.create_tasks(
        job,
        [_task(f"ok{i}") for i in range(5)] + [_task(f"bad{i}", "/bin/false") for i in range(3)],
    )
    wait_for(lambda: batch.get_job_task_counts(job).task_counts.completed == 8)
    failed = list(
        batch.list_tasks(job, filter="state eq 'completed' and executionInfo/result eq 'failure'")
    )
    assert sorted(t.id for t in failed) == ["bad0", "bad1", "bad2"]
    selected = list(batch.list_tasks(job, select=["id", "state"], max_results=3))
    assert len(selected) == 8
    assert all(t.command_line is None and t.state == "completed" for t in selected)
    raises_batch_error(
        lambda: list(batch.list_tasks(job, filter="state eq")), 400, "InvalidQueryParameterValue"
    )
    raises_batch_error(
        lambda: list(batch.list_tasks(job, max_results=1001)), 400, "OutOfRangeQueryParameterValue"
    )


@pytest.mark.served  # the files a real process writes
def test_task_files_list_get_and_properties(batch, job):
    batch.create_task(
        job, _task("files", "/bin/sh -c 'echo out; echo err >&2; echo data > result.txt'")
    )
    wait_for_task(batch, job, "files")
    assert read_file(batch, job, "files", "stdout.txt") == "out\n"
    assert read_file(batch, job, "files", "stderr.txt") == "err\n"
    assert read_file(batch, job, "files", "wd/result.txt") == "data\n"
    top = {f.name: f for f in batch.list_task_files(job, "files")}
    assert set(top) == {"stdout.txt", "stderr.txt", "wd"}
    assert top["wd"].is_directory
    everything = {f.name for f in batch.list_task_files(job, "files", recursive=True)}
    assert "wd/result.txt" in everything
    properties = batch.get_task_file_properties(job, "files", "stdout.txt")
    assert properties.content_length == 4
    got = batch.send_request(  # streamed, as the SDK downloads files
        HttpRequest("GET", f"/jobs/{job}/tasks/files/files/stdout.txt", params=API), stream=True
    )
    assert got.headers["Content-Type"] == "application/octet-stream"  # the service's, always
    # The SDK streams downloads and cannot read an error body then: ask without streaming.
    request = HttpRequest("GET", f"/jobs/{job}/tasks/files/files/missing.txt", params=API)
    raises_batch_error(lambda: batch.send_request(request), 404, "FileNotFound")
    escape = HttpRequest("GET", f"/jobs/{job}/tasks/files/files/wd%2F..%2F..%2Fx", params=API)
    raises_batch_error(lambda: batch.send_request(escape), 404, "FileNotFound")


def test_an_unknown_path_is_invalid_uri(batch):
    request = HttpRequest("GET", "/no/such/resource", params=API)
    raises_batch_error(lambda: batch.send_request(request), 400, "InvalidUri")


def test_completed_tasks_refuse_terminate_and_successful_ones_reactivate(batch, job):
    batch.create_task(job, _task("done"))
    wait_for_task(batch, job, "done")
    raises_batch_error(lambda: batch.terminate_task(job, "done"), 409, "TaskCompleted")
    raises_batch_error(lambda: batch.reactivate_task(job, "done"), 409, "TaskSucceeded")
    batch.create_task(job, _task("waits", "/bin/sleep 30"))
    raises_batch_error(lambda: batch.reactivate_task(job, "waits"), 409, "TaskNotCompleted")
    batch.terminate_task(job, "waits")


def test_a_body_that_is_not_json_is_invalid_request_body(batch, job):
    request = HttpRequest(
        "POST",
        f"/jobs/{job}/tasks",
        params=API,
        headers={"Content-Type": "application/json; odata=minimalmetadata"},
        content=b"{not json",
    )
    raises_batch_error(lambda: batch.send_request(request), 400, "InvalidRequestBody")
