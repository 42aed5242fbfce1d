"""Every table tether keeps, as one ordered list of numbered migrations shared by all components.

Why one list rather than a version per component: the inbox and the vault live in the same database file, and a
single number then says exactly which schema a file has. ``tether_migrations`` keeps the shape the inbox gave it
(``version`` is the primary key), so databases created by earlier releases open unchanged and simply gain the
later steps; an older tether that meets a file migrated further refuses it ("newer than this tether") instead of
writing to a schema it does not know, which is the right outcome whichever component added the step. The price is
that two branches adding a step at once must renumber when they merge: every step lives in this one tuple, so git
reports that as a conflict on these lines rather than letting two "version 2" steps slip through.

Opening any component's store applies every pending step (the inbox's database also gets the ``connections``
table, empty); steps are small ``CREATE`` statements, so that costs nothing worth a finer scheme.

The DDL is kept to what SQLite and PostgreSQL share (``INSERT ... RETURNING``, Unix times as ``DOUBLE
PRECISION``), so PostgreSQL applies the same steps with two spellings substituted (:func:`postgres_statement`):
the never-reused id (``INTEGER PRIMARY KEY AUTOINCREMENT`` here, ``BIGINT GENERATED ALWAYS AS IDENTITY`` there)
and ``BLOB``/``BYTEA``.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate_postgres", "migrate_sqlite", "postgres_statement"]

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
    (
        2,
        "connections vault",
        (
            # Tokens are ciphertexts (tether.auth._vault_cipher); key_id names the key all of a row's ciphertexts
            # are sealed under, so rotation finds the rows still under an older key with an index. status has no
            # CHECK: new statuses must not need a table rebuild on SQLite; the vault validates them.
            """CREATE TABLE connections (
                integration TEXT NOT NULL,
                id TEXT NOT NULL,
                status TEXT NOT NULL,
                access_token TEXT NOT NULL,
                refresh_token TEXT,
                token_type TEXT NOT NULL,
                scopes TEXT NOT NULL,
                expires_at DOUBLE PRECISION,
                key_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                refresh_owner TEXT,
                refresh_lease_until DOUBLE PRECISION,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (integration, id)
            )""",
            "CREATE INDEX connections_key_id ON connections (key_id)",
        ),
    ),
    (
        3,
        "oauth states",
        (
            # Pending authorization flows (tether.auth._oauth_state): filed under the SHA-256 of state; taken with
            # DELETE ... RETURNING, so a state is used once. The PKCE verifier lives here for at most the state's
            # lifetime; without the code and the client's credentials it redeems nothing.
            """CREATE TABLE oauth_states (
                state_key TEXT PRIMARY KEY,
                session_hash TEXT NOT NULL,
                integration TEXT NOT NULL,
                connection_id TEXT NOT NULL,
                redirect_uri TEXT NOT NULL,
                code_verifier TEXT NOT NULL,
                nonce TEXT,
                scopes TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX oauth_states_expires ON oauth_states (expires_at)",
        ),
    ),
)
"""``(version, name, statements)`` in order; append, never edit, once released."""

SCHEMA_VERSION = MIGRATIONS[-1][0]

MIGRATION_LOCK = 0x7E7E_1B0C
"""PostgreSQL ``pg_advisory_xact_lock`` key held while migrating (the inbox's, kept so mixed versions agree)."""

_CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS tether_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)

_SPELLINGS = (
    ("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    ("BLOB", "BYTEA"),
)


def postgres_statement(statement: str) -> str:
    """A migration statement written for SQLite, in PostgreSQL's spelling."""
    for sqlite, postgres in _SPELLINGS:
        statement = statement.replace(sqlite, postgres)
    return statement


def _check_version(current: int, what: str) -> None:
    if current > SCHEMA_VERSION:
        raise ConfigurationError(
            f"The {what} database is at schema version {current}, newer than this tether ({SCHEMA_VERSION}); "
            "upgrade tether"
        )


def migrate_sqlite(connection: sqlite3.Connection, *, now: float, what: str) -> None:
    """Apply every pending step to an autocommit SQLite connection, in one ``BEGIN IMMEDIATE`` transaction.

    ``what`` names the database in errors ("webhook inbox", "connections vault").
    """
    connection.execute(_CREATE_TABLE)
    connection.execute("BEGIN IMMEDIATE")  # two processes opening a fresh file migrate one after the other
    try:
        (current,) = connection.execute("SELECT COALESCE(MAX(version), 0) FROM tether_migrations").fetchone()
        _check_version(current, what)
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


def migrate_postgres(connection: psycopg.Connection[Any], *, now: float, what: str) -> None:
    """Apply every pending step in one transaction, under an advisory lock so concurrent openers take turns."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(_CREATE_TABLE)
        row = connection.execute("SELECT COALESCE(MAX(version), 0) FROM tether_migrations").fetchone()
        current = int(row[0]) if row is not None else 0
        _check_version(current, what)
        for version, name, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                connection.execute(postgres_statement(statement))
            connection.execute(
                "INSERT INTO tether_migrations (version, name, applied_at) VALUES (%s, %s, %s)", (version, name, now)
            )
