"""The composition root's seams: create_app with a fake executor and a controlled clock.

Each test serves its own emulator in-process (``tests.emulator.inprocess``) and drives it
through the SDK while holding the executor and the clock; the scheduler's restart is
tested on the scheduler alone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from azure.batch import BatchClient, models
from azure.core.rest import HttpRequest

from emulator.files import Storage
from emulator.records import RunKey
from emulator.scheduler import Scheduler
from tests.emulator.conftest import (
    client_for,
    pool_options,
    raises_batch_error,
    wait_for,
    wait_for_task,
)
from tests.emulator.fakes import FakeClock, FakeExecutor
from tests.emulator.inprocess import serve

API = {"api-version": "2025-06-01"}
START = datetime(2030, 6, 1, tzinfo=UTC)


def _ready(batch: BatchClient, pool_id: str = "pool", **settings) -> None:
    batch.create_pool(pool_options(pool_id, **settings))
    wait_for(lambda: all(n.state == "idle" for n in batch.list_nodes(pool_id)))
    batch.create_job(
        models.BatchJobCreateOptions(id="job", pool_info=models.BatchPoolInfo(pool_id=pool_id))
    )


def test_a_task_ends_when_the_executor_says_and_at_the_clocks_time(tmp_path):
    executor, clock = FakeExecutor(), FakeClock(START)
    with serve(tmp_path, executor, clock) as emulator:
        batch = client_for(emulator.url)
        _ready(batch)
        batch.create_task(
            "job",
            models.BatchTaskCreateOptions(
                id="t",
                command_line="anything at all",
                environment_settings=[models.EnvironmentSetting(name="GREETING", value="hi")],
            ),
        )
        wait_for(lambda: batch.get_task("job", "t").state == "running")
        (launch,) = executor.launches
        assert launch.key == ("task", "job", "t")
        assert launch.command_line == "anything at all"
        assert launch.environment["GREETING"] == "hi"
        assert launch.environment["AZ_BATCH_TASK_ID"] == "t"
        executor.finish(("task", "job", "t"), 3)
        task = wait_for_task(batch, "job", "t")
    info = task.execution_info
    assert (info.exit_code, info.result, info.failure_info.code) == (
        3,
        "failure",
        "FailureExitCode",
    )
    assert info.failure_info.details[0].value == "FailureExitCode"
    assert START < info.start_time < info.end_time < clock.now
    assert START < task.last_modified <= clock.now


def test_terminate_kills_the_run_through_the_executor(tmp_path):
    executor = FakeExecutor()
    with serve(tmp_path, executor) as emulator:
        batch = client_for(emulator.url)
        _ready(batch)
        batch.create_task("job", models.BatchTaskCreateOptions(id="t", command_line="x"))
        wait_for(lambda: executor.running() == [("task", "job", "t")])
        batch.terminate_task("job", "t")
        task = wait_for_task(batch, "job", "t")
        wait_for(lambda: executor.running() == [])
    assert executor.killed == [("task", "job", "t")]
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert task.execution_info.exit_code is None  # the late report of the kill is ignored


def test_documents_carry_no_internal_fields(tmp_path):
    executor = FakeExecutor()
    with serve(tmp_path, executor) as emulator:
        batch = client_for(emulator.url)
        _ready(batch)
        batch.create_task("job", models.BatchTaskCreateOptions(id="t", command_line="x"))
        wait_for(lambda: executor.running())
        task = batch.send_request(HttpRequest("GET", "/jobs/job/tasks/t", params=API)).json()
        (node,) = batch.send_request(HttpRequest("GET", "/pools/pool/nodes", params=API)).json()[
            "value"
        ]
    assert set(task) == {
        "odata.metadata",
        "id",
        "commandLine",
        "requiredSlots",
        "userIdentity",
        "constraints",
        "url",
        "creationTime",
        "executionInfo",
        "state",
        "stateTransitionTime",
        "previousState",
        "previousStateTransitionTime",
        "lastModified",
        "eTag",
        "nodeInfo",
    }
    assert set(task["executionInfo"]) == {"startTime", "retryCount", "requeueCount"}
    assert node["runningTasksCount"] == node["runningTaskSlotsCount"] == 1
    assert not {"running", "pool_id", "start_task_launched", "eTag"} & set(node)


class KillFails(FakeExecutor):
    def kill(self, key: RunKey) -> None:
        raise RuntimeError("the executor broke")


def test_an_unexpected_exception_is_logged_and_answered_as_internal_error(tmp_path, caplog):
    with serve(tmp_path, KillFails()) as emulator:
        batch = client_for(emulator.url, retry_total=0)  # one request, one 500
        start = models.BatchStartTask(command_line="x", wait_for_success=True)
        batch.create_pool(pool_options("pool", start_task=start))
        wait_for(lambda: [n.state for n in batch.list_nodes("pool")] == ["waitingforstarttask"])
        with caplog.at_level(logging.ERROR, logger="emulator"):
            error = raises_batch_error(
                lambda: batch.begin_delete_pool("pool"), 500, "InternalError"
            )
    assert "the executor broke" in str(error)
    (record,) = [r for r in caplog.records if r.name == "emulator.routes"]
    assert "DELETE /pools/pool" in record.getMessage()
    assert record.exc_info is not None
    assert "the executor broke" in str(record.exc_info[1])


class FailsOnce:
    """The scheduler's view of the state, failing on its first pass."""

    def __init__(self) -> None:
        self.passes = 0

    def pending_start_tasks(self) -> list:
        self.passes += 1
        if self.passes == 1:
            raise RuntimeError("a bad pass")
        return []

    def assign(self) -> list:
        return []

    def node_changes(self) -> list:
        return []

    def pending_hooks(self) -> list[object]:
        return []


def test_the_scheduler_logs_a_failed_pass_and_restarts(tmp_path, caplog):
    scheduling = FailsOnce()

    async def run() -> None:
        wake = asyncio.Event()
        scheduler = Scheduler(
            scheduling,  # type: ignore[arg-type]
            FakeExecutor(),
            Storage(None, ()),
            wake,
            FakeClock(),
            data=tmp_path,
            account_name="devbatch",
            account_url="http://batch",
            restart_delay=0,
        )
        loop = asyncio.create_task(scheduler.run_forever())
        for _ in range(200):
            if scheduling.passes >= 3:
                break
            wake.set()
            await asyncio.sleep(0.01)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    # A loop of its own, not asyncio.run: that leaves the main thread with no event loop
    # set, which code run later in the session (Pulumi's mocks) relies on.
    own_loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="emulator"):
            own_loop.run_until_complete(run())
    finally:
        own_loop.close()
    assert scheduling.passes >= 3  # it went on after the failure
    (record,) = [r for r in caplog.records if r.name == "emulator.scheduler"]
    assert "restarting" in record.getMessage()
    assert record.exc_info is not None
    assert "a bad pass" in str(record.exc_info[1])
