"""Runs command lines as local processes, laid out and started as on a Batch Linux node.

On-disk layout of a node, under ``<data>/nodes/<pool>/<node>/`` (AZ_BATCH_NODE_ROOT_DIR):

    shared/                                   AZ_BATCH_NODE_SHARED_DIR
    startup/                                  AZ_BATCH_NODE_STARTUP_DIR (start task dir)
    startup/wd/                               the start task's working directory
    startup/stdout.txt, startup/stderr.txt
    workitems/<job>/job-1/<task>/             AZ_BATCH_TASK_DIR
    workitems/<job>/job-1/<task>/wd/          AZ_BATCH_TASK_WORKING_DIR
    workitems/<job>/job-1/<task>/stdout.txt, stderr.txt
    workitems/<job>/job-1/<jobpreparation>/   a job's preparation task, laid out as a
                                              task: AZ_BATCH_JOB_PREP_DIR for the others
    workitems/<job>/job-1/<jobrelease>/       a job's release task, likewise

A command line runs without a shell, split as a POSIX shell would split it, exactly as
Batch runs it: use ``/bin/sh -c '…'`` for shell features. Each process leads its own
process group, so ending a task kills everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from emulator import failures
from emulator.failures import Outcome
from emulator.records import RunKey

_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


@dataclass(frozen=True)
class Launch:
    """One process to run: what, where, with which environment and time limit."""

    key: RunKey
    command_line: str
    directory: Path  # holds stdout.txt and stderr.txt; the process runs in directory/wd
    environment: dict[str, str]
    max_wall_clock: timedelta | None = None
    on_spawn: Callable[[int], None] | None = None  # told the process (group) id


class Executor(Protocol):
    """What the scheduler and the state need of an executor (tests use a fake)."""

    async def run(self, launch: Launch) -> Outcome:
        """Run to the end; a run that could not start is an Outcome with a failure."""
        ...

    def kill(self, key: RunKey) -> None:
        """End a run, now or as soon as it has started; unknown keys are ignored."""
        ...

    def kill_all(self) -> None: ...

    def kill_orphans(self, groups: Iterable[tuple[int, dict[str, str]]]) -> None:
        """End what a previous emulator left running (see ``recover``)."""
        ...


def node_root(data: Path, pool_id: str, node_id: str) -> Path:
    return data / "nodes" / pool_id / node_id


def task_directory(root: Path, job_id: str, task_id: str) -> Path:
    return root / "workitems" / job_id / "job-1" / task_id


def base_environment() -> dict[str, str]:
    """What every run inherits from the emulator's own environment."""
    environment = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    environment.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return environment


@dataclass
class _Run:
    """One launch in flight: its process once spawned, and whether it was killed."""

    process: asyncio.subprocess.Process | None = None
    killed: bool = False


class ProcessExecutor:
    """Runs each launch as a local process leading its own process group."""

    def __init__(self) -> None:
        self._runs: dict[RunKey, _Run] = {}

    async def run(self, launch: Launch) -> Outcome:
        working = launch.directory / "wd"
        working.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC)
        try:
            argv = shlex.split(launch.command_line)
        except ValueError as error:
            return Outcome(None, failures.COMMAND_LAUNCH_FAILED(str(error)), started, started)
        if not argv:
            return Outcome(None, failures.COMMAND_LAUNCH_FAILED())
        run = self._runs[launch.key] = _Run()  # a kill during spawn is remembered in it
        try:
            return await self._spawn_and_wait(launch, run, argv, working, started)
        finally:
            # Only its own entry: a requeued task may have started again under this key
            # before this run, killed, was reaped.
            if self._runs.get(launch.key) is run:
                del self._runs[launch.key]

    async def _spawn_and_wait(
        self, launch: Launch, run: _Run, argv: list[str], working: Path, started: datetime
    ) -> Outcome:
        with (
            open(launch.directory / "stdout.txt", "wb") as stdout,
            open(launch.directory / "stderr.txt", "wb") as stderr,
        ):
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=working,
                    env=launch.environment,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            except FileNotFoundError:
                failure = failures.COMMAND_PROGRAM_NOT_FOUND()
                return Outcome(None, failure, started, datetime.now(UTC))
            except OSError as error:
                message = f"Failed to launch the command line: {error.strerror}"
                failure = failures.COMMAND_LAUNCH_FAILED(message)
                return Outcome(None, failure, started, datetime.now(UTC))
            run.process = process
            if launch.on_spawn:
                launch.on_spawn(process.pid)
            if run.killed:
                self._kill_group(process)
            timeout = launch.max_wall_clock.total_seconds() if launch.max_wall_clock else None
            try:
                code = await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                self._kill_group(process)
                code = await process.wait()
                failure = failures.TASK_ENDED_WALL_CLOCK()
                return Outcome(code, failure, started, datetime.now(UTC))
            return Outcome(code, None, started, datetime.now(UTC))

    def kill(self, key: RunKey) -> None:
        """Kill the process group of a launch, now or as soon as it has started."""
        run = self._runs.get(key)
        if run is None:
            return
        run.killed = True
        if run.process is not None:
            self._kill_group(run.process)

    @staticmethod
    def _kill_group(process: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def kill_all(self) -> None:
        for key in list(self._runs):
            self.kill(key)

    @staticmethod
    def kill_orphans(groups: Iterable[tuple[int, dict[str, str]]]) -> None:
        """Kill process groups left by an emulator that died, as a lost node's tasks die.

        Each group is (process group id, environment it must have): a process is killed
        only if its environment still names the same job and task, so a recycled id is
        never hit.
        """
        wanted = dict(groups)
        if not wanted:
            return
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                group = os.getpgid(int(entry.name))
                if group not in wanted:
                    continue
                with open(f"/proc/{entry.name}/environ", "rb") as file:
                    variables = dict(
                        item.split(b"=", 1) for item in file.read().split(b"\0") if b"=" in item
                    )
                expected = wanted[group]
                if all(variables.get(k.encode()) == v.encode() for k, v in expected.items()):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue
