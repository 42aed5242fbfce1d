"""Opening tether's SQLite database: WAL with full fsync, autocommit, migrated to the latest schema.

Every component's SQLite store opens its connection here, so the inbox and the vault agree on the pragmas and on
how a location is spelled (a path, or ``sqlite:///PATH``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tether.errors import ConfigurationError
from tether.store._migrations import migrate_sqlite

__all__ = ["open_sqlite", "sqlite_path"]


def sqlite_path(path_or_url: str | Path, *, what: str) -> str:
    """The file a location names: a path, or a ``sqlite:///PATH`` URL; another scheme is a configuration error."""
    if isinstance(path_or_url, Path):
        return str(path_or_url)
    if path_or_url.startswith("sqlite:///"):
        return path_or_url.removeprefix("sqlite:///")
    if "://" in path_or_url:
        scheme = path_or_url.split("://", 1)[0]
        raise ConfigurationError(
            f"The {what} stores in SQLite (a path or sqlite:///PATH) or PostgreSQL (postgresql://...); "
            f"{scheme!r} URLs are not supported"
        )
    return path_or_url


def open_sqlite(path_or_url: str | Path, *, busy_timeout: float, now: float, what: str) -> sqlite3.Connection:
    """Open (creating if needed) the database, switch it to WAL with full fsync, and migrate it to the latest schema.

    The connection is in autocommit mode: the store issues ``BEGIN IMMEDIATE``/``COMMIT`` itself, so every write
    is one explicit transaction. ``busy_timeout`` is how long a write waits for another writer's lock; ``what``
    names the database in errors.
    """
    path = sqlite_path(path_or_url, what=what)
    try:
        connection = sqlite3.connect(
            path,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=str(path).startswith("file:"),  # SQLite URIs (e.g. "file:tether.db?mode=ro") whatever the build
        )
    except sqlite3.Error as exc:
        raise ConfigurationError(f"Cannot open the {what} database {path!r}: {exc}") from exc
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the caller is told it happened, surviving power loss as well as kill -9.
        connection.execute("PRAGMA synchronous=FULL")
        migrate_sqlite(connection, now=now, what=what)
    except sqlite3.Error as exc:
        connection.close()
        raise ConfigurationError(f"Cannot prepare the {what} database {path!r}: {exc}") from exc
    except BaseException:
        connection.close()
        raise
    return connection
