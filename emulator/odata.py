"""The OData subset Batch list operations accept: ``$filter``, ``$select`` and paging.

A filter such as ``state eq 'completed' and executionInfo/exitCode gt 0`` compiles, against
the list operation's table (``queryable``), to a predicate over an entity document. The
grammar:

    expression := term ('or' term)*
    term       := factor ('and' factor)*
    factor     := 'not' factor | '(' expression ')' | comparison | prefix
    comparison := path ('eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le') literal
    prefix     := 'startswith' '(' path ',' string ')' [('eq' | 'ne') ('true' | 'false')]
    literal    := 'text' | 12 | -3 | true | false | DateTime'2026-01-01T00:00:00Z'

Rules from "Create queries to list Batch resources efficiently": property names are
case-sensitive and values are not; a date and time is written ``DateTime'...'``, W3C-DTF or
RFC 1123; an invalid property or operator is a 400. The error is InvalidQueryParameterValue
("An invalid value was specified for one of the query parameters in the request URI", Batch
status and error codes) naming the parameter, its value and, in Reason, what is wrong: a
property the operation does not filter on, an operator the property does not allow, a
literal of another type than the property's.

Paging is keyset: a page ends at the order key of its last item (``queryable.Listing.order``)
and the next page starts after that key, so deleting or adding items between two requests
neither skips nor repeats the others. The ``$skiptoken`` is that key, opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import operator
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from emulator import errors
from emulator.queryable import Filterable, Kind, Listing

Document = dict[str, Any]
Predicate = Callable[[Document], bool]
MAX_RESULTS = 1000

_TOKEN = re.compile(
    r"\s*(?:(?P<datetime>DateTime'[^']*')|(?P<string>'(?:[^']|'')*')"
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<paren>[()])|(?P<comma>,)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_/]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_LITERAL_KIND = {str: Kind.STRING, int: Kind.INT, bool: Kind.BOOL, datetime: Kind.DATETIME}


def _invalid(parameter: str, text: str, reason: str) -> errors.BatchServiceError:
    return errors.InvalidQueryParameterValue(
        values=[
            ("QueryParameterName", parameter),
            ("QueryParameterValue", text),
            ("Reason", reason),
        ]
    )


def _datetime(text: str, source: str) -> datetime:
    """A ``DateTime'...'`` literal's moment: W3C-DTF or RFC 1123, UTC when no zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise _invalid("$filter", source, f"{text!r} is not a date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match:
            raise _invalid("$filter", text, f"unexpected character at position {position}")
        position = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "datetime":
            tokens.append(("literal", _datetime(value[len("DateTime'") : -1], text)))
        elif kind == "string":
            tokens.append(("literal", value[1:-1].replace("''", "'")))
        elif kind == "number":
            tokens.append(("literal", float(value) if "." in value else int(value)))
        elif kind == "word" and value in ("true", "false"):
            tokens.append(("literal", value == "true"))
        else:
            tokens.append((kind, value))
    return tokens


def lookup(document: Document, path: str) -> Any:
    """The value at a '/' path of a document; None when any step is missing."""
    value: Any = document
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _normal(kind: Kind, value: Any) -> Any:
    """A value as it compares: strings folded to one case, timestamps as moments."""
    if value is None:
        return None
    if kind in (Kind.STRING, Kind.ENUM):
        return str(value).lower()
    if kind is Kind.DATETIME and isinstance(value, str):
        return _datetime(value, value)
    return value


def compile_filter(text: str, listing: Listing) -> Predicate:
    """The predicate of a ``$filter`` on the list operation ``listing`` describes."""
    tokens = _tokens(text)
    position = 0

    def fail(reason: str) -> errors.BatchServiceError:
        return _invalid("$filter", text, reason)

    def peek() -> tuple[str, Any] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal position
        if position >= len(tokens):
            raise fail("the expression ends too early")
        position += 1
        return tokens[position - 1]

    def expect(token: tuple[str, Any], what: str) -> None:
        if take() != token:
            raise fail(f"expected {what}")

    def field(path: Any, operation: str) -> Filterable:
        if not isinstance(path, str) or path in ("and", "or", "not"):
            raise fail("a comparison must start with a property name")
        found = listing.filterable.get(path)
        if found is None:
            raise fail(f"the property '{path}' cannot be used in a filter of this list")
        if operation not in found.operators:
            allowed = ", ".join(sorted(found.operators))
            raise fail(f"'{operation}' is not allowed on '{path}' (only {allowed})")
        return found

    def disjunction() -> Predicate:
        left = conjunction()
        while peek() == ("word", "or"):
            take()
            right = conjunction()
            left = (lambda a, b: lambda d: a(d) or b(d))(left, right)
        return left

    def conjunction() -> Predicate:
        left = factor()
        while peek() == ("word", "and"):
            take()
            right = factor()
            left = (lambda a, b: lambda d: a(d) and b(d))(left, right)
        return left

    def factor() -> Predicate:
        if peek() == ("word", "not"):
            take()
            inner = factor()
            return lambda d: not inner(d)
        if peek() == ("paren", "("):
            take()
            inner = disjunction()
            expect(("paren", ")"), "')'")
            return inner
        if peek() == ("word", "startswith"):
            return prefix()
        return comparison()

    def prefix() -> Predicate:
        take()
        expect(("paren", "("), "'(' after startswith")
        kind, path = take()
        found = field(path if kind == "word" else None, "startswith")
        expect(("comma", ","), "',' in startswith")
        kind, literal = take()
        if kind != "literal" or not isinstance(literal, str):
            raise fail("startswith takes a string")
        expect(("paren", ")"), "')' after startswith")
        start = _normal(found.kind, literal)
        matches: Predicate = lambda d: (  # noqa: E731
            isinstance(value := _normal(found.kind, lookup(d, path)), str)
            and value.startswith(start)
        )
        if peek() in (("word", "eq"), ("word", "ne")):  # OData v3: startswith(...) eq true
            negate = take()[1] == "ne"
            kind, wanted = take()
            if kind != "literal" or not isinstance(wanted, bool):
                raise fail("startswith(...) compares with true or false")
            return lambda d: matches(d) is (wanted != negate)
        return matches

    def comparison() -> Predicate:
        kind, path = take()
        if kind != "word":
            raise fail("a comparison must start with a property name")
        kind, operation = take()
        if kind != "word" or operation not in _COMPARE:
            raise fail(f"unknown operator {operation!r}")
        found = field(path, operation)
        kind, literal = take()
        if kind != "literal":
            raise fail("a comparison must end with a value")
        if _LITERAL_KIND.get(type(literal)) not in _kinds(found.kind):
            raise fail(f"'{path}' is {found.kind.value}: {_shown(literal)} is not")
        compare, wanted = _COMPARE[operation], _normal(found.kind, literal)

        def value(document: Document) -> Any:
            found_value = lookup(document, path)
            return _normal(found.kind, found.default if found_value is None else found_value)

        if operation in ("eq", "ne"):  # a missing property equals nothing
            return lambda d: bool(compare(value(d), wanted))
        return lambda d: (current := value(d)) is not None and bool(compare(current, wanted))

    predicate = disjunction()
    if position != len(tokens):
        raise fail("unexpected text after the expression")
    return predicate


def _shown(literal: Any) -> str:
    """A literal as a filter writes it, for a Reason."""
    if isinstance(literal, bool):
        return "true" if literal else "false"
    if isinstance(literal, datetime):
        return f"DateTime'{literal.isoformat()}'"
    if isinstance(literal, str):
        return "'" + literal.replace("'", "''") + "'"
    return str(literal)


def _kinds(kind: Kind) -> tuple[Kind, ...]:
    """The literal kinds a property of ``kind`` compares with (an enum's are strings)."""
    return (Kind.STRING,) if kind is Kind.ENUM else (kind,)


# --- $select ------------------------------------------------------------------------------


def properties(text: str | None, listing: Listing) -> list[str] | None:
    """The property names a ``$select`` asks for (None: all of them).

    Each must be a top-level property of the entity type ("You can specify any of the
    properties for the entity type you're querying", and property names are case-sensitive:
    "Create queries to list Batch resources efficiently"). The service speaks OData v3
    (DataServiceVersion 3.0), whose $select paths go through navigation properties only, and
    Batch entities have none: ``executionInfo/exitCode`` is refused like an unknown name,
    with the 400 the same page gives for an invalid property.
    """
    if not text:
        return None
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if "/" in name:
            reason = f"'{name}' is a path: $select takes top-level properties only"
            raise _invalid("$select", text, reason)
        if name not in listing.selectable:
            raise _invalid("$select", text, f"'{name}' is not a property of this entity")
    return names


def select(document: Document, names: list[str] | None) -> Document:
    if not names:
        return document
    return {key: value for key, value in document.items() if key in names}


# --- paging -------------------------------------------------------------------------------


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


def skip_token(text: str | None) -> str | None:
    """The key a page starts after, from the ``$skiptoken`` of the previous nextLink."""
    if text is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(text.encode("ascii") + b"=="))
    except (ValueError, UnicodeError, binascii.Error):
        decoded = None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("after"), str):
        raise _invalid("$skiptoken", text, "not a token this service issued")
    after: str = decoded["after"]
    return after


def next_token(after: str) -> str:
    """The ``$skiptoken`` of the page that follows the key ``after``: urlsafe base64 JSON."""
    raw = json.dumps({"after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def order_key(listing: Listing) -> Callable[[Document], str]:
    """A document's place in its list: its order paths' values, joined by NUL (which sorts
    before any character a value holds, so the joined strings sort as the tuples would)."""
    if len(listing.order) == 1 and "/" not in listing.order[0]:
        return operator.itemgetter(listing.order[0])
    paths = listing.order
    return lambda document: "\0".join(str(lookup(document, path) or "") for path in paths)


def _same(document: Document) -> Document:
    return document


def page(
    items: Iterable[Any],
    listing: Listing,
    limit: int,
    after: str | None,
    render: Callable[[Any], Document],
    predicate: Predicate | None = None,
) -> tuple[list[Document], str | None]:
    """The documents of one page, in ``listing.order``, and the key the next page starts
    after (None: this is the last). Only the items of the page (and, with a filter, those
    tested on the way) are rendered."""
    ordered = list(items)
    key: Callable[[Any], str] = order_key(listing)
    if ordered and not isinstance(ordered[0], dict):
        if listing.order == ("id",):  # a record's id is its document's: render only the page
            key = operator.attrgetter("id")
        else:  # short lists (images, node counts, usage): render them all to order them
            ordered, render = [render(item) for item in ordered], _same
    ordered.sort(key=key)
    start = 0 if after is None else bisect.bisect_right(ordered, after, key=key)
    if predicate is None:
        chosen = ordered[start : start + limit]
        more = start + limit < len(ordered)
        last = key(chosen[-1]) if chosen and more else None
        return [render(item) for item in chosen], last
    documents: list[Document] = []
    last_key: str | None = None
    for item in ordered[start:]:
        document = render(item)
        if not predicate(document):
            continue
        if len(documents) == limit:  # one more matches: there is a next page
            return documents, last_key
        documents.append(document)
        last_key = key(item)
    return documents, None
