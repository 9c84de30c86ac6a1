"""The state machine alone: no HTTP, no processes, a clock under the test's control."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator import errors, failures
from emulator.failures import Outcome
from emulator.records import RunKey
from emulator.state import BatchState
from emulator.store import Store
from tests.emulator.fakes import FakeClock

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


class Ports:
    """What the state is given to reach out: kill a run, wake the scheduler."""

    def __init__(self) -> None:
        self.killed: list[RunKey] = []
        self.wakes = 0

    def kill(self, key: RunKey) -> None:
        self.killed.append(key)

    def wake(self) -> None:
        self.wakes += 1


def make_state(path: Path, clock: FakeClock | None = None) -> tuple[BatchState, Ports]:
    ports = Ports()
    state = BatchState(
        Store(path / "batch.sqlite"),
        clock or FakeClock(),
        "http://batch",
        kill=ports.kill,
        wake=ports.wake,
    )
    return state, ports


def ready_pool(state: BatchState) -> None:
    state.pools.create(dict(POOL))
    for pool, node in state.scheduling.pending_start_tasks():
        state.scheduling.start_task_started(pool.id, node.id)
        state.scheduling.start_task_finished(pool.id, node.id, Outcome(0))


def start(state: BatchState, *task_ids: str) -> None:
    for task_id in task_ids:
        assert state.scheduling.task_started("job", task_id, state.tables.clock())


def one_running_task(state: BatchState) -> None:
    """A ready pool, the job "job" and its task "t", assigned and running."""
    ready_pool(state)
    state.jobs.create({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.tasks.add("job", {"id": "t", "commandLine": "x"})
    state.scheduling.assign()
    start(state, "t")


def test_assign_fills_slots_spread_across_nodes(tmp_path):
    state, ports = make_state(tmp_path)
    ready_pool(state)
    state.jobs.create({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.tasks.add_collection(
        "job", {"value": [{"id": f"t{i}", "commandLine": "x"} for i in range(6)]}
    )
    assert ports.wakes > 0
    placed = state.scheduling.assign()
    assert len(placed) == 4  # two nodes, two slots each
    assert len({a.node.id for a in placed}) == 2
    assert state.scheduling.assign() == []
    assert state.jobs.task_counts("job").counts["running"] == 4


def test_retry_then_complete(tmp_path):
    state, _ = make_state(tmp_path)
    ready_pool(state)
    state.jobs.create(
        {"id": "job", "poolInfo": {"poolId": "pool"}, "constraints": {"maxTaskRetryCount": 1}}
    )
    state.tasks.add("job", {"id": "t", "commandLine": "x"})
    (_first,) = state.scheduling.assign()
    start(state, "t")
    state.scheduling.task_finished("job", "t", Outcome(1))
    task = state.tasks.get("job", "t")
    assert (task.state, task.run.retry_count) == ("active", 1)
    state.scheduling.assign()
    start(state, "t")
    state.scheduling.task_finished("job", "t", Outcome(2))
    task = state.tasks.get("job", "t")
    assert task.state == "completed"
    assert task.run.exit_code == 2
    assert task.run.failure == failures.FAILURE_EXIT_CODE()


def test_terminate_kills_and_completes_the_job(tmp_path):
    state, ports = make_state(tmp_path)
    one_running_task(state)
    state.jobs.terminate("job")
    assert ports.killed == [("task", "job", "t")]
    assert state.jobs.get("job").state == "completed"
    assert state.tasks.get("job", "t").run.failure == failures.TASK_ENDED_BY_REQUEST()
    # A late report from the killed process changes nothing.
    state.scheduling.task_finished("job", "t", Outcome(-9))
    assert state.tasks.get("job", "t").run.exit_code is None
    with pytest.raises(errors.BatchServiceError) as caught:
        state.tasks.add("job", {"id": "late", "commandLine": "x"})
    assert caught.value.code == "JobCompleted"


def test_recover_requeues_running_tasks_and_keeps_completed_ones(tmp_path):
    state, _ = make_state(tmp_path)
    ready_pool(state)
    state.jobs.create({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.tasks.add_collection(
        "job", {"value": [{"id": "done", "commandLine": "x"}, {"id": "busy", "commandLine": "x"}]}
    )
    state.scheduling.assign()
    start(state, "done", "busy")
    state.scheduling.task_process("job", "busy", 4242)
    state.scheduling.task_finished("job", "done", Outcome(0))
    state.tables.store.close()

    reloaded, _ = make_state(tmp_path)  # what a restarted emulator loads
    orphans = reloaded.recover()
    assert orphans == [(4242, {"AZ_BATCH_JOB_ID": "job", "AZ_BATCH_TASK_ID": "busy"})]
    busy = reloaded.tasks.get("job", "busy")
    assert (busy.state, busy.run.requeue_count, busy.run.retry_count) == ("active", 1, 0)
    assert busy.node is None
    assert busy.process_group is None
    assert reloaded.tasks.get("job", "done").state == "completed"
    assert all(not n.running and n.running_slots == 0 for n in reloaded.pools.list_nodes("pool"))
    assert [a.task.id for a in reloaded.scheduling.assign()] == ["busy"]


def test_records_come_back_from_the_store_as_they_were(tmp_path):
    state, _ = make_state(tmp_path)
    ready_pool(state)
    state.jobs.create({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.tasks.add("job", {"id": "t", "commandLine": "x", "requiredSlots": 2})
    state.scheduling.assign()
    start(state, "t")
    state.scheduling.task_finished("job", "t", Outcome(3))
    state.tables.store.close()
    reloaded, _ = make_state(tmp_path)
    assert reloaded.tasks.get("job", "t") == state.tasks.get("job", "t")
    assert reloaded.jobs.get("job") == state.jobs.get("job")
    assert reloaded.pools.get("pool") == state.pools.get("pool")
    assert reloaded.pools.list_nodes("pool") == state.pools.list_nodes("pool")


def test_all_tasks_complete_terminates_only_when_asked(tmp_path):
    state, _ = make_state(tmp_path)
    one_running_task(state)
    state.scheduling.task_finished("job", "t", Outcome(0))
    assert state.jobs.get("job").state == "active"
    state.jobs.update("job", {"onAllTasksComplete": "terminatejob"})
    job = state.jobs.get("job")
    assert (job.state, job.terminate_reason) == ("completed", "AllTasksComplete")


def test_a_failed_start_task_keeps_tasks_off_the_node(tmp_path):
    state, _ = make_state(tmp_path)
    state.pools.create(
        {
            **POOL,
            "targetDedicatedNodes": 1,
            "startTask": {"commandLine": "x", "waitForSuccess": True},
        }
    )
    ((_pool, node),) = state.scheduling.pending_start_tasks()
    state.scheduling.start_task_started("pool", node.id)
    assert state.pools.get_node("pool", node.id).state == "waitingforstarttask"
    state.scheduling.start_task_finished("pool", node.id, Outcome(1))
    assert state.pools.get_node("pool", node.id).state == "starttaskfailed"
    state.jobs.create({"id": "job", "poolInfo": {"poolId": "pool"}})
    state.tasks.add("job", {"id": "t", "commandLine": "x"})
    assert state.scheduling.assign() == []


def test_deleting_a_pool_kills_its_runs_and_requeues_its_tasks(tmp_path):
    state, ports = make_state(tmp_path)
    one_running_task(state)
    state.pools.delete("pool")
    assert ports.killed == [("task", "job", "t")]
    task = state.tasks.get("job", "t")
    assert (task.state, task.run.requeue_count, task.node) == ("active", 1, None)
    with pytest.raises(errors.BatchServiceError) as caught:
        state.pools.get("pool")
    assert caught.value.code == "PoolNotFound"


def test_times_come_from_the_clock(tmp_path):
    clock = FakeClock()
    state, _ = make_state(tmp_path, clock)
    ready_pool(state)
    state.jobs.create({"id": "job", "poolInfo": {"poolId": "pool"}})
    before = clock.now
    state.tasks.add("job", {"id": "t", "commandLine": "x"})
    task = state.tasks.get("job", "t")
    assert task.created == task.last_modified == task.state_since
    assert task.created > before
