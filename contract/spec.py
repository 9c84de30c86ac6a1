"""The single description of the stack's storage containers and Batch pool: plain data.

No Pulumi here. The local stack renders this spec for its emulator (``contract.rest``);
the Pulumi program renders the same spec for Azure, so nothing about the pool is
written twice. A ``Pool`` with more task slots per node than Batch allows for its VM size
cannot be made (``task_slots_problem``), so neither rendering can carry one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Containers:
    application: str = "application"
    input: str = "input"
    output: str = "output"


@dataclass(frozen=True)
class Image:
    """Ubuntu 24.04 LTS from the marketplace, with its matching Batch node agent.

    The pair comes from the Batch service's list of supported images (``az batch pool
    supported-images list``, or the SDK's ``list_supported_images``): the image
    canonical/ubuntu-24_04-lts/server is verified with node agent "batch.node.ubuntu 24.04".
    """

    publisher: str = "canonical"
    offer: str = "ubuntu-24_04-lts"
    sku: str = "server"
    version: str = "latest"
    node_agent_sku_id: str = "batch.node.ubuntu 24.04"


START_TASK_COMMAND = (
    '/bin/sh -c \'python3 -c "import sys; sys.exit(sys.version_info < (3, 8))"'
    ' && mkdir -p "$AZ_BATCH_NODE_SHARED_DIR/runner"\''
)
"""Checks the node has the python3 the task program needs and prepares a shared folder.

It needs no root and no package manager, so it succeeds on the Ubuntu 24.04 Batch image
(python3 3.12 is part of it) and on a developer's machine running the local stack.
"""


@dataclass(frozen=True)
class StartTask:
    """The pool's start task; it runs as the pool-scoped auto-user on every node.

    ``elevated`` False (the default) runs it as that auto-user without admin rights, which
    is all ``START_TASK_COMMAND`` needs. Set it True only for a start task that must be
    root, one that installs system packages for instance: the auto-user is then an admin.
    """

    command_line: str = START_TASK_COMMAND
    resource_files: tuple[str, ...] = ()  # blob names in the application container
    elevated: bool = False  # NonAdmin auto-user at pool scope; True makes it Admin
    wait_for_success: bool = True
    max_task_retry_count: int = 1


@dataclass(frozen=True)
class Pool:
    id: str = "runner-pool"
    vm_size: str = "Standard_D2s_v5"
    image: Image = field(default_factory=Image)
    autoscale: bool = True
    max_dedicated_nodes: int = 4
    max_spot_nodes: int = 0
    fixed_dedicated_nodes: int = 1  # used when autoscale is off
    fixed_spot_nodes: int = 0
    task_slots_per_node: int = 2  # at most max_task_slots(vm_size)
    start_task: StartTask = field(default_factory=StartTask)

    def __post_init__(self) -> None:
        """Refuse a pool the Batch service would refuse for its task slots."""
        problem = task_slots_problem(self.vm_size, self.task_slots_per_node)
        if problem is not None:
            raise ValueError(f"task_slots_per_node is {self.task_slots_per_node}, but {problem}")


@dataclass(frozen=True)
class Spec:
    containers: Containers = field(default_factory=Containers)
    pool: Pool = field(default_factory=Pool)


# --- task slots per node ------------------------------------------------------------------

MAX_TASK_SLOTS_PER_NODE = 256
TASK_SLOTS_PER_VCPU = 4
"""Batch runs at most the smaller of 256 and 4 x the VM size's vCPUs tasks at once on a node.

The Batch REST API's ``taskSlotsPerNode``: "The maximum value is the smaller of 4 times the
number of cores of the vmSize of the pool or 256"; the Batch quotas page: "Maximum number of
tasks per compute node: 4 x number of node cores".
"""

_VCPU_SIZES = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # D-series v3 to v6: Dv3, Dsv3, Dv4, Dsv4, Ddv4, Ddsv4, Dav4, Dasv4, Dv5, Dsv5,
        # Ddsv5, Dasv5, Dadsv5, Dlsv5, Dldsv5, Dpsv5, Dsv6, Ddsv6, Dasv6, Dadsv6, Dlsv6, ...
        # (not Dv2, whose size numbers are not vCPUs: Standard_D3_v2 has 4)
        r"Standard_D(?P<vcpus>[1-9]\d*)(?:-(?P<constrained>[1-9]\d*))?[ap]?l?d?s?_v[3-6]",
        # E-series v3 to v6: Ev3, Esv3, Ev4, Esv4, Edsv4, Ev5, Esv5, Edsv5, Easv5, Eadsv5,
        # Ebsv5, Eisv5, Esv6, Edsv6, Easv6, ...
        r"Standard_E(?P<vcpus>[1-9]\d*)(?:-(?P<constrained>[1-9]\d*))?[ap]?i?b?d?s?_v[3-6]",
        # Fsv2, and Fasv6, Falsv6, Famsv6
        r"Standard_F(?P<vcpus>[1-9]\d*)s_v2",
        r"Standard_F(?P<vcpus>[1-9]\d*)a[lm]?s_v6",
        # B-series: Bs (B1ls, B1s, B2s, B1ms, B2ms, ... B20ms) and Bsv2, Basv2, Bpsv2
        r"Standard_B(?P<vcpus>[1-9]\d*)[ap]?[lmt]?s(?:_v2)?",
    )
)


def vcpus(vm_size: str) -> int | None:
    """The number of vCPUs of a VM size we know, or None for a size we do not.

    Azure's VM size names read ``Standard_<family><vCPUs>[-<constrained vCPUs>]<features>
    _v<version>`` ("Azure virtual machine sizes naming conventions"): in the families matched
    here, the number after the family letter is the vCPU count (Standard_D2s_v5 has 2,
    Standard_F16s_v2 16), and a constrained-vCPU size has the count after its dash
    (Standard_E8-4s_v5 has 4). Older and specialised families do not all follow that rule
    (A-series v1, Dv2, M-series, the NC and ND GPU sizes...): they are not matched, and for
    them only the 256 bound is checked here; the service checks the rest.
    """
    for pattern in _VCPU_SIZES:
        match = pattern.fullmatch(vm_size)
        if match is not None:
            return int(match.groupdict().get("constrained") or match.group("vcpus"))
    return None


def max_task_slots(vm_size: str) -> int:
    """The most task slots Batch allows per node of this size: min(256, 4 x vCPUs).

    256 for a size ``vcpus`` does not know.
    """
    count = vcpus(vm_size)
    if count is None:
        return MAX_TASK_SLOTS_PER_NODE
    return min(MAX_TASK_SLOTS_PER_NODE, TASK_SLOTS_PER_VCPU * count)


def task_slots_problem(vm_size: str, slots: int) -> str | None:
    """Why Batch would refuse ``slots`` task slots per node of ``vm_size``; None if it would not."""
    if slots < 1:
        return "Batch needs at least 1"
    count = vcpus(vm_size)
    if count is not None and slots > TASK_SLOTS_PER_VCPU * count:
        plural = "" if count == 1 else "s"
        return (
            f"Batch allows at most {TASK_SLOTS_PER_VCPU} x the vCPUs of {vm_size} "
            f"({count} vCPU{plural}): {TASK_SLOTS_PER_VCPU * count}"
        )
    if slots > MAX_TASK_SLOTS_PER_NODE:
        return f"Batch allows at most {MAX_TASK_SLOTS_PER_NODE}"
    return None


# --- autoscale -----------------------------------------------------------------------------

AUTOSCALE_EVALUATION_MINUTES = 5
AUTOSCALE_EVALUATION_INTERVAL = f"PT{AUTOSCALE_EVALUATION_MINUTES}M"
"""How often the service evaluates the formula: the shortest interval it accepts."""

AUTOSCALE_MIN_SAMPLE_PERCENT = 70
"""Below this share of samples in the look-back window, the formula uses the last one only."""


def autoscale_formula(pool: Pool) -> str:
    """Grow with the pending tasks up to the bounds, and return to 0 nodes when idle.

    ``$PendingTasks`` counts active and running tasks, so nodes stay while tasks run. The
    service samples it every 30 seconds, but samples can be missing or late, so the formula
    guards as the Batch autoscale documentation recommends: when fewer than 70% of the
    samples of the look-back window are there (``GetSamplePercent``), it uses the last
    sample only (``max(0, $PendingTasks.GetSample(1))``); otherwise the largest of the last
    sample and every sample of the window. The window is one evaluation interval long and
    its largest sample is taken (the documentation averages 15 minutes), so tasks submitted
    and started between two evaluations are still seen, and the pool returns to 0 nodes one
    interval after the last task. ``ceil`` is one of the formula functions. Dedicated nodes
    come first and spot nodes, when allowed, take what exceeds their bound.
    ``taskcompletion`` lets a running task finish before its node is removed. The local
    stack evaluates it with ``up --autoscale`` (every 5 s standing for 5 minutes); without,
    an autoscale pool gets a fixed local node count.
    """
    window = f"TimeInterval_Minute * {AUTOSCALE_EVALUATION_MINUTES}"
    last = "$PendingTasks.GetSample(1)"
    lines = [
        f"$samples = $PendingTasks.GetSamplePercent({window});",
        f"$pending = $samples < {AUTOSCALE_MIN_SAMPLE_PERCENT} ? max(0, {last}) : "
        f"max(0, {last}, max($PendingTasks.GetSample({window})));",
        f"$needed = ceil($pending / {pool.task_slots_per_node});",
        f"$TargetDedicatedNodes = min({pool.max_dedicated_nodes}, $needed);",
    ]
    if pool.max_spot_nodes:
        lines.append(
            f"$TargetLowPriorityNodes = min({pool.max_spot_nodes}, "
            "max(0, $needed - $TargetDedicatedNodes));"
        )
    else:
        lines.append("$TargetLowPriorityNodes = 0;")
    lines.append("$NodeDeallocationOption = taskcompletion;")
    return "\n".join(lines)


def default_spec() -> Spec:
    return Spec()
