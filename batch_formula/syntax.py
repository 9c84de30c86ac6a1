"""The formula language's tokens, syntax tree and parser.

A formula is statements separated by ``;`` (an empty statement, a trailing ``;`` for
instance, is allowed); line breaks are white space and ``//`` starts a comment running to the
end of its line. A statement is an assignment, ``name = expression``, or an expression alone
(the service accepts ``$something_useless`` and fails it only when evaluating). A name is a
variable with or without its ``$`` (the documentation: "For user-defined variables, the
dollar sign is optional"), or one of the bare words the language defines
(``TimeInterval_Minute``, ``taskcompletion``...). Names, functions and methods are matched
without regard to case.

Operators, loosest first: ``?:`` (right to left), ``||``, ``&&``, ``==`` ``!=``,
``<`` ``<=`` ``>`` ``>=``, ``+`` ``-``, ``*`` ``/``, then unary ``-`` and ``!``, then calls
``f(...)`` and method calls ``$Metric.Method(...)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from batch_formula.errors import (
    MAX_FORMULA_LENGTH,
    MAX_STATEMENTS,
    TOO_LONG,
    TOO_LONG_MESSAGE,
    FormulaSyntaxError,
)

# --- tokens ---------------------------------------------------------------------------------

NUMBER: Final = "number"
NAME: Final = "name"
OPERATOR: Final = "operator"
END: Final = "end"

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
    | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*)
    | (?P<operator>&&|\|\||==|!=|<=|>=|[-+*/<>!?:(),;.=])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


def tokenize(text: str, *, lenient: bool = False) -> Iterator[Token]:
    """The formula's tokens, ending with an ``end`` token.

    A character no token can start with is a syntax error, or skipped when ``lenient``.
    """
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if not lenient:
                raise FormulaSyntaxError(f"Unexpected character {text[position]!r}", text, position)
            position += 1
            continue
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            yield Token(kind, match.group(), position)
        position = match.end()
    yield Token(END, "", len(text))


# --- the syntax tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float
    position: int


@dataclass(frozen=True)
class Name:
    """A variable or a bare word; ``key`` is its name in lower case, for lookups."""

    name: str
    position: int

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Unary:
    operator: str
    operand: Expression
    position: int


@dataclass(frozen=True)
class Binary:
    operator: str
    left: Expression
    right: Expression
    position: int


@dataclass(frozen=True)
class Conditional:
    condition: Expression
    then: Expression
    otherwise: Expression
    position: int


@dataclass(frozen=True)
class Call:
    function: str
    arguments: tuple[Expression, ...]
    position: int


@dataclass(frozen=True)
class MethodCall:
    target: Name
    method: str
    arguments: tuple[Expression, ...]
    position: int


Expression = Number | Name | Unary | Binary | Conditional | Call | MethodCall


@dataclass(frozen=True)
class Assignment:
    target: Name
    value: Expression
    source: str
    position: int


@dataclass(frozen=True)
class ExpressionStatement:
    value: Expression
    source: str
    position: int


Statement = Assignment | ExpressionStatement


# --- the parser -----------------------------------------------------------------------------

_COMPARISONS: Final = (("==", "!="), ("<", "<=", ">", ">="))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = list(tokenize(text))
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def error(self, message: str, token: Token | None = None) -> FormulaSyntaxError:
        token = token or self.token
        return FormulaSyntaxError(message, self.text, token.position)

    def unexpected(self, expected: str) -> FormulaSyntaxError:
        found = "the end of the formula" if self.token.kind == END else repr(self.token.text)
        return self.error(f"Expected {expected} but found {found}")

    def advance(self) -> Token:
        token = self.token
        self.index += 1
        return token

    def at(self, *operators: str) -> bool:
        return self.token.kind == OPERATOR and self.token.text in operators

    def expect(self, operator: str) -> Token:
        if not self.at(operator):
            raise self.unexpected(repr(operator))
        return self.advance()

    def formula(self) -> tuple[Statement, ...]:
        statements: list[Statement] = []
        while self.token.kind != END:
            if self.at(";"):
                self.advance()
                continue
            start = self.token
            statement = self.statement()
            if len(statements) == MAX_STATEMENTS:
                raise self.error(f"A formula has at most {MAX_STATEMENTS} statements", start)
            statements.append(statement)
            if self.token.kind != END:
                if not self.at(";"):
                    raise self.unexpected("';' or an operator")
                self.advance()
        return tuple(statements)

    def statement(self) -> Statement:
        start = self.token
        nxt = self.tokens[self.index + 1]
        if start.kind == NAME and nxt.kind == OPERATOR and nxt.text == "=":
            self.advance()
            self.advance()
            value = self.expression()
            source = self.text[start.position : self.token.position].strip()
            return Assignment(Name(start.text, start.position), value, source, start.position)
        value = self.expression()
        if self.at("="):
            raise self.error("Only a variable can be assigned to")
        source = self.text[start.position : self.token.position].strip()
        return ExpressionStatement(value, source, start.position)

    def expression(self) -> Expression:
        condition = self.logical_or()
        if not self.at("?"):
            return condition
        question = self.advance()
        then = self.expression()
        self.expect(":")
        otherwise = self.expression()
        return Conditional(condition, then, otherwise, question.position)

    def logical_or(self) -> Expression:
        left = self.logical_and()
        while self.at("||"):
            operator = self.advance()
            left = Binary("||", left, self.logical_and(), operator.position)
        return left

    def logical_and(self) -> Expression:
        left = self.comparison(0)
        while self.at("&&"):
            operator = self.advance()
            left = Binary("&&", left, self.comparison(0), operator.position)
        return left

    def comparison(self, level: int) -> Expression:
        if level == len(_COMPARISONS):
            return self.additive()
        left = self.comparison(level + 1)
        while self.at(*_COMPARISONS[level]):
            operator = self.advance()
            right = self.comparison(level + 1)
            left = Binary(operator.text, left, right, operator.position)
        return left

    def additive(self) -> Expression:
        left = self.multiplicative()
        while self.at("+", "-"):
            operator = self.advance()
            left = Binary(operator.text, left, self.multiplicative(), operator.position)
        return left

    def multiplicative(self) -> Expression:
        left = self.unary()
        while self.at("*", "/"):
            operator = self.advance()
            left = Binary(operator.text, left, self.unary(), operator.position)
        return left

    def unary(self) -> Expression:
        if self.at("-", "!", "+"):
            operator = self.advance()
            operand = self.unary()
            if operator.text == "+":
                return operand
            return Unary(operator.text, operand, operator.position)
        return self.postfix()

    def postfix(self) -> Expression:
        primary = self.primary()
        if not self.at("."):
            return primary
        dot = self.advance()
        if not isinstance(primary, Name):
            raise self.error("Only a variable has methods", dot)
        if self.token.kind != NAME or self.token.text.startswith("$"):
            raise self.unexpected("a method name")
        method = self.advance()
        if not self.at("("):
            raise self.unexpected(f"'(' after the method {method.text}")
        arguments = self.arguments()
        result = MethodCall(primary, method.text, arguments, method.position)
        if self.at("."):
            raise self.error("A method's result has no methods")
        return result

    def arguments(self) -> tuple[Expression, ...]:
        self.expect("(")
        arguments: list[Expression] = []
        if not self.at(")"):
            arguments.append(self.expression())
            while self.at(","):
                self.advance()
                arguments.append(self.expression())
        if not self.at(")"):
            raise self.unexpected("',' or ')'")
        self.advance()
        return tuple(arguments)

    def primary(self) -> Expression:
        token = self.token
        if token.kind == NUMBER:
            self.advance()
            return Number(float(token.text), token.position)
        if token.kind == NAME:
            self.advance()
            if self.at("(") and not token.text.startswith("$"):
                return Call(token.text, self.arguments(), token.position)
            return Name(token.text, token.position)
        if self.at("("):
            self.advance()
            inner = self.expression()
            if not self.at(")"):
                raise self.unexpected("')'")
            self.advance()
            return inner
        raise self.unexpected("a number, a variable, a function call or '('")


def parse_statements(text: str) -> tuple[Statement, ...]:
    """The statements of ``text``; ``FormulaSyntaxError`` when it does not parse."""
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaSyntaxError(TOO_LONG_MESSAGE, text, MAX_FORMULA_LENGTH, TOO_LONG)
    return _Parser(text).formula()


def names(expression: Expression) -> Iterator[Name]:
    """Every name an expression reads, leftmost first (a method call's variable included)."""
    if isinstance(expression, Name):
        yield expression
    elif isinstance(expression, Unary):
        yield from names(expression.operand)
    elif isinstance(expression, Binary):
        yield from names(expression.left)
        yield from names(expression.right)
    elif isinstance(expression, Conditional):
        for part in (expression.condition, expression.then, expression.otherwise):
            yield from names(part)
    elif isinstance(expression, Call):
        for argument in expression.arguments:
            yield from names(argument)
    elif isinstance(expression, MethodCall):
        yield expression.target
        for argument in expression.arguments:
            yield from names(argument)
