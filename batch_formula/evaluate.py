"""Evaluating a formula against the pool's metrics, as the Batch service's autoscale run does.

The values a formula handles are the documentation's types: a double (``float``), a
doubleVec (``Vector``), a timeinterval (``Interval``), a timestamp (``Timestamp``), and the
node deallocation options (``Option``). The read-only metrics (``$PendingTasks``,
``$CPUPercent``...) are ``Series``: objects read through their methods (``GetSample``,
``GetSamplePercent``, ``Count``, ``HistoryBeginTime``); a series used as a value, in
arithmetic or assigned, is an evaluation error, as the documentation describes them ("objects
that provide various methods to access data"). ``$CurrentDedicatedNodes`` and
``$CurrentLowPriorityNodes`` read as the current node counts (the documentation's own formulas
compute ``$CurrentDedicatedNodes * 1.1``), and ``$TargetDedicatedNodes``,
``$TargetLowPriorityNodes`` and ``$NodeDeallocationOption`` as their current values until a
statement assigns them.

Choices where the documentation is silent, made here and open to correction:
a vector lists samples oldest first; ``GetSample(n)`` fails with fewer than n samples; a window
``GetSample(interval)`` holds the samples taken in ``(now - interval, now]`` and expects one
per 30 seconds of it; division by zero is an error; a target must end as a number >= 0 and its
fraction is dropped; ``round`` rounds half to even (.NET's ``Math.Round``); ``percentile``
takes the nearest rank; user variables are listed after the three settable variables in the
results, sorted by name.
"""

from __future__ import annotations

import math
import operator as op
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from batch_formula.errors import FormulaEvaluationError
from batch_formula.syntax import (
    Assignment,
    Binary,
    Call,
    Conditional,
    Expression,
    MethodCall,
    Name,
    Number,
    Statement,
    Unary,
    parse_statements,
)

SAMPLE_INTERVAL: Final = timedelta(seconds=30)
"""The service takes a sample of every metric every 30 seconds."""

# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vector:
    values: tuple[float, ...]


@dataclass(frozen=True)
class Interval:
    seconds: float


@dataclass(frozen=True)
class Timestamp:
    at: datetime


@dataclass(frozen=True)
class Option:
    """A node deallocation option: requeue, terminate, taskcompletion or retaineddata."""

    name: str


@dataclass(frozen=True)
class Sample:
    time: datetime
    value: float


@dataclass(frozen=True)
class Series:
    """A metric's sample history, oldest first."""

    name: str
    samples: tuple[Sample, ...]


Value = float | Vector | Interval | Timestamp | Option | Series

# --- the service-defined names --------------------------------------------------------------

DEDICATED: Final = "$TargetDedicatedNodes"
LOW_PRIORITY: Final = "$TargetLowPriorityNodes"
DEALLOCATION: Final = "$NodeDeallocationOption"
TARGETS: Final = (DEDICATED, LOW_PRIORITY)
ALIASES: Final = MappingProxyType(
    {"$targetdedicated": DEDICATED, "$targetlowpriority": LOW_PRIORITY}
)
"""The documented aliases; when a formula sets both, the full name's value wins."""
SETTABLE: Final = MappingProxyType({name.lower(): name for name in (*TARGETS, DEALLOCATION)})

CURRENT_DEDICATED: Final = "$CurrentDedicatedNodes"
CURRENT_LOW_PRIORITY: Final = "$CurrentLowPriorityNodes"
NODE_COUNTS: Final = MappingProxyType(
    {name.lower(): name for name in (CURRENT_DEDICATED, CURRENT_LOW_PRIORITY)}
)

METRICS: Final = MappingProxyType(
    {
        name.lower(): name
        for name in (
            "$CPUPercent",
            "$WallClockSeconds",
            "$MemoryBytes",
            "$DiskBytes",
            "$DiskReadBytes",
            "$DiskWriteBytes",
            "$DiskReadOps",
            "$DiskWriteOps",
            "$NetworkInBytes",
            "$NetworkOutBytes",
            "$SampleNodeCount",
            "$ActiveTasks",
            "$RunningTasks",
            "$PendingTasks",
            "$SucceededTasks",
            "$FailedTasks",
            "$PreemptedNodeCount",
        )
    }
)

OPTIONS: Final = ("requeue", "terminate", "taskcompletion", "retaineddata")
DEFAULT_OPTION: Final = "requeue"

INTERVALS: Final = MappingProxyType(
    {
        "timeinterval_zero": 0.0,
        "timeinterval_100ns": 1e-7,
        "timeinterval_microsecond": 1e-6,
        "timeinterval_millisecond": 1e-3,
        "timeinterval_second": 1.0,
        "timeinterval_minute": 60.0,
        "timeinterval_hour": 3600.0,
        "timeinterval_day": 86400.0,
        "timeinterval_week": 7 * 86400.0,
        "timeinterval_year": 365 * 86400.0,
    }
)

# --- the environment ------------------------------------------------------------------------


def samples_every_30_seconds(values: Sequence[float | None], end: datetime) -> tuple[Sample, ...]:
    """Samples of ``values``, oldest first, the last one taken at ``end``; None is missing."""
    count = len(values)
    return tuple(
        Sample(end - (count - 1 - index) * SAMPLE_INTERVAL, float(value))
        for index, value in enumerate(values)
        if value is not None
    )


@dataclass(frozen=True)
class Environment:
    """What the service knows when it evaluates: the time, the metrics, the pool's counts.

    ``metrics`` maps a metric's name (``"$PendingTasks"``, any case) to its samples; a metric
    left out has none.
    """

    now: datetime
    metrics: Mapping[str, Sequence[Sample]] = field(default_factory=dict)
    target_dedicated_nodes: float = 0
    target_low_priority_nodes: float = 0
    current_dedicated_nodes: float = 0
    current_low_priority_nodes: float = 0
    node_deallocation_option: str = DEFAULT_OPTION

    def series(self, name: str) -> Series:
        for key, samples in self.metrics.items():
            if key.lower() == name.lower():
                ordered = sorted(samples, key=lambda sample: sample.time)
                return Series(
                    name,
                    tuple(Sample(s.time, float(s.value)) for s in ordered if s.time <= self.now),
                )
        return Series(name, ())


# --- the result -----------------------------------------------------------------------------


def render(value: Value) -> str:
    """A value as the service's ``results`` string shows it."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, Vector):
        return "[" + ",".join(render(item) for item in value.values) + "]"
    if isinstance(value, Interval):
        return _render_interval(value.seconds)
    if isinstance(value, Timestamp):
        at = value.at.astimezone(UTC)
        return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    if isinstance(value, Option):
        return value.name
    return value.name


def _render_interval(seconds: float) -> str:
    """.NET's TimeSpan format: [-][d.]hh:mm:ss[.fffffff]."""
    sign = "-" if seconds < 0 else ""
    ticks = round(abs(seconds) * 10_000_000)
    whole, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if days:
        text = f"{days}.{text}"
    if fraction:
        text += f".{fraction:07d}"
    return sign + text


@dataclass(frozen=True)
class Evaluation:
    """The outcome of a run: every ``$`` variable's final value, in the results' order."""

    variables: Mapping[str, Value]
    target_dedicated_nodes: int
    target_low_priority_nodes: int
    node_deallocation_option: str
    stopped: bool = False  # the formula called stop()

    @property
    def results(self) -> str:
        """The ``autoScaleRun.results`` string: ``$name=value`` joined by ``;``."""
        return ";".join(f"{name}={render(value)}" for name, value in self.variables.items())


# --- the interpreter ------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _fail(message: str) -> FormulaEvaluationError:
    return FormulaEvaluationError(message)


def _describe(value: Value) -> str:
    kinds = {
        float: "a number",
        Vector: "a vector",
        Interval: "a time interval",
        Timestamp: "a timestamp",
        Option: "a node deallocation option",
    }
    if isinstance(value, Series):
        return f"the sample series {value.name}"
    return kinds.get(type(value), "a number")


def _number(value: Value, where: str) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, Series):
        raise _fail(
            f"{value.name} is a sample series, not a number: read it with"
            f" {value.name}.GetSample(...) ({where})"
        )
    raise _fail(f"{where} needs a number, got {_describe(value)}")


def _flatten(arguments: Sequence[Value], function: str) -> list[float]:
    """A doubleVecList: numbers and vectors, in order, as one list."""
    flat: list[float] = []
    for argument in arguments:
        if isinstance(argument, Vector):
            flat.extend(argument.values)
        else:
            flat.append(_number(argument, f"{function}()"))
    return flat


def _truth(value: Value, where: str) -> bool:
    return _number(value, where) != 0.0


def _node_count(name: str, value: Value) -> int:
    count = _number(value, name)
    if not math.isfinite(count) or count < 0:
        raise _fail(f"{name} must be a number >= 0, is {render(count)}")
    return int(count)


class _Run:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.user: dict[str, tuple[str, Value]] = {}  # lower-case name -> (name, value)
        self.targets: dict[str, float] = {}  # assigned with the full names
        self.aliased: dict[str, float] = {}  # assigned with the aliases
        self.option: str | None = None

    # reading names

    def target(self, name: str) -> float:
        if name in self.targets:
            return self.targets[name]
        if name in self.aliased:
            return self.aliased[name]
        env = self.environment
        return env.target_dedicated_nodes if name == DEDICATED else env.target_low_priority_nodes

    def read(self, name: Name) -> Value:
        key = name.key
        if key in self.user:
            return self.user[key][1]
        if key in ALIASES:
            return float(self.target(ALIASES[key]))
        if key in SETTABLE:
            full = SETTABLE[key]
            if full == DEALLOCATION:
                return Option(self.option or self.environment.node_deallocation_option)
            return float(self.target(full))
        if key in NODE_COUNTS:
            env = self.environment
            current = NODE_COUNTS[key] == CURRENT_DEDICATED
            return float(env.current_dedicated_nodes if current else env.current_low_priority_nodes)
        if key in METRICS:
            return self.environment.series(METRICS[key])
        if key in INTERVALS:
            return Interval(INTERVALS[key])
        if key in OPTIONS:
            return Option(key)
        raise _fail(f"Unknown variable {name.name}")

    def series(self, name: Name) -> Series:
        key = name.key
        if key in self.user:
            raise _fail(f"{name.name} is a user variable and has no methods")
        if key in METRICS:
            return self.environment.series(METRICS[key])
        if key in NODE_COUNTS:
            return self.environment.series(NODE_COUNTS[key])
        raise _fail(f"{name.name} is not a metric: it has no methods")

    # statements

    def run(self, statement: Statement) -> None:
        if isinstance(statement, Assignment):
            self.assign(statement.target, self.value(statement.value))
        else:
            self.value(statement.value)

    def assign(self, name: Name, value: Value) -> None:
        key = name.key
        if key in SETTABLE or key in ALIASES:
            full = SETTABLE.get(key) or ALIASES[key]
            if full == DEALLOCATION:
                if not isinstance(value, Option):
                    raise _fail(
                        f"{DEALLOCATION} must be one of {', '.join(OPTIONS)}, got"
                        f" {_describe(value)}"
                    )
                self.option = value.name
                return
            number = _number(value, full)
            (self.targets if key in SETTABLE else self.aliased)[full] = number
            return
        if key in NODE_COUNTS or key in METRICS:
            raise _fail(f"{name.name} is read-only")
        if key in INTERVALS or key in OPTIONS:
            raise _fail(f"{name.name} is a constant and cannot be assigned")
        if isinstance(value, Series):
            raise _fail(
                f"{value.name} is a sample series: assign {value.name}.GetSample(...) instead"
            )
        shown = self.user[key][0] if key in self.user else name.name
        self.user[key] = (shown, value)

    # expressions

    def value(self, expression: Expression) -> Value:
        if isinstance(expression, Number):
            return expression.value
        if isinstance(expression, Name):
            return self.read(expression)
        if isinstance(expression, Unary):
            return self.unary(expression.operator, self.value(expression.operand))
        if isinstance(expression, Binary):
            return self.binary(expression)
        if isinstance(expression, Conditional):
            chosen = self.value(expression.condition)
            branch = expression.then if _truth(chosen, "?:") else expression.otherwise
            return self.value(branch)
        if isinstance(expression, Call):
            return self.call(expression)
        return self.method(expression)

    def unary(self, operator: str, operand: Value) -> Value:
        if operator == "-":
            if isinstance(operand, Interval):
                return Interval(-operand.seconds)
            if isinstance(operand, Vector):
                return Vector(tuple(-item for item in operand.values))
            return -_number(operand, "unary -")
        return 0.0 if _truth(operand, "!") else 1.0

    def binary(self, expression: Binary) -> Value:
        operator = expression.operator
        if operator in ("&&", "||"):
            left = _truth(self.value(expression.left), operator)
            if operator == "&&" and not left:
                return 0.0
            if operator == "||" and left:
                return 1.0
            return 1.0 if _truth(self.value(expression.right), operator) else 0.0
        left_value = self.value(expression.left)
        right_value = self.value(expression.right)
        if operator in _COMPARE:
            return _compare(operator, left_value, right_value)
        return _arithmetic(operator, left_value, right_value)

    def call(self, call: Call) -> Value:
        name = call.function.lower()
        arguments = [self.value(argument) for argument in call.arguments]
        if name == "stop":
            raise _Stop
        if name == "time":
            return _time(arguments, self.environment.now)
        function = FUNCTIONS.get(name)
        if function is None:
            raise _fail(f"Unknown function {call.function}")
        return function(arguments)

    def method(self, call: MethodCall) -> Value:
        series = self.series(call.target)
        arguments = [self.value(argument) for argument in call.arguments]
        name = call.method.lower()
        shown = f"{series.name}.{call.method}"
        if name == "getsample":
            return _get_sample(series, arguments, self.environment.now, shown)
        if name == "getsamplepercent":
            if not 1 <= len(arguments) <= 2:
                raise _fail(f"{shown} takes a time interval or two")
            start, end = _window(arguments, shown)
            return _percent(series, start, end, self.environment.now)
        if name == "count":
            _no_arguments(arguments, shown)
            return float(len(series.samples))
        if name == "historybegintime":
            _no_arguments(arguments, shown)
            if not series.samples:
                raise _fail(f"{series.name} has no samples")
            return Timestamp(series.samples[0].time)
        raise _fail(f"Unknown method {call.method} of {series.name}")


def _no_arguments(arguments: Sequence[Value], shown: str) -> None:
    if arguments:
        raise _fail(f"{shown} takes no arguments")


# samples


def _window(arguments: Sequence[Value], shown: str) -> tuple[float, float]:
    """The look-back (start, end) in seconds before now: one interval, or two in any order."""
    intervals: list[float] = []
    for argument in arguments:
        if not isinstance(argument, Interval):
            raise _fail(f"{shown} needs time intervals, got {_describe(argument)}")
        intervals.append(argument.seconds)
    if len(intervals) == 1:
        return 0.0, intervals[0]
    return min(intervals), max(intervals)


def _in_window(series: Series, start: float, end: float, now: datetime) -> list[Sample]:
    newest = now - timedelta(seconds=start)
    oldest = now - timedelta(seconds=end)
    return [sample for sample in series.samples if oldest < sample.time <= newest]


def _percent(series: Series, start: float, end: float, now: datetime) -> float:
    expected = math.floor((end - start) / SAMPLE_INTERVAL.total_seconds())
    if expected <= 0:
        return 100.0
    found = len(_in_window(series, start, end, now))
    return min(100.0, 100.0 * found / expected)


def _get_sample(series: Series, arguments: list[Value], now: datetime, shown: str) -> Vector:
    if len(arguments) == 1 and isinstance(arguments[0], float):
        count = arguments[0]
        if not count.is_integer() or count < 1:
            raise _fail(f"{shown}({render(count)}): the count must be a whole number >= 1")
        if len(series.samples) < count:
            raise _fail(
                f"{shown}({render(count)}): {series.name} has only {len(series.samples)} samples"
            )
        return Vector(tuple(sample.value for sample in series.samples[-int(count) :]))
    required: float | None = None
    if len(arguments) in (2, 3) and isinstance(arguments[-1], float):
        required = arguments[-1]
        arguments = arguments[:-1]
    if not 1 <= len(arguments) <= 2:
        raise _fail(f"{shown} takes a count, or one or two time intervals and a percentage")
    start, end = _window(arguments, shown)
    if required is not None:
        percent = _percent(series, start, end, now)
        if percent < required:
            raise _fail(
                f"{shown}: {render(round(percent, 2))} percent of the samples are available,"
                f" fewer than the {render(required)} percent required"
            )
    return Vector(tuple(sample.value for sample in _in_window(series, start, end, now)))


# operators

_COMPARE: Final[Mapping[str, Callable[[Any, Any], bool]]] = MappingProxyType(
    {
        "<": op.lt,
        "<=": op.le,
        ">": op.gt,
        ">=": op.ge,
        "==": op.eq,
        "!=": op.ne,
    }
)


def _compare(operator: str, left: Value, right: Value) -> float:
    comparable: tuple[object, object]
    if isinstance(left, float) and isinstance(right, float):
        comparable = (left, right)
    elif isinstance(left, Interval) and isinstance(right, Interval):
        comparable = (left.seconds, right.seconds)
    elif isinstance(left, Timestamp) and isinstance(right, Timestamp):
        comparable = (left.at, right.at)
    elif isinstance(left, Option) and isinstance(right, Option):
        comparable = (left.name, right.name)
    else:
        _no_series(left, right, operator)
        raise _fail(f"Cannot compare {_describe(left)} with {_describe(right)}")
    return 1.0 if _COMPARE[operator](*comparable) else 0.0


def _no_series(left: Value, right: Value, operator: str) -> None:
    """A series in an operation is read wrong: say how to read it."""
    for operand in (left, right):
        if isinstance(operand, Series):
            _number(operand, operator)


def _divide(a: float, b: float) -> float:
    if b == 0:
        raise _fail("Division by zero")
    return a / b


_ARITHMETIC: Final[Mapping[str, Callable[[float, float], float]]] = MappingProxyType(
    {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": _divide,
    }
)


def _arithmetic(operator: str, left: Value, right: Value) -> Value:
    apply = _ARITHMETIC[operator]
    if isinstance(left, float) and isinstance(right, float):
        return apply(left, right)
    if isinstance(left, Vector) or isinstance(right, Vector):
        if isinstance(left, Vector) and isinstance(right, Vector):
            if len(left.values) != len(right.values):
                raise _fail(
                    f"Vectors of different lengths ({len(left.values)} and"
                    f" {len(right.values)}) in {operator}"
                )
            pairs = zip(left.values, right.values, strict=True)
            return Vector(tuple(apply(a, b) for a, b in pairs))
        if isinstance(left, Vector):
            b = _number(right, operator)
            return Vector(tuple(apply(a, b) for a in left.values))
        a = _number(left, operator)
        assert isinstance(right, Vector)
        return Vector(tuple(apply(a, b) for b in right.values))
    time_value = _time_arithmetic(operator, left, right)
    if time_value is not None:
        return time_value
    _no_series(left, right, operator)
    raise _fail(f"Cannot apply {operator} to {_describe(left)} and {_describe(right)}")


def _time_arithmetic(operator: str, left: Value, right: Value) -> Value | None:
    if isinstance(left, Interval) and isinstance(right, float) and operator in "*/":
        return Interval(_ARITHMETIC[operator](left.seconds, right))
    if isinstance(left, float) and isinstance(right, Interval) and operator == "*":
        return Interval(left * right.seconds)
    if isinstance(left, Interval) and isinstance(right, Interval) and operator in "+-":
        return Interval(_ARITHMETIC[operator](left.seconds, right.seconds))
    if isinstance(left, Timestamp) and isinstance(right, Interval) and operator in "+-":
        sign = 1 if operator == "+" else -1
        return Timestamp(left.at + timedelta(seconds=sign * right.seconds))
    if isinstance(left, Interval) and isinstance(right, Timestamp) and operator == "+":
        return Timestamp(right.at + timedelta(seconds=left.seconds))
    if isinstance(left, Timestamp) and isinstance(right, Timestamp) and operator == "-":
        return Interval((left.at - right.at).total_seconds())
    return None


# functions


_Function = Callable[[list[Value]], Value]


def _statistic(name: str, compute: Callable[[list[float]], float]) -> _Function:
    def function(arguments: list[Value]) -> Value:
        values = _flatten(arguments, name)
        if not values:
            raise _fail(f"{name}() of no values")
        return compute(values)

    return function


def _total(name: str, compute: Callable[[list[float]], float]) -> _Function:
    return lambda arguments: compute(_flatten(arguments, name))


def _each(name: str, compute: Callable[[float], float]) -> _Function:
    """A function of a double, or component-wise of a doubleVecList."""

    def checked(value: float) -> float:
        try:
            return compute(value)
        except (ValueError, OverflowError):
            raise _fail(f"{name}({render(value)}) is not defined") from None

    def function(arguments: list[Value]) -> Value:
        if len(arguments) == 1 and isinstance(arguments[0], float):
            return checked(arguments[0])
        if not arguments:
            raise _fail(f"{name}() needs an argument")
        return Vector(tuple(checked(value) for value in _flatten(arguments, name)))

    return function


def _std(values: list[float]) -> float:
    if len(values) < 2:
        raise _fail("std() needs at least two values")
    mean = sum(values) / len(values)
    return math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1))


def _percentile(arguments: list[Value]) -> Value:
    if len(arguments) != 2:
        raise _fail("percentile() takes a vector and a percentage")
    values = sorted(_flatten(arguments[:1], "percentile"))
    p = _number(arguments[1], "percentile()")
    if not values or not 0 <= p <= 100:
        raise _fail("percentile() needs values and a percentage from 0 to 100")
    rank = max(1, math.ceil(p / 100 * len(values)))
    return values[rank - 1]


def _val(arguments: list[Value]) -> Value:
    if len(arguments) != 2:
        raise _fail("val() takes a vector and an index")
    values = _flatten(arguments[:1], "val")
    index = _number(arguments[1], "val()")
    if not index.is_integer() or not 0 <= index < len(values):
        raise _fail(f"val(): index {render(index)} is outside a vector of {len(values)}")
    return values[int(index)]


def _rand(arguments: list[Value]) -> Value:
    _no_arguments(arguments, "rand()")
    return random.random()


FUNCTIONS: Final[Mapping[str, Callable[[list[Value]], Value]]] = MappingProxyType(
    {
        "avg": _statistic("avg", lambda v: sum(v) / len(v)),
        "max": _statistic("max", max),
        "min": _statistic("min", min),
        "range": _statistic("range", lambda v: max(v) - min(v)),
        "std": _statistic("std", _std),
        "sum": _total("sum", math.fsum),
        "len": _total("len", lambda v: float(len(v))),
        "norm": _total("norm", lambda v: math.sqrt(sum(x * x for x in v))),
        "ceil": _each("ceil", lambda x: float(math.ceil(x))),
        "floor": _each("floor", lambda x: float(math.floor(x))),
        "round": _each("round", lambda x: float(round(x))),
        "lg": _each("lg", math.log2),
        "ln": _each("ln", math.log),
        "log": _each("log", math.log10),
        "percentile": _percentile,
        "val": _val,
        "rand": _rand,
    }
)
"""The documented functions (``stop()`` and ``time()`` are handled apart)."""


def _time(arguments: list[Value], now: datetime) -> Value:
    if arguments:
        raise _fail("time() with a date is not supported here: only time(), the current time")
    return Timestamp(now)


# --- the formula ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Formula:
    """A parsed formula: its statements, in order, and its text."""

    text: str
    statements: tuple[Statement, ...]

    def evaluate(self, environment: Environment) -> Evaluation:
        """Run the statements in order; ``FormulaEvaluationError`` at the first that fails.

        The error's ``evaluation`` holds the values up to the failing statement, as the
        service's ``autoScaleRun.results`` does next to its ``error``.
        """
        run = _Run(environment)
        stopped = False
        for statement in self.statements:
            try:
                run.run(statement)
            except _Stop:
                stopped = True
                break
            except FormulaEvaluationError as error:
                error.statement = statement.source
                error.evaluation = _partial(run)
                raise
            except (ArithmeticError, ValueError) as error:
                failure = FormulaEvaluationError(str(error), statement.source)
                failure.evaluation = _partial(run)
                raise failure from error
        try:
            return _outcome(run, stopped)
        except FormulaEvaluationError as error:
            error.evaluation = _partial(run)
            raise


def _variables(run: _Run) -> dict[str, Value]:
    option = run.option or run.environment.node_deallocation_option
    variables: dict[str, Value] = {
        DEDICATED: float(run.target(DEDICATED)),
        LOW_PRIORITY: float(run.target(LOW_PRIORITY)),
        DEALLOCATION: Option(option),
    }
    for key in sorted(run.user):
        name, value = run.user[key]
        variables[name] = value
    return variables


def _outcome(run: _Run, stopped: bool) -> Evaluation:
    variables = _variables(run)
    return Evaluation(
        variables=MappingProxyType(variables),
        target_dedicated_nodes=_node_count(DEDICATED, variables[DEDICATED]),
        target_low_priority_nodes=_node_count(LOW_PRIORITY, variables[LOW_PRIORITY]),
        node_deallocation_option=render(variables[DEALLOCATION]),
        stopped=stopped,
    )


def _partial(run: _Run) -> Evaluation:
    """What a failed run reports: its values so far, the pool's targets where invalid."""
    variables = _variables(run)
    env = run.environment
    try:
        dedicated = _node_count(DEDICATED, variables[DEDICATED])
    except FormulaEvaluationError:
        dedicated = int(env.target_dedicated_nodes)
    try:
        low_priority = _node_count(LOW_PRIORITY, variables[LOW_PRIORITY])
    except FormulaEvaluationError:
        low_priority = int(env.target_low_priority_nodes)
    return Evaluation(
        variables=MappingProxyType(variables),
        target_dedicated_nodes=dedicated,
        target_low_priority_nodes=low_priority,
        node_deallocation_option=render(variables[DEALLOCATION]),
    )


def parse(text: str) -> Formula:
    """The formula ``text``; ``FormulaSyntaxError`` (with its position) when it does not parse."""
    return Formula(text, parse_statements(text))
