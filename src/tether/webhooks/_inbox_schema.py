"""The inbox's SQL schema as numbered migrations, and opening a SQLite database in WAL mode at the latest version.

The DDL is kept to what SQLite and PostgreSQL share (``INSERT ... RETURNING``, Unix times as ``DOUBLE PRECISION``),
so a PostgreSQL store can apply the same numbered steps with two spellings substituted: the never-reused id
(``INTEGER PRIMARY KEY AUTOINCREMENT`` here, ``BIGINT GENERATED ALWAYS AS IDENTITY`` there) and ``BLOB``/``BYTEA``.
``tether_migrations`` records which steps a database has; a database newer than this code is refused rather than
written to.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tether.errors import ConfigurationError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "open_sqlite"]

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "webhook inbox",
        (
            """CREATE TABLE webhook_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                source TEXT NOT NULL,
                provider_event_id TEXT NOT NULL,
                event_type TEXT,
                headers TEXT NOT NULL,
                body BLOB NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'processed', 'dead')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at DOUBLE PRECISION NOT NULL,
                lease_owner TEXT,
                lease_expires_at DOUBLE PRECISION,
                last_error TEXT,
                processed_at DOUBLE PRECISION,
                order_key TEXT,
                UNIQUE (source, provider_event_id)
            )""",
            "CREATE INDEX webhook_events_due ON webhook_events (status, next_attempt_at)",
            "CREATE INDEX webhook_events_order ON webhook_events (source, order_key, id)",
            "CREATE INDEX webhook_events_received ON webhook_events (source, received_at)",
        ),
    ),
)
"""``(version, name, statements)`` in order; append, never edit, once released."""

SCHEMA_VERSION = MIGRATIONS[-1][0]


def _sqlite_path(path_or_url: str | Path) -> str:
    if isinstance(path_or_url, Path):
        return str(path_or_url)
    if path_or_url.startswith("sqlite:///"):
        return path_or_url.removeprefix("sqlite:///")
    if "://" in path_or_url:
        scheme = path_or_url.split("://", 1)[0]
        raise ConfigurationError(
            f"The webhook inbox stores in SQLite (a path or sqlite:///PATH) or PostgreSQL (postgresql://...); "
            f"{scheme!r} URLs are not supported"
        )
    return path_or_url


def _check_version(current: int) -> None:
    if current > SCHEMA_VERSION:
        raise ConfigurationError(
            f"The inbox database is at schema version {current}, newer than this tether ({SCHEMA_VERSION}); "
            "upgrade tether"
        )


def _migrate(connection: sqlite3.Connection, now: float) -> None:
    connection.execute(
        "CREATE TABLE IF NOT EXISTS tether_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
    )
    connection.execute("BEGIN IMMEDIATE")  # two processes opening a fresh file migrate one after the other
    try:
        (current,) = connection.execute("SELECT COALESCE(MAX(version), 0) FROM tether_migrations").fetchone()
        _check_version(current)
        for version, name, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                connection.execute(statement)
            connection.execute(
                "INSERT INTO tether_migrations (version, name, applied_at) VALUES (?, ?, ?)", (version, name, now)
            )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def open_sqlite(path_or_url: str | Path, *, busy_timeout: float, now: float) -> sqlite3.Connection:
    """Open (creating if needed) the database, switch it to WAL with full fsync, and migrate it to the latest schema.

    The connection is in autocommit mode: the store issues ``BEGIN IMMEDIATE``/``COMMIT`` itself, so every write
    is one explicit transaction. ``busy_timeout`` is how long a write waits for another writer's lock.
    """
    path = _sqlite_path(path_or_url)
    try:
        connection = sqlite3.connect(
            path,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=str(path).startswith(
                "file:"
            ),  # SQLite URIs (e.g. "file:inbox.db?mode=ro") whatever the build's default
        )
    except sqlite3.Error as exc:
        raise ConfigurationError(f"Cannot open the webhook inbox database {path!r}: {exc}") from exc
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before receive() answers 2xx, surviving power loss as well as kill -9.
        connection.execute("PRAGMA synchronous=FULL")
        _migrate(connection, now)
    except sqlite3.Error as exc:
        connection.close()
        raise ConfigurationError(f"Cannot prepare the webhook inbox database {path!r}: {exc}") from exc
    except BaseException:
        connection.close()
        raise
    return connection
