"""Local stacks that tests start, counted: starting one costs seconds, so the suite's
budget names how many each test file started (printed at the end of every run).

A start is an ``up`` that started the emulator process: the first ``up`` of a stack,
or one that restarted it (faults, quotas or autoscale switched). ``up`` on a stack that
already runs as asked starts nothing and is not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from contract.outputs import StackOutputs
from local_stack import stack as local_stack

T = TypeVar("T")

STARTED: Counter[str] = Counter()
"""Stack starts in this process, by test file."""


def _emulator_pid(paths: local_stack.Paths) -> str | None:
    try:
        return paths.pid("emulator").read_text().strip()
    except OSError:
        return None


def file_of(request: pytest.FixtureRequest) -> str:
    """The file of the test (or module) asking: what its stack starts are counted for."""
    return request.node.nodeid.split("::")[0]


def counted(test_file: str, paths: local_stack.Paths, start: Callable[[], T]) -> T:
    """Run ``start`` (an ``up`` of any kind: in-process, or ``runner local up``) and count
    a start for ``test_file`` if the stack at ``paths`` has a new emulator process."""
    before = _emulator_pid(paths)
    try:
        return start()
    finally:
        after = _emulator_pid(paths)
        if after is not None and after != before:
            STARTED[test_file] += 1


class Stacks:
    """What a test uses to start local stacks of its own: ``up`` and ``down`` as the
    local stack has them, counted for the test's file."""

    def __init__(self, test_file: str) -> None:
        self.test_file = test_file

    def up(self, paths: local_stack.Paths, **options: Any) -> StackOutputs:
        return self.counted(paths, lambda: local_stack.up(paths=paths, **options))

    def counted(self, paths: local_stack.Paths, start: Callable[[], T]) -> T:
        """``start`` (a ``runner local up`` or a submit that may start the stack at
        ``paths``), counted as ``up`` counts."""
        return counted(self.test_file, paths, start)

    def down(self, paths: local_stack.Paths) -> None:
        local_stack.down(paths)

    @contextmanager
    def running(self, directory: Path, **options: Any) -> Iterator[local_stack.Paths]:
        """A stack in ``directory`` for the length of the block, always stopped."""
        paths = local_stack.Paths(directory)
        try:
            self.up(paths, **options)
            yield paths
        finally:
            self.down(paths)


def summary(started: Counter[str]) -> list[str]:
    """The lines the run ends with: the total, then each file, most starts first."""
    total = sum(started.values())
    lines = [f"local stacks started: {total}"]
    lines += [f"  {count:3d}  {name}" for name, count in started.most_common()]
    return lines
