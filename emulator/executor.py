"""Runs command lines as local processes, laid out and started as on a Batch Linux node.

On-disk layout of a node, under ``<data>/nodes/<pool>/<node>/`` (AZ_BATCH_NODE_ROOT_DIR):

    shared/                                   AZ_BATCH_NODE_SHARED_DIR
    startup/                                  AZ_BATCH_NODE_STARTUP_DIR (start task dir)
    startup/wd/                               the start task's working directory
    startup/stdout.txt, startup/stderr.txt
    workitems/<job>/job-1/<task>/             AZ_BATCH_TASK_DIR
    workitems/<job>/job-1/<task>/wd/          AZ_BATCH_TASK_WORKING_DIR
    workitems/<job>/job-1/<task>/stdout.txt, stderr.txt

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

from emulator.state import Outcome

_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


@dataclass(frozen=True)
class Launch:
    """One process to run: what, where, with which environment and time limit."""

    key: tuple[str, str, str]  # ("task", job, task) or ("start", pool, node)
    command_line: str
    directory: Path  # holds stdout.txt and stderr.txt; the process runs in directory/wd
    environment: dict[str, str]
    max_wall_clock: timedelta | None = None
    on_spawn: Callable[[int], None] | None = None  # told the process (group) id


def node_root(data: Path, pool_id: str, node_id: str) -> Path:
    return data / "nodes" / pool_id / node_id


def task_directory(root: Path, job_id: str, task_id: str) -> Path:
    return root / "workitems" / job_id / "job-1" / task_id


class Executor:
    def __init__(self) -> None:
        self._processes: dict[tuple[str, str, str], asyncio.subprocess.Process | None] = {}
        self._killed: set[tuple[str, str, str]] = set()

    @staticmethod
    def base_environment() -> dict[str, str]:
        environment = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        environment.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        return environment

    async def run(self, launch: Launch) -> Outcome:
        working = launch.directory / "wd"
        working.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC)
        try:
            argv = shlex.split(launch.command_line)
        except ValueError as error:
            return Outcome(None, ("usererror", "CommandLaunchFailed", str(error)), started, started)
        if not argv:
            return Outcome(None, ("usererror", "CommandLaunchFailed", "The command line is empty."))
        self._processes[launch.key] = None  # reserved: a kill during spawn is remembered
        try:
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
                    return Outcome(
                        None,
                        (
                            "usererror",
                            "CommandProgramNotFound",
                            "The specified command program is not found.",
                        ),
                        started,
                        datetime.now(UTC),
                    )
                except OSError as error:
                    return Outcome(
                        None,
                        (
                            "usererror",
                            "CommandLaunchFailed",
                            f"Failed to launch the command line: {error.strerror}",
                        ),
                        started,
                        datetime.now(UTC),
                    )
                self._processes[launch.key] = process
                if launch.on_spawn:
                    launch.on_spawn(process.pid)
                if launch.key in self._killed:
                    self._kill_group(process)
                timeout = launch.max_wall_clock.total_seconds() if launch.max_wall_clock else None
                try:
                    code = await asyncio.wait_for(process.wait(), timeout)
                except TimeoutError:
                    self._kill_group(process)
                    code = await process.wait()
                    return Outcome(
                        code,
                        (
                            "usererror",
                            "TaskEnded",  # the documented code for a task the service ended
                            "The task exceeded its maximum wall clock time and was ended.",
                        ),
                        started,
                        datetime.now(UTC),
                    )
                return Outcome(code, None, started, datetime.now(UTC))
        finally:
            self._processes.pop(launch.key, None)
            self._killed.discard(launch.key)

    def kill(self, key: tuple[str, str, str]) -> None:
        """Kill the process group of a launch, now or as soon as it has started."""
        if key not in self._processes:
            return
        process = self._processes[key]
        if process is None:
            self._killed.add(key)
        else:
            self._kill_group(process)

    @staticmethod
    def _kill_group(process: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def kill_all(self) -> None:
        for key in list(self._processes):
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
