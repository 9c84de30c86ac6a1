"""The autoscale formula language: parsing, evaluating the project's formula, errors, bounds."""

from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

import batch_formula
from batch_formula import (
    Environment,
    FormulaEvaluationError,
    FormulaSyntaxError,
    Vector,
    parse,
    samples_every_30_seconds,
    target_caps,
)
from contract.spec import (
    AUTOSCALE_EVALUATION_MINUTES,
    AUTOSCALE_MIN_SAMPLE_PERCENT,
    Pool,
    autoscale_formula,
)

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
WINDOW_SAMPLES = AUTOSCALE_EVALUATION_MINUTES * 2  # one every 30 seconds


def pending(
    values: Sequence[float | None],
    target_dedicated_nodes: float = 0,
    current_dedicated_nodes: float = 0,
) -> Environment:
    """An environment whose $PendingTasks took ``values``, oldest first, the last one now."""
    return Environment(
        NOW,
        {"$PendingTasks": samples_every_30_seconds(values, NOW)},
        target_dedicated_nodes=target_dedicated_nodes,
        current_dedicated_nodes=current_dedicated_nodes,
    )


def steady(count: float) -> Environment:
    """$PendingTasks at ``count`` for the whole look-back window."""
    return pending([count] * WINDOW_SAMPLES)


def run(text: str, environment: Environment | None = None) -> batch_formula.Evaluation:
    return parse(text).evaluate(environment or steady(0))


def value(expression: str, environment: Environment | None = None) -> object:
    return run(f"$v = {expression};", environment).variables["$v"]


# The project's own formula.


@pytest.mark.parametrize(
    ("tasks", "nodes"),
    [(0, 0), (1, 1), (2, 1), (3, 2), (9, 4), (100, 4)],
)
def test_the_project_formula_wants_a_node_per_task_slots(tasks: int, nodes: int) -> None:
    pool = Pool()  # 2 task slots per node, at most 4 dedicated nodes, no spot nodes
    evaluation = parse(autoscale_formula(pool)).evaluate(steady(tasks))
    assert evaluation.target_dedicated_nodes == nodes
    assert evaluation.target_low_priority_nodes == 0
    assert evaluation.node_deallocation_option == "taskcompletion"


@pytest.mark.parametrize(
    ("tasks", "dedicated", "spot"),
    [(0, 0, 0), (1, 1, 0), (4, 2, 0), (5, 2, 1), (9, 2, 3), (100, 2, 3)],
)
def test_spot_nodes_take_what_exceeds_the_dedicated_cap(
    tasks: int, dedicated: int, spot: int
) -> None:
    pool = Pool(max_dedicated_nodes=2, max_spot_nodes=3)
    evaluation = parse(autoscale_formula(pool)).evaluate(steady(tasks))
    assert (evaluation.target_dedicated_nodes, evaluation.target_low_priority_nodes) == (
        dedicated,
        spot,
    )


def test_the_results_string_lists_every_variable() -> None:
    evaluation = parse(autoscale_formula(Pool())).evaluate(steady(3))
    assert evaluation.results == (
        "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;"
        "$NodeDeallocationOption=taskcompletion;$needed=2;$pending=3;$samples=100"
    )


def test_the_largest_sample_of_the_window_counts() -> None:
    """Tasks seen earlier in the window keep their nodes until the window has passed."""
    evaluation = parse(autoscale_formula(Pool())).evaluate(pending([7] + [0] * 9))
    assert evaluation.target_dedicated_nodes == 4


def test_too_few_samples_fall_back_to_the_last_one() -> None:
    """Below 70% of the window's samples, the window's maximum is not used."""
    formula = parse(autoscale_formula(Pool()))
    sparse = [None] * 4 + [20, 20, 20, 20, 20, 1]  # 6 of 10 samples: 60%
    evaluation = formula.evaluate(pending(sparse))
    assert evaluation.variables["$samples"] == 60
    assert evaluation.variables["$pending"] == 1
    assert evaluation.target_dedicated_nodes == 1
    enough = [None] * 3 + [20, 20, 20, 20, 20, 20, 1]  # 7 of 10: 70%, the window counts
    evaluation = formula.evaluate(pending(enough))
    assert evaluation.variables["$samples"] == AUTOSCALE_MIN_SAMPLE_PERCENT
    assert evaluation.target_dedicated_nodes == 4


def test_the_project_formula_is_bounded_by_its_pool() -> None:
    pool = Pool(max_dedicated_nodes=3, max_spot_nodes=5)
    caps = target_caps(parse(autoscale_formula(pool)))
    assert caps == {"$TargetDedicatedNodes": 3, "$TargetLowPriorityNodes": 5}


# Syntax.


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("$TargetDedicatedNodes = min(4, $x;", 1, 34, "Expected ',' or ')'"),
        ("$a = 1;\n$b = 2 +;\n", 2, 9, "Expected a number"),
        ("$a = 1 $b = 2", 1, 8, "Expected ';'"),
        ("$a = (1 + 2", 1, 12, "the end of the formula"),
        ("$a = 1 @ 2;", 1, 8, "Unexpected character '@'"),
        ("$a = 1 ? 2;", 1, 11, "Expected ':'"),
        ("1 + 2 = 3;", 1, 7, "Only a variable can be assigned"),
        ("$a = $PendingTasks.GetSample;", 1, 29, "'(' after the method GetSample"),
    ],
)
def test_a_syntax_error_says_where(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(FormulaSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert (error.line, error.column) == (line, column), error.message
    assert fragment in error.message
    assert f"line {line}, column {column}" in error.message
    assert error.code == "AutoScalingFormulaSyntaxError"
    assert ("Line", str(line)) in error.values


def test_a_formula_too_long_or_with_too_many_statements_is_refused() -> None:
    with pytest.raises(FormulaSyntaxError) as caught:
        parse("$a = 1;" + " " * 8200)
    assert caught.value.code == "AutoScaleFormulaTooLong"
    parse(";".join(f"$a{i} = {i}" for i in range(100)))
    with pytest.raises(FormulaSyntaxError, match="at most 100 statements"):
        parse(";".join(f"$a{i} = {i}" for i in range(101)))


def test_comments_line_breaks_and_empty_statements_are_allowed() -> None:
    text = "// a comment\n$a = 1; ;\n$b = $a +\n  2; // the end\n"
    assert run(text).variables["$b"] == 3


def test_names_functions_and_methods_ignore_case() -> None:
    evaluation = run("$targetdedicatednodes = MIN(2, $pendingtasks.getsample(1));", steady(5))
    assert evaluation.target_dedicated_nodes == 2


# Evaluation: operators, functions, vectors, time intervals.


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("-2 * 3 - -1", -5),
        ("7 / 2", 3.5),
        ("1 < 2 && 2 <= 2", 1),
        ("1 > 2 || 3 >= 4", 0),
        ("1 == 1 != 0", 1),
        ("!0 + !5", 1),
        ("0 ? 1 : 2", 2),
        ("0.5 ? 1 : 2", 1),
        ("0 ? 1 : 0 ? 2 : 3", 3),  # right to left
        ("1 ? 0 ? 4 : 5 : 6", 5),
        ("1 + 2 > 2 ? 10 : 20", 10),
        ("ceil(2.1) + floor(2.9) + round(2.5) + round(3.5)", 3 + 2 + 2 + 4),
        ("max(0, 7, 3)", 7),
        ("lg(8) + log(100) + ln(1)", 5),
        ("TimeInterval_Minute * 5 == TimeInterval_Second * 300", 1),
        ("TimeInterval_Hour > TimeInterval_Minute * 59", 1),
    ],
)
def test_operators_and_functions(expression: str, expected: float) -> None:
    assert value(expression) == expected


def test_functions_flatten_vectors_and_numbers() -> None:
    environment = pending([1, 5, 2, 4])
    series = "$PendingTasks.GetSample(4)"
    assert value(series, environment) == Vector((1, 5, 2, 4))
    assert value(f"max(0, {series}, 3)", environment) == 5
    assert value(f"max(9, {series})", environment) == 9
    assert value(f"min({series}, 3)", environment) == 1
    assert value(f"avg({series}, 8)", environment) == 4
    assert value(f"sum({series})", environment) == 12
    assert value(f"len({series}, 1, 1)", environment) == 6
    assert value(f"range({series})", environment) == 4
    assert value(f"val({series}, 1)", environment) == 5
    assert value(f"percentile({series}, 50)", environment) == 2
    assert value(f"{series} * 2 + 1", environment) == Vector((3, 11, 5, 9))
    assert value(f"{series} - {series}", environment) == Vector((0, 0, 0, 0))


def test_samples_by_count_and_by_time_interval() -> None:
    environment = pending([10, 20, None, 40, 50, 60])
    series = "$PendingTasks"
    assert value(f"{series}.GetSample(2)", environment) == Vector((50, 60))
    assert value(f"{series}.Count()", environment) == 5
    # The last 2 minutes: 4 expected samples, the one 1.5 minutes ago is missing.
    two_minutes = "TimeInterval_Minute * 2"
    assert value(f"{series}.GetSample({two_minutes})", environment) == Vector((40, 50, 60))
    assert value(f"{series}.GetSamplePercent({two_minutes})", environment) == 75
    # From 2 minutes ago (excluded) to 1 minute ago: the sample 1.5 minutes ago is missing.
    window = f"{series}.GetSample(TimeInterval_Minute, {two_minutes})"
    assert value(window, environment) == Vector((40,))
    assert (
        value(f"{series}.GetSamplePercent(TimeInterval_Minute, {two_minutes})", environment) == 50
    )
    with pytest.raises(FormulaEvaluationError, match="50 percent of the samples"):
        value(f"{series}.GetSample(TimeInterval_Minute, {two_minutes}, 51)", environment)
    assert value(f"{series}.GetSample(TimeInterval_Second * 90, 100)", environment) == Vector(
        (40, 50, 60)
    )
    assert run(f"$w = {two_minutes} + TimeInterval_Second * 30;").results.endswith("$w=00:02:30")
    assert value(f"{series}.GetSample(TimeInterval_Zero)", environment) == Vector(())


def test_the_targets_read_their_current_values_until_assigned() -> None:
    environment = pending([1], target_dedicated_nodes=3, current_dedicated_nodes=2)
    evaluation = run(
        "$before = $TargetDedicatedNodes; $TargetDedicatedNodes = $CurrentDedicatedNodes * 2;"
        "$after = $TargetDedicatedNodes;",
        environment,
    )
    assert evaluation.variables["$before"] == 3
    assert evaluation.variables["$after"] == 4
    assert evaluation.target_dedicated_nodes == 4
    assert run("$a = 1;", environment).target_dedicated_nodes == 3  # unassigned: unchanged
    assert run("$a = 1;", environment).node_deallocation_option == "requeue"
    evaluation = run(
        "$was = $NodeDeallocationOption == requeue; $NodeDeallocationOption = retaineddata;"
        "$is = $NodeDeallocationOption == retaineddata;"
    )
    assert (evaluation.variables["$was"], evaluation.variables["$is"]) == (1, 1)
    assert evaluation.results.startswith(
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=retaineddata;"
    )


def test_the_full_target_name_wins_over_its_alias() -> None:
    text = "$TargetDedicatedNodes = 2; $TargetDedicated = 5; $TargetLowPriority = 1;"
    evaluation = run(text)
    assert (evaluation.target_dedicated_nodes, evaluation.target_low_priority_nodes) == (2, 1)
    assert target_caps(parse(text)) == {
        "$TargetDedicatedNodes": 2,
        "$TargetLowPriorityNodes": 1,
    }


def test_stop_ends_the_evaluation_without_an_error() -> None:
    evaluation = run("$TargetDedicatedNodes = 1; stop(); $TargetDedicatedNodes = 9;")
    assert evaluation.stopped
    assert evaluation.target_dedicated_nodes == 1


def test_a_fractional_target_is_truncated() -> None:
    assert run("$TargetDedicatedNodes = 2.7;").target_dedicated_nodes == 2


# Evaluation errors.


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("$a = 1 / ($b = 0);", None),  # not even parsed: see the syntax tests
        ("$a = 0; $b = 1 / $a;", "Division by zero"),
        ("$a = $nothing + 1;", "Unknown variable $nothing"),
        ("$a = nothing;", "Unknown variable nothing"),
        ("$a = sqrt(4);", "Unknown function sqrt"),
        ("$a = $PendingTasks.Average();", "Unknown method Average"),
        ("$a = $PendingTasks + 1;", "$PendingTasks is a sample series"),
        ("$a = max(0, $PendingTasks);", "read it with $PendingTasks.GetSample"),
        ("$a = $PendingTasks;", "assign $PendingTasks.GetSample(...) instead"),
        ("$a = $PendingTasks.GetSample(TimeInterval_Minute * 5, 95);", "fewer than the 95"),
        ("$a = $PendingTasks.GetSample(20);", "has only 8 samples"),
        ("$a = $x.GetSample(1);", "is not a metric"),
        ("$PendingTasks = 3;", "$PendingTasks is read-only"),
        ("$TargetDedicatedNodes = -1;", "must be a number >= 0"),
        ("$TargetDedicatedNodes = TimeInterval_Minute;", "needs a number, got a time interval"),
        ("$NodeDeallocationOption = 1;", "must be one of requeue"),
        ("$a = TimeInterval_Minute * TimeInterval_Minute;", "Cannot apply *"),
        ("$a = avg();", "avg() of no values"),
        ("$a = ln(0);", "ln(0) is not defined"),
    ],
)
def test_evaluation_errors(text: str, fragment: str | None) -> None:
    sparse = pending([1] * 4 + [None] * 2 + [1] * 4)
    if fragment is None:
        with pytest.raises(FormulaSyntaxError):
            parse(text)
        return
    with pytest.raises(FormulaEvaluationError) as caught:
        parse(text).evaluate(sparse)
    error = caught.value
    assert fragment in error.message
    assert error.code == "AutoScalingFormulaEvaluationError"
    assert ("Message", error.message) in error.values


def test_an_evaluation_error_keeps_the_results_so_far() -> None:
    """As the service's autoScaleRun: the error, and results with the targets unchanged."""
    with pytest.raises(FormulaEvaluationError) as caught:
        run("$something_useless", pending([1], target_dedicated_nodes=2))
    error = caught.value
    assert error.statement == "$something_useless"
    assert error.evaluation is not None
    assert error.evaluation.results == (
        "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )
    with pytest.raises(FormulaEvaluationError) as caught:
        run("$a = 1;\n$TargetDedicatedNodes = 3; $b = 1 / 0; $c = 2;")
    assert caught.value.statement == "$b = 1 / 0"
    assert caught.value.evaluation is not None
    assert caught.value.evaluation.results.endswith("$a=1")
    assert caught.value.evaluation.target_dedicated_nodes == 3


# The library's boundary.


def test_the_library_uses_the_standard_library_only() -> None:
    root = Path(batch_formula.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top == "batch_formula" or top in sys.stdlib_module_names, (path, module)
