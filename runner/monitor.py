"""Watching a job with a constant number of requests per poll: its task counts and state.

The tutorial lists every task every second, so its requests grow with the job; here each
poll is two small requests whatever the job's size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from azure.batch import BatchClient
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from runner.diagnosis import Stall

FIRST_DELAY = 0.1
GROWTH = 1.25
"""Each early poll waits this much longer than the one before: a job is seen done at most
a quarter of its time late (doubling made a 0.8 s job wait until 1.5 s)."""
PATIENCE = 600.0
"""Seconds the service may go unanswering (each poll already retried for about 2.5
minutes by the client) before the watch gives up with its last error."""


class MonitorTimeout(RuntimeError):
    """The job did not finish within --timeout."""


@dataclass(frozen=True)
class Progress:
    active: int
    running: int
    succeeded: int
    failed: int
    elapsed: float
    total: int = 0  # the tasks the job should have

    @property
    def completed(self) -> int:
        return self.succeeded + self.failed


def watch(
    batch: BatchClient,
    job_id: str,
    total: int,
    report: Callable[[Progress], None],
    timeout: float | None = None,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    log: Callable[[str], None] = lambda line: None,
    patience: float = PATIENCE,
    stall: Stall | None = None,
    settle: Callable[[Progress], None] = lambda progress: None,
) -> Progress:
    """Poll until every task is complete (or the job is); report each change.

    The first polls come quickly (0.1 s, then a quarter longer each time, up to ``interval``),
    so a short job returns as soon as it ends and a long one costs no more requests.
    A poll that fails even after the client's retries (the service restarting, a long
    throttle) is logged and polled again, for up to ``patience`` seconds without an
    answer: the job goes on without its watcher, and ``wait`` resumes watching it.
    With ``stall``, a job whose active tasks make no progress gets its cause looked for.
    ``settle`` sees every poll's counts (and may act on the job: ``merge.Unblock``).
    """
    started = clock()
    if stall is not None:
        stall.progressed(started)
    delay = min(interval, FIRST_DELAY)
    last: tuple[int, ...] | None = None
    answered = started
    while True:
        try:
            counts = batch.get_job_task_counts(job_id).task_counts
            job_state = batch.get_job(job_id, select=["state"]).state
        except AzureError as error:
            if not transient(error) or clock() - answered > patience:
                raise
            log(f"job {job_id}: the service did not answer ({type(error).__name__}); watching on")
            if timeout is not None and clock() - started > timeout:
                raise MonitorTimeout(f"job {job_id} did not finish within {timeout:.0f}s") from None
            sleep(interval)
            continue
        answered = clock()
        elapsed = answered - started
        progress = Progress(
            counts.active, counts.running, counts.succeeded, counts.failed, elapsed, total
        )
        key = (progress.active, progress.running, progress.succeeded, progress.failed)
        settle(progress)
        if key != last:
            report(progress)
            # Back to active with nothing completed: requeued (a failed job preparation,
            # a lost node) or retried.
            back = last is not None and key[0] > last[0] and key[2:] == last[2:]
            if stall is not None and back:
                stall.went_back()
            elif stall is not None:
                stall.progressed(answered)
            last = key
        elif stall is not None:
            stall.check(answered, progress.active)
        if progress.completed >= total or job_state == "completed":
            return progress
        if timeout is not None and elapsed > timeout:
            raise MonitorTimeout(f"job {job_id} did not finish within {timeout:.0f}s")
        sleep(delay)
        delay = min(interval, delay * GROWTH)


def transient(error: AzureError) -> bool:
    """A failure that asking again later may not meet: no answer, throttling, a 5xx."""
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return True
    status = error.status_code if isinstance(error, HttpResponseError) else None
    return status is not None and (status == 429 or status >= 500)
