"""The upper bound a formula puts on each target node count, read from its syntax tree."""

from __future__ import annotations

from collections.abc import Mapping

from batch_formula.evaluate import ALIASES, TARGETS, Formula
from batch_formula.syntax import (
    NAME,
    Assignment,
    Call,
    Expression,
    Name,
    Number,
    names,
    tokenize,
)

_TARGET_KEYS = {target.lower(): target for target in TARGETS}


def _target(name: Name) -> tuple[str, bool] | None:
    """The target a name writes, and whether through its alias; None for other names."""
    if name.key in _TARGET_KEYS:
        return _TARGET_KEYS[name.key], False
    if name.key in ALIASES:
        return ALIASES[name.key], True
    return None


def _constant(expression: Expression, constants: Mapping[str, int]) -> int | None:
    """A whole number >= 0 written out, or a variable last assigned one."""
    if isinstance(expression, Number):
        value = expression.value
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(expression, Name):
        return constants.get(expression.key)
    return None


def _cap(expression: Expression, constants: Mapping[str, int]) -> int | None:
    """N for ``N`` or ``min(..., N, ...)`` (the smallest such N); None for anything else."""
    value = _constant(expression, constants)
    if value is not None:
        return value
    if isinstance(expression, Call) and expression.function.lower() == "min":
        bounds = [
            bound
            for argument in expression.arguments
            if (bound := _constant(argument, constants)) is not None
        ]
        return min(bounds) if bounds else None
    return None


def target_caps(formula: Formula) -> dict[str, int | None]:
    """The upper bound the formula puts on each target node count it assigns.

    Keys are ``$TargetDedicatedNodes`` and ``$TargetLowPriorityNodes``, present when the
    formula assigns them (or their aliases ``$TargetDedicated``, ``$TargetLowPriority``; the
    full name wins when both are assigned, as on the service). The statements run in order,
    so the last assignment decides: the cap is N when it reads ``min(N, <anything>)`` (the
    arguments in any order, the smallest N of several) or ``N``, N a whole number >= 0
    written out or a variable last assigned one; it is None, no bound, for anything else, a
    ternary or ``max(0, min(4, x))`` included. A statement that starts with a target without
    assigning it (``$TargetDedicatedNodes == 4;``, an assignment mistyped) leaves that target
    unbounded too.
    """
    constants: dict[str, int] = {}
    caps: dict[str, int | None] = {}
    aliased: dict[str, int | None] = {}
    for statement in formula.statements:
        if isinstance(statement, Assignment):
            target = _target(statement.target)
            if target is not None:
                name, alias = target
                (aliased if alias else caps)[name] = _cap(statement.value, constants)
            value = _constant(statement.value, constants)
            if value is None:
                constants.pop(statement.target.key, None)
            else:
                constants[statement.target.key] = value
        else:
            leading = next(names(statement.value), None)
            if leading is None or leading.position != statement.position:
                continue
            target = _target(leading)
            if target is not None:
                name, alias = target
                (aliased if alias else caps)[name] = None
    return {**aliased, **caps}


def named_targets(text: str) -> set[str]:
    """The targets a text names anywhere, parsed or not (characters out of place skipped)."""
    found: set[str] = set()
    for token in tokenize(text, lenient=True):
        if token.kind == NAME:
            target = _target(Name(token.text, token.position))
            if target is not None:
                found.add(target[0])
    return found
