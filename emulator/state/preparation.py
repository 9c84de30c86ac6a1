"""Jobs' preparation and release tasks on nodes: when each runs, and what it holds up.

A job with a jobPreparationTask runs it on a node before the first of its tasks there;
one ``NodePreparation`` per (job, node) records how it went (the status list shows them)
and what is still to do, written through to the store. The rules are the service's, as
BatchJobPreparationTask and BatchJobReleaseTask document them:

- A task placed on a node where the preparation has not run, or must run again, is
  ``preparing`` while the node runs it, once for all the tasks placed there meanwhile. With
  waitForSuccess (the default) they wait for it; without, they start at once.
- A run that fails is retried up to its constraints.maxTaskRetryCount. One that fails
  for good, with waitForSuccess, sends the tasks waiting for it back to active (no retry
  used) and the node takes no task of the job again until it is reimaged.
- After a reboot it runs again before the job's next task there if it had succeeded and
  rerunOnNodeRebootAfterSuccess (the default) holds; one that had not completed always
  runs again, as soon as the node is up. A reimaged node, or one that left, forgets it: it
  runs afresh there, and no release runs there unless it did.
- When the job ends (terminated, deleted), the release task runs on each node where the
  preparation ran, whatever its result, once the job's tasks were killed; the job stays
  terminating or deleting until every release run has ended. A node that reboots
  meanwhile runs it again once up; one that is reimaged or leaves is skipped.

Neither takes a task slot: each runs on behalf of the tasks placed on its node. Which
tasks wait on which node is kept in memory only: a restart requeues them anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from emulator import failures
from emulator.failures import Outcome
from emulator.records import (
    Job,
    Node,
    NodePreparation,
    PreparationRun,
    ReleaseRun,
    RunKey,
    Spec,
    Task,
    preparation_run,
    release_run,
)
from emulator.state.tables import Tables

KIND = "preparation"
PREPARATION, RELEASE = "preparation", "release"
UP = (
    *("idle", "running", "starttaskfailed", "waitingforstarttask", "offline"),
    *("leavingpool", "rebooting", "reimaging"),
)
"""States of a node that can run a preparation or release: a changing node too, until
its change is under way (``Node.change_launched``)."""

PREPARING = ("active", "disabling")
"""States of a job whose preparations run: a job being disabled with ``wait`` still
finishes the tasks it placed, and those may wait for their node's preparation."""

PREPARATION_DEFAULTS: Spec = {
    "id": "jobpreparation",
    "waitForSuccess": True,
    "rerunOnNodeRebootAfterSuccess": True,
    "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
}
RELEASE_DEFAULTS: Spec = {
    "id": "jobrelease",
    "maxWallClockTime": "PT15M",
    "retentionTime": "P7D",
    "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
}
NODE_LOST = failures.TASK_ENDED_NODE_LOST(
    "The task was terminated because its compute node was reimaged or removed."
)

Kill = Callable[[RunKey], None]
Orphan = tuple[int, dict[str, str]]
Place = tuple[str, str]  # (pool, node)


def with_defaults(spec: Spec, unbounded: str) -> None:
    """A job spec's preparation and release tasks with the service's defaults, as a GET
    of the job echoes them (``unbounded``: the service's no-limit duration)."""
    preparation = spec.get("jobPreparationTask")
    if preparation:
        spec["jobPreparationTask"] = {
            **PREPARATION_DEFAULTS,
            **preparation,
            "constraints": {
                "maxWallClockTime": unbounded,
                "retentionTime": "P7D",
                "maxTaskRetryCount": 0,
                **(preparation.get("constraints") or {}),
            },
        }
    release = spec.get("jobReleaseTask")
    if release:
        spec["jobReleaseTask"] = {**RELEASE_DEFAULTS, **release}


def preparation_of(job: Job) -> Spec | None:
    spec: Spec | None = job.spec.get("jobPreparationTask") or None
    return spec


def release_of(job: Job) -> Spec | None:
    spec: Spec | None = job.spec.get("jobReleaseTask") or None
    return spec


@dataclass(frozen=True)
class HookRun:
    """A job's preparation or release task to run on a node, handed to the scheduler;
    its reports name it back (``generation`` tells a killed run's from a later one's)."""

    kind: str  # PREPARATION or RELEASE
    job_id: str
    spec: Spec
    preparation_id: str  # its task directory is AZ_BATCH_JOB_PREP_DIR for the others
    node: Node
    generation: int

    @property
    def key(self) -> RunKey:
        make = preparation_run if self.kind == PREPARATION else release_run
        return make(self.job_id, self.node.id)


@dataclass(frozen=True)
class Waiting:
    """A task placed on a node, waiting there for its job's preparation."""

    job_id: str
    task_id: str
    pool_id: str
    node_id: str
    requeues: int  # its requeue count when placed: which placement this is


@dataclass(frozen=True)
class Verdict:
    """What a preparation's end means for the tasks that waited for it."""

    ready: list[Waiting]  # start them now
    back: list[Waiting]  # back to active: it failed for good on their node


class Preparations:
    def __init__(self, tables: Tables, kill: Kill) -> None:
        self.tables = tables
        self.kill = kill
        self._jobs: dict[str, dict[Place, NodePreparation]] = {}
        self._waiting: dict[tuple[str, str, str], dict[str, int]] = {}
        self._due: set[tuple[str, str, str]] = set()  # statuses with a run to hand out
        for status in tables.store.load(KIND, NodePreparation):
            self._jobs.setdefault(status.job_id, {})[(status.pool_id, status.node_id)] = status
            self._mark(status)

    # --- records ------------------------------------------------------------------------

    def statuses(self, job_id: str) -> list[NodePreparation]:
        """The nodes where the job's preparation or release ran: the status list."""
        return [
            status
            for status in self._jobs.get(job_id, {}).values()
            if status.preparation is not None or status.release is not None
        ]

    def _get(self, job_id: str, pool_id: str, node_id: str) -> NodePreparation | None:
        return self._jobs.get(job_id, {}).get((pool_id, node_id))

    def _save(self, status: NodePreparation) -> None:
        self._mark(status)
        self.tables.store.put(KIND, status.key, status)

    def _mark(self, status: NodePreparation) -> None:
        """Keep ``_due`` in step: the statuses ``pending`` looks at."""
        place = (status.job_id, status.pool_id, status.node_id)
        preparing = status.requested and not status.launched
        releasing = status.release_due and not status.release_launched
        if preparing or releasing:
            self._due.add(place)
        else:
            self._due.discard(place)

    def forget_job(self, job_id: str) -> None:
        """The job is gone: so are its records, and its runs still in flight are killed."""
        for status in self._jobs.pop(job_id, {}).values():
            if status.launched:
                self.kill(preparation_run(job_id, status.node_id))
            if status.release_launched:
                self.kill(release_run(job_id, status.node_id))
            self._due.discard((job_id, status.pool_id, status.node_id))
        self._drop_waiting(job_id)
        self.tables.store.delete_prefix(KIND, f"{job_id}/")

    def _drop_waiting(self, job_id: str) -> None:
        for place in [place for place in self._waiting if place[0] == job_id]:
            del self._waiting[place]

    # --- placing tasks ------------------------------------------------------------------

    def eligible(self, job: Job, node: Node) -> bool:
        """Whether the node may take the job's tasks: not where preparation failed for good."""
        status = self._get(job.id, node.pool_id, node.id)
        return status is None or not status.blocked

    def place(self, job: Job, task: Task, node: Node) -> bool:
        """A task of a job with a preparation task was placed on the node: whether it may
        start now. If not, it waits for the preparation, which the node is to run."""
        spec = preparation_of(job)
        assert spec is not None
        status = self._get(job.id, node.pool_id, node.id)
        if status is None:
            status = NodePreparation(
                job_id=job.id, pool_id=node.pool_id, node_id=node.id, node_url=node.url
            )
            self._jobs.setdefault(job.id, {})[(node.pool_id, node.id)] = status
        if not status.needed:
            return True
        if not status.launched and not status.requested:
            status.requested = True
            self._save(status)
        if not spec["waitForSuccess"]:
            return True
        self._waiting.setdefault((job.id, node.pool_id, node.id), {})[task.id] = (
            task.run.requeue_count
        )
        return False

    # --- runs ---------------------------------------------------------------------------

    @staticmethod
    def _up(node: Node | None) -> bool:
        return node is not None and node.state in UP and not node.change_launched

    def pending(self, now: datetime) -> list[HookRun]:
        """The preparations and releases to run now, each handed out once."""
        runs: list[HookRun] = []
        for job_id, pool_id, node_id in sorted(self._due):
            status = self._get(job_id, pool_id, node_id)
            job = self.tables.jobs.get(job_id)
            node = self.tables.nodes.get(pool_id, {}).get(node_id)
            if status is None or job is None or not self._up(node):
                continue
            assert node is not None
            spec = preparation_of(job)
            assert spec is not None
            if status.requested and not status.launched and job.state in PREPARING:
                self._hand_out_preparation(status, now)
                runs.append(HookRun(PREPARATION, job_id, spec, spec["id"], node, status.generation))
            elif status.release_due and not status.release_launched:
                release = release_of(job)
                assert release is not None
                status.release_launched = True
                status.generation += 1
                if status.release is None or status.release.state == "completed":
                    status.release = ReleaseRun(start_time=now)
                else:  # it runs again: its node rebooted, or the emulator restarted
                    status.release.start_time = now
                self._save(status)
                runs.append(HookRun(RELEASE, job_id, release, spec["id"], node, status.generation))
        return runs

    def _hand_out_preparation(self, status: NodePreparation, now: datetime) -> None:
        status.launched, status.requested, status.on_node = True, False, True
        status.generation += 1
        run = status.preparation
        if run is None or run.state == "completed":
            status.preparation = PreparationRun(start_time=now)
        else:  # a retry, or a run that was interrupted (by a reboot, a restart)
            run.start_time = now
            if status.retrying:  # not when a reboot interrupted a retry: as lastRetryTime says
                run.last_retry_time = now
        status.retrying = False
        self._save(status)

    def _current(self, run: HookRun) -> NodePreparation | None:
        """The status a run reports on, if it is still the one in flight."""
        status = self._get(run.job_id, run.node.pool_id, run.node.id)
        if status is None or status.generation != run.generation:
            return None
        launched = status.launched if run.kind == PREPARATION else status.release_launched
        return status if launched else None

    def started(self, run: HookRun, now: datetime) -> bool:
        """The process is about to start; False if the run was killed meanwhile."""
        status = self._current(run)
        if status is None:
            return False
        record = status.preparation if run.kind == PREPARATION else status.release
        if record is not None:
            record.start_time = now
        self._save(status)
        return True

    def process(self, run: HookRun, group: int) -> None:
        """Remember the run's process group, to end it if the emulator dies meanwhile."""
        status = self._current(run)
        if status is not None:
            status.process_group = group
            self._save(status)

    def preparation_finished(self, run: HookRun, outcome: Outcome, now: datetime) -> Verdict:
        """A preparation ended: retried while it may be, else completed; the tasks that
        waited for it start, or go back to active if it failed for good."""
        status = self._current(run)
        job = self.tables.jobs.get(run.job_id)
        if status is None or job is None or status.preparation is None:
            return Verdict([], [])
        record = status.preparation
        status.launched, status.process_group = False, None
        retries = int(run.spec["constraints"]["maxTaskRetryCount"])
        can_retry = retries == -1 or record.retry_count < retries
        if not outcome.succeeded and outcome.failure is None and can_retry:
            record.retry_count += 1
            status.retrying = True
            if outcome.exit_code is not None:
                record.exit_code = outcome.exit_code
            status.requested = job.state in PREPARING
            self._save(status)
            return Verdict([], [])
        record.state = "completed"
        record.start_time = record.start_time or outcome.started or now
        record.end(outcome, now)
        status.needed = False
        waiting = [
            Waiting(run.job_id, task_id, run.node.pool_id, run.node.id, requeues)
            for task_id, requeues in self._waiting.pop(
                (run.job_id, run.node.pool_id, run.node.id), {}
            ).items()
        ]
        if outcome.succeeded:
            self._save(status)
            return Verdict(waiting, [])
        status.blocked = bool(run.spec["waitForSuccess"])
        self._save(status)
        return Verdict([], waiting) if status.blocked else Verdict(waiting, [])

    def release_finished(self, run: HookRun, outcome: Outcome, now: datetime) -> bool:
        """A release ended (it is not retried); whether that was the one reported on."""
        status = self._current(run)
        if status is None or status.release is None:
            return False
        status.release_launched, status.release_due, status.process_group = False, False, None
        status.release.state = "completed"
        status.release.start_time = status.release.start_time or outcome.started or now
        status.release.end(outcome, now)
        self._save(status)
        return True

    # --- the job ending -----------------------------------------------------------------

    def end_job(self, job: Job, now: datetime, release: bool) -> None:
        """The job ends: its preparations are killed (a running one completes as ended)
        and, if ``release``, its release task is due on every node where the preparation
        ran that still has it. The caller ends the job's tasks."""
        self._drop_waiting(job.id)
        has_release = release and release_of(job) is not None
        for status in self._jobs.get(job.id, {}).values():
            if status.launched:
                self.kill(preparation_run(job.id, status.node_id))
                status.launched, status.process_group = False, None
                status.generation += 1
            status.requested = status.retrying = False
            record = status.preparation
            if record is not None and record.state == "running":
                record.state = "completed"
                record.end(Outcome(None, failures.TASK_ENDED_BY_REQUEST), now)
            node = self.tables.nodes.get(status.pool_id, {}).get(status.node_id)
            if has_release and record is not None and status.on_node and node is not None:
                status.release_due = True
            self._save(status)

    def releasing(self, job_id: str) -> bool:
        """Whether a release of the job is still to run or running."""
        return any(status.release_due for status in self._jobs.get(job_id, {}).values())

    # --- nodes changing -----------------------------------------------------------------

    def node_changing(self, node: Node, change: str, now: datetime) -> set[str]:
        """A node reboots, is reimaged or leaves (``change``: its changing state): its runs
        are killed and what each job must do there changes, as the module says. The jobs
        whose releases were dropped (they may be done now)."""
        dropped: set[str] = set()
        place = (node.pool_id, node.id)
        for job_id, statuses in self._jobs.items():
            status = statuses.get(place)
            job = self.tables.jobs.get(job_id)
            if status is None or job is None:
                continue
            self._waiting.pop((job_id, *place), None)
            if status.launched:
                self.kill(preparation_run(job_id, node.id))
            if status.release_launched:
                self.kill(release_run(job_id, node.id))
            if status.launched or status.release_launched:
                status.generation += 1
            status.launched = status.release_launched = False
            status.process_group = None
            if change == "rebooting":
                self._rebooting(job, status)
            elif self._forgotten(status, now):
                dropped.add(job_id)
            self._save(status)
        return dropped

    @staticmethod
    def _rebooting(job: Job, status: NodePreparation) -> None:
        spec = preparation_of(job)
        assert spec is not None
        record = status.preparation
        unfinished = record is not None and record.state == "running"
        rerun = record is not None and record.result == "success"
        if unfinished or (rerun and spec["rerunOnNodeRebootAfterSuccess"]):
            status.needed = True
        status.requested = unfinished and job.state == "active"

    @staticmethod
    def _forgotten(status: NodePreparation, now: datetime) -> bool:
        """Reimaged or gone: it runs afresh; no release here. Whether one was due."""
        for record in (status.preparation, status.release):
            if record is not None and record.state == "running":
                record.state = "completed"
                record.end(Outcome(None, NODE_LOST), now)
        status.on_node, status.needed, status.blocked = False, True, False
        status.requested = status.retrying = False
        due, status.release_due = status.release_due, False
        return due

    # --- a restart ----------------------------------------------------------------------

    def recover(self) -> list[Orphan]:
        """After a restart: what was running runs again (as soon as its node is up);
        the process groups left to kill."""
        orphans: list[Orphan] = []
        for job_id, statuses in self._jobs.items():
            job = self.tables.jobs.get(job_id)
            if job is None:
                continue
            for status in statuses.values():
                hook = preparation_of(job) if status.launched else release_of(job)
                if status.process_group is not None and hook is not None:
                    identity = {"AZ_BATCH_JOB_ID": job_id, "AZ_BATCH_TASK_ID": hook["id"]}
                    orphans.append((status.process_group, identity))
                if status.launched:
                    status.requested = job.state == "active"
                if status.launched or status.release_launched:
                    status.generation += 1
                status.launched = status.release_launched = False
                status.process_group = None
                self._save(status)
        return orphans
