"""Pools and their nodes: create, get, list, delete (Batch's pool and node operations)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from emulator import errors, validate
from emulator.records import Node, Pool, start_task_run, task_run
from emulator.state.lifecycle import Lifecycle
from emulator.state.quotas import Allocator
from emulator.state.tables import Tables

if TYPE_CHECKING:
    from emulator.state.autoscale import Autoscale

POOL_DEFAULTS = {
    "taskSlotsPerNode": 1,
    "taskSchedulingPolicy": {"nodeFillType": "spread"},
    "resizeTimeout": "PT15M",
    "enableAutoScale": False,
    "enableInterNodeCommunication": False,
}


class Pools:
    def __init__(
        self,
        tables: Tables,
        lifecycle: Lifecycle,
        wake: Callable[[], None],
        account_url: str,
        autoscale_nodes: int,
        allocator: Allocator,
        autoscale: Autoscale,
    ) -> None:
        self.tables = tables
        self.lifecycle = lifecycle
        self.wake = wake
        self.account_url = account_url
        self.autoscale_nodes = autoscale_nodes
        self.allocator = allocator
        self.autoscale = autoscale

    def create(self, body: Any) -> Pool:
        spec = {**POOL_DEFAULTS, **validate.pool(body)}
        pool_id = spec["id"]
        if self.tables.has_pool(pool_id):
            raise errors.PoolExists()
        if self.allocator.pool_quota_reached():
            raise errors.PoolQuotaReached()
        if spec["enableAutoScale"]:
            self.autoscale.check(spec["autoScaleFormula"])
            spec.setdefault("autoScaleEvaluationInterval", validate.AUTOSCALE_INTERVAL_DEFAULT)
            # Scaling by formula: from no nodes, the evaluation below adds them.
            dedicated, spot = (0, 0) if self.autoscale.scales else (self.autoscale_nodes, 0)
        else:
            dedicated = spec.setdefault("targetDedicatedNodes", 0)
            spot = spec.setdefault("targetLowPriorityNodes", 0)
        allocation = self.allocator.allocate(spec["vmSize"], dedicated, spot)
        dedicated, spot = allocation.dedicated, allocation.low_priority
        now = self.tables.clock()
        pool = Pool(
            id=pool_id,
            url=f"{self.account_url}/pools/{pool_id}",
            state="active",
            state_since=now,
            spec=spec,
            created=now,
            current_dedicated=dedicated,
            current_low_priority=spot,
            resize_errors=allocation.errors,
        )
        self.tables.touch(pool, now)
        nodes = [
            new_node(pool, i, dedicated=i < dedicated, now=now) for i in range(dedicated + spot)
        ]
        with self.tables.store.transaction():
            self.tables.add_pool(pool, nodes)
            self.tables.save(pool)
            for node in nodes:
                self.tables.save(node)
            if spec["enableAutoScale"]:
                self.autoscale.created(pool)
        self.wake()
        return pool

    def get(self, pool_id: str) -> Pool:
        return self.tables.pool(pool_id)

    def all(self) -> list[Pool]:
        return list(self.tables.pools.values())

    def delete(self, pool_id: str) -> None:
        """Gone at once; its running tasks go back to their jobs' queues, as on a lost node."""
        pool = self.tables.pool(pool_id)
        now = self.tables.clock()
        nodes = list(self.tables.nodes.get(pool_id, {}).values())
        for node in nodes:
            for job_id, task_id in node.running:
                self.lifecycle.kill(task_run(job_id, task_id))
            if node.state in ("waitingforstarttask", "starting"):
                self.lifecycle.kill(start_task_run(pool_id, node.id))
        with self.tables.store.transaction():
            for node in nodes:
                for job_id, task_id in list(node.running):
                    task = self.tables.tasks.get(job_id, {}).get(task_id)
                    if task is not None:
                        self.lifecycle.requeue(task, now)
                self.tables.forget(node)
            self.tables.forget(pool)
        self.tables.remove_pool(pool_id)
        self.wake()

    def list_nodes(self, pool_id: str) -> list[Node]:
        self.tables.pool(pool_id)
        return list(self.tables.nodes.get(pool_id, {}).values())

    def get_node(self, pool_id: str, node_id: str) -> Node:
        return self.tables.node(pool_id, node_id)


def new_node(pool: Pool, index: int, dedicated: bool, now: datetime) -> Node:
    """A node allocated to the pool now; it starts (and runs the start task) next."""
    node_id = f"tvmps_{uuid.uuid4().hex[:20]}{index:04d}_{'d' if dedicated else 'p'}"
    return Node(
        id=node_id,
        url=f"{pool.url}/nodes/{node_id}",
        state="starting",
        state_since=now,
        pool_id=pool.id,
        dedicated=dedicated,
        vm_size=pool.spec["vmSize"],
        image_reference=pool.spec["virtualMachineConfiguration"]["imageReference"],
        allocated=now,
    )
