"""Durable storage for the emulator's entities: SQLite under the data directory.

Every entity (pool, node, job, task) is one JSON document keyed by (kind, key). The state
layer keeps all documents in memory and writes each change through to SQLite inside one
transaction per request, so a ``kill -9`` loses nothing that was acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Document = dict[str, Any]


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entities ("
            " kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,"
            " PRIMARY KEY (kind, key))"
        )
        self._depth = 0

    def load(self, kind: str) -> Iterator[tuple[str, Document]]:
        """Every document of a kind, in the order they were first written."""
        rows = self._db.execute(
            "SELECT key, doc FROM entities WHERE kind = ? ORDER BY rowid", (kind,)
        )
        for key, doc in rows:
            yield key, json.loads(doc)

    def put(self, kind: str, key: str, doc: Document) -> None:
        self._db.execute(
            "INSERT INTO entities (kind, key, doc) VALUES (?, ?, ?)"
            " ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc",
            (kind, key, json.dumps(doc, separators=(",", ":"))),
        )

    def delete(self, kind: str, key: str) -> None:
        self._db.execute("DELETE FROM entities WHERE kind = ? AND key = ?", (kind, key))

    def delete_prefix(self, kind: str, prefix: str) -> None:
        """Delete every document of a kind whose key starts with prefix (a job's tasks)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self._db.execute(
            "DELETE FROM entities WHERE kind = ? AND key LIKE ? ESCAPE '\\'", (kind, escaped + "%")
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
