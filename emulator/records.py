"""The entities as typed records: pools, nodes, jobs, tasks, and how their runs went.

A record holds what the client sent (``spec``: the validated body with the service's
defaults, echoed back as it came) and what the service owns as typed attributes: state,
times, counters, placement, and the internal fields no client sees (a node's running
tasks, a task's process group). ``serialize`` renders records as the API's documents;
``store`` persists them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulator.failures import Failure, Outcome

Spec = dict[str, Any]
RunKey = tuple[str, str, str]
"""What the executor knows a run by: ("task", job, task), ("start", pool, node), or a
job's ("preparation", job, node) and ("release", job, node) (node ids are unique)."""


def task_run(job_id: str, task_id: str) -> RunKey:
    return ("task", job_id, task_id)


def start_task_run(pool_id: str, node_id: str) -> RunKey:
    return ("start", pool_id, node_id)


def preparation_run(job_id: str, node_id: str) -> RunKey:
    return ("preparation", job_id, node_id)


def release_run(job_id: str, node_id: str) -> RunKey:
    return ("release", job_id, node_id)


@dataclass(kw_only=True)
class Entity:
    """What every entity has: an id, a URL, a state and when it was entered."""

    id: str
    url: str
    state: str
    state_since: datetime
    previous_state: str | None = None
    previous_since: datetime | None = None
    last_modified: datetime | None = None  # with etag: not on nodes
    etag: str | None = None

    def transition(self, state: str, now: datetime) -> None:
        if self.state != state:
            self.previous_state, self.previous_since = self.state, self.state_since
            self.state, self.state_since = state, now


@dataclass(kw_only=True)
class Run:
    """How a run of a task or start task went: executionInfo, startTaskInfo."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    result: str | None = None  # "success" or "failure" once completed
    failure: Failure | None = None
    retry_count: int = 0

    def end(self, outcome: Outcome, now: datetime) -> None:
        """Record how the run ended: its end time, exit code, result and failure."""
        self.end_time = outcome.ended or now
        if outcome.exit_code is not None:
            self.exit_code = outcome.exit_code
        self.result = "success" if outcome.succeeded else "failure"
        if not outcome.succeeded:
            self.failure = outcome.failure_info()


@dataclass(kw_only=True)
class StartTaskRun(Run):
    state: str = "running"


@dataclass(kw_only=True)
class TaskRun(Run):
    requeue_count: int = 0
    last_retry_time: datetime | None = None
    last_requeue_time: datetime | None = None


@dataclass(kw_only=True)
class PreparationRun(Run):
    """How a job's preparation task went on one node: jobPreparationTaskExecutionInfo."""

    state: str = "running"
    last_retry_time: datetime | None = None


@dataclass(kw_only=True)
class ReleaseRun(Run):
    """How a job's release task went on one node: jobReleaseTaskExecutionInfo."""

    state: str = "running"


@dataclass(kw_only=True)
class NodePreparation:
    """A job's preparation and release on one node: what the status list shows, and what
    the scheduler must do there. ``generation`` counts the runs handed out, so a report
    from a run that was killed meanwhile (and maybe handed out again) changes nothing."""

    job_id: str
    pool_id: str
    node_id: str
    node_url: str
    preparation: PreparationRun | None = None  # None until it first runs here
    release: ReleaseRun | None = None  # None until it runs here
    needed: bool = True  # to run (again) before the job's next task starts here
    requested: bool = False  # to be handed to the scheduler
    launched: bool = False  # a run of it is with the scheduler
    retrying: bool = False  # the next run is a retry (its start is lastRetryTime)
    blocked: bool = False  # failed for good with waitForSuccess: no task of the job here
    on_node: bool = True  # what it did is still there (not reimaged, not removed)
    release_due: bool = False  # the job ended: release runs here before it is done
    release_launched: bool = False
    generation: int = 0
    process_group: int | None = None  # of the run in flight, to end it if we die

    @property
    def key(self) -> str:
        """Its row in the store."""
        return f"{self.job_id}/{self.pool_id}/{self.node_id}"


@dataclass(frozen=True)
class ResizeError:
    """Why the last resize left a pool short of its targets (resizeErrors)."""

    code: str
    message: str
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AutoScaleError:
    """Why an autoscale evaluation failed (autoScaleRun.error)."""

    code: str
    message: str
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AutoScaleRun:
    """An evaluation of the pool's formula: what it set (``results``), or why it failed."""

    timestamp: datetime
    results: str | None = None
    error: AutoScaleError | None = None


@dataclass(kw_only=True)
class Pool(Entity):
    spec: Spec
    created: datetime
    current_dedicated: int
    current_low_priority: int
    allocation_state: str = "steady"  # resizing while nodes leave, stopping after stopresize
    allocation_since: datetime | None = None  # None: since the pool was created
    resize_errors: list[ResizeError] = field(default_factory=list)  # of the last resize
    autoscale_run: AutoScaleRun | None = None  # the last evaluation of its formula
    autoscale_enabled: datetime | None = None  # the last enableautoscale request

    def allocate(self, state: str, now: datetime) -> None:
        """Move to an allocationState (steady, resizing, stopping)."""
        if self.allocation_state != state:
            self.allocation_state, self.allocation_since = state, now

    @property
    def slots_per_node(self) -> int:
        return int(self.spec["taskSlotsPerNode"])

    @property
    def start_task(self) -> Spec | None:
        start_task: Spec | None = self.spec.get("startTask") or None
        return start_task

    @property
    def waits_for_start_task(self) -> bool:
        return self.start_task is not None and self.start_task.get("waitForSuccess", True)

    @property
    def start_task_retries(self) -> int:
        """How often a failed start task reruns (-1: until it succeeds)."""
        if self.start_task is None:
            return 0
        return int(self.start_task.get("maxTaskRetryCount", 0))


RECENT_TASKS = 10
"""How many tasks a node's recentTasks keeps: the service shows at most ten
(Azure/BatchExplorer issue 454, "Recent tasks is limited to 10 tasks for a node")."""


@dataclass(kw_only=True)
class RecentTask:
    """A task as the node that ran it last saw it: an entry of the node's recentTasks."""

    job_id: str
    task_id: str
    task_url: str
    state: str
    run: TaskRun


@dataclass(kw_only=True)
class Node(Entity):
    pool_id: str
    dedicated: bool
    vm_size: str
    image_reference: Spec
    allocated: datetime
    scheduling_state: str = "enabled"
    total_tasks_run: int = 0
    total_tasks_succeeded: int = 0
    running: list[tuple[str, str]] = field(default_factory=list)  # (job, task) on the node
    running_slots: int = 0
    start_task: StartTaskRun | None = None
    start_task_launched: bool = False  # handed to the scheduler since it last started
    booted: datetime | None = None  # the last reboot or reimage; None: when allocated
    deallocation: str | None = None  # what leaving, rebooting or reimaging does to its tasks
    change_launched: bool = False  # that change handed to the scheduler
    start_task_spec: Spec | None = None  # the pool's startTask as the node got it (startTask)
    recent_tasks: list[RecentTask] = field(default_factory=list)  # the last, oldest first

    @property
    def resting_state(self) -> str:
        """Its state when it is up and runs no task: idle, or offline while scheduling
        on it is disabled (BatchNodeState offline)."""
        return "idle" if self.scheduling_state == "enabled" else "offline"

    def saw(self, task: Task) -> RecentTask:
        """Note a task the node runs, or a change of one it ran, as the newest entry."""
        self.recent_tasks = [
            entry
            for entry in self.recent_tasks
            if (entry.job_id, entry.task_id) != (task.job_id, task.id)
        ][-(RECENT_TASKS - 1) :]
        entry = RecentTask(
            job_id=task.job_id, task_id=task.id, task_url=task.url, state=task.state, run=task.run
        )
        self.recent_tasks.append(entry)
        return entry


@dataclass(kw_only=True)
class Job(Entity):
    spec: Spec
    created: datetime
    pool_id: str | None
    end_time: datetime | None = None
    terminate_reason: str | None = None

    @property
    def terminates_when_tasks_complete(self) -> bool:
        return bool(self.spec.get("onAllTasksComplete") == "terminatejob")


@dataclass(kw_only=True)
class JobSchedule(Entity):
    spec: Spec  # id, displayName, schedule, jobSpecification, metadata
    created: datetime
    next_run: datetime | None = None  # the due time of the next job; None: no more
    recent_job: str | None = None  # the id of the last job it created
    jobs_created: int = 0  # its jobs are named "{id}:job-{n}"
    end_time: datetime | None = None


@dataclass(frozen=True)
class Placement:
    """The node a task was placed on."""

    pool_id: str
    node_id: str
    node_url: str


@dataclass(kw_only=True)
class Task(Entity):
    job_id: str
    spec: Spec
    created: datetime
    run: TaskRun = field(default_factory=TaskRun)
    node: Placement | None = None
    process_group: int | None = None  # to end it if the emulator dies while it runs

    @property
    def required_slots(self) -> int:
        return int(self.spec.get("requiredSlots", 1))

    @property
    def max_retries(self) -> int:
        return int(self.spec["constraints"].get("maxTaskRetryCount", 0))

    @property
    def directory(self) -> str:
        """The task's directory below the node root, as nodeInfo names it."""
        return f"workitems/{self.job_id}/job-1/{self.id}"


@dataclass(frozen=True)
class Satisfied:
    """A task whose completion satisfied the tasks that depend on it (by its id, and by
    its number for ranges). Kept when the task is deleted, as the service keeps it."""

    job_id: str
    task_id: str


@dataclass(frozen=True)
class TaskCounts:
    counts: dict[str, int]
    slots: dict[str, int]


@dataclass(frozen=True)
class PoolNodeCounts:
    """How many of a pool's nodes are in each state (by the state's name), per kind."""

    pool_id: str
    dedicated: dict[str, int]
    low_priority: dict[str, int]


@dataclass(frozen=True)
class PoolUsage:
    """The core hours a pool's nodes used in one aggregation interval."""

    pool_id: str
    vm_size: str
    start: datetime
    end: datetime
    core_hours: float


@dataclass(frozen=True)
class SupportedImage:
    """An image the service lists for pools, with the node agent it goes with."""

    node_agent_sku_id: str
    publisher: str
    offer: str
    sku: str
    verified: bool = True
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rejected:
    """A task of a collection that was not added, and why."""

    task_id: str
    code: str
    message: str
    values: tuple[tuple[str, str], ...] = ()
