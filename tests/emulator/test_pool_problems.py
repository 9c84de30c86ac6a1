"""What users meet when a pool cannot run tasks: a failed start task, the account's quotas.

Each test starts an emulator process of its own (real processes; quotas are the
account's, so tests sharing one would share them), and the local stack test a whole
stack in a directory of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.rest import HttpRequest

from contract import local as local_keys
from local_stack import servers, stack
from tests.emulator.conftest import pool_options, raises_batch_error, unique, wait_for
from tests.stacks import Stacks

API = {"api-version": "2025-06-01"}
FAILING_START = (
    "/bin/sh -c 'echo run >> $AZ_BATCH_NODE_SHARED_DIR/runs; echo starting; "
    "echo no such tool >&2; exit 3'"
)

pytestmark = pytest.mark.served  # emulator processes of the tests' own

Account = Callable[..., BatchClient]


@pytest.fixture
def account(tmp_path: Path) -> Iterator[Account]:
    """Start an emulator with the given quotas; its client (stopped after the test)."""
    started: list[servers.Server] = []

    def start(core_quota: int | None = None, pool_quota: int | None = None) -> BatchClient:
        server = servers.start_emulator(
            tmp_path / f"state{len(started)}",
            tmp_path / f"emulator{len(started)}.log",
            core_quota=core_quota,
            pool_quota=pool_quota,
        )
        started.append(server)
        return BatchClient(server.url, _credential())

    yield start
    for server in started:
        servers.stop(server)


def _credential() -> AzureNamedKeyCredential:
    return AzureNamedKeyCredential(local_keys.BATCH_ACCOUNT, local_keys.BATCH_KEY)


def _steady(batch: BatchClient, pool_id: str) -> models.BatchPool:
    return wait_for(lambda: (p := batch.get_pool(pool_id)).allocation_state == "steady" and p)


# --- the start task ----------------------------------------------------------------------


def test_a_failed_start_task_leaves_its_node_unusable(account: Account):
    batch = account()
    pool_id = unique("pool")
    start_task = models.BatchStartTask(
        command_line=FAILING_START, wait_for_success=True, max_task_retry_count=1
    )
    batch.create_pool(pool_options(pool_id, start_task=start_task))
    (node,) = wait_for(
        lambda: [n for n in batch.list_nodes(pool_id) if n.state == "starttaskfailed"]
    )
    info = node.start_task_info
    assert info.state == "completed"
    assert info.exit_code == 3
    assert info.retry_count == 1
    assert info.result == "failure"
    assert info.start_time is not None
    assert info.end_time is not None
    assert info.start_time <= info.end_time
    assert (info.failure_info.category, info.failure_info.code) == ("usererror", "FailureExitCode")
    assert info.failure_info.message == "The task process exited with an unexpected exit code"

    def read(name: str) -> str:
        return b"".join(batch.download_node_file(pool_id, node.id, name)).decode()

    assert read("startup/stderr.txt") == "no such tool\n"
    assert read("startup/stdout.txt") == "starting\n"
    assert read("shared/runs") == "run\nrun\n"  # the first run and its one retry

    top = {f.name: f for f in batch.list_node_files(pool_id, node.id)}
    assert {"startup", "shared", "workitems"} <= set(top)
    assert top["startup"].is_directory
    everything = {f.name: f for f in batch.list_node_files(pool_id, node.id, recursive=True)}
    assert {"startup/stdout.txt", "startup/stderr.txt", "startup/wd"} <= set(everything)
    stderr = everything["startup/stderr.txt"]
    assert stderr.url == f"{node.url}/files/startup/stderr.txt"
    assert stderr.properties.content_length == len("no such tool\n")
    properties = batch.get_node_file_properties(pool_id, node.id, "startup/stderr.txt")
    assert int(properties.content_length) == len("no such tool\n")
    missing = HttpRequest("GET", f"/pools/{pool_id}/nodes/{node.id}/files/nope.txt", params=API)
    raises_batch_error(lambda: batch.send_request(missing), 404, "FileNotFound")
    escape = HttpRequest("GET", f"/pools/{pool_id}/nodes/{node.id}/files/..%2F..%2Fx", params=API)
    raises_batch_error(lambda: batch.send_request(escape), 404, "FileNotFound")

    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id))
    )
    batch.create_task(job_id, models.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    time.sleep(1.5)  # the scheduler passes every half second
    assert batch.get_task(job_id, "t").state == "active"
    assert batch.get_node(pool_id, node.id).running_tasks_count == 0


def test_a_start_task_that_succeeds_on_retry_leaves_the_node_idle(account: Account):
    batch = account()
    pool_id = unique("pool")
    # Fails the first time only: the marker file is there for the retry.
    command = (
        "/bin/sh -c 'test -e $AZ_BATCH_NODE_SHARED_DIR/seen && exit 0; "
        "touch $AZ_BATCH_NODE_SHARED_DIR/seen; exit 5'"
    )
    start_task = models.BatchStartTask(
        command_line=command, wait_for_success=True, max_task_retry_count=2
    )
    batch.create_pool(pool_options(pool_id, start_task=start_task))
    (node,) = wait_for(lambda: [n for n in batch.list_nodes(pool_id) if n.state == "idle"])
    info = node.start_task_info
    assert (info.state, info.exit_code, info.retry_count) == ("completed", 0, 1)
    assert info.failure_info is None


# --- quotas ------------------------------------------------------------------------------


def test_a_core_quota_of_zero_gives_no_nodes_and_a_resize_error(account: Account):
    batch = account(core_quota=0)
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=2))
    pool = _steady(batch, pool_id)
    assert pool.current_dedicated_nodes == 0
    assert pool.target_dedicated_nodes == 2
    assert list(batch.list_nodes(pool_id)) == []
    (error,) = pool.resize_errors
    assert error.code == "AccountCoreQuotaReached"
    assert error.message == "The specified account has reached core quota"


def test_a_core_quota_that_fits_one_node_gives_one_and_so_does_a_resize(account: Account):
    batch = account(core_quota=2)  # standard_d2s_v3: 2 cores a node
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=2))
    pool = _steady(batch, pool_id)
    assert pool.current_dedicated_nodes == 1
    assert len(list(batch.list_nodes(pool_id))) == 1
    assert [e.code for e in pool.resize_errors] == ["AccountCoreQuotaReached"]

    other = unique("pool")  # the account's cores are all in use now
    batch.create_pool(pool_options(other, target_dedicated_nodes=0))
    assert batch.get_pool(other).resize_errors is None
    batch.begin_resize_pool(
        other, models.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0.05
    ).result()
    resized = _steady(batch, other)
    assert resized.current_dedicated_nodes == 0
    assert resized.target_dedicated_nodes == 1
    assert [e.code for e in resized.resize_errors] == ["AccountCoreQuotaReached"]


def test_the_pool_quota_refuses_one_more_pool(account: Account):
    batch = account(pool_quota=1)
    batch.create_pool(pool_options(unique("pool")))
    error = raises_batch_error(
        lambda: batch.create_pool(pool_options(unique("pool"))), 409, "PoolQuotaReached"
    )
    assert "Pool quota for the account has been reached." in str(error.message)


# --- the local stack ---------------------------------------------------------------------


@pytest.mark.emulator_only("starts a local stack of its own")
def test_the_local_stack_up_with_no_cores_returns_with_an_empty_pool(
    stacks: Stacks, tmp_path: Path
):
    paths = stack.Paths(tmp_path / "local")
    lines: list[str] = []
    try:
        outputs = stacks.up(paths, progress=lines.append, timeout=30, core_quota=0)
        batch = BatchClient(outputs.batchAccountEndpoint, _credential())
        pool = batch.get_pool(outputs.poolId)
        assert pool.current_dedicated_nodes == 0
        assert [e.code for e in pool.resize_errors] == ["AccountCoreQuotaReached"]
        assert any("AccountCoreQuotaReached" in line for line in lines), lines
        assert '"core": 0' in paths.quotas.read_text()
        lines.clear()
        stacks.up(paths, progress=lines.append, timeout=30, core_quota=0)  # the same: kept
        assert not any("emulator" in line for line in lines), lines
        stacks.up(paths, progress=lines.append, timeout=30)  # none: restarted without
        assert "stopped the Batch emulator, to start it with the quotas asked for" in lines
        assert not paths.quotas.exists()
    finally:
        stacks.down(paths)
