"""Stand-ins for the emulator's seams: a clock the test moves and an executor that runs nothing.

``FakeExecutor`` records every launch and ends it when told: ``finish(key, exit_code)``
from the test (any thread), or at once by its policy. ``well_known_commands`` is the
policy the SDK conformance tests run under, so their command lines keep their meaning
without a process: /bin/true exits 0, /bin/false 1, ``sh -c '… exit N'`` N, sleep runs
until killed, anything else exits 0.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from emulator.executor import Launch
from emulator.failures import Outcome
from emulator.records import RunKey

KILLED = -9  # what a process ended by SIGKILL reports
Policy = Callable[[Launch], int | None]


class FakeClock:
    """Starts at a fixed moment; each reading moves it on by ``tick`` (never backwards)."""

    def __init__(self, start: datetime | None = None, tick: timedelta = timedelta(milliseconds=1)):
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.tick = tick
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += self.tick
            return self.now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.now += delta


def wait_for_everything(launch: Launch) -> int | None:
    """The default policy: every run waits for ``finish`` or ``kill``."""
    return None


def start_tasks_succeed(launch: Launch) -> int | None:
    """Start tasks exit 0 at once; tasks run until finished or killed."""
    return 0 if launch.key[0] == "start" else None


def well_known_commands(launch: Launch) -> int | None:
    try:
        argv = shlex.split(launch.command_line)
    except ValueError:
        return 0
    program = argv[0].rsplit("/", 1)[-1] if argv else ""
    if program == "true":
        return 0
    if program == "false":
        return 1
    if program == "sleep":
        return None
    if program == "sh" and argv[1:2] == ["-c"] and len(argv) > 2:
        code = re.search(r"\bexit (\d+)", argv[2])
        return int(code.group(1)) if code else 0
    return 0


class FakeExecutor:
    """The executor seam without processes: launches are recorded and ended on request."""

    def __init__(self, policy: Policy = wait_for_everything) -> None:
        self.policy = policy
        self.launches: list[Launch] = []
        self.killed: list[RunKey] = []
        self.orphans: list[tuple[int, dict[str, str]]] = []
        self._pending: dict[RunKey, asyncio.Future[Outcome]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    async def run(self, launch: Launch) -> Outcome:
        self._loop = asyncio.get_running_loop()
        code = self.policy(launch)
        with self._lock:
            self.launches.append(launch)
            if code is not None:
                return Outcome(code)
            future = self._loop.create_future()
            self._pending[launch.key] = future
        try:
            return await future
        finally:
            with self._lock:
                self._pending.pop(launch.key, None)

    def running(self) -> list[RunKey]:
        with self._lock:
            return list(self._pending)

    def finish(self, key: RunKey, exit_code: int = 0, timeout: float = 10) -> None:
        """End a run as a process exiting with exit_code would (waits for it to start)."""
        deadline = time.monotonic() + timeout
        while key not in self.running():
            if time.monotonic() > deadline:
                raise AssertionError(f"{key} was never launched")
            time.sleep(0.01)
        self._resolve(key, Outcome(exit_code))

    def _resolve(self, key: RunKey, outcome: Outcome) -> None:
        with self._lock:
            future = self._pending.get(key)
        if future is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(
            lambda: None if future.done() else future.set_result(outcome)
        )

    def kill(self, key: RunKey) -> None:
        self.killed.append(key)
        self._resolve(key, Outcome(KILLED))

    def kill_all(self) -> None:
        for key in self.running():
            self.kill(key)

    def kill_orphans(self, groups: Iterable[tuple[int, dict[str, str]]]) -> None:
        self.orphans.extend(groups)
