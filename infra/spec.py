"""The single description of the stack's storage containers and Batch pool: plain data.

No Pulumi here. The local stack renders this spec for its emulator (``runner.local``);
the Pulumi program renders the same spec for Azure, so nothing about the pool is
written twice.
"""

from __future__ import annotations

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
    command_line: str = START_TASK_COMMAND
    resource_files: tuple[str, ...] = ()  # blob names in the application container
    elevated: bool = True  # admin at pool scope on Azure; the command needs no root
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
    task_slots_per_node: int = 2
    start_task: StartTask = field(default_factory=StartTask)


@dataclass(frozen=True)
class Spec:
    containers: Containers = field(default_factory=Containers)
    pool: Pool = field(default_factory=Pool)


AUTOSCALE_EVALUATION_INTERVAL = "PT5M"
"""How often the service evaluates the formula: the shortest interval it accepts."""


def autoscale_formula(pool: Pool) -> str:
    """Grow with the pending tasks up to the bounds, and return to 0 nodes when idle.

    ``$PendingTasks`` counts active and running tasks, so nodes stay while tasks run;
    ``max(0, $PendingTasks.GetSample(1))`` (the last sample) is the form the service's
    autoscale documentation uses; ``ceil`` is one of its formula functions. Dedicated
    nodes come first and spot nodes, when allowed, take what exceeds their bound.
    ``taskcompletion`` lets a running task finish before its node is removed. The local
    stack does not evaluate formulas: an autoscale pool gets a fixed local node count.
    """
    lines = [
        "$pending = max(0, $PendingTasks.GetSample(1));",
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
