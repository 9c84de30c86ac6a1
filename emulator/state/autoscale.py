"""Autoscale: evaluating a pool's formula on its metrics, as the service's autoscale runs do.

The formula language is ``batch_formula``'s. A pool's metrics are its jobs' task counts
(``$PendingTasks`` = active + running, ``$ActiveTasks``, ``$RunningTasks``,
``$SucceededTasks``, ``$FailedTasks``) and its node count (``$SampleNodeCount``), read on
each scheduler pass and kept in memory as a step function of the local clock.

Time. The service evaluates every ``autoScaleEvaluationInterval`` (5 minutes at least) and
samples every 30 seconds. With a local interval (``python -m emulator --autoscale-interval
5s``), the local interval stands for the pool's: the formula's time runs ``pool interval /
local interval`` times faster than the local clock (60 for the project's 5-minute pool at
5 s), so a ``GetSample(TimeInterval_Minute * 5)`` window sees the last 5 local seconds,
sampled every 0.5 s. An evaluation's samples are the counts as they were at each 30 seconds
of formula time back from now (the last is now's), up to two hours of them, and none from
before the pool existed or the emulator started; ``time()`` reads the local clock.

Scaling. With a local interval, an autoscale pool starts with no nodes and each evaluation
(at creation, on enableautoscale, then every local interval) sets the pool's targets and
adds nodes (as many as the core quota lets in; the rest are resizeErrors) or removes the
surplus, idle ones first, by ``$NodeDeallocationOption`` as removenodes does. Without one,
an autoscale pool keeps the fixed local node count it was created with (fast local jobs),
its formula is still evaluated at creation, on enable and every pool interval, and
``autoScaleRun`` and evaluateautoscale work as the service's; nothing is resized.

A formula that does not parse is refused with the service's 400 (AutoScalingFormulaSyntaxError
or AutoScaleFormulaTooLong); one that fails to evaluate is recorded in ``autoScaleRun.error``
(AutoScalingFormulaEvaluationError) and resizes nothing. ``autoScaleRun`` is stored with the
pool; the metrics' history is not (it starts again with the emulator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import batch_formula
from emulator import errors, validate, wire
from emulator.records import AutoScaleError, AutoScaleRun, Node, Pool
from emulator.state.lifecycle import RUNNING
from emulator.state.nodes import TARGETS, Nodes
from emulator.state.tables import Tables

ENABLE_SPACING = timedelta(seconds=30)
"""Enable requests for one pool must be this far apart (AutoScaleTooManyRequestsToEnable)."""
HISTORY = 240
"""The samples an evaluation sees at most: two hours of the formula's time."""
_SYNTAX_ERRORS = {
    batch_formula.SYNTAX_ERROR: errors.AutoScalingFormulaSyntaxError,
    batch_formula.TOO_LONG: errors.AutoScaleFormulaTooLong,
}


@dataclass(frozen=True)
class Counts:
    """A pool's metrics at one moment."""

    active: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    nodes: int = 0

    def metrics(self) -> dict[str, float]:
        return {
            "$PendingTasks": self.active + self.running,
            "$ActiveTasks": self.active,
            "$RunningTasks": self.running,
            "$SucceededTasks": self.succeeded,
            "$FailedTasks": self.failed,
            "$SampleNodeCount": self.nodes,
        }


def parse(text: str) -> batch_formula.Formula:
    """The formula, or the service's 400 for one that does not parse."""
    try:
        return batch_formula.parse(text)
    except batch_formula.FormulaSyntaxError as error:
        raise _SYNTAX_ERRORS.get(error.code, errors.AutoScalingFormulaSyntaxError)(
            values=error.values
        ) from None


class Autoscale:
    def __init__(
        self,
        tables: Tables,
        nodes: Nodes,
        wake: Callable[[], None],
        local_interval: timedelta | None = None,
    ) -> None:
        self.tables = tables
        self.nodes = nodes
        self.wake = wake
        self.local_interval = local_interval
        self.started = tables.clock()
        self._history: dict[str, list[tuple[datetime, Counts]]] = {}

    @property
    def scales(self) -> bool:
        """Whether evaluations resize pools (a local interval was given)."""
        return self.local_interval is not None

    # --- the operations -----------------------------------------------------------------

    @staticmethod
    def check(formula: str) -> None:
        """The service's 400 for a formula that does not parse (a pool add)."""
        parse(formula)

    def created(self, pool: Pool) -> None:
        """A new autoscale pool: evaluate its formula now, as the service does."""
        self._run(pool, self.tables.clock())

    def evaluate(self, pool_id: str, body: Any) -> AutoScaleRun:
        """evaluateautoscale: what the formula would set now; nothing changes."""
        pool = self.tables.pool(pool_id)
        if not pool.spec.get("enableAutoScale"):
            raise _not_autoscale()
        formula = parse(validate.autoscale_evaluate(body))
        return _outcome(formula, self._environment(pool, self.tables.clock()))[0]

    def enable(self, pool_id: str, body: Any) -> Pool:
        """enableautoscale: a new formula or interval; evaluated now, then on schedule."""
        pool = self.tables.pool(pool_id)
        changes = validate.autoscale_enable(body)
        now = self.tables.clock()
        if pool.autoscale_enabled is not None and now - pool.autoscale_enabled < ENABLE_SPACING:
            raise errors.AutoScaleTooManyRequestsToEnable()
        formula = changes.get("autoScaleFormula") or pool.spec.get("autoScaleFormula")
        if formula is None:
            raise errors.missing_property("autoScaleFormula")
        parse(formula)
        if pool.allocation_state != "steady":
            raise errors.PoolBeingResized()
        with self.tables.store.transaction():
            pool.spec.update(changes, enableAutoScale=True, autoScaleFormula=formula)
            pool.spec.setdefault("autoScaleEvaluationInterval", validate.AUTOSCALE_INTERVAL_DEFAULT)
            pool.autoscale_enabled = now
            self._run(pool, now)
        return pool

    def disable(self, pool_id: str) -> Pool:
        """disableautoscale: the pool keeps the nodes it has, now as its fixed targets."""
        pool = self.tables.pool(pool_id)
        now = self.tables.clock()
        staying = [n for n in self._nodes(pool) if n.state != "leavingpool"]
        with self.tables.store.transaction():
            for kind, name in TARGETS.items():
                pool.spec[name] = sum(1 for node in staying if node.dedicated == kind)
            pool.spec["enableAutoScale"] = False
            for name in ("autoScaleFormula", "autoScaleEvaluationInterval"):
                pool.spec.pop(name, None)
            self.tables.touch(pool, now)
            self.tables.save(pool)
        return pool

    # --- the scheduler's side -------------------------------------------------------------

    def tick(self) -> None:
        """Sample every autoscale pool's metrics and run the evaluations that are due."""
        now = self.tables.clock()
        for pool_id in list(self._history):
            if pool_id not in self.tables.pools:
                del self._history[pool_id]
        for pool in list(self.tables.pools.values()):
            if not pool.spec.get("enableAutoScale"):
                continue
            self._sample(pool, now)
            last = pool.autoscale_run.timestamp if pool.autoscale_run else pool.created
            if now >= last + self._interval(pool):
                with self.tables.store.transaction():
                    self._run(pool, now)

    # --- evaluating -------------------------------------------------------------------------

    def _interval(self, pool: Pool) -> timedelta:
        """The pool's evaluation interval on the local clock."""
        if self.local_interval is not None:
            return self.local_interval
        return self._pool_interval(pool)

    @staticmethod
    def _pool_interval(pool: Pool) -> timedelta:
        text = pool.spec.get("autoScaleEvaluationInterval") or validate.AUTOSCALE_INTERVAL_DEFAULT
        return wire.parse_duration(text, "autoScaleEvaluationInterval")

    def _scale(self, pool: Pool) -> float:
        """How many seconds of the formula's time one local second is."""
        return self._pool_interval(pool) / self._interval(pool)

    def _run(self, pool: Pool, now: datetime) -> None:
        """Evaluate the pool's formula, record the run and, when scaling, resize to it."""
        formula = parse(pool.spec["autoScaleFormula"])
        run, evaluation = _outcome(formula, self._environment(pool, now))
        pool.autoscale_run = run  # the next is due an interval after it
        if evaluation is not None and self.scales:
            self._resize(pool, evaluation, now)
        self.tables.touch(pool, now)
        self.tables.save(pool)

    def _resize(self, pool: Pool, evaluation: batch_formula.Evaluation, now: datetime) -> None:
        """Add the missing nodes (as the core quota allows) or remove the surplus ones."""
        targets = {
            True: evaluation.target_dedicated_nodes,
            False: evaluation.target_low_priority_nodes,
        }
        self.nodes.resize_to(pool, targets, evaluation.node_deallocation_option, now)
        self.wake()

    def _environment(self, pool: Pool, now: datetime) -> batch_formula.Environment:
        self._sample(pool, now, force=True)
        scale = self._scale(pool)
        history = self._history.get(pool.id, [])
        start = max(self.started, pool.created)
        step = batch_formula.SAMPLE_INTERVAL / scale  # local time between two samples
        series: dict[str, list[batch_formula.Sample]] = {}
        index = len(history) - 1
        for back in range(HISTORY):
            local = now - back * step
            if local < start:
                break
            while index > 0 and history[index][0] > local:
                index -= 1
            if not history or history[index][0] > local:
                break
            at = now - back * batch_formula.SAMPLE_INTERVAL
            for name, value in history[index][1].metrics().items():
                series.setdefault(name, []).insert(0, batch_formula.Sample(at, value))
        nodes = self._nodes(pool)
        staying = [n for n in nodes if n.state != "leavingpool"]
        return batch_formula.Environment(
            now=now,
            metrics=series,
            target_dedicated_nodes=pool.spec.get("targetDedicatedNodes", 0),
            target_low_priority_nodes=pool.spec.get("targetLowPriorityNodes", 0),
            current_dedicated_nodes=sum(1 for n in staying if n.dedicated),
            current_low_priority_nodes=sum(1 for n in staying if not n.dedicated),
        )

    # --- sampling ---------------------------------------------------------------------------

    def _sample(self, pool: Pool, now: datetime, force: bool = False) -> None:
        """Note the pool's counts if they changed (looked at once a sample step, or now if
        ``force``): the history is a step function, each entry holding until the next."""
        history = self._history.setdefault(pool.id, [])
        step = batch_formula.SAMPLE_INTERVAL / self._scale(pool)
        if history and not force and now - history[-1][0] < step:
            return
        counts = self._counts(pool)
        if history and history[-1][1] == counts:
            return
        history.append((now, counts))
        oldest = now - HISTORY * step
        while len(history) > 1 and history[1][0] <= oldest:
            history.pop(0)

    def _counts(self, pool: Pool) -> Counts:
        active = running = succeeded = failed = 0
        for job in self.tables.jobs.values():
            if job.pool_id != pool.id:
                continue
            active += len(self.tables.active.get(job.id, {}))
            tasks = self.tables.tasks.get(job.id, {})
            for task_id in self.tables.incomplete.get(job.id, set()):
                task = tasks.get(task_id)
                running += task is not None and task.state in RUNNING
            for task in tasks.values():
                if task.state == "completed":
                    succeeded += task.run.result == "success"
                    failed += task.run.result != "success"
        return Counts(active, running, succeeded, failed, len(self._nodes(pool)))

    def _nodes(self, pool: Pool) -> list[Node]:
        return list(self.tables.nodes.get(pool.id, {}).values())


def _outcome(
    formula: batch_formula.Formula, environment: batch_formula.Environment
) -> tuple[AutoScaleRun, batch_formula.Evaluation | None]:
    """The run as the service records it, and the evaluation to resize to (None: failed)."""
    try:
        evaluation = formula.evaluate(environment)
    except batch_formula.FormulaEvaluationError as error:
        partial = error.evaluation.results if error.evaluation is not None else None
        failure = AutoScaleError(error.code, error.message, error.values)
        return AutoScaleRun(environment.now, partial, failure), None
    return AutoScaleRun(environment.now, evaluation.results), evaluation


def _not_autoscale() -> errors.BatchServiceError:
    return errors.OperationNotValidOnPool(
        values=[("Reason", "The pool is not configured for automatic scaling.")]
    )
