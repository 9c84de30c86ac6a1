"""Losing nodes as the service does: remove nodes, resize, stop a resize, reboot, reimage;
and taking a node aside: disable and enable scheduling on it.

Each operation puts nodes into a changing state (leavingpool, rebooting, reimaging) and
deals with the tasks running on them by the request's nodeDeallocationOption:

    requeue          kill them now; back to active, requeueCount + 1, no retry used
    terminate        kill them now; completed as failed (TaskEnded), never run again
    taskcompletion   let them finish; the node takes no new task meanwhile
    retaineddata     as taskcompletion: a node's files go with it here, so there is no
                     retention time to wait for

A changing node that runs nothing any more is the scheduler's: it takes a moment, as a VM
would, and reports back through ``Scheduling.node_changed``. A leaving node is then gone
(its pool steady again once no node is left leaving); a rebooted or reimaged one starts
again and reruns the pool's start task. When the change gets under way, the jobs'
preparation and release tasks on the node learn of it (``Lifecycle.node_changing``).
Removing nodes lowers the pool's targets, so the pool is at its target size afterwards,
as resize leaves it at the new one.

Disabling scheduling deals with the node's running tasks by its own option (requeue,
terminate, taskcompletion, as above) and starts no new task there; the node is offline
instead of idle until scheduling is enabled again, and stays so across a reboot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from emulator import errors, failures, validate
from emulator.records import Node, Pool, start_task_run
from emulator.state.lifecycle import Lifecycle
from emulator.state.pools import new_node
from emulator.state.quotas import Allocator
from emulator.state.tables import Tables

CHANGING = ("leavingpool", "rebooting", "reimaging")
RESTARTABLE = ("idle", "running", "starttaskfailed", "offline")
"""States a node can be rebooted or reimaged from: the documented idle and running,
starttaskfailed, which a reboot is the usual cure for, and offline (idle with scheduling
disabled, as a node is taken aside to be looked at)."""

_BUSY = {
    "starting": errors.NodeBeingStarted,
    "waitingforstarttask": errors.NodeBeingStarted,
    "rebooting": errors.NodeBeingRebooted,
    "reimaging": errors.NodeBeingReimaged,
}
_LOST_AS = {
    "leavingpool": "removed from the pool",
    "rebooting": "rebooted",
    "reimaging": "reimaged",
}
TARGETS = {True: "targetDedicatedNodes", False: "targetLowPriorityNodes"}
"""A pool's target property for each kind of node (dedicated: True, spot: False)."""


class Nodes:
    def __init__(
        self,
        tables: Tables,
        lifecycle: Lifecycle,
        wake: Callable[[], None],
        allocator: Allocator,
    ) -> None:
        self.tables = tables
        self.lifecycle = lifecycle
        self.wake = wake
        self.allocator = allocator

    def remove(self, pool_id: str, body: Any) -> Pool:
        """removenodes: the nodes leave and the pool's targets drop by as many."""
        pool = self.tables.pool(pool_id)
        node_ids, option = validate.node_removal(body)
        if pool.allocation_state != "steady":
            raise errors.PoolBeingResized()
        nodes = self.tables.nodes.get(pool_id, {})
        missing = [node_id for node_id in node_ids if node_id not in nodes]
        if missing:
            raise errors.NodeNotFound(values=[("NodeId", missing[0])])
        now = self.tables.clock()
        with self.tables.store.transaction():
            for node_id in node_ids:
                node = nodes[node_id]
                if not pool.spec["enableAutoScale"]:
                    target = TARGETS[node.dedicated]
                    pool.spec[target] = max(0, pool.spec.get(target, 0) - 1)
                self._change(node, "leavingpool", option, now)
            pool.allocate("resizing", now)
            self.tables.touch(pool, now)
            self.tables.save(pool)
        self.wake()
        return pool

    def resize(self, pool_id: str, body: Any) -> Pool:
        """resize: to the body's targets, by ``resize_to``."""
        pool = self.tables.pool(pool_id)
        dedicated, spot, option = validate.pool_resize(body)
        if pool.spec["enableAutoScale"]:
            raise errors.OperationNotValidOnPool(
                values=[("Reason", "The pool is configured for automatic scaling.")]
            )
        if pool.allocation_state != "steady":
            raise errors.PoolBeingResized()
        with self.tables.store.transaction():
            self.resize_to(pool, {True: dedicated, False: spot}, option, self.tables.clock())
            self.tables.save(pool)
        self.wake()
        return pool

    def resize_to(
        self, pool: Pool, targets: Mapping[bool, int | None], option: str, now: datetime
    ) -> None:
        """Towards the targets (dedicated: True, spot: False; None leaves one as it is):
        new nodes start at once, as many as the core quota lets in (the rest are the
        pool's resizeErrors), and the surplus leave by ``option``, the least busy first.
        Resize and autoscale both come here; the caller saves the pool."""
        nodes = self.tables.nodes.setdefault(pool.id, {})
        wanted = {kind: target for kind, target in targets.items() if target is not None}
        staying = {
            kind: [n for n in nodes.values() if n.dedicated == kind and n.state != "leavingpool"]
            for kind in wanted
        }
        missing = {kind: max(0, wanted[kind] - len(staying[kind])) for kind in wanted}
        allocation = self.allocator.allocate(
            pool.spec["vmSize"], missing.get(True, 0), missing.get(False, 0)
        )
        pool.resize_errors = allocation.errors
        granted = {True: allocation.dedicated, False: allocation.low_priority}
        for kind, target in wanted.items():
            pool.spec[TARGETS[kind]] = target
            for _ in range(granted[kind]):
                node = new_node(pool, len(nodes), dedicated=kind, now=now)
                nodes[node.id] = node
                self.tables.save(node)
                if kind:
                    pool.current_dedicated += 1
                else:
                    pool.current_low_priority += 1
            surplus = sorted(staying[kind], key=lambda n: (len(n.running), n.state != "idle"))
            for node in surplus[: max(0, len(staying[kind]) - target)]:
                self._change(node, "leavingpool", option, now)
        leaving = any(node.state == "leavingpool" for node in nodes.values())
        pool.allocate("resizing" if leaving else "steady", now)
        self.tables.touch(pool, now)

    def stop_resize(self, pool_id: str) -> Pool:
        """stopresize: nodes still waiting for their tasks stay; those already going go.

        The pool is ``stopping`` until they are gone, then steady; its targets stay as
        the resize set them, as the service leaves them.
        """
        pool = self.tables.pool(pool_id)
        if pool.allocation_state != "resizing":
            return pool
        now = self.tables.clock()
        with self.tables.store.transaction():
            going = False
            for node in self.tables.nodes.get(pool_id, {}).values():
                if node.state != "leavingpool":
                    continue
                if node.change_launched:
                    going = True
                    continue
                node.transition("running" if node.running else node.resting_state, now)
                node.deallocation = None
                self.tables.save(node)
            pool.allocate("stopping" if going else "steady", now)
            self.tables.touch(pool, now)
            self.tables.save(pool)
        self.wake()
        return pool

    def reboot(self, pool_id: str, node_id: str, body: Any) -> Node:
        # The SDK's model names it node_reboot_kind but sends nodeRebootOption, as does
        # every documented version; nodeRebootKind is accepted too.
        option = validate.node_restart(body, "nodeRebootOption", "nodeRebootKind")
        return self._restart(pool_id, node_id, "rebooting", option)

    def reimage(self, pool_id: str, node_id: str, body: Any) -> Node:
        option = validate.node_restart(body, "nodeReimageOption")
        return self._restart(pool_id, node_id, "reimaging", option)

    def _restart(self, pool_id: str, node_id: str, state: str, option: str) -> Node:
        node = self.tables.node(pool_id, node_id)
        if node.state not in RESTARTABLE:
            error = _BUSY.get(node.state, errors.OperationNotValidOnNode)
            raise error(values=[("NodeState", node.state)])
        with self.tables.store.transaction():
            self._change(node, state, option, self.tables.clock())
        self.wake()
        return node

    def _change(self, node: Node, state: str, option: str, now: datetime) -> None:
        """Put a node into a changing state and deal with its running tasks by option."""
        self.lifecycle.kill(start_task_run(node.pool_id, node.id))  # if it still runs
        node.transition(state, now)
        node.deallocation = option
        node.change_launched = False
        failure = failures.TASK_ENDED_NODE_LOST(
            f"The task was terminated because its compute node was {_LOST_AS[state]}."
        )
        self.lifecycle.end_node_tasks(node, option, failure, now)
        self.tables.save(node)

    # --- scheduling: disablescheduling, enablescheduling ---------------------------------

    def disable_scheduling(self, pool_id: str, node_id: str, body: Any) -> Node:
        """No new task starts on the node; its running ones go by the option (requeue,
        terminate: ended as by a user's request, taskcompletion: left to finish). It is
        offline once it runs none (``Node.resting_state``)."""
        option = validate.node_disable_scheduling(body)
        node = self.tables.node(pool_id, node_id)
        if node.scheduling_state == "disabled":
            raise errors.NodeAlreadyInTargetSchedulingState()
        now = self.tables.clock()
        with self.tables.store.transaction():
            node.scheduling_state = "disabled"
            if node.state == "idle":
                node.transition("offline", now)
            self.lifecycle.end_node_tasks(node, option, failures.TASK_ENDED_BY_REQUEST, now)
            self.tables.save(node)
        self.wake()
        return node

    def enable_scheduling(self, pool_id: str, node_id: str) -> Node:
        """Tasks are scheduled on the node again (an offline node is idle)."""
        node = self.tables.node(pool_id, node_id)
        if node.scheduling_state == "enabled":
            raise errors.NodeAlreadyInTargetSchedulingState()
        with self.tables.store.transaction():
            node.scheduling_state = "enabled"
            if node.state == "offline":
                node.transition("idle", self.tables.clock())
            self.tables.save(node)
        self.wake()
        return node
