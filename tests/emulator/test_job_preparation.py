"""Jobs' preparation and release tasks through the SDK: validation, gating, retries,
failure, reboots, the job ending, the status list, and a restart.

Each test gets an emulator of its own, served in-process with a fake executor whose runs
end as the test's ``Script`` says (start tasks succeed at once; by default the rest run
until the test finishes them), so a preparation is reliably running while tasks wait.
The served tests (test_job_preparation_served.py) show the files and variables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.batch.models._models import (  # azure-batch 15.0 does not export them
    BatchNodeRebootOptions,
    BatchNodeReimageOptions,
)
from azure.batch.models._patch import CreateTasksError
from azure.core.exceptions import HttpResponseError

from emulator.executor import Launch
from emulator.records import RunKey
from tests.emulator.conftest import (
    client_for,
    pool_options,
    raises_batch_error,
    unique,
    wait_for,
)
from tests.emulator.fakes import FakeExecutor
from tests.emulator.inprocess import InProcess, serve

POLL: Any = 0.05  # seconds: the SDK's pollers take a float, whatever their annotation says
STOP: Any = {"terminateReason": "Stopped by test"}  # azure-batch 15 cannot send no options
Exit = int | None | Callable[[Launch], int | None]


class Script:
    """How each kind of run ends: an exit code at once, None to run until finished or
    killed, or a function of the launch deciding."""

    def __init__(self) -> None:
        self.exits: dict[str, Exit] = {"start": 0}

    def __call__(self, launch: Launch) -> int | None:
        exit_code = self.exits.get(launch.key[0])
        return exit_code(launch) if callable(exit_code) else exit_code


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def local(tmp_path: Path, script: Script) -> Iterator[InProcess]:
    with serve(tmp_path, FakeExecutor(script)) as emulator:
        yield emulator


@pytest.fixture
def client(local: InProcess) -> BatchClient:
    return client_for(local.url)


def _pool(batch: BatchClient, nodes: int, slots: int = 2) -> list[str]:
    """A pool of idle nodes: its node ids (the pool's id is the test's job's)."""
    pool_id = unique("pool")
    batch.create_pool(
        pool_options(pool_id, target_dedicated_nodes=nodes, task_slots_per_node=slots)
    )
    wait_for(lambda: [n.state for n in batch.list_nodes(pool_id)] == ["idle"] * nodes)
    return [pool_id, *sorted(n.id for n in batch.list_nodes(pool_id))]


def _job(
    batch: BatchClient,
    pool_id: str,
    release: models.BatchJobReleaseTask | None = None,
    **preparation: Any,
) -> str:
    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(
            id=job_id,
            pool_info=models.BatchPoolInfo(pool_id=pool_id),
            job_preparation_task=models.BatchJobPreparationTask(
                command_line="/bin/prepare", **preparation
            ),
            job_release_task=release,
        )
    )
    return job_id


RELEASE = models.BatchJobReleaseTask(command_line="/bin/release")


def _add(batch: BatchClient, job_id: str, *task_ids: str) -> None:
    batch.create_tasks(
        job_id, [models.BatchTaskCreateOptions(id=t, command_line="/bin/work") for t in task_ids]
    )


def _states(batch: BatchClient, job_id: str) -> dict[str, str]:
    return {task.id: task.state for task in batch.list_tasks(job_id)}


def _launched(local: InProcess, kind: str, job_id: str, node_id: str | None = None) -> int:
    return sum(
        1
        for launch in local.executor.launches
        if launch.key[:2] == (kind, job_id) and node_id in (None, launch.key[2])
    )


def _statuses(batch: BatchClient, job_id: str, **query: Any) -> dict[str, Any]:
    """The job's preparation and release status by node id."""
    listed = batch.list_job_preparation_and_release_task_status(job_id, **query)
    return {str(status.node_id): status for status in listed}


def _running(local: InProcess, kind: str, job_id: str, count: int) -> list[RunKey]:
    """Wait until ``count`` runs of that kind are in flight for the job; their keys."""

    def keys() -> list[RunKey]:
        return [key for key in local.executor.running() if key[:2] == (kind, job_id)]

    found: list[RunKey] = wait_for(lambda: len(running := keys()) == count and running)
    return found


# --- the job's specification -------------------------------------------------------------


def test_defaults_are_echoed_and_bad_specifications_refused(batch, pool):
    job_id = _job(batch, pool, release=RELEASE)
    job = batch.get_job(job_id)
    preparation, release = job.job_preparation_task, job.job_release_task
    assert (preparation.id, preparation.wait_for_success) == ("jobpreparation", True)
    assert preparation.rerun_on_node_reboot_after_success is True
    assert preparation.constraints.max_task_retry_count == 0
    assert preparation.constraints.retention_time == timedelta(days=7)
    assert preparation.user_identity.auto_user.elevation_level == "nonadmin"
    assert (release.id, release.max_wall_clock_time) == ("jobrelease", timedelta(minutes=15))
    assert release.retention_time == timedelta(days=7)

    def create(**body: Any) -> None:
        batch.create_job({"id": unique("job"), "poolInfo": {"poolId": pool}, **body})

    raises_batch_error(lambda: create(jobPreparationTask={}), 400, "MissingRequiredProperty")
    raises_batch_error(
        lambda: create(jobReleaseTask={"commandLine": "/bin/release"}),
        400,
        "InvalidPropertyValue",
    )
    prepare = {"commandLine": "/bin/prepare"}
    too_long = {"commandLine": "/bin/release", "maxWallClockTime": "PT15M1S"}
    raises_batch_error(
        lambda: create(jobPreparationTask=prepare, jobReleaseTask=too_long),
        400,
        "InvalidPropertyValue",
    )
    raises_batch_error(
        lambda: create(jobPreparationTask={**prepare, "id": "no spaces"}),
        400,
        "InvalidPropertyValue",
    )
    raises_batch_error(
        lambda: create(jobPreparationTask={**prepare, "waitForSuccess": "yes"}),
        400,
        "InvalidPropertyValue",
    )
    create(
        jobPreparationTask=prepare,
        jobReleaseTask={"commandLine": "/bin/release", "maxWallClockTime": "PT15M"},
    )

    def add(task_id: str) -> None:
        batch.create_task(job_id, models.BatchTaskCreateOptions(id=task_id, command_line="x"))

    raises_batch_error(lambda: add("JobPreparation"), 409, "TaskIdSameAsJobPreparationTask")
    raises_batch_error(lambda: add("jobrelease"), 409, "TaskIdSameAsJobReleaseTask")
    with pytest.raises(CreateTasksError) as caught:  # a collection: each task's own error
        batch.create_tasks(
            job_id, [models.BatchTaskCreateOptions(id="JOBRELEASE", command_line="x")]
        )
    assert [r.error.code for r in caught.value.failure_tasks] == ["TaskIdSameAsJobReleaseTask"]

    plain = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(id=plain, pool_info=models.BatchPoolInfo(pool_id=pool))
    )
    raises_batch_error(
        lambda: list(batch.list_job_preparation_and_release_task_status(plain)),
        409,
        "JobPreparationTaskNotSpecified",
    )


# --- preparation before the job's tasks ----------------------------------------------------


def test_tasks_are_preparing_until_their_nodes_preparation_succeeds(client, local):
    pool_id, first, second = _pool(client, 2)
    job_id = _job(client, pool_id)
    _add(client, job_id, "a", "b", "c", "d")

    running = _running(local, "preparation", job_id, 2)
    assert sorted(key[2] for key in running) == [first, second]
    assert set(_states(client, job_id).values()) == {"preparing"}
    assert _launched(local, "task", job_id) == 0
    assert client.get_node(pool_id, first).running_task_slots_count == 2  # the tasks' own

    local.executor.finish(("preparation", job_id, first))
    wait_for(
        lambda: (
            sorted(_states(client, job_id).values())
            == ["preparing", "preparing", "running", "running"]
        )
    )
    on_first = {t.id for t in client.list_tasks(job_id) if t.state == "running"}
    assert all(client.get_task(job_id, t).node_info.node_id == first for t in on_first)
    local.executor.finish(("preparation", job_id, second))
    wait_for(lambda: set(_states(client, job_id).values()) == {"running"})

    for task_id in "abcd":
        local.executor.finish(("task", job_id, task_id))
    _add(client, job_id, "e", "f", "g")
    wait_for(lambda: _states(client, job_id)["g"] == "running")
    assert (
        _launched(local, "preparation", job_id, first),
        _launched(local, "preparation", job_id, second),
    ) == (1, 1)

    statuses = _statuses(client, job_id)
    assert sorted(statuses) == [first, second]
    info = statuses[first].job_preparation_task_execution_info
    assert (info.state, info.result, info.exit_code, info.retry_count) == (
        "completed",
        "success",
        0,
        0,
    )
    assert info.task_root_directory == f"workitems/{job_id}/job-1/jobpreparation"
    assert info.task_root_directory_url.endswith(
        f"/pools/{pool_id}/nodes/{first}/files/{info.task_root_directory}"
    )
    assert statuses[first].pool_id == pool_id
    assert statuses[first].job_release_task_execution_info is None


def test_a_preparation_retried_while_its_job_is_disabled_runs_and_its_task_with_it(
    client, local, script
):
    """Disabled with ``wait``, a job finishes the task it placed: its node's preparation is
    retried for it, then the task runs, then the job is disabled; enabled, it goes on."""
    pool_id, _node = _pool(client, 1, slots=1)
    script.exits["preparation"] = None
    job_id = _job(client, pool_id, constraints=models.BatchTaskConstraints(max_task_retry_count=1))
    _add(client, job_id, "placed")
    [first] = _running(local, "preparation", job_id, 1)
    poller = client.begin_disable_job(
        job_id, models.BatchJobDisableOptions(disable_tasks="wait"), polling_interval=POLL
    )
    wait_for(lambda: client.get_job(job_id).state == "disabling")
    local.executor.finish(first, exit_code=1)
    wait_for(lambda: _launched(local, "preparation", job_id) == 2)  # the retry
    local.executor.finish(first)
    _running(local, "task", job_id, 1)
    _add(client, job_id, "later")
    local.executor.finish(("task", job_id, "placed"))
    poller.result(timeout=10)
    assert client.get_job(job_id).state == "disabled"
    assert _states(client, job_id) == {"placed": "completed", "later": "active"}

    client.begin_enable_job(job_id, polling_interval=POLL).result(timeout=10)
    _running(local, "task", job_id, 1)
    assert _launched(local, "preparation", job_id) == 2


def test_a_failing_preparation_is_retried_then_its_node_is_skipped(client, local, script):
    pool_id, node_id = _pool(client, 1)
    script.exits["preparation"] = 3
    job_id = _job(
        client,
        pool_id,
        release=RELEASE,
        constraints=models.BatchTaskConstraints(max_task_retry_count=2),
    )
    _add(client, job_id, "t")

    info = wait_for(
        lambda: (
            (s := _statuses(client, job_id).get(node_id))
            and s.job_preparation_task_execution_info.state == "completed"
            and s.job_preparation_task_execution_info
        )
    )
    assert (info.result, info.exit_code, info.retry_count) == ("failure", 3, 2)
    assert info.failure_info.code == "FailureExitCode"
    assert info.last_retry_time is not None
    assert _launched(local, "preparation", job_id) == 3
    task = wait_for(lambda: (t := client.get_task(job_id, "t")).state == "active" and t)
    assert (task.execution_info.retry_count, task.execution_info.requeue_count) == (0, 0)

    # The node takes no task of this job any more, but still those of other jobs.
    other = unique("job")
    client.create_job(
        models.BatchJobCreateOptions(id=other, pool_info=models.BatchPoolInfo(pool_id=pool_id))
    )
    _add(client, other, "elsewhere")
    wait_for(lambda: client.get_task(other, "elsewhere").state == "running")
    assert client.get_task(job_id, "t").state == "active"
    assert _launched(local, "task", job_id) == 0

    # A new node prepares afresh, and runs the task.
    script.exits["preparation"] = 0
    client.begin_resize_pool(
        pool_id, models.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=POLL
    ).result(timeout=10)
    running = wait_for(lambda: (t := client.get_task(job_id, "t")).state == "running" and t)
    assert running.node_info.node_id != node_id

    # The release runs on both nodes, the failed one's too.
    client.begin_terminate_job(job_id, options=STOP, polling_interval=POLL)
    assert len(_running(local, "release", job_id, 2)) == 2


def test_a_reimage_lets_a_node_whose_preparation_failed_prepare_again(client, local, script):
    pool_id, node_id = _pool(client, 1)
    script.exits["preparation"] = 1
    job_id = _job(client, pool_id)
    _add(client, job_id, "t")
    wait_for(lambda: _statuses(client, job_id).get(node_id))
    wait_for(lambda: client.get_task(job_id, "t").state == "active")

    script.exits["preparation"] = 0
    client.begin_reimage_node(
        pool_id,
        node_id,
        BatchNodeReimageOptions(node_reimage_option="requeue"),
        polling_interval=POLL,
    ).result(timeout=10)
    wait_for(lambda: client.get_task(job_id, "t").state == "running")
    assert _launched(local, "preparation", job_id) == 2
    info = _statuses(client, job_id)[node_id].job_preparation_task_execution_info
    assert (info.result, info.retry_count) == ("success", 0)


def test_without_wait_for_success_tasks_start_at_once_and_go_on_after_a_failure(client, local):
    pool_id, node_id = _pool(client, 1)
    job_id = _job(client, pool_id, wait_for_success=False)
    _add(client, job_id, "early")
    wait_for(lambda: client.get_task(job_id, "early").state == "running")
    assert ("preparation", job_id, node_id) in local.executor.running()

    local.executor.finish(("preparation", job_id, node_id), exit_code=2)
    wait_for(
        lambda: (
            _statuses(client, job_id)[node_id].job_preparation_task_execution_info.result
            == "failure"
        )
    )
    _add(client, job_id, "later")
    wait_for(lambda: client.get_task(job_id, "later").state == "running")
    assert _launched(local, "preparation", job_id) == 1


# --- reboots --------------------------------------------------------------------------------


def _reboot(batch: BatchClient, pool_id: str, node_id: str) -> None:
    batch.begin_reboot_node(
        pool_id,
        node_id,
        BatchNodeRebootOptions(node_reboot_kind="requeue"),
        polling_interval=POLL,
    ).result(timeout=10)
    wait_for(lambda: batch.get_node(pool_id, node_id).state in ("idle", "running"))


@pytest.mark.parametrize("rerun", [True, False])
def test_a_reboot_reruns_a_succeeded_preparation_only_if_asked(client, local, script, rerun):
    pool_id, node_id = _pool(client, 1)
    script.exits["preparation"] = 0
    job_id = _job(client, pool_id, rerun_on_node_reboot_after_success=rerun)
    _add(client, job_id, "before")
    wait_for(lambda: client.get_task(job_id, "before").state == "running")

    _reboot(client, pool_id, node_id)
    wait_for(lambda: client.get_task(job_id, "before").state == "running")  # requeued
    assert _launched(local, "preparation", job_id) == (2 if rerun else 1)


def test_a_reboot_reruns_a_preparation_that_had_not_completed(client, local):
    pool_id, node_id = _pool(client, 1)
    job_id = _job(client, pool_id, rerun_on_node_reboot_after_success=False)
    _add(client, job_id, "t")
    _running(local, "preparation", job_id, 1)

    _reboot(client, pool_id, node_id)
    assert ("preparation", job_id, node_id) in local.executor.killed
    _running(local, "preparation", job_id, 1)
    assert _launched(local, "preparation", job_id) == 2
    assert client.get_task(job_id, "t").state == "preparing"
    local.executor.finish(("preparation", job_id, node_id))
    wait_for(lambda: client.get_task(job_id, "t").state == "running")


# --- the job ending -------------------------------------------------------------------------


def _prepared(
    local: InProcess, batch: BatchClient, nodes: int, **release: Any
) -> tuple[str, list[str], str]:
    """A pool of ``nodes`` nodes and a job with a release task, a task running on each."""
    pool_id, *node_ids = _pool(batch, nodes, slots=1)
    job_id = _job(
        batch, pool_id, release=models.BatchJobReleaseTask(command_line="/bin/release", **release)
    )
    _add(batch, job_id, *(f"t{i}" for i in range(nodes)))
    for key in _running(local, "preparation", job_id, nodes):
        local.executor.finish(key)
    wait_for(lambda: set(_states(batch, job_id).values()) == {"running"})
    return pool_id, node_ids, job_id


def test_terminate_keeps_the_job_terminating_until_each_release_ran(client, local):
    _, _, job_id = _prepared(local, client, 2, max_wall_clock_time=timedelta(minutes=5))

    client.begin_terminate_job(job_id, options=STOP, polling_interval=POLL)
    assert client.get_job(job_id).state == "terminating"
    releases = _running(local, "release", job_id, 2)
    assert {("task", job_id, "t0"), ("task", job_id, "t1")} <= set(local.executor.killed)
    assert {t.state for t in client.list_tasks(job_id)} == {"completed"}
    launch = next(x for x in local.executor.launches if x.key[0] == "release")
    assert launch.max_wall_clock == timedelta(minutes=5)
    late = models.BatchTaskCreateOptions(id="late", command_line="x")
    raises_batch_error(lambda: client.create_task(job_id, late), 409, "JobBeingTerminated")

    local.executor.finish(releases[0])
    wait_for(
        lambda: (
            _statuses(client, job_id)[releases[0][2]].job_release_task_execution_info.state
            == "completed"
        )
    )
    assert client.get_job(job_id).state == "terminating"
    local.executor.finish(releases[1], exit_code=4)
    job = wait_for(lambda: (j := client.get_job(job_id)).state == "completed" and j)
    assert job.execution_info.termination_reason == "Stopped by test"

    info = _statuses(client, job_id)[releases[1][2]].job_release_task_execution_info
    assert (info.state, info.result, info.exit_code) == ("completed", "failure", 4)
    assert info.task_root_directory == f"workitems/{job_id}/job-1/jobrelease"
    assert _launched(local, "release", job_id) == 2


def test_all_tasks_complete_ends_the_job_through_its_releases(client, local):
    _, (node_id,), job_id = _prepared(local, client, 1)
    client.update_job(job_id, models.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    local.executor.finish(("task", job_id, "t0"))
    wait_for(lambda: client.get_job(job_id).state == "terminating")
    local.executor.finish(("release", job_id, node_id))
    job = wait_for(lambda: (j := client.get_job(job_id)).state == "completed" and j)
    assert job.execution_info.termination_reason == "AllTasksComplete"


def test_delete_keeps_the_job_deleting_until_each_release_ran(client, local):
    _, _, job_id = _prepared(local, client, 2)
    poller = client.begin_delete_job(job_id, polling_interval=POLL)
    assert client.get_job(job_id).state == "deleting"
    raises_batch_error(lambda: client.get_task(job_id, "t0"), 404, "TaskNotFound")
    releases = _running(local, "release", job_id, 2)
    local.executor.finish(releases[0])
    poller.wait(timeout=0.5)
    assert not poller.done()
    local.executor.finish(releases[1])
    poller.result(timeout=10)
    raises_batch_error(lambda: client.get_job(job_id), 404, "JobNotFound")


def test_a_release_is_skipped_on_a_node_that_leaves(client, local):
    pool_id, node_ids, job_id = _prepared(local, client, 2)
    client.begin_terminate_job(job_id, options=STOP, polling_interval=POLL)
    _running(local, "release", job_id, 2)

    client.begin_remove_nodes(
        pool_id,
        models.BatchNodeRemoveOptions(node_ids=[node_ids[0]]),
        polling_interval=POLL,
    ).result(timeout=10)
    assert ("release", job_id, node_ids[0]) in local.executor.killed
    assert client.get_job(job_id).state == "terminating"
    local.executor.finish(("release", job_id, node_ids[1]))
    wait_for(lambda: client.get_job(job_id).state == "completed")
    assert sorted(_statuses(client, job_id)) == node_ids  # the gone node's too


def test_a_forced_terminate_or_a_job_without_release_ends_at_once(client, local):
    pool_id, node_ids, job_id = _prepared(local, client, 1)
    client.begin_terminate_job(job_id, options=STOP, force=True, polling_interval=POLL).result(
        timeout=10
    )
    assert client.get_job(job_id).state == "completed"  # not waiting for its release,
    (release,) = _running(local, "release", job_id, 1)  # which runs all the same
    client.begin_delete_job(job_id, polling_interval=POLL).result(
        timeout=10
    )  # an ended job: at once
    raises_batch_error(lambda: client.get_job(job_id), 404, "JobNotFound")
    assert release in local.executor.killed

    plain = _job(client, pool_id)
    _add(client, plain, "t")
    _running(local, "preparation", plain, 1)
    client.begin_terminate_job(plain, options=STOP, polling_interval=POLL).result(timeout=10)
    assert client.get_job(plain).state == "completed"
    assert ("preparation", plain, node_ids[0]) in local.executor.killed
    info = _statuses(client, plain)[node_ids[0]].job_preparation_task_execution_info
    assert (info.state, info.failure_info.code) == ("completed", "TaskEnded")


# --- the status list ------------------------------------------------------------------------


def test_the_status_list_filters_selects_and_pages(client, local, script):
    pool_id, *node_ids = _pool(client, 3, slots=1)
    failing = node_ids[1]
    script.exits["preparation"] = lambda launch: 1 if launch.key[2] == failing else 0
    job_id = _job(client, pool_id)
    _add(client, job_id, "a", "b", "c")
    wait_for(lambda: len(_statuses(client, job_id)) == 3)
    wait_for(
        lambda: (
            len(
                _statuses(
                    client, job_id, filter="jobPreparationTaskExecutionInfo/state eq 'completed'"
                )
            )
            == 3
        )
    )

    prepared = "jobPreparationTaskExecutionInfo"
    failed = _statuses(client, job_id, filter=f"{prepared}/result eq 'failure'")
    assert list(failed) == [failing]
    nonzero = _statuses(client, job_id, filter=f"{prepared}/exitCode gt 0")
    assert list(nonzero) == [failing]
    one = _statuses(client, job_id, filter=f"nodeId eq '{node_ids[2]}' and poolId eq '{pool_id}'")
    assert list(one) == [node_ids[2]]
    released = "jobReleaseTaskExecutionInfo/state eq 'running'"
    assert _statuses(client, job_id, filter=released) == {}

    selected = list(client.list_job_preparation_and_release_task_status(job_id, select=["nodeId"]))
    assert {s.node_id for s in selected} == set(node_ids)
    assert all(
        s.pool_id is None and s.job_preparation_task_execution_info is None for s in selected
    )

    pages = client.list_job_preparation_and_release_task_status(job_id, max_results=1).by_page()
    assert [[s.node_id for s in page] for page in pages] == [[n] for n in node_ids]

    for bad in ("state eq 'completed'", f"{prepared}/state ne 'running'"):
        with pytest.raises(HttpResponseError) as caught:
            _statuses(client, job_id, filter=bad)
        assert caught.value.error is not None
        assert caught.value.error.code == "InvalidQueryParameterValue"


# --- a restart ------------------------------------------------------------------------------


def test_a_restart_reruns_a_running_preparation_and_release(tmp_path):
    with serve(tmp_path, FakeExecutor(Script())) as before:
        batch = client_for(before.url)
        pool_id, node_id = _pool(batch, 1)
        job_id = _job(batch, pool_id, release=RELEASE)
        _add(batch, job_id, "t")
        _running(before, "preparation", job_id, 1)
    with serve(tmp_path, FakeExecutor(Script())) as after:
        batch = client_for(after.url)
        _running(after, "preparation", job_id, 1)
        info = _statuses(batch, job_id)[node_id].job_preparation_task_execution_info
        assert info.state == "running"
        after.executor.finish(("preparation", job_id, node_id))
        task = wait_for(lambda: (t := batch.get_task(job_id, "t")).state == "running" and t)
        assert task.execution_info.requeue_count == 1
        batch.begin_terminate_job(job_id, options=STOP, polling_interval=POLL)
        _running(after, "release", job_id, 1)
    with serve(tmp_path, FakeExecutor(Script())) as last:
        batch = client_for(last.url)
        assert batch.get_job(job_id).state == "terminating"
        last.executor.finish(("release", job_id, node_id))
        wait_for(lambda: batch.get_job(job_id).state == "completed")
        assert _launched(last, "preparation", job_id) == 0
