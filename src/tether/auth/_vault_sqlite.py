"""The vault's SQLite database: the file the webhook inbox uses too (``tether.db``), opened the same way.

One autocommit connection shared between threads under a lock; every operation is one ``BEGIN IMMEDIATE``
transaction, which takes the file's write lock up front, so a read-then-write (rotation's batch, a failed
compare-and-swap's re-read) sees no other writer in between. Other processes wait up to ``busy_timeout``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tether.auth._vault_storage import Run
from tether.store._sqlite import open_sqlite

__all__ = ["SQLiteDatabase"]


class SQLiteDatabase:
    """A :class:`tether.auth._vault_storage.Database` over one SQLite file, migrated on open."""

    __slots__ = ("_connection", "_lock")

    lock_rows = ""

    def __init__(self, path_or_url: str | Path, *, busy_timeout: float, now: float) -> None:
        self._connection = open_sqlite(path_or_url, busy_timeout=busy_timeout, now=now, what="connections vault")
        self._lock = threading.Lock()

    def _run(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[Run]:
        """One ``BEGIN IMMEDIATE`` transaction."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._run
            except BaseException:
                if self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()
