"""The state machine alone: no HTTP, no processes, a clock under the test's control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emulator import errors
from emulator.state import BatchState, Outcome
from emulator.store import Store

POOL = {
    "id": "pool",
    "vmSize": "small",
    "virtualMachineConfiguration": {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "server"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
    },
    "targetDedicatedNodes": 2,
    "taskSlotsPerNode": 2,
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def make_state(path: Path) -> tuple[BatchState, list[tuple[str, str, str]]]:
    killed: list[tuple[str, str, str]] = []
    state = BatchState(
        Store(path / "batch.sqlite"),
        Clock(),
        "http://batch",
        kill=lambda kind, a, b: killed.append((kind, a, b)),
    )
    return state, killed


def ready_pool(state: BatchState) -> None:
    state.create_pool(dict(POOL))
    for pool, node in state.pending_start_tasks():
        state.start_task_started(pool["id"], node["id"])
        state.start_task_finished(pool["id"], node["id"], Outcome(0))


def test_assign_fills_slots_spread_across_nodes(tmp_path):
    state, _ = make_state(tmp_path)
    ready_pool(state)
    state.create_job({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.add_task_collection(
        "job", {"value": [{"id": f"t{i}", "commandLine": "x"} for i in range(6)]}
    )
    placed = state.assign()
    assert len(placed) == 4  # two nodes, two slots each
    assert len({a.node_id for a in placed}) == 2
    assert state.assign() == []
    assert state.task_counts("job")["taskCounts"]["running"] == 4


def test_retry_then_complete(tmp_path):
    state, _ = make_state(tmp_path)
    ready_pool(state)
    state.create_job(
        {"id": "job", "poolInfo": {"poolId": "pool"}, "constraints": {"maxTaskRetryCount": 1}}
    )
    state.add_task("job", {"id": "t", "commandLine": "x"})
    (_first,) = state.assign()
    state.task_started("job", "t", datetime.now(UTC))
    state.task_finished("job", "t", Outcome(1))
    task = state.get_task("job", "t")
    assert (task["state"], task["executionInfo"]["retryCount"]) == ("active", 1)
    state.assign()
    state.task_started("job", "t", datetime.now(UTC))
    state.task_finished("job", "t", Outcome(2))
    task = state.get_task("job", "t")
    assert task["state"] == "completed"
    assert task["executionInfo"]["exitCode"] == 2
    assert task["executionInfo"]["failureInfo"]["code"] == "FailureExitCode"


def test_terminate_kills_and_completes_the_job(tmp_path):
    state, killed = make_state(tmp_path)
    ready_pool(state)
    state.create_job({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.add_task("job", {"id": "t", "commandLine": "x"})
    state.assign()
    state.task_started("job", "t", datetime.now(UTC))
    state.terminate_job("job")
    assert killed == [("task", "job", "t")]
    assert state.get_job("job")["state"] == "completed"
    assert state.get_task("job", "t")["executionInfo"]["failureInfo"]["code"] == "TaskEnded"
    # A late report from the killed process changes nothing.
    state.task_finished("job", "t", Outcome(-9))
    assert state.get_task("job", "t")["executionInfo"].get("exitCode") is None
    with pytest.raises(errors.BatchServiceError) as caught:
        state.add_task("job", {"id": "late", "commandLine": "x"})
    assert caught.value.code == "JobCompleted"


def test_recover_requeues_running_tasks_and_keeps_completed_ones(tmp_path):
    state, _ = make_state(tmp_path)
    ready_pool(state)
    state.create_job({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.add_task_collection(
        "job", {"value": [{"id": "done", "commandLine": "x"}, {"id": "busy", "commandLine": "x"}]}
    )
    state.assign()
    for task_id in ("done", "busy"):
        state.task_started("job", task_id, datetime.now(UTC))
    state.task_process("job", "busy", 4242)
    state.task_finished("job", "done", Outcome(0))
    state.store.close()

    reloaded, _ = make_state(tmp_path)  # what a restarted emulator loads
    orphans = reloaded.recover()
    assert orphans == [(4242, {"AZ_BATCH_JOB_ID": "job", "AZ_BATCH_TASK_ID": "busy"})]
    busy = reloaded.get_task("job", "busy")
    assert (busy["state"], busy["executionInfo"]["requeueCount"]) == ("active", 1)
    assert busy["executionInfo"]["retryCount"] == 0
    assert reloaded.get_task("job", "done")["state"] == "completed"
    assert all(n["runningTasksCount"] == 0 for n in reloaded.list_nodes("pool"))
    assert [a.task_id for a in reloaded.assign()] == ["busy"]


def test_all_tasks_complete_terminates_only_when_asked(tmp_path):
    state, _ = make_state(tmp_path)
    ready_pool(state)
    state.create_job({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.add_task("job", {"id": "t", "commandLine": "x"})
    state.assign()
    state.task_started("job", "t", datetime.now(UTC))
    state.task_finished("job", "t", Outcome(0))
    assert state.get_job("job")["state"] == "active"
    state.update_job("job", {"onAllTasksComplete": "terminatejob"})
    job = state.get_job("job")
    assert (job["state"], job["executionInfo"]["terminateReason"]) == (
        "completed",
        "AllTasksComplete",
    )


def test_a_failed_start_task_keeps_tasks_off_the_node(tmp_path):
    state, _ = make_state(tmp_path)
    state.create_pool(
        {
            **POOL,
            "targetDedicatedNodes": 1,
            "startTask": {"commandLine": "x", "waitForSuccess": True},
        }
    )
    ((_pool, node),) = state.pending_start_tasks()
    state.start_task_started("pool", node["id"])
    assert state.get_node("pool", node["id"])["state"] == "waitingforstarttask"
    state.start_task_finished("pool", node["id"], Outcome(1))
    assert state.get_node("pool", node["id"])["state"] == "starttaskfailed"
    state.create_job({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.add_task("job", {"id": "t", "commandLine": "x"})
    assert state.assign() == []
