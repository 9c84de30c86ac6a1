"""Autoscale formulas evaluated as the service does, through the official SDK.

The session's in-process emulator keeps its fixed local nodes for autoscale pools but still
evaluates formulas (evaluateautoscale, autoScaleRun). ``scaling`` is one started with a
local evaluation interval: its pools follow their formula, and the test moves its clock
one interval at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.batch import BatchClient, models

from contract.spec import Pool, autoscale_formula
from emulator.records import task_run
from local_stack import stack
from tests.e2e.conftest import ROOT, runner
from tests.emulator.conftest import client_for, pool_options, raises_batch_error, unique, wait_for
from tests.emulator.fakes import FakeClock, FakeExecutor
from tests.emulator.inprocess import InProcess, serve
from tests.stacks import Stacks

LOCAL_INTERVAL = timedelta(seconds=5)
PROJECT_POOL = Pool(max_dedicated_nodes=3, task_slots_per_node=1)
FORMULA = autoscale_formula(PROJECT_POOL)


def autoscale_pool(pool_id: str, formula: str = FORMULA, **overrides: object) -> object:
    return pool_options(
        pool_id,
        target_dedicated_nodes=None,
        task_slots_per_node=1,
        enable_auto_scale=True,
        auto_scale_formula=formula,
        auto_scale_evaluation_interval=timedelta(minutes=5),
        **overrides,
    )


@pytest.fixture(scope="module")
def scaling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    data: Path = tmp_path_factory.mktemp("autoscale")
    with serve(data, FakeExecutor(), FakeClock(), autoscale_interval=LOCAL_INTERVAL) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def scaling_batch(scaling: InProcess) -> BatchClient:
    return client_for(scaling.url)


def evaluate(batch: BatchClient, pool_id: str, formula: str) -> models.AutoScaleRun:
    options = models.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula)
    return batch.evaluate_pool_auto_scale(pool_id, options)


# --- without a local interval: fixed nodes, formulas still evaluated -------------------------


def test_evaluating_the_project_formula_on_an_idle_pool_gives_no_nodes(batch):
    pool_id = unique("pool")
    batch.create_pool(autoscale_pool(pool_id))
    run = evaluate(batch, pool_id, FORMULA)
    assert run.error is None
    assert run.results is not None
    assert "$TargetDedicatedNodes=0" in run.results.split(";")
    assert "$NodeDeallocationOption=taskcompletion" in run.results.split(";")
    pool = batch.get_pool(pool_id)
    assert pool.auto_scale_run is not None  # evaluated at creation
    assert pool.auto_scale_run.error is None
    assert "$TargetDedicatedNodes=0" in (pool.auto_scale_run.results or "")
    assert pool.current_dedicated_nodes == os.cpu_count()  # the fixed local nodes stay


def test_a_formula_that_does_not_parse_gets_the_services_400(batch):
    pool_id = unique("pool")
    batch.create_pool(autoscale_pool(pool_id))
    error = raises_batch_error(
        lambda: evaluate(batch, pool_id, "$TargetDedicatedNodes = ;"),
        400,
        "AutoScalingFormulaSyntaxError",
    )
    assert error.error is not None
    names = {detail.code for detail in error.error.details or []}
    assert {"Message", "Line", "Column"} <= names
    broken = autoscale_pool(unique("pool"), formula="$TargetDedicatedNodes = min(;")
    raises_batch_error(lambda: batch.create_pool(broken), 400, "AutoScalingFormulaSyntaxError")


def test_an_evaluation_error_is_recorded_in_the_run(batch):
    pool_id = unique("pool")
    formula = "$TargetDedicatedNodes = 1 / 0;"
    batch.create_pool(autoscale_pool(pool_id, formula=formula))
    run = batch.get_pool(pool_id).auto_scale_run
    assert run is not None
    assert run.error is not None
    assert run.error.code == "AutoScalingFormulaEvaluationError"
    assert run.error.message
    assert run.error.error_values
    assert run.error.error_values[0].name == "Message"
    evaluated = evaluate(batch, pool_id, "$TargetDedicatedNodes = $PendingTasks * 2;")
    assert evaluated.error is not None
    assert evaluated.error.code == "AutoScalingFormulaEvaluationError"


def test_enable_refuses_an_interval_under_five_minutes(batch):
    pool_id = unique("pool")
    batch.create_pool(autoscale_pool(pool_id))
    options = models.BatchPoolEnableAutoScaleOptions(
        auto_scale_formula=FORMULA, auto_scale_evaluation_interval=timedelta(minutes=4)
    )
    error = raises_batch_error(
        lambda: batch.enable_pool_auto_scale(pool_id, options), 400, "InvalidPropertyValue"
    )
    assert error.error is not None
    values = {detail.code: detail.message for detail in error.error.details or []}
    assert values["PropertyName"] == "autoScaleEvaluationInterval"
    too_long = models.BatchPoolEnableAutoScaleOptions(
        auto_scale_evaluation_interval=timedelta(hours=169)
    )
    raises_batch_error(
        lambda: batch.enable_pool_auto_scale(pool_id, too_long), 400, "InvalidPropertyValue"
    )


def test_enable_twice_within_30_seconds_is_refused(batch):
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=0))
    options = models.BatchPoolEnableAutoScaleOptions(auto_scale_formula=FORMULA)
    batch.enable_pool_auto_scale(pool_id, options)
    pool = batch.get_pool(pool_id)
    assert pool.enable_auto_scale is True
    assert pool.auto_scale_evaluation_interval == timedelta(minutes=15)  # the default
    assert pool.auto_scale_run is not None
    raises_batch_error(
        lambda: batch.enable_pool_auto_scale(pool_id, options),
        409,
        "AutoScaleTooManyRequestsToEnable",
    )


def test_disable_keeps_the_nodes_as_fixed_targets(batch):
    pool_id = unique("pool")
    batch.create_pool(autoscale_pool(pool_id))
    batch.disable_pool_auto_scale(pool_id)
    pool = batch.get_pool(pool_id)
    assert pool.enable_auto_scale is False
    assert pool.auto_scale_formula is None
    assert pool.target_dedicated_nodes == pool.current_dedicated_nodes == os.cpu_count()
    assert len(list(batch.list_nodes(pool_id))) == os.cpu_count()
    raises_batch_error(lambda: evaluate(batch, pool_id, FORMULA), 409, "OperationNotValidOnPool")


# --- with a local interval: pools follow their formula ----------------------------------


def test_the_project_formula_scales_from_zero_and_back(scaling, scaling_batch):
    batch, clock, executor = scaling_batch, scaling.clock, scaling.executor
    pool_id = unique("pool")
    batch.create_pool(autoscale_pool(pool_id))
    pool = batch.get_pool(pool_id)
    assert pool.current_dedicated_nodes == 0
    assert list(batch.list_nodes(pool_id)) == []
    created = pool.auto_scale_run
    assert created is not None
    assert "$TargetDedicatedNodes=0" in (created.results or "")

    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id))
    )
    for index in range(5):
        batch.create_task(
            job_id, models.BatchTaskCreateOptions(id=f"t{index}", command_line="sleep 60")
        )

    def evaluated_after(previous: models.AutoScaleRun) -> models.AutoScaleRun:
        clock.advance(LOCAL_INTERVAL)
        return wait_for(
            lambda: (
                (run := batch.get_pool(pool_id).auto_scale_run).timestamp > previous.timestamp
                and run
            ),
            timeout=5,
        )

    grown = evaluated_after(created)
    assert "$TargetDedicatedNodes=3" in (grown.results or "")  # 5 pending, at most 3 nodes
    pool = batch.get_pool(pool_id)
    assert pool.target_dedicated_nodes == 3
    wait_for(lambda: sum(n.state == "running" for n in batch.list_nodes(pool_id)) == 3)
    for index in range(5):  # three run, then the last two on the freed nodes
        executor.finish(task_run(job_id, f"t{index}"), 0)
    wait_for(lambda: all(t.state == "completed" for t in batch.list_tasks(job_id)), timeout=10)

    # The window of the formula still sees the tasks of the last interval: one more.
    still = evaluated_after(grown)
    assert "$TargetDedicatedNodes=3" in (still.results or "")
    idle = evaluated_after(still)
    assert "$TargetDedicatedNodes=0" in (idle.results or "")
    wait_for(lambda: list(batch.list_nodes(pool_id)) == [], timeout=10)
    pool = batch.get_pool(pool_id)
    assert pool.current_dedicated_nodes == 0
    assert pool.target_dedicated_nodes == 0
    assert pool.allocation_state == "steady"


def test_scaling_down_honours_the_deallocation_option(scaling, scaling_batch):
    """requeue: a node the new formula removes gives its running task back to the job."""
    batch, executor = scaling_batch, scaling.executor
    pool_id = unique("pool")
    batch.create_pool(autoscale_pool(pool_id, formula="$TargetDedicatedNodes = 1;"))
    assert batch.get_pool(pool_id).current_dedicated_nodes == 1  # evaluated at creation
    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id))
    )
    batch.create_task(job_id, models.BatchTaskCreateOptions(id="t", command_line="sleep 60"))
    wait_for(lambda: batch.get_task(job_id, "t").state == "running")
    formula = "$TargetDedicatedNodes = 0; $NodeDeallocationOption = requeue;"
    batch.enable_pool_auto_scale(
        pool_id, models.BatchPoolEnableAutoScaleOptions(auto_scale_formula=formula)
    )
    wait_for(lambda: list(batch.list_nodes(pool_id)) == [], timeout=10)
    task = batch.get_task(job_id, "t")
    assert task.state == "active"
    assert task.execution_info is not None
    assert task.execution_info.requeue_count == 1
    assert task_run(job_id, "t") in executor.killed
    run = batch.get_pool(pool_id).auto_scale_run
    assert run is not None
    assert "$NodeDeallocationOption=requeue" in (run.results or "")


# --- the local stack: the very formula the project deploys ------------------------------


@pytest.mark.emulator_only("starts a local stack of its own")
def test_the_local_stack_with_autoscale_scales_for_a_job_and_back(stacks: Stacks, tmp_path: Path):
    """``up(autoscale=True)``: the pool starts empty, a runner job gets nodes, and the pool
    goes back to none after."""
    paths = stack.Paths(tmp_path / "stack")
    try:
        outputs = stacks.up(paths, timeout=30, autoscale=True)
        assert stack._applied_autoscale(paths) == stack.AUTOSCALE_INTERVAL
        local = outputs.local
        assert local is not None
        batch = client_for(
            outputs.batchAccountEndpoint, local.batchAccountKey, outputs.batchAccountName
        )
        pool = batch.get_pool(outputs.poolId)
        assert pool.enable_auto_scale is True
        assert pool.auto_scale_formula == autoscale_formula(Pool())
        assert list(batch.list_nodes(outputs.poolId)) == []

        data = sorted((ROOT / "data").glob("*.txt"))[0]
        work = tmp_path / "work"
        work.mkdir()
        result = runner("submit", str(data), "--outputs", str(paths.outputs), cwd=work)
        assert result.returncode == 0, result.stderr
        assert batch.get_pool(outputs.poolId).auto_scale_run is not None
        wait_for(lambda: list(batch.list_nodes(outputs.poolId)) == [], timeout=25, interval=0.5)
        run = batch.get_pool(outputs.poolId).auto_scale_run
        assert run is not None
        assert "$TargetDedicatedNodes=0" in (run.results or "")
    finally:
        stacks.down(paths)
