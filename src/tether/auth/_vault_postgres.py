"""The vault's PostgreSQL database: the same schema and migrations as SQLite's, through psycopg 3.

One autocommit connection shared between threads under a lock, reopened once it is broken (the server restarted);
every operation is one ``connection.transaction()`` at READ COMMITTED. The shared SQL's ``:name`` parameters are
rewritten to psycopg's ``%(name)s`` once per statement text and cached.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tether.auth._vault_storage import Run
from tether.errors import ConfigurationError
from tether.store._migrations import migrate_postgres
from tether.store._postgres import connect_postgres, psycopg_module

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresDatabase"]

_WHAT = "connections vault"
_PARAMETER = re.compile(r"(?<![:\w]):([a-z_]+)")


@functools.lru_cache(maxsize=64)
def _psycopg_sql(sql: str) -> str:
    return _PARAMETER.sub(r"%(\1)s", sql)


class PostgresDatabase:
    """A :class:`tether.auth._vault_storage.Database` on PostgreSQL (``options=-csearch_path=...`` picks a schema)."""

    __slots__ = ("_connect_timeout", "_connection", "_lock", "_url")

    lock_rows = " FOR UPDATE"

    def __init__(self, url: str, *, connect_timeout: float, now: float) -> None:
        driver = psycopg_module(_WHAT)
        self._url = url
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        try:
            self._connection = connect_postgres(url, connect_timeout, what=_WHAT)
        except driver.Error as exc:
            raise ConfigurationError(f"Cannot open the connections vault database: {exc}") from exc
        try:
            migrate_postgres(self._connection, now=now, what=_WHAT)
        except driver.Error as exc:
            self._connection.close()
            raise ConfigurationError(f"Cannot prepare the connections vault database: {exc}") from exc
        except BaseException:
            self._connection.close()
            raise

    @staticmethod
    def _runner(connection: psycopg.Connection[Any]) -> Run:
        def run(sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
            cursor = connection.execute(_psycopg_sql(sql), params)
            return list(cursor.fetchall()) if cursor.description is not None else []

        return run

    @contextmanager
    def transaction(self) -> Iterator[Run]:
        """One transaction on the (re)opened connection."""
        with self._lock:
            if self._connection.broken:
                self._connection.close()
                self._connection = connect_postgres(self._url, self._connect_timeout, what=_WHAT)
            with self._connection.transaction():
                yield self._runner(self._connection)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()
