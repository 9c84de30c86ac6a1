"""The errors of a formula, with the Batch service's codes for them.

Where the codes come from:

- ``AutoScalingFormulaSyntaxError`` (HTTP 400, "The specified auto-scaling formula has a
  syntax error.") and ``InvalidAutoScalingSettings`` (HTTP 400, "The specified auto-scaling
  settings are not valid."): the Batch REST reference's "Batch status and error codes" table,
  and the SDKs' ``BatchErrorCodeStrings`` ("An automatic scaling formula has a syntax
  error."). The service answers a pool add, enable-autoscale or evaluate-autoscale request
  whose formula does not parse with this code.
- ``AutoScaleFormulaTooLong`` (HTTP 400): ``BatchErrorCodeStrings`` ("An automatic scaling
  formula is too long. The maximum length is 8192 characters."); the status-code table spells
  it ``AutoScalingFormulaTooLong``, the SDKs, generated from the service's API description,
  ``AutoScaleFormulaTooLong``, which is the spelling used here.
- ``AutoScalingFormulaEvaluationError``: the ``error.code`` of an ``autoScaleRun`` (the answer
  to evaluate-autoscale, HTTP 200, and a pool's last run) when a formula that parses fails to
  evaluate; the Azure SDK for JavaScript's recorded tests evaluate ``$something_useless`` and
  get it, with ``results`` still listing the targets and ``$NodeDeallocationOption``.

An ``autoScaleRun.error`` is ``{"code", "message", "values": [{"name", "value"}, ...]}``;
``values`` here gives those name/value pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from batch_formula.evaluate import Evaluation

SYNTAX_ERROR: Final = "AutoScalingFormulaSyntaxError"
TOO_LONG: Final = "AutoScaleFormulaTooLong"
INVALID_SETTINGS: Final = "InvalidAutoScalingSettings"
EVALUATION_ERROR: Final = "AutoScalingFormulaEvaluationError"

SYNTAX_ERROR_MESSAGE: Final = "The specified auto-scaling formula has a syntax error."
TOO_LONG_MESSAGE: Final = (
    "An automatic scaling formula is too long. The maximum length is 8192 characters."
)

MAX_FORMULA_LENGTH: Final = 8192
"""The service's limit on a formula's length, in characters ("cannot exceed 8 KB")."""

MAX_STATEMENTS: Final = 100
"""The service's limit on a formula's statements ("up to 100 statements")."""


class FormulaError(Exception):
    """A formula the service would refuse or fail to evaluate; ``code`` is the service's."""

    code: str = SYNTAX_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def values(self) -> tuple[tuple[str, str], ...]:
        """The name/value pairs of the service's error details."""
        return (("Message", self.message),)


class FormulaSyntaxError(FormulaError):
    """The formula does not parse: ``position`` is the 0-based offset of the fault in it."""

    def __init__(self, message: str, text: str, position: int, code: str = SYNTAX_ERROR) -> None:
        self.text = text
        self.position = position
        self.line = text.count("\n", 0, position) + 1
        self.column = position - (text.rfind("\n", 0, position) + 1) + 1
        self.detail = message
        self.code = code
        super().__init__(f"{message} at line {self.line}, column {self.column}")

    @property
    def values(self) -> tuple[tuple[str, str], ...]:
        return (
            ("Message", self.message),
            ("Line", str(self.line)),
            ("Column", str(self.column)),
        )


class FormulaEvaluationError(FormulaError):
    """A statement failed to evaluate; the run stops there, the pool is not resized.

    ``statement`` is the failing statement's text and ``evaluation`` what was evaluated up to
    it: the service's ``autoScaleRun`` still has ``results`` next to its ``error``.
    """

    code = EVALUATION_ERROR

    def __init__(self, message: str, statement: str = "") -> None:
        super().__init__(message)
        self.statement = statement
        self.evaluation: Evaluation | None = None

    @property
    def values(self) -> tuple[tuple[str, str], ...]:
        pairs = [("Message", self.message)]
        if self.statement:
            pairs.append(("Statement", self.statement))
        return tuple(pairs)
