"""Pools, nodes, jobs and tasks, and every state transition between them.

No HTTP and no processes here. The routes call the operations, named after the Batch
API's, on ``pools``, ``jobs`` and ``tasks``; the scheduler asks ``scheduling`` what to
run and reports back through it. Two ports come in through the constructor: ``kill``
ends a run (the executor's), ``wake`` tells the scheduler that something changed.

    tables      the records in memory, written through to the store
    lifecycle   transitions that span entities (slots, requeues, ending jobs)
    dependencies, exits   tasks waiting for others; what a completion tells them and the job
    preparation  jobs' preparation and release tasks on each node, and what they hold up
    pools       pools and nodes          jobs     jobs and task counts
    nodes       losing nodes: remove, resize, reboot, reimage
    autoscale   evaluating pools' formulas on their task counts, and scaling to them
    quotas      the account's pool and core quotas, and the nodes they let in
    tasks       tasks                    scheduling, recovery: the scheduler's side
    schedules   job schedules, and the jobs they create on time
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta

from emulator.state.autoscale import Autoscale
from emulator.state.dependencies import Dependencies
from emulator.state.jobs import Jobs
from emulator.state.lifecycle import Kill, Lifecycle
from emulator.state.nodes import Nodes
from emulator.state.pools import Pools
from emulator.state.preparation import Preparations
from emulator.state.quotas import Allocator, Quotas
from emulator.state.recovery import Orphan, recover
from emulator.state.schedules import Schedules
from emulator.state.scheduling import Assignment, Scheduling
from emulator.state.tables import Clock, Tables
from emulator.state.tasks import Tasks
from emulator.store import Store

__all__ = ["Assignment", "BatchState", "Clock", "Orphan", "Quotas"]


class BatchState:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        account_url: str,
        *,
        kill: Kill,
        wake: Callable[[], None],
        autoscale_nodes: int | None = None,
        quotas: Quotas | None = None,
        autoscale_interval: timedelta | None = None,
    ) -> None:
        self.account_url = account_url.rstrip("/")
        self.tables = Tables(store, clock)
        self.dependencies = Dependencies(self.tables)
        self.preparations = Preparations(self.tables, kill)
        self.lifecycle = Lifecycle(self.tables, kill, self.dependencies, self.preparations)
        nodes = autoscale_nodes or os.cpu_count() or 1
        allocator = Allocator(self.tables, quotas or Quotas())
        self.nodes = Nodes(self.tables, self.lifecycle, wake, allocator)
        self.autoscale = Autoscale(self.tables, self.nodes, wake, autoscale_interval)
        self.pools = Pools(
            self.tables, self.lifecycle, wake, self.account_url, nodes, allocator, self.autoscale
        )
        self.jobs = Jobs(self.tables, self.lifecycle, wake, self.account_url)
        self.tasks = Tasks(self.tables, self.lifecycle, self.jobs, wake)
        self.scheduling = Scheduling(self.tables, self.lifecycle, wake)
        self.schedules = Schedules(self.tables, self.jobs, wake, self.account_url)

    def timed(self) -> None:
        """What the clock drives, each scheduler pass: autoscale evaluations, and the jobs
        that job schedules create."""
        self.autoscale.tick()
        self.schedules.tick()

    def recover(self) -> list[Orphan]:
        """After a restart: requeue what was running; the process groups left to kill."""
        return recover(self.tables, self.lifecycle)
