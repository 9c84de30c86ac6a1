"""`local up` on a stack that runs: the options given are applied, one left out is back
to its default, and the change is said in one line (the runner's `local up` hands its
command line to this program)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from contract import local as local_keys
from contract.outputs import StackOutputs
from local_stack import stack
from tests.emulator.conftest import wait_for
from tests.stacks import Stacks

pytestmark = pytest.mark.e2e  # starts a local stack of its own


def local_stack(*arguments: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_stack", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "RUNNER_LOCAL_DIR": str(home)},
        timeout=180,
    )


@pytest.mark.emulator_only("sets the account's core quota")
def test_a_core_quota_is_applied_to_a_running_stack_and_lifted_without_it(
    stacks: Stacks, tmp_path: Path
):
    home = tmp_path / "local"
    paths = stack.Paths(home)

    def up(*options: str) -> subprocess.CompletedProcess[str]:
        done = stacks.counted(paths, lambda: local_stack("up", *options, home=home))
        assert done.returncode == 0, done.stderr
        return done

    try:
        first = up("--core-quota", "0")  # a new stack, with no cores
        assert "Quotas:  cores 0, pools unlimited" in first.stdout
        assert "changing" not in first.stderr  # nothing ran before: nothing changed
        outputs = StackOutputs.read(paths.outputs)
        batch = BatchClient(
            outputs.batchAccountEndpoint,
            AzureNamedKeyCredential(local_keys.BATCH_ACCOUNT, local_keys.BATCH_KEY),
        )
        pool = batch.get_pool(outputs.poolId)
        assert pool.current_dedicated_nodes == 0
        assert [error.code for error in pool.resize_errors or []] == ["AccountCoreQuotaReached"]

        lifted = up()  # without it: back to no quota, and the pool gets its nodes
        assert lifted.stderr.splitlines()[0] == (
            "changing the local stack: core quota from 0 to unlimited"
        )
        assert "Quotas:" not in lifted.stdout
        pool = batch.get_pool(outputs.poolId)
        assert not pool.resize_errors
        nodes = list(batch.list_nodes(outputs.poolId))
        assert len(nodes) == pool.current_dedicated_nodes > 0  # the local node count
        assert {node.state for node in nodes} == {"idle"}
        shown = local_stack("status", home=home)
        assert "quotas    unlimited" in shown.stdout

        applied = up("--core-quota", "0")  # on the running stack: applied
        assert applied.stderr.splitlines()[0] == (
            "changing the local stack: core quota from unlimited to 0"
        )
        pool = batch.get_pool(outputs.poolId)
        assert [error.code for error in pool.resize_errors or []] == ["AccountCoreQuotaReached"]
        wait_for(lambda: list(batch.list_nodes(outputs.poolId)) == [])
        shown = local_stack("status", home=home)
        assert shown.returncode == 0, shown.stderr
        assert "quotas    cores 0, pools unlimited" in shown.stdout
        assert "autoscale off (the pool keeps fixed nodes)" in shown.stdout
        assert StackOutputs.read(paths.outputs) == outputs  # the same endpoints throughout
    finally:
        stacks.down(paths)
