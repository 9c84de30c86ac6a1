"""The pool spec and its rendering for the local stack's emulator."""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from infra import spec
from runner.local import pool_body


def test_the_local_rendering_carries_the_spec():
    pool = spec.default_spec().pool
    body = pool_body(spec.default_spec())
    assert body["id"] == pool.id
    assert body["vmSize"] == pool.vm_size
    assert body["taskSlotsPerNode"] == pool.task_slots_per_node
    assert body["virtualMachineConfiguration"]["nodeAgentSKUId"] == "batch.node.ubuntu 24.04"
    start = body["startTask"]
    assert start["commandLine"] == pool.start_task.command_line
    assert start["waitForSuccess"] is True
    assert start["userIdentity"]["autoUser"] == {"scope": "pool", "elevationLevel": "admin"}
    assert body["enableAutoScale"] is True
    assert body["autoScaleFormula"] == spec.autoscale_formula(pool)
    assert "targetDedicatedNodes" not in body


def test_a_fixed_pool_has_targets_and_no_formula():
    pool = dataclasses.replace(spec.Pool(), autoscale=False, fixed_dedicated_nodes=3)
    body = pool_body(spec.Spec(pool=pool))
    assert (body["targetDedicatedNodes"], body["targetLowPriorityNodes"]) == (3, 0)
    assert "autoScaleFormula" not in body


def test_the_start_task_succeeds_without_root():
    """On a developer's machine the start task runs as that user: no root, no apt-get."""
    user = 65534 if os.geteuid() == 0 else None  # as root, prove it as 'nobody'
    with tempfile.TemporaryDirectory() as name:
        node = Path(name)
        node.chmod(0o777)
        result = subprocess.run(
            shlex.split(spec.START_TASK_COMMAND),
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "AZ_BATCH_NODE_SHARED_DIR": str(node)},
            cwd=node,
            user=user,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert (node / "runner").is_dir()
