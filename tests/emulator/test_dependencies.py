"""Task dependencies and exit conditions, through the SDK as code written for Batch uses them.

Against the session's in-process emulator: its fake executor plays ``sh -c '… exit N'``
as exit code N at once, and ``sleep`` as a run that lasts until the test finishes it, so
a parent can be held running while the test looks at its dependents. Times come from the
emulator's clock, which only moves forward, so "after" is strict.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from emulator import validate
from emulator.executor import Launch
from emulator.failures import Outcome
from emulator.records import task_run
from emulator.state import dependencies
from tests.emulator.conftest import (
    client_for,
    pool_options,
    raises_batch_error,
    unique,
    wait_for,
    wait_for_task,
)
from tests.emulator.fakes import FakeClock, FakeExecutor
from tests.emulator.inprocess import InProcess, serve
from tests.emulator.test_state import make_state, ready_pool

API = {"api-version": "2025-06-01"}
HOLD = "sleep 30"  # runs until the test finishes it
NOT_SPECIFIED = (
    "A task was specified as depending on other tasks, but the job did not specify that it "
    "would use task dependencies."
)


def _job(batch: BatchClient, pool: str, **settings: Any) -> str:
    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(
            id=job_id,
            pool_info=models.BatchPoolInfo(pool_id=pool),
            uses_task_dependencies=True,
            **settings,
        )
    )
    return job_id


@pytest.fixture
def dep_job(batch: BatchClient, pool: str) -> str:
    """A job of the shared pool that uses task dependencies."""
    return _job(batch, pool)


def _task(
    task_id: str,
    command: str = "/bin/sh -c 'exit 0'",
    ids: list[str] | None = None,
    ranges: list[tuple[int, int]] | None = None,
    **settings: Any,
) -> models.BatchTaskCreateOptions:
    if ids is not None or ranges is not None:
        settings["depends_on"] = models.BatchTaskDependencies(
            task_ids=ids,
            task_id_ranges=[models.BatchTaskIdRange(start=s, end=e) for s, e in ranges or []]
            or None,
        )
    return models.BatchTaskCreateOptions(id=task_id, command_line=command, **settings)


def _exits(**conditions: Any) -> models.ExitConditions:
    return models.ExitConditions(**conditions)


def _on(code: int, **options: str) -> models.ExitCodeMapping:
    return models.ExitCodeMapping(code=code, exit_options=models.ExitOptions(**options))


def _finish(emulator: InProcess, job_id: str, task_id: str, exit_code: int = 0) -> None:
    emulator.executor.finish(task_run(job_id, task_id), exit_code)


def _completed(batch: BatchClient, job_id: str, *task_ids: str) -> list[Any]:
    return [wait_for_task(batch, job_id, task_id) for task_id in task_ids]


def _still_waiting(batch: BatchClient, job_id: str, task_id: str) -> None:
    """The task is active and never ran, after the scheduler has placed a later task of
    the same job (so a pass went by, and the waiting task held nothing up)."""
    marker = unique("later")
    batch.create_task(job_id, _task(marker))
    wait_for_task(batch, job_id, marker)
    task = batch.get_task(job_id, task_id)
    assert task.state == "active"
    assert task.execution_info.start_time is None


def _after(child: Any, *parents: Any) -> None:
    assert child.execution_info.result == "success"
    for parent in parents:
        assert child.execution_info.start_time > parent.execution_info.end_time


def _raw(batch: BatchClient, method: str, path: str, body: Any = None) -> Any:
    """The response as sent, error or not (the SDK raises on an error status)."""
    try:
        return batch.send_request(HttpRequest(method, path, params=API, json=body))
    except HttpResponseError as error:
        return error.response


# --- the job ---------------------------------------------------------------------------


def test_the_job_shows_whether_it_uses_task_dependencies(batch, dep_job, job):
    assert batch.get_job(dep_job).uses_task_dependencies is True
    assert batch.get_job(job).uses_task_dependencies is False
    assert _raw(batch, "GET", f"/jobs/{dep_job}").json()["usesTaskDependencies"] is True


# --- ordering --------------------------------------------------------------------------


def test_a_dependent_starts_only_after_all_its_parents_end(batch, in_process, dep_job):
    batch.create_task(dep_job, _task("child", ids=["rain", "sun"]))
    batch.create_tasks(dep_job, [_task("rain", HOLD), _task("sun", HOLD)])
    wait_for(lambda: batch.get_task(dep_job, "sun").state == "running")
    _finish(in_process, dep_job, "rain")
    wait_for_task(batch, dep_job, "rain")
    _still_waiting(batch, dep_job, "child")
    _finish(in_process, dep_job, "sun")
    child, rain, sun = _completed(batch, dep_job, "child", "rain", "sun")
    _after(child, rain, sun)


def test_a_chain_runs_link_by_link(batch, dep_job):
    links = [_task("link0")] + [_task(f"link{i}", ids=[f"link{i - 1}"]) for i in range(1, 20)]
    batch.create_tasks(dep_job, list(reversed(links)))  # the last link is added first
    done = _completed(batch, dep_job, *(f"link{i}" for i in range(20)))
    for parent, child in itertools.pairwise(done):
        _after(child, parent)


def test_a_merge_task_fans_in_a_hundred_parents(batch, dep_job):
    parents = [_task(f"frame{i}") for i in range(100)]
    merge = _task("merge", ids=[f"frame{i}" for i in range(100)])
    started = time.monotonic()
    batch.create_tasks(dep_job, [merge, *parents])
    (merged,) = _completed(batch, dep_job, "merge")
    frames = [batch.get_task(dep_job, f"frame{i}") for i in range(100)]
    _after(merged, *frames)
    assert batch.get_task(dep_job, "merge").depends_on.task_ids == [f"frame{i}" for i in range(100)]
    assert time.monotonic() - started < 15


def test_a_range_selects_integer_ids_leading_zeros_aside(batch, in_process, dep_job):
    """The docs ("Task ID range"): only integer ids are in a range ("5flamingoes" is not),
    and "4", "04" and "004" are all task 4, the first to complete satisfying it."""
    batch.create_task(dep_job, _task("merge", ranges=[(1, 3)]))
    batch.create_tasks(
        dep_job, [_task("1"), _task("002"), _task("3", HOLD), _task("2flamingoes", HOLD)]
    )
    wait_for(lambda: batch.get_task(dep_job, "3").state == "running")
    _still_waiting(batch, dep_job, "merge")
    _finish(in_process, dep_job, "3")
    merge, one, two, three = _completed(batch, dep_job, "merge", "1", "002", "3")
    _after(merge, one, two, three)
    assert batch.get_task(dep_job, "2flamingoes").state == "running"
    _finish(in_process, dep_job, "2flamingoes")


def test_ids_missing_from_a_range_are_waited_for(batch, dep_job):
    """Every task "within a dependency range must complete before the dependant Task will be
    scheduled" (the API's BatchTaskDependencies): an id of the range that no task has yet
    is waited for like a named one, and satisfied once a task of that id completes."""
    batch.create_task(dep_job, _task("merge", ranges=[(10, 12)]))
    batch.create_tasks(dep_job, [_task("10"), _task("12")])
    _completed(batch, dep_job, "10", "12")
    _still_waiting(batch, dep_job, "merge")
    batch.create_task(dep_job, _task("11"))
    merge, eleven = _completed(batch, dep_job, "merge", "11")
    _after(merge, eleven)


def test_a_parent_that_does_not_exist_yet_is_waited_for(batch, dep_job):
    """The API's dependsOn: the task "will not be scheduled until all Tasks that it depends
    on have completed successfully"; a task not yet added has not, and the service takes
    dependents first (the SDK's create_tasks sends its chunks of 100 concurrently, so a
    merge task may well arrive before its parents). The dependent waits, then runs once
    the parent is added and succeeds."""
    batch.create_task(dep_job, _task("child", ids=["late"]))
    _still_waiting(batch, dep_job, "child")
    batch.create_task(dep_job, _task("late"))
    child, late = _completed(batch, dep_job, "child", "late")
    _after(child, late)


def test_parent_ids_compare_case_insensitively(batch, dep_job):
    batch.create_task(dep_job, _task("child", ids=["PARENT"]))
    batch.create_task(dep_job, _task("parent"))
    child, parent = _completed(batch, dep_job, "child", "parent")
    _after(child, parent)


# --- failing parents: blocked by default, satisfied on request -------------------------


def test_a_failed_parent_blocks_its_dependents_for_good(batch, dep_job):
    """The docs: dependencyAction is "block for all other exit conditions" than exit code
    0, and Batch "does not yet support cancellation of dependent tasks": the dependent
    stays active; the job counts it so."""
    batch.create_task(dep_job, _task("parent", "/bin/sh -c 'exit 1'"))
    batch.create_task(dep_job, _task("child", ids=["parent"]))
    (parent,) = _completed(batch, dep_job, "parent")
    assert parent.execution_info.result == "failure"
    _still_waiting(batch, dep_job, "child")
    assert batch.get_job_task_counts(dep_job).task_counts.active == 1


def test_dependency_action_satisfy_lets_dependents_of_a_failure_run(batch, dep_job):
    batch.create_tasks(
        dep_job,
        [
            _task(
                "listed",
                "/bin/sh -c 'exit 3'",
                exit_conditions=_exits(exit_codes=[_on(3, dependency_action="satisfy")]),
            ),
            _task(
                "ranged",
                "/bin/sh -c 'exit 7'",
                exit_conditions=_exits(
                    exit_code_ranges=[
                        models.ExitCodeRangeMapping(
                            start=5,
                            end=9,
                            exit_options=models.ExitOptions(dependency_action="satisfy"),
                        )
                    ]
                ),
            ),
            _task(
                "defaulted",
                "/bin/sh -c 'exit 2'",
                exit_conditions=_exits(default=models.ExitOptions(dependency_action="satisfy")),
            ),
            _task("child", ids=["listed", "ranged", "defaulted"]),
        ],
    )
    child, *parents = _completed(batch, dep_job, "child", "listed", "ranged", "defaulted")
    assert {parent.execution_info.result for parent in parents} == {"failure"}
    _after(child, *parents)


def test_exit_code_zero_can_block_only_when_listed(batch, dep_job):
    """ExitConditions.default "is used if the Task exits with any nonzero exit code";
    "if you want non-default behavior on exit code 0, you must list it explicitly"."""
    block = models.ExitOptions(dependency_action="block")
    batch.create_tasks(
        dep_job,
        [
            _task("listed", exit_conditions=_exits(exit_codes=[_on(0, dependency_action="block")])),
            _task("defaulted", exit_conditions=_exits(default=block)),
            _task("after-listed", ids=["listed"]),
            _task("after-defaulted", ids=["defaulted"]),
        ],
    )
    _completed(batch, dep_job, "listed", "defaulted", "after-defaulted")
    _still_waiting(batch, dep_job, "after-listed")


def test_a_failure_to_start_takes_pre_processing_error(batch, dep_job):
    identity = models.BatchNodeIdentityReference(resource_id="/not/the/pools")  # refused at once
    missing = models.ResourceFile(
        http_url="http://127.0.0.1:9/in.txt", file_path="in.txt", identity_reference=identity
    )
    satisfy = models.ExitOptions(dependency_action="satisfy")
    batch.create_tasks(
        dep_job,
        [
            _task(
                "fetches",
                resource_files=[missing],
                exit_conditions=_exits(pre_processing_error=satisfy),
            ),
            _task("child", ids=["fetches"]),
        ],
    )
    child, fetches = _completed(batch, dep_job, "child", "fetches")
    assert fetches.execution_info.failure_info.category == "usererror"
    assert fetches.execution_info.exit_code is None
    _after(child, fetches)


def test_reactivating_a_failed_parent_lets_its_dependents_proceed(batch, in_process, dep_job):
    batch.create_tasks(dep_job, [_task("parent", HOLD), _task("child", ids=["parent"])])
    _finish(in_process, dep_job, "parent", 1)
    wait_for_task(batch, dep_job, "parent")
    _still_waiting(batch, dep_job, "child")
    batch.reactivate_task(dep_job, "parent")
    _finish(in_process, dep_job, "parent", 0)
    child, parent = _completed(batch, dep_job, "child", "parent")
    _after(child, parent)


def test_a_terminated_parent_has_failed_and_blocks_unless_default_satisfies(batch, dep_job):
    """Terminate ends a task as failed (failureInfo TaskEnded): no exit code of its own, so
    the exit condition is default, block unless it says otherwise."""
    satisfy = _exits(default=models.ExitOptions(dependency_action="satisfy"))
    batch.create_tasks(
        dep_job,
        [
            _task("blocks", HOLD),
            _task("satisfies", HOLD, exit_conditions=satisfy),
            _task("after-blocks", ids=["blocks"]),
            _task("after-satisfies", ids=["satisfies"]),
        ],
    )
    wait_for(lambda: batch.get_task(dep_job, "satisfies").state == "running")
    batch.terminate_task(dep_job, "blocks")
    batch.terminate_task(dep_job, "satisfies")
    after, satisfies = _completed(batch, dep_job, "after-satisfies", "satisfies")
    assert satisfies.execution_info.failure_info.code == "TaskEnded"
    _after(after, satisfies)
    _still_waiting(batch, dep_job, "after-blocks")


def test_a_terminated_dependent_waits_again_when_reactivated(batch, dep_job):
    batch.create_task(dep_job, _task("child", ids=["never"]))
    batch.terminate_task(dep_job, "child")
    assert wait_for_task(batch, dep_job, "child").execution_info.failure_info.code == "TaskEnded"
    batch.reactivate_task(dep_job, "child")
    _still_waiting(batch, dep_job, "child")


def test_deleting_a_parent_neither_releases_nor_unsatisfies_its_dependents(batch, dep_job):
    """Satisfaction is kept by id: Azure/Batch issue 129 ("by design"), where a dependent
    re-created with its deleted and re-created parent ran at once. A blocked dependent
    stays blocked when its parent is deleted, until a task of that id satisfies it."""
    batch.create_tasks(dep_job, [_task("good"), _task("bad", "/bin/sh -c 'exit 1'")])
    _completed(batch, dep_job, "good", "bad")
    batch.create_task(dep_job, _task("after-bad", ids=["bad"]))
    batch.delete_task(dep_job, "good")
    batch.delete_task(dep_job, "bad")
    batch.create_task(dep_job, _task("after-good", ids=["good"]))
    _completed(batch, dep_job, "after-good")
    _still_waiting(batch, dep_job, "after-bad")
    batch.create_task(dep_job, _task("bad"))
    _completed(batch, dep_job, "after-bad")


def test_deleting_a_waiting_dependent_forgets_it(batch, dep_job):
    batch.create_task(dep_job, _task("child", ids=["parent"]))
    batch.delete_task(dep_job, "child")
    batch.create_task(dep_job, _task("parent"))
    _completed(batch, dep_job, "parent")
    assert [t.id for t in batch.list_tasks(dep_job)] == ["parent"]


# --- job actions -----------------------------------------------------------------------


def _failing_job(batch: BatchClient, pool: str) -> str:
    return _job(batch, pool, task_failure_mode="performexitoptionsjobaction")


def test_a_failure_terminates_the_job_by_default_when_it_performs_exit_options(batch, pool):
    job_id = _failing_job(batch, pool)
    batch.create_task(job_id, _task("fails", "/bin/sh -c 'exit 1'"))
    wait_for(lambda: batch.get_job(job_id).state == "completed")
    assert batch.get_job(job_id).execution_info.termination_reason == "TaskFailed"


def test_success_leaves_the_job_alone_unless_exit_code_zero_is_listed(batch, pool):
    """jobAction: "The default is none for exit code 0"; listed, exit code 0 acts too."""
    job_id = _failing_job(batch, pool)
    batch.create_task(job_id, _task("ok"))
    _completed(batch, job_id, "ok")
    assert batch.get_job(job_id).state == "active"
    terminate = _exits(exit_codes=[_on(0, job_action="terminate")])
    batch.create_task(job_id, _task("ends", exit_conditions=terminate))
    wait_for(lambda: batch.get_job(job_id).state == "completed")
    assert batch.get_job(job_id).execution_info.termination_reason == "TaskFailed"


def test_job_action_none_keeps_the_job_and_disable_disables_it(batch, pool):
    job_id = _failing_job(batch, pool)
    batch.create_tasks(
        job_id,
        [
            _task(
                "tolerated",
                "/bin/sh -c 'exit 4'",
                exit_conditions=_exits(default=models.ExitOptions(job_action="none")),
            ),
        ],
    )
    _completed(batch, job_id, "tolerated")
    assert batch.get_job(job_id).state == "active"
    disable = _exits(exit_codes=[_on(5, job_action="disable", dependency_action="satisfy")])
    batch.create_task(job_id, _task("disables", "/bin/sh -c 'exit 5'", exit_conditions=disable))
    wait_for(lambda: batch.get_job(job_id).state == "disabled")
    assert batch.get_job(job_id).previous_state == "disabling"


def test_a_job_action_needs_on_task_failure_perform_exit_options_job_action(batch, dep_job):
    """ExitOptions.jobAction: "If the Job's onTaskFailed property is noaction, then
    specifying this property returns an error and the add Task request fails with an
    invalid property value error" (400)."""
    body = {
        "id": "t",
        "commandLine": "/bin/true",
        "exitConditions": {"default": {"jobAction": "none"}},
    }
    response = _raw(batch, "POST", f"/jobs/{dep_job}/tasks", body)
    assert response.status_code == 400
    document = response.json()
    assert document["code"] == "InvalidPropertyValue"
    assert document["values"][:2] == [
        {"key": "PropertyName", "value": "jobAction"},
        {"key": "PropertyValue", "value": "none"},
    ]
    ok = _task("ok", exit_conditions=_exits(default=models.ExitOptions(dependency_action="block")))
    batch.create_task(dep_job, ok)


# --- refused requests ------------------------------------------------------------------


def test_depends_on_in_a_job_without_task_dependencies_is_refused(batch, job):
    """The API's dependsOn: "If the Job does not have usesTaskDependencies set to true, and
    this element is present, the request fails with error code
    TaskDependenciesNotSpecifiedOnJob"; status and message from "Batch status and error
    codes"."""
    response = _raw(
        batch,
        "POST",
        f"/jobs/{job}/tasks",
        {"id": "child", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["parent"]}},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "TaskDependenciesNotSpecifiedOnJob"
    assert body["message"]["value"].split("\n")[0] == NOT_SPECIFIED
    group = models.BatchTaskGroup(task_values=[_task("ok"), _task("child", ids=["ok"])])
    results = {r.task_id: r for r in batch.create_task_collection(job, group).result_values}
    assert results["ok"].status == "success"
    assert results["child"].status == "clienterror"
    assert results["child"].error.code == "TaskDependenciesNotSpecifiedOnJob"
    assert [t.id for t in batch.list_tasks(job)] == ["ok"]


def test_task_ids_of_more_than_64000_characters_are_too_long(batch, dep_job):
    """BatchTaskDependencies.taskIds: "limited to 64000 characters total (i.e. the combined
    length of all Task IDs)", past which "the Add Task request fails with error code
    TaskDependencyListTooLong"."""
    ids = [f"{i:064d}" for i in range(1000)]  # 64000 characters: allowed
    batch.create_task(dep_job, _task("at-limit", ids=ids))
    error = raises_batch_error(
        lambda: batch.create_task(dep_job, _task("over", ids=[*ids, "x"])),
        400,
        "TaskDependencyListTooLong",
    )
    assert error.error.message.startswith("A task was specified as depending on other tasks")


def test_too_many_ranges_are_too_long(batch, dep_job):
    ranges = [(i, i) for i in range(100_000, 105_000)]  # 5000 of "100000-100000,"
    raises_batch_error(
        lambda: batch.create_task(dep_job, _task("over", ranges=ranges)),
        400,
        "TaskDependencyRangesTooLong",
    )


INVALID, MISSING = "InvalidPropertyValue", "MissingRequiredProperty"


@pytest.mark.parametrize(
    ("depends_on", "code", "name"),
    [
        ({"taskIdRanges": [{"start": 5, "end": 1}]}, INVALID, "taskIdRanges"),
        ({"taskIdRanges": [{"start": "a", "end": 3}]}, INVALID, "start"),
        ({"taskIdRanges": [{"start": 1.5, "end": 3}]}, INVALID, "start"),
        ({"taskIdRanges": [{"start": 1}]}, MISSING, "end"),
        ({"taskIds": "parent"}, INVALID, "taskIds"),
        ({"taskIds": [7]}, INVALID, "taskIds"),
    ],
)
def test_malformed_dependencies_are_refused(batch, dep_job, depends_on, code, name):
    body = {"id": "bad", "commandLine": "/bin/true", "dependsOn": depends_on}
    response = _raw(batch, "POST", f"/jobs/{dep_job}/tasks", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["values"][0] == {"key": "PropertyName", "value": name}


@pytest.mark.parametrize(
    ("conditions", "code", "name"),
    [
        ({"exitCodes": [{"code": 1}]}, MISSING, "exitOptions"),
        ({"exitCodes": [{"code": "one", "exitOptions": {}}]}, INVALID, "code"),
        (
            {"exitCodeRanges": [{"start": 9, "end": 1, "exitOptions": {}}]},
            INVALID,
            "exitCodeRanges",
        ),
        ({"default": {"dependencyAction": "cancel"}}, INVALID, "dependencyAction"),
        ({"default": {"jobAction": "requeue"}}, INVALID, "jobAction"),
        ({"preProcessingError": "block"}, INVALID, "preProcessingError"),
    ],
)
def test_malformed_exit_conditions_are_refused(batch, dep_job, conditions, code, name):
    body = {"id": "bad", "commandLine": "/bin/true", "exitConditions": conditions}
    response = _raw(batch, "POST", f"/jobs/{dep_job}/tasks", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["values"][0] == {"key": "PropertyName", "value": name}


# --- the wire shape --------------------------------------------------------------------


def test_get_returns_depends_on_and_exit_conditions_as_the_service_does(batch, dep_job):
    body = {
        "id": "shaped",
        "commandLine": "/bin/true",
        "dependsOn": {"taskIds": ["a", "b"], "taskIdRanges": [{"start": 1, "end": 3}]},
        "exitConditions": {
            "exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "Satisfy"}}],
            "exitCodeRanges": [
                {"start": 4, "end": 8, "exitOptions": {"dependencyAction": "block"}}
            ],
            "preProcessingError": {"dependencyAction": "BLOCK"},
            "fileUploadError": {"dependencyAction": "satisfy"},
            "default": {"dependencyAction": "block"},
        },
    }
    assert _raw(batch, "POST", f"/jobs/{dep_job}/tasks", body).status_code == 201
    document = _raw(batch, "GET", f"/jobs/{dep_job}/tasks/shaped").json()
    assert document["dependsOn"] == body["dependsOn"]
    assert document["exitConditions"] == {
        "exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}],
        "exitCodeRanges": [{"start": 4, "end": 8, "exitOptions": {"dependencyAction": "block"}}],
        "preProcessingError": {"dependencyAction": "block"},
        "fileUploadError": {"dependencyAction": "satisfy"},
        "default": {"dependencyAction": "block"},
    }
    listed = {t.id: t for t in batch.list_tasks(dep_job)}["shaped"]
    assert listed.depends_on.task_id_ranges[0].end == 3
    assert listed.exit_conditions.exit_codes[0].exit_options.dependency_action == "satisfy"


# --- restarts --------------------------------------------------------------------------


def _starts_at_once(launch: Launch) -> int | None:
    """Start tasks exit 0 at once; tasks run until finished or killed."""
    return 0 if launch.key[0] == "start" else None


def test_dependencies_survive_a_restart(tmp_path: Path):
    with serve(tmp_path, FakeExecutor(_starts_at_once)) as before:
        batch = client_for(before.url)
        pool_id = unique("pool")
        batch.create_pool(pool_options(pool_id))
        wait_for(lambda: [n.state for n in batch.list_nodes(pool_id)] == ["idle"])
        job_id = _job(batch, pool_id)
        batch.create_tasks(
            job_id,
            [_task("done", HOLD), _task("running", HOLD), _task("child", ids=["done", "running"])],
        )
        wait_for(lambda: batch.get_task(job_id, "running").state == "running")
        _finish(before, job_id, "done")
        wait_for_task(batch, job_id, "done")
    later = FakeClock(datetime(2026, 1, 2, tzinfo=UTC))  # time goes on across the restart
    with serve(tmp_path, FakeExecutor(_starts_at_once), later) as after:
        batch = client_for(after.url)
        assert batch.get_job(job_id).uses_task_dependencies is True
        wait_for(lambda: batch.get_task(job_id, "running").state == "running")  # requeued
        assert batch.get_task(job_id, "child").state == "active"
        assert batch.get_task(job_id, "child").depends_on.task_ids == ["done", "running"]
        _finish(after, job_id, "running")  # "done" satisfied it before the restart
        wait_for(lambda: batch.get_task(job_id, "child").state == "running")
        _finish(after, job_id, "child")
        child, done, running = _completed(batch, job_id, "child", "done", "running")
        _after(child, done, running)


# --- scale: the scheduler's pass never sees waiting tasks --------------------------------


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Any]:
    batch_state, _ = make_state(tmp_path)
    ready_pool(batch_state)
    batch_state.jobs.create(
        {"id": "job", "poolInfo": {"poolId": "pool"}, "usesTaskDependencies": True}
    )
    yield batch_state
    batch_state.tables.store.close()


def _add(state: Any, tasks: list[dict[str, Any]]) -> None:
    for i in range(0, len(tasks), 100):
        state.tasks.add_collection("job", {"value": tasks[i : i + 100]})


def _run_all(state: Any, limit: int | None = None) -> int:
    """Run what the scheduler places (one pass at a time) until nothing is left to place,
    or limit tasks ran; how many ran."""
    ran = 0
    while (limit is None or ran < limit) and (placed := state.scheduling.assign()):
        for assignment in placed[: None if limit is None else limit - ran]:
            task = assignment.task
            state.scheduling.task_started("job", task.id, state.tables.clock())
            state.scheduling.task_finished("job", task.id, Outcome(0))
            ran += 1
    return ran


def test_ten_thousand_waiting_tasks_stay_out_of_the_scheduler(state):
    waiting = [
        {"id": f"w{i}", "commandLine": "x", "dependsOn": {"taskIds": ["gate"]}}
        for i in range(10_000)
    ]
    _add(state, [*waiting, {"id": "free", "commandLine": "x"}])
    assert list(state.tables.active["job"]) == ["free"]
    assert len(state.tables.held["job"]) == 10_000
    assert _run_all(state) == 1
    started = time.monotonic()
    for _ in range(1_000):  # the scheduler's pass costs nothing per waiting task
        assert state.scheduling.assign() == []
    assert time.monotonic() - started < 1
    state.tasks.add("job", {"id": "gate", "commandLine": "x"})
    assert _run_all(state, limit=1) == 1  # the gate; its completion releases them all
    assert list(state.tables.active["job"]) == [f"w{i}" for i in range(10_000)]
    assert not state.tables.held["job"]


@pytest.mark.parametrize("expand_limit", [dependencies.EXPAND_LIMIT, 10])
def test_a_chain_and_ranges_settle_by_index(state, monkeypatch, expand_limit):
    """Ranges up to EXPAND_LIMIT ids are indexed per id, wider ones checked per
    completion: both settle alike."""
    monkeypatch.setattr(dependencies, "EXPAND_LIMIT", expand_limit)

    def on(start: int, end: int) -> dict[str, Any]:
        return {"taskIdRanges": [{"start": start, "end": end}]}

    chain = [{"id": "0", "commandLine": "x"}] + [
        {"id": f"{i:04d}", "commandLine": "x", "dependsOn": on(i - 1, i - 1)}
        for i in range(1, 1_000)
    ]
    wide = {"id": "wide", "commandLine": "x", "dependsOn": on(0, 999)}
    split = {"id": "split", "commandLine": "x", "dependsOn": on(0, 499) | {"taskIds": ["wide"]}}
    huge = {"id": "huge", "commandLine": "x", "dependsOn": on(0, 10**9)}
    started = time.monotonic()
    _add(state, [huge, split, wide, *reversed(chain)])
    assert _run_all(state) == 1_002  # the chain, "wide", then "split"; "huge" waits on
    assert time.monotonic() - started < 10
    assert state.tables.held["job"] == {"huge"}
    ran = sorted(state.tables.tasks["job"].values(), key=_started)[:-1]  # not "huge"
    assert [task.id for task in ran[-2:]] == ["wide", "split"]
    assert validate.MAX_DEPENDENCY_CHARACTERS == 64_000


def _started(task: Any) -> Any:
    return task.run.start_time or datetime.max.replace(tzinfo=UTC)
