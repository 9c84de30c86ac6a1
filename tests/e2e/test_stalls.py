"""A job that cannot run says why: start tasks that fail on every node, a core quota that
leaves the pool without nodes. `submit` exits 3 within its --stall-timeout with the
cause as its error, and `doctor` reports the pool as FAIL."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from contract.rest import pool_body
from contract.spec import Pool, Spec, StartTask
from tests.e2e.conftest import batch_client, runner


def _stalled_submit(outputs_file: Path, tmp_path: Path) -> dict[str, Any]:
    """A one-input submit that must give up on its stall; its --json error document."""
    (tmp_path / "one.txt").write_text("a few words")
    started = time.monotonic()
    done = runner(
        "submit", "one.txt", "--outputs", str(outputs_file), "--stall-timeout", "2s",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 60
    document: dict[str, Any] = json.loads(done.stdout)
    assert document["error"] in done.stderr  # the same one line
    assert " wait " in document["resume"]  # the job stays: fix the pool, then wait
    return document


@pytest.mark.emulator_only("makes a pool whose start task fails")
def test_start_tasks_failing_on_every_node_end_the_wait_with_their_stderr(
    stack, stack_outputs, job_ids, tmp_path
):
    broken = Pool(
        id=job_ids("broken-start"),  # a pool of its own, on a stack others may share
        autoscale=False,
        fixed_dedicated_nodes=1,
        start_task=StartTask(
            command_line="/bin/sh -c 'echo cannot install the tools >&2; exit 7'",
            max_task_retry_count=0,
        ),
    )
    batch = batch_client(stack_outputs)
    batch.create_pool(pool_body(dataclasses.replace(Spec(), pool=broken)))  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 60
        while [n.state for n in batch.list_nodes(broken.id)] != ["starttaskfailed"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        outputs_file = tmp_path / "outputs.json"
        outputs_file.write_text(json.dumps({**stack_outputs.to_dict(), "poolId": broken.id}))
        error = _stalled_submit(outputs_file, tmp_path)["error"]
        assert f"the start task failed on every node of pool {broken.id} (exit code 7)" in error
        assert "cannot install the tools" in error
        checked = runner("doctor", "--outputs", str(outputs_file), cwd=tmp_path)
        assert checked.returncode == 3
        assert "FAIL nodes: the start task failed on every node" in checked.stdout
    finally:
        batch.begin_delete_pool(broken.id)


@pytest.mark.emulator_only("sets the account's core quota")
def test_a_core_quota_of_zero_ends_the_wait_with_the_resize_error(stacks, tmp_path):
    with stacks.running(tmp_path / "stack", core_quota=0) as paths:
        error = _stalled_submit(paths.outputs, tmp_path)["error"]
        assert error.startswith("pool runner-pool cannot get nodes: AccountCoreQuotaReached")
        checked = runner("doctor", "--outputs", str(paths.outputs), cwd=tmp_path)
        assert checked.returncode == 3
        assert "FAIL pool resize: AccountCoreQuotaReached" in checked.stdout
        assert "quota increase" in checked.stdout
