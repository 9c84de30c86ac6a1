"""The loop that turns state into processes: start tasks on new nodes, tasks on free slots,
jobs' preparation and release tasks on the nodes that are to run them, and the machine
side of a node leaving, rebooting or reimaging; each pass also runs what the clock drives:
autoscale samples the pools' metrics and runs the evaluations that are due, and job
schedules create the jobs that are due.

It wakes whenever the state signals a change (the ``wake`` event the composition root
shares with the state) and every half second regardless, asks the state what to run, and
hands each launch to the executor in its own asyncio task; outcomes go back through the
state's ``scheduling`` reports. A changing node takes ``node_seconds`` (as a VM takes
minutes: long enough to be seen leaving, rebooting or reimaging); a reimaged or removed
node's directory is wiped, a rebooted one's kept. An exception in a pass is logged and
the loop goes on after a short pause; one in a launch is logged and ends that launch only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from emulator import wire
from emulator.executor import Executor, Launch, base_environment, node_root, task_directory
from emulator.failures import Failure, Outcome
from emulator.files import Storage
from emulator.records import Node, Pool, Spec, start_task_run, task_run
from emulator.state import Assignment, Clock
from emulator.state.preparation import RELEASE, HookRun
from emulator.state.scheduling import Scheduling

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
NODE_SECONDS = 0.3


class Scheduler:
    def __init__(
        self,
        scheduling: Scheduling,
        executor: Executor,
        storage: Storage,
        wake: asyncio.Event,
        clock: Clock,
        *,
        data: Path,
        account_name: str,
        account_url: str,
        restart_delay: float = 1.0,
        node_seconds: float = NODE_SECONDS,
        timed: Callable[[], None] = lambda: None,
    ) -> None:
        self.scheduling = scheduling
        self.executor = executor
        self.storage = storage
        self.wake = wake
        self.clock = clock
        self.data = data
        self.account_name = account_name
        self.account_url = account_url
        self.restart_delay = restart_delay
        self.node_seconds = node_seconds
        self.timed = timed  # autoscale's evaluations and job schedules' jobs that are due
        self._running: set[asyncio.Task[None]] = set()

    async def run_forever(self) -> None:
        """Schedule until cancelled; a pass that fails is logged and the loop restarts."""
        while True:
            try:
                await self._loop()
            except Exception:
                log.exception("the scheduler failed; restarting in %ss", self.restart_delay)
                await asyncio.sleep(self.restart_delay)

    async def _loop(self) -> None:
        while True:
            self.wake.clear()
            self.schedule()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)

    def schedule(self) -> None:
        """One pass: what the clock makes due, then launch what the state says should run."""
        self.timed()
        for node in self.scheduling.node_changes():
            self._spawn(self._change_node(node.pool_id, node.id, node.state))
        for pool, node in self.scheduling.pending_start_tasks():
            self._spawn(self._start_node(pool, node))
        for assignment in self.scheduling.assign():
            self._spawn(self._run_task(assignment))
        for run in self.scheduling.pending_hooks():  # after assign: it asks for them
            self._spawn(self._run_hook(run))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a launch failed", exc_info=task.exception())

    async def stop(self) -> None:
        self.executor.kill_all()
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    def _node_environment(self, node: Node) -> dict[str, str]:
        root = node_root(self.data, node.pool_id, node.id)
        return {
            **base_environment(),
            "AZ_BATCH_ACCOUNT_NAME": self.account_name,
            "AZ_BATCH_ACCOUNT_URL": self.account_url + "/",
            "AZ_BATCH_POOL_ID": node.pool_id,
            "AZ_BATCH_NODE_ID": node.id,
            "AZ_BATCH_NODE_IS_DEDICATED": "true" if node.dedicated else "false",
            "AZ_BATCH_NODE_ROOT_DIR": str(root),
            "AZ_BATCH_NODE_SHARED_DIR": str(root / "shared"),
            "AZ_BATCH_NODE_STARTUP_DIR": str(root / "startup"),
            "AZ_BATCH_NODE_STARTUP_WORKING_DIR": str(root / "startup" / "wd"),
            "HOME": str(root / "shared"),
        }

    async def _start_node(self, pool: Pool, node: Node) -> None:
        root = node_root(self.data, pool.id, node.id)
        for name in ("shared", "startup", "workitems"):
            (root / name).mkdir(parents=True, exist_ok=True)
        if not self.scheduling.start_task_started(pool.id, node.id):
            return
        start_task = pool.start_task
        if start_task is None:
            self.scheduling.start_task_finished(pool.id, node.id, Outcome(0))
            return
        environment = self._node_environment(node)
        environment["AZ_BATCH_TASK_DIR"] = str(root / "startup")
        environment["AZ_BATCH_TASK_WORKING_DIR"] = str(root / "startup" / "wd")
        _add_settings(environment, start_task)
        failure = await self._download(start_task, root / "startup" / "wd")
        if failure:
            self.scheduling.start_task_finished(pool.id, node.id, Outcome(None, failure))
            return
        launch = Launch(
            start_task_run(pool.id, node.id),
            start_task["commandLine"],
            root / "startup",
            environment,
        )
        outcome = await self.executor.run(launch)
        self.scheduling.start_task_finished(pool.id, node.id, outcome)

    async def _change_node(self, pool_id: str, node_id: str, change: str) -> None:
        await asyncio.sleep(self.node_seconds)
        if change != "rebooting":  # a new disk, or no node at all
            root = node_root(self.data, pool_id, node_id)
            await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)
        self.scheduling.node_changed(pool_id, node_id, change)

    async def _run_task(self, assignment: Assignment) -> None:
        task, node = assignment.task, assignment.node
        job_id, task_id = task.job_id, task.id
        requeues = task.run.requeue_count  # which run this is: see ``Scheduling``
        # A retry or requeue starts from a clean directory.
        directory, environment = await self._job_task(node, job_id, task_id)
        if assignment.preparation_id is not None:
            _add_preparation(environment, node, job_id, assignment.preparation_id, self.data)
        _add_settings(environment, task.spec)
        limit = wire.parse_duration(
            task.spec["constraints"]["maxWallClockTime"], "maxWallClockTime"
        )
        failure = await self._download(task.spec, directory / "wd")
        if failure:
            self.scheduling.task_finished(job_id, task_id, Outcome(None, failure), requeues)
            return
        if not self.scheduling.task_started(job_id, task_id, self.clock(), requeues):
            return
        launch = Launch(
            task_run(job_id, task_id),
            task.spec["commandLine"],
            directory,
            environment,
            None if limit >= wire.UNBOUNDED else limit,
            on_spawn=lambda pid: self.scheduling.task_process(job_id, task_id, pid),
        )
        outcome = await self.executor.run(launch)
        outputs = task.spec.get("outputFiles")
        if outputs and outcome.failure is None:
            failure = await asyncio.to_thread(
                self.storage.upload, outputs, directory, outcome.exit_code
            )
            if failure:
                outcome = Outcome(outcome.exit_code, failure, outcome.started, outcome.ended)
        self.scheduling.task_finished(job_id, task_id, outcome, requeues)

    async def _job_task(self, node: Node, job_id: str, task_id: str) -> tuple[Path, dict[str, str]]:
        """A run of a job's task (or preparation or release task) on ``node``: its task
        directory, emptied of any earlier run's, and its environment."""
        directory = task_directory(node_root(self.data, node.pool_id, node.id), job_id, task_id)
        if directory.exists():
            await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
        (directory / "wd").mkdir(parents=True, exist_ok=True)
        environment = self._node_environment(node)
        environment.update(
            {
                "AZ_BATCH_JOB_ID": job_id,
                "AZ_BATCH_TASK_ID": task_id,
                "AZ_BATCH_TASK_DIR": str(directory),
                "AZ_BATCH_TASK_WORKING_DIR": str(directory / "wd"),
            }
        )
        return directory, environment

    async def _run_hook(self, run: HookRun) -> None:
        """A job's preparation or release task on a node, in its own task directory (kept
        by the other runs: only its own is cleaned), with its own time limit."""
        node, spec = run.node, run.spec
        directory, environment = await self._job_task(node, run.job_id, spec["id"])
        if run.kind == RELEASE:
            _add_preparation(environment, node, run.job_id, run.preparation_id, self.data)
            limit_text = spec["maxWallClockTime"]
        else:
            limit_text = spec["constraints"]["maxWallClockTime"]
        _add_settings(environment, spec)
        limit = wire.parse_duration(limit_text, "maxWallClockTime")
        failure = await self._download(spec, directory / "wd")
        if failure:
            self.scheduling.hook_finished(run, Outcome(None, failure))
            return
        if not self.scheduling.hook_started(run, self.clock()):
            return
        launch = Launch(
            run.key,
            spec["commandLine"],
            directory,
            environment,
            None if limit >= wire.UNBOUNDED else limit,
            on_spawn=lambda pid: self.scheduling.hook_process(run, pid),
        )
        outcome = await self.executor.run(launch)
        self.scheduling.hook_finished(run, outcome)

    async def _download(self, spec: Spec, working: Path) -> Failure | None:
        files = spec.get("resourceFiles")
        if not files:
            return None
        working.mkdir(parents=True, exist_ok=True)
        return await asyncio.to_thread(self.storage.download, files, working)


def _add_settings(environment: dict[str, str], spec: Spec) -> None:
    for setting in spec.get("environmentSettings") or []:
        environment[setting["name"]] = setting.get("value") or ""


def _add_preparation(
    environment: dict[str, str], node: Node, job_id: str, preparation_id: str, data: Path
) -> None:
    """AZ_BATCH_JOB_PREP_DIR and _WORKING_DIR: for a job's tasks and its release task."""
    directory = task_directory(node_root(data, node.pool_id, node.id), job_id, preparation_id)
    environment["AZ_BATCH_JOB_PREP_DIR"] = str(directory)
    environment["AZ_BATCH_JOB_PREP_WORKING_DIR"] = str(directory / "wd")
