"""After a restart: what was running is requeued, as Batch does for a lost node.

A node that was leaving, rebooting or reimaging stays so and the change starts over; a
pool resizing meanwhile stays resizing until its leaving nodes are gone. Jobs'
preparation and release tasks that were running run again; a job left terminating or
deleting with no release still to run ends now."""

from __future__ import annotations

from emulator.state.lifecycle import RUNNING, Lifecycle
from emulator.state.nodes import CHANGING
from emulator.state.tables import Tables

Orphan = tuple[int, dict[str, str]]
"""A process group a previous run left, with the environment that identifies it."""


def recover(tables: Tables, lifecycle: Lifecycle) -> list[Orphan]:
    """Requeue running tasks and restart starting nodes; return the orphans to kill."""
    now = tables.clock()
    orphans: list[Orphan] = []
    with tables.store.transaction():
        for job_tasks in tables.tasks.values():
            for task in job_tasks.values():
                if task.state not in RUNNING:
                    continue
                if task.process_group is not None:
                    identity = {"AZ_BATCH_JOB_ID": task.job_id, "AZ_BATCH_TASK_ID": task.id}
                    orphans.append((task.process_group, identity))
                    task.process_group = None
                lifecycle.requeue(task, now)
        for nodes in tables.nodes.values():
            for node in nodes.values():
                node.running = []
                node.running_slots = 0
                if node.state in ("starting", "waitingforstarttask"):
                    node.start_task_launched = False
                    node.transition("starting", now)
                elif node.state == "running":
                    node.transition(node.resting_state, now)
                elif node.state in CHANGING:  # the scheduler takes the change up again
                    node.change_launched = False
                tables.save(node)
        orphans += lifecycle.preparations.recover()
        for job in list(tables.jobs.values()):
            lifecycle.released(job.id, now)
    return orphans
