"""The pool spec and its rendering for the local stack's emulator."""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import pytest

from contract import spec
from contract.rest import pool_body


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
    assert start["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
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


def test_the_start_task_runs_as_the_non_admin_pool_auto_user_by_default():
    assert spec.StartTask().elevated is False


@pytest.mark.parametrize(
    ("vm_size", "count"),
    [
        ("Standard_D2s_v5", 2),
        ("Standard_D4ds_v5", 4),
        ("Standard_D2as_v5", 2),
        ("Standard_D8ads_v5", 8),
        ("Standard_D2ls_v5", 2),
        ("Standard_D4_v3", 4),
        ("Standard_D16s_v3", 16),
        ("Standard_D8d_v4", 8),
        ("Standard_D2s_v6", 2),
        ("Standard_D4lds_v6", 4),
        ("Standard_D96as_v6", 96),
        ("Standard_E8s_v5", 8),
        ("Standard_E2_v3", 2),
        ("Standard_E16ds_v4", 16),
        ("Standard_E4as_v5", 4),
        ("Standard_E32s_v6", 32),
        ("Standard_E8-4s_v5", 4),  # constrained vCPUs: the count after the dash
        ("Standard_E16-8ds_v5", 8),
        ("Standard_F16s_v2", 16),
        ("Standard_F2as_v6", 2),
        ("Standard_B2ms", 2),
        ("Standard_B1ls", 1),
        ("Standard_B4s_v2", 4),
        ("standard_d2s_v3", 2),  # Azure's size names are case-insensitive
        # Sizes whose number is not (or not surely) the vCPU count, and junk: unknown.
        ("Standard_D3_v2", None),  # 4 vCPUs
        ("Standard_DS2_v2", None),
        ("Standard_A4", None),
        ("Standard_M128ms", None),
        ("Standard_NC24ads_A100_v4", None),
        ("Standard_ND96asr_v4", None),
        ("Standard_D0s_v5", None),
        ("Standard_D2s_v5_extra", None),
        ("D2s_v5", None),
        ("big", None),
        ("", None),
    ],
)
def test_vcpus_of_the_vm_sizes_it_knows(vm_size: str, count: int | None):
    assert spec.vcpus(vm_size) == count


@pytest.mark.parametrize(
    ("vm_size", "limit"),
    [
        ("Standard_D2s_v5", 8),
        ("Standard_B1ls", 4),
        ("Standard_D16s_v5", 64),
        ("Standard_D64s_v5", 256),
        ("Standard_D96s_v5", 256),  # 4 x 96 = 384: the 256 bound decides
        ("Standard_NC24ads_A100_v4", 256),
    ],
)
def test_max_task_slots_is_the_smaller_of_256_and_4_x_vcpus(vm_size: str, limit: int):
    assert spec.max_task_slots(vm_size) == limit
    assert spec.task_slots_problem(vm_size, limit) is None
    assert spec.task_slots_problem(vm_size, limit + 1) is not None


def test_a_pool_batch_would_refuse_for_its_slots_cannot_be_made():
    with pytest.raises(ValueError, match="Standard_D2s_v5") as refused:
        dataclasses.replace(spec.Pool(), task_slots_per_node=9)
    assert str(refused.value) == (
        "task_slots_per_node is 9, but Batch allows at most 4 x the vCPUs of Standard_D2s_v5"
        " (2 vCPUs): 8"
    )
    with pytest.raises(ValueError, match="at most 256"):
        spec.Pool(vm_size="Standard_NC24ads_A100_v4", task_slots_per_node=257)
    with pytest.raises(ValueError, match="at least 1"):
        spec.Pool(task_slots_per_node=0)
    assert spec.Pool(vm_size="Standard_D16s_v5", task_slots_per_node=64).task_slots_per_node == 64


def test_the_formula_looks_back_one_evaluation_interval():
    assert spec.AUTOSCALE_EVALUATION_INTERVAL == "PT5M"
    formula = spec.autoscale_formula(spec.Pool())
    assert formula.count("TimeInterval_Minute * 5") == 2
    assert formula.startswith(
        "$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 5);\n"
        "$pending = $samples < 70 ? max(0, $PendingTasks.GetSample(1)) : "
    )
    spot = spec.autoscale_formula(dataclasses.replace(spec.Pool(), max_spot_nodes=8))
    assert spot.splitlines()[:3] == formula.splitlines()[:3]
    assert spot.splitlines()[4] == (
        "$TargetLowPriorityNodes = min(8, max(0, $needed - $TargetDedicatedNodes));"
    )
