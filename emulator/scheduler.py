"""The loop that turns state into processes: start tasks on new nodes, tasks on free slots.

It wakes whenever the state changes (and every half second regardless), asks the state
what to run, and hands each launch to the executor in its own asyncio task; outcomes go
back through the state's methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator import wire
from emulator.executor import Executor, Launch, node_root, task_directory
from emulator.files import Failure, Storage
from emulator.state import Assignment, BatchState, Outcome


class Scheduler:
    def __init__(
        self,
        state: BatchState,
        executor: Executor,
        storage: Storage,
        data: Path,
        account_name: str,
    ) -> None:
        self.state = state
        self.executor = executor
        self.storage = storage
        self.data = data
        self.account_name = account_name
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        state.on_change = self._wake.set
        state.kill = lambda kind, a, b: executor.kill((kind, a, b))

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            for pool, node in self.state.pending_start_tasks():
                self._spawn(self._start_node(pool, node))
            for assignment in self.state.assign():
                self._spawn(self._run_task(assignment))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def stop(self) -> None:
        self.executor.kill_all()
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    def _node_environment(self, pool_id: str, node: dict[str, Any]) -> dict[str, str]:
        root = node_root(self.data, pool_id, node["id"])
        return {
            **Executor.base_environment(),
            "AZ_BATCH_ACCOUNT_NAME": self.account_name,
            "AZ_BATCH_ACCOUNT_URL": self.state.account_url + "/",
            "AZ_BATCH_POOL_ID": pool_id,
            "AZ_BATCH_NODE_ID": node["id"],
            "AZ_BATCH_NODE_IS_DEDICATED": "true" if node["isDedicated"] else "false",
            "AZ_BATCH_NODE_ROOT_DIR": str(root),
            "AZ_BATCH_NODE_SHARED_DIR": str(root / "shared"),
            "AZ_BATCH_NODE_STARTUP_DIR": str(root / "startup"),
            "AZ_BATCH_NODE_STARTUP_WORKING_DIR": str(root / "startup" / "wd"),
            "HOME": str(root / "shared"),
        }

    async def _start_node(self, pool: dict[str, Any], node: dict[str, Any]) -> None:
        pool_id = pool["id"]
        root = node_root(self.data, pool_id, node["id"])
        for name in ("shared", "startup", "workitems"):
            (root / name).mkdir(parents=True, exist_ok=True)
        self.state.start_task_started(pool_id, node["id"])
        start_task = pool.get("startTask")
        if not start_task:
            self.state.start_task_finished(pool_id, node["id"], Outcome(0))
            return
        environment = self._node_environment(pool_id, node)
        environment["AZ_BATCH_TASK_DIR"] = str(root / "startup")
        environment["AZ_BATCH_TASK_WORKING_DIR"] = str(root / "startup" / "wd")
        for setting in start_task.get("environmentSettings") or []:
            environment[setting["name"]] = setting.get("value") or ""
        failure = await self._download(start_task, root / "startup" / "wd")
        if failure:
            self.state.start_task_finished(pool_id, node["id"], Outcome(None, failure))
            return
        outcome = await self.executor.run(
            Launch(
                ("start", pool_id, node["id"]),
                start_task["commandLine"],
                root / "startup",
                environment,
            )
        )
        self.state.start_task_finished(pool_id, node["id"], outcome)

    async def _run_task(self, assignment: Assignment) -> None:
        job_id, task_id = assignment.job_id, assignment.task_id
        task = self.state.tasks[job_id][task_id]
        node = self.state.nodes[assignment.pool_id][assignment.node_id]
        root = node_root(self.data, assignment.pool_id, assignment.node_id)
        directory = task_directory(root, job_id, task_id)
        if directory.exists():  # a retry or requeue starts from a clean directory
            shutil.rmtree(directory)
        (directory / "wd").mkdir(parents=True)
        environment = self._node_environment(assignment.pool_id, node)
        environment.update(
            {
                "AZ_BATCH_JOB_ID": job_id,
                "AZ_BATCH_TASK_ID": task_id,
                "AZ_BATCH_TASK_DIR": str(directory),
                "AZ_BATCH_TASK_WORKING_DIR": str(directory / "wd"),
            }
        )
        for setting in task.get("environmentSettings") or []:
            environment[setting["name"]] = setting.get("value") or ""
        limit = wire.parse_duration(task["constraints"]["maxWallClockTime"], "maxWallClockTime")
        failure = await self._download(task, directory / "wd")
        if failure:
            self.state.task_finished(job_id, task_id, Outcome(None, failure))
            return
        if not self.state.task_started(job_id, task_id, datetime.now(UTC)):
            return
        outcome = await self.executor.run(
            Launch(
                ("task", job_id, task_id),
                task["commandLine"],
                directory,
                environment,
                None if limit >= wire.UNBOUNDED else limit,
                on_spawn=lambda pid: self.state.task_process(job_id, task_id, pid),
            )
        )
        outputs = task.get("outputFiles")
        if outputs and outcome.failure is None:
            failure = await asyncio.to_thread(
                self.storage.upload, outputs, directory, outcome.exit_code
            )
            if failure:
                outcome = Outcome(outcome.exit_code, failure, outcome.started, outcome.ended)
        self.state.task_finished(job_id, task_id, outcome)

    async def _download(self, spec: dict[str, Any], working: Path) -> Failure | None:
        files = spec.get("resourceFiles")
        if not files:
            return None
        working.mkdir(parents=True, exist_ok=True)
        return await asyncio.to_thread(self.storage.download, files, working)
