"""The Azure Batch autoscale formula language: parse a formula, evaluate it, bound it.

The standard library only. ``parse(text)`` gives a ``Formula`` or raises
``FormulaSyntaxError`` (its ``position``, ``line`` and ``column`` say where);
``Formula.evaluate(environment)`` runs it against an ``Environment`` (the time, the metrics'
samples, the pool's current targets and node counts) and gives an ``Evaluation`` (the final
value of every ``$`` variable, its ``results`` string as the service's ``autoScaleRun`` shows
it, the node counts) or raises ``FormulaEvaluationError``. Both errors carry the service's
error ``code`` and ``values``. ``target_caps`` reads the upper bound a formula puts on each
target without running it.
"""

from batch_formula.bounds import named_targets, target_caps
from batch_formula.errors import (
    EVALUATION_ERROR,
    INVALID_SETTINGS,
    MAX_FORMULA_LENGTH,
    MAX_STATEMENTS,
    SYNTAX_ERROR,
    SYNTAX_ERROR_MESSAGE,
    TOO_LONG,
    FormulaError,
    FormulaEvaluationError,
    FormulaSyntaxError,
)
from batch_formula.evaluate import (
    DEALLOCATION,
    DEDICATED,
    LOW_PRIORITY,
    SAMPLE_INTERVAL,
    Environment,
    Evaluation,
    Formula,
    Interval,
    Option,
    Sample,
    Series,
    Timestamp,
    Value,
    Vector,
    parse,
    render,
    samples_every_30_seconds,
)

__all__ = [
    "DEALLOCATION",
    "DEDICATED",
    "EVALUATION_ERROR",
    "INVALID_SETTINGS",
    "LOW_PRIORITY",
    "MAX_FORMULA_LENGTH",
    "MAX_STATEMENTS",
    "SAMPLE_INTERVAL",
    "SYNTAX_ERROR",
    "SYNTAX_ERROR_MESSAGE",
    "TOO_LONG",
    "Environment",
    "Evaluation",
    "Formula",
    "FormulaError",
    "FormulaEvaluationError",
    "FormulaSyntaxError",
    "Interval",
    "Option",
    "Sample",
    "Series",
    "Timestamp",
    "Value",
    "Vector",
    "named_targets",
    "parse",
    "render",
    "samples_every_30_seconds",
    "target_caps",
]
