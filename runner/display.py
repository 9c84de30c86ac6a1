"""How progress is shown: a live bar on a terminal, plain log lines otherwise (or in CI)."""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress as Bar
    from rich.progress import TaskID

    from runner.monitor import Progress


def plural(count: int, noun: str) -> str:
    """``1 input``, ``2 inputs``: the counts in the runner's log lines."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def first_line(error: BaseException) -> str:
    """An error in one line: SDK errors carry the service's whole answer below it."""
    return (str(error).splitlines() or [type(error).__name__])[0]


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


class ProgressDisplay:
    """Call it with each Progress; use it as a context manager around the watching."""

    def __init__(self, total: int, live: bool | None = None) -> None:
        self.total = total
        self.live = interactive() if live is None else live
        self._bar: Bar | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.live:  # rich only then: a pipeline's plain lines need none of it
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("[bold]tasks"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)

    def __call__(self, progress: Progress) -> None:
        text = (
            f"active {progress.active}, running {progress.running}, "
            f"succeeded {progress.succeeded}, failed {progress.failed}"
        )
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task,
                total=progress.total or self.total,
                completed=progress.completed,
                description=text,
            )
        else:
            print(f"{text} ({progress.elapsed:.0f}s)", file=sys.stderr, flush=True)
