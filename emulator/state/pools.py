"""Pools and their nodes: create, get, list, delete, and the account-wide pool listings
the API files under Pools: node counts, usage metrics and supported images.

Usage metrics are what the emulator can truthfully say of its own nodes, bucketed as the
service buckets them (the spec's Pools_ListPoolUsageMetrics example: half-hour intervals
on the half hour, each pool's totalCoreHours in each). Approximate: a node counts from its
allocationTime until now, at the cores its vmSize names (``quotas.vcpus``); nodes that have
left a pool, and deleted pools, are not counted, as the emulator keeps no record of them;
and an interval is listed as soon as it has ended, where the service publishes it some
two hours later (its startTime and endtime must be that old; here they need not be).
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from emulator import errors, validate
from emulator.records import (
    Node,
    Pool,
    PoolNodeCounts,
    PoolUsage,
    SupportedImage,
    start_task_run,
    task_run,
)
from emulator.state.lifecycle import Lifecycle
from emulator.state.quotas import Allocator, vcpus
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

START_TASK_DEFAULTS = {
    "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "nonadmin"}},
    "maxTaskRetryCount": 0,
    "waitForSuccess": True,
}
"""What the service fills in on a start task that omits them: the identity and retry count
as the spec's Pools_GetPool_Basic and Nodes_GetNode examples show them (a non-admin user
unique to the task), waitForSuccess as BatchStartTask documents it (default true)."""

USAGE_INTERVAL = timedelta(minutes=30)
"""The service's aggregation interval for pool usage metrics (Pools_ListPoolUsageMetrics)."""

SUPPORTED_IMAGES = (
    SupportedImage("batch.node.ubuntu 24.04", "canonical", "ubuntu-24_04-lts", "server"),
    SupportedImage(
        "batch.node.ubuntu 22.04", "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts"
    ),
    SupportedImage(
        "batch.node.ubuntu 22.04", "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"
    ),
    SupportedImage("batch.node.ubuntu 22.04", "microsoft-dsvm", "ubuntu-hpc", "2204"),
    SupportedImage("batch.node.ubuntu 22.04", "microsoft-dsvm", "ubuntu-2204", "2204-gen2"),
    SupportedImage("batch.node.el 8", "almalinux", "almalinux-x86_64", "8-gen2"),
    SupportedImage("batch.node.el 9", "almalinux", "almalinux-x86_64", "9-gen2"),
    SupportedImage("batch.node.el 8", "redhat", "rhel", "8-lvm-gen2"),
    SupportedImage("batch.node.el 9", "redhat", "rhel", "9-lvm-gen2"),
    SupportedImage("batch.node.debian 11", "debian", "debian-11", "11-gen2"),
    SupportedImage("batch.node.debian 12", "debian", "debian-12", "12-gen2"),
)
"""The Linux images people use with Batch and the agent each takes: a curated subset of
the service's list, which has no public copy to take it from. Ubuntu 24.04's sku is
``server`` (Canonical's offer for 24.04 has no ``24_04-lts`` sku; the pool in
``contract/spec.py`` uses ``server``); AlmaLinux and RHEL take the ``el`` agents (public
pool definitions pair almalinux-x86_64 9-gen2 with ``batch.node.el 9``), Debian the
``debian`` ones. No capabilities or end-of-life dates are claimed: the emulator cannot
vouch for them (the spec's Pools_ListSupportedImages example shows ``capabilities`` and
``batchSupportEndOfLife`` where the service knows them)."""


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
        if spec.get("startTask"):
            spec["startTask"] = {**copy.deepcopy(START_TASK_DEFAULTS), **spec["startTask"]}
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

    def update(self, pool_id: str, body: Any, replace: bool = False) -> Pool:
        """PATCH (what is given replaces what was) or updateproperties (``replace``: a
        start task not given is removed, metadata replaced). Nodes run the new start task
        when they next join, reboot or are reimaged, as on the service."""
        pool = self.tables.pool(pool_id)
        changes = validate.pool_update(body, replace)
        now = self.tables.clock()
        if replace:
            pool.spec.pop("startTask", None)
            pool.spec.pop("targetNodeCommunicationMode", None)
        for name in ("applicationPackageReferences", "certificateReferences"):
            changes.pop(name, None)
        if changes.get("startTask") is not None:
            start_task = {**copy.deepcopy(START_TASK_DEFAULTS), **changes["startTask"]}
            changes["startTask"] = start_task
        pool.spec.update(changes)
        self.tables.touch(pool, now)
        self.tables.save(pool)
        return pool

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
                self.lifecycle.node_changing(node, "leavingpool", now)  # jobs' runs there end
                self.tables.forget(node)
            self.tables.forget(pool)
        self.tables.remove_pool(pool_id)
        self.wake()

    def list_nodes(self, pool_id: str) -> list[Node]:
        self.tables.pool(pool_id)
        nodes = list(self.tables.nodes.get(pool_id, {}).values())
        for node in nodes:
            self._catch_up(node)
        return nodes

    def get_node(self, pool_id: str, node_id: str) -> Node:
        node = self.tables.node(pool_id, node_id)
        self._catch_up(node)
        return node

    def _catch_up(self, node: Node) -> None:
        """Bring the node's recentTasks up to date with the tasks still placed on it (they
        move on after the node noted them: running, completed, terminated)."""
        for entry in node.recent_tasks:
            task = self.tables.tasks.get(entry.job_id, {}).get(entry.task_id)
            if task is not None and task.node is not None and task.node.node_id == node.id:
                entry.state, entry.run = task.state, task.run

    def node_counts(self) -> list[PoolNodeCounts]:
        """listpoolnodecounts: each pool's nodes by state, dedicated and Spot apart."""
        counts = []
        for pool in self.tables.pools.values():
            nodes = self.tables.nodes.get(pool.id, {}).values()
            counts.append(
                PoolNodeCounts(
                    pool_id=pool.id,
                    dedicated=dict(Counter(n.state for n in nodes if n.dedicated)),
                    low_priority=dict(Counter(n.state for n in nodes if not n.dedicated)),
                )
            )
        return counts

    def usage_metrics(self, start: datetime | None, end: datetime | None) -> list[PoolUsage]:
        """poolusagemetrics: per interval, oldest first, each pool that existed in it.

        Without a start or an end, that bound is the last interval that has ended's, as
        on the service; intervals overlapping [start, end] are listed (see the module's
        docstring for what is approximate)."""
        now = self.tables.clock()
        last_end = _interval_start(now)
        first = _interval_start(start) if start is not None else last_end - USAGE_INTERVAL
        stop = min(last_end, _interval_end(end)) if end is not None else last_end
        pools = sorted(self.tables.pools.values(), key=lambda pool: pool.created)
        if not pools:
            return []
        first = max(first, _interval_start(pools[0].created))  # nothing before the oldest
        usage: list[PoolUsage] = []
        while first < stop:
            interval_end = first + USAGE_INTERVAL
            for pool in pools:
                if pool.created < interval_end:
                    usage.append(self._usage(pool, first, interval_end, now))
            first = interval_end
        return usage

    def _usage(self, pool: Pool, start: datetime, end: datetime, now: datetime) -> PoolUsage:
        seconds = 0.0
        for node in self.tables.nodes.get(pool.id, {}).values():
            overlap = min(end, now) - max(start, node.allocated)
            seconds += max(0.0, overlap.total_seconds()) * vcpus(node.vm_size)
        return PoolUsage(
            pool_id=pool.id,
            vm_size=pool.spec["vmSize"],
            start=start,
            end=end,
            core_hours=round(seconds / 3600, 6),
        )

    @staticmethod
    def supported_images() -> list[SupportedImage]:
        return list(SUPPORTED_IMAGES)


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _interval_start(moment: datetime) -> datetime:
    """The start of the usage interval a moment falls in."""
    return moment - (moment - _EPOCH) % USAGE_INTERVAL


def _interval_end(moment: datetime) -> datetime:
    """The end of the usage interval a moment falls in (the moment itself on a boundary)."""
    start = _interval_start(moment)
    return start if start == moment else start + USAGE_INTERVAL


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
        start_task_spec=pool.start_task,
    )
