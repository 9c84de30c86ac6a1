"""Durable storage for the emulator's records: SQLite under the data directory.

Every record (pool, node, job, task, each task that satisfied its dependents, and each
job's preparation on a node) is one JSON row keyed by (kind, key), written as its
dataclass fields (internal ones included: this is the emulator's own file, not the wire).
The state keeps all records in memory and writes each change through inside one
transaction per request, so a ``kill -9`` loses nothing that was acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

R = TypeVar("R")


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records ("
            " kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,"
            " PRIMARY KEY (kind, key))"
        )
        self._depth = 0

    def load(self, kind: str, record_type: type[R]) -> Iterator[R]:
        """Every record of a kind, in the order they were first written."""
        rows = self._db.execute("SELECT doc FROM records WHERE kind = ? ORDER BY rowid", (kind,))
        for (doc,) in rows:
            yield decode(record_type, json.loads(doc))

    def put(self, kind: str, key: str, record: object) -> None:
        self._db.execute(
            "INSERT INTO records (kind, key, doc) VALUES (?, ?, ?)"
            " ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc",
            (kind, key, json.dumps(encode(record), separators=(",", ":"))),
        )

    def delete(self, kind: str, key: str) -> None:
        self._db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))

    def delete_prefix(self, kind: str, prefix: str) -> None:
        """Delete every record of a kind whose key starts with prefix (a job's tasks)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self._db.execute(
            "DELETE FROM records WHERE kind = ? AND key LIKE ? ESCAPE '\\'", (kind, escaped + "%")
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; nested uses join the outer transaction."""
        if self._depth == 0:
            self._db.execute("BEGIN")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


def encode(value: Any) -> Any:
    """A record as JSON: dataclasses by field, datetimes in ISO 8601, tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    return value


def decode(record_type: type[R], data: dict[str, Any]) -> R:
    """The record ``encode`` wrote, rebuilt from its fields' type hints."""
    hints = get_type_hints(record_type)
    names = {f.name for f in fields(record_type)}  # type: ignore[arg-type]
    return record_type(**{name: _decode(hints[name], data[name]) for name in names & set(data)})


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if get_origin(hint) in (Union, types.UnionType):
        (hint,) = [arg for arg in get_args(hint) if arg is not type(None)]
    origin = get_origin(hint)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if isinstance(hint, type) and is_dataclass(hint):
        return decode(hint, value)
    if origin is list:
        (item,) = get_args(hint)
        return [_decode(item, element) for element in value]
    if origin is tuple:
        arguments = get_args(hint)
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_decode(arguments[0], element) for element in value)
        return tuple(_decode(a, element) for a, element in zip(arguments, value, strict=True))
    return value
