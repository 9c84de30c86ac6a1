"""The OData subset Batch list operations accept: ``$filter``, ``$select`` and paging.

A filter such as ``state eq 'completed' and executionInfo/result eq 'failure'`` compiles to
a predicate over an entity document. Supported: eq, ne, gt, ge, lt, le, and, or, not,
parentheses, property paths with '/', and string, number and boolean literals.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from emulator import errors

Predicate = Callable[[dict[str, Any]], bool]
MAX_RESULTS = 1000

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<paren>[()])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_/]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b,
}


def _invalid(text: str, reason: str) -> errors.BatchServiceError:
    return errors.InvalidQueryParameterValue(
        values=[
            ("QueryParameterName", "$filter"),
            ("QueryParameterValue", text),
            ("Reason", reason),
        ]
    )


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match:
            raise _invalid(text, f"unexpected character at position {position}")
        position = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            tokens.append(("literal", value[1:-1].replace("''", "'")))
        elif kind == "number":
            tokens.append(("literal", float(value) if "." in value else int(value)))
        elif kind == "word" and value in ("true", "false"):
            tokens.append(("literal", value == "true"))
        else:
            tokens.append((kind, value))
    return tokens


def _lookup(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return value.lower() if path.endswith(("state", "result")) else value
    return value


def compile_filter(text: str) -> Predicate:
    tokens = _tokens(text)
    position = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal position
        if position >= len(tokens):
            raise _invalid(text, "the expression ends too early")
        position += 1
        return tokens[position - 1]

    def disjunction() -> Predicate:
        left = conjunction()
        while peek() == ("word", "or"):
            take()
            right = conjunction()
            left = (lambda a, b: lambda d: a(d) or b(d))(left, right)
        return left

    def conjunction() -> Predicate:
        left = unary()
        while peek() == ("word", "and"):
            take()
            right = unary()
            left = (lambda a, b: lambda d: a(d) and b(d))(left, right)
        return left

    def unary() -> Predicate:
        if peek() == ("word", "not"):
            take()
            inner = unary()
            return lambda d: not inner(d)
        if peek() == ("paren", "("):
            take()
            inner = disjunction()
            if take() != ("paren", ")"):
                raise _invalid(text, "a parenthesis is not closed")
            return inner
        return comparison()

    def comparison() -> Predicate:
        kind, path = take()
        if kind != "word":
            raise _invalid(text, "a comparison must start with a property name")
        kind, operator = take()
        if kind != "word" or operator not in _COMPARE:
            raise _invalid(text, f"unknown operator {operator!r}")
        kind, literal = take()
        if kind != "literal":
            raise _invalid(text, "a comparison must end with a value")
        compare = _COMPARE[operator]
        if isinstance(literal, str) and path.endswith(("state", "result")):
            literal = literal.lower()
        return lambda d: bool(compare(_lookup(d, path), literal))

    predicate = disjunction()
    if position != len(tokens):
        raise _invalid(text, "unexpected text after the expression")
    return predicate


def select(document: dict[str, Any], properties: list[str] | None) -> dict[str, Any]:
    if not properties:
        return document
    return {key: value for key, value in document.items() if key in properties}


def properties(text: str | None) -> list[str] | None:
    """The property names a ``$select`` asks for (None: all of them)."""
    return [name.strip() for name in text.split(",")] if text else None


def max_results(text: str | None) -> int:
    """A page's size from ``maxresults``: 1 to 1000, 1000 when absent."""
    if text is None:
        return MAX_RESULTS
    try:
        value = int(text)
    except ValueError:
        raise errors.InvalidQueryParameterValue(
            values=[("QueryParameterName", "maxresults"), ("QueryParameterValue", text)]
        ) from None
    if not 1 <= value <= MAX_RESULTS:
        raise errors.OutOfRangeQueryParameterValue(
            values=[("QueryParameterName", "maxresults"), ("QueryParameterValue", text)]
        )
    return value


def skip_token(text: str | None) -> int:
    """Where a page starts: the ``$skiptoken`` of the previous page's nextLink."""
    if text is None:
        return 0
    if not text.isdigit():
        raise errors.InvalidQueryParameterValue(
            values=[("QueryParameterName", "$skiptoken"), ("QueryParameterValue", text)]
        )
    return int(text)
