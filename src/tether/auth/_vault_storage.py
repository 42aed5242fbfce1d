"""Every read and write of the ``connections`` table, written once for SQLite and PostgreSQL.

Rows hold ciphertexts only: this module never sees a key or a plaintext token (the vault seals before writing and
unseals after reading). The SQL is shared and uses ``:name`` parameters; a :class:`Database` runs it in one
explicit transaction per operation and translates the parameter style for its driver. The only dialect
difference is ``FOR UPDATE`` on PostgreSQL when rotation reads a batch (SQLite's ``BEGIN IMMEDIATE`` already holds
the file's write lock for the transaction).

**The refresh right** is a lease on the row (``refresh_owner``, ``refresh_lease_until``) taken by one conditional
``UPDATE ... RETURNING``: atomic on both databases (SQLite writes one at a time; PostgreSQL re-checks the ``WHERE``
of a concurrent ``UPDATE`` against the committed row), so one caller gets it and the others learn who has it,
at once. A lease rather than holding ``BEGIN IMMEDIATE`` or ``SELECT ... FOR UPDATE`` across the refresh: the
refresh is a network call, and an open SQLite write transaction would stall every writer of the file (the webhook
inbox included) for its duration, and an open PostgreSQL transaction would pin a connection and survive only as
long as that connection. A lease costs two short transactions, works the same on both, and expires by itself
when its holder dies. Taking it increments ``version``; :meth:`SQLConnectionRows.store_refreshed` writes only if
the version is still the lease's and the owner still holds it, so a holder whose lease expired and was taken
over loses the compare-and-swap instead of overwriting a newer refresh token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["COLUMNS", "Database", "Run", "SQLConnectionRows", "SealedRow", "SealedTokens"]

COLUMNS = (
    "integration, id, status, access_token, refresh_token, token_type, scopes, expires_at, key_id, version, "
    "refresh_owner, refresh_lease_until, created_at, updated_at"
)

Run = Callable[[str, Mapping[str, Any]], list[tuple[Any, ...]]]
"""Run one statement (``:name`` parameters) inside the current transaction; its result rows (``[]`` if none)."""


class Database(Protocol):
    """One database connection as the connection rows need it."""

    lock_rows: str
    """Appended to a ``SELECT`` that reads rows it will update in the same transaction (``" FOR UPDATE"``)."""

    def transaction(self) -> AbstractContextManager[Run]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedTokens:
    """Tokens as written: sealed values, all under ``key_id``, and the plain metadata."""

    access_token: str
    refresh_token: str | None
    token_type: str
    scopes: str
    expires_at: float | None
    key_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedRow:
    """One ``connections`` row as stored (ciphertexts, not tokens)."""

    integration: str
    id: str
    status: str
    tokens: SealedTokens
    version: int
    refresh_owner: str | None
    refresh_lease_until: float | None
    created_at: float
    updated_at: float


def _row(values: Sequence[Any]) -> SealedRow:
    tokens = SealedTokens(
        access_token=values[3],
        refresh_token=values[4],
        token_type=values[5],
        scopes=values[6],
        expires_at=float(values[7]) if values[7] is not None else None,
        key_id=values[8],
    )
    return SealedRow(
        integration=values[0],
        id=values[1],
        status=values[2],
        tokens=tokens,
        version=int(values[9]),
        refresh_owner=values[10],
        refresh_lease_until=float(values[11]) if values[11] is not None else None,
        created_at=float(values[12]),
        updated_at=float(values[13]),
    )


def _first(rows: list[tuple[Any, ...]]) -> SealedRow | None:
    return _row(rows[0]) if rows else None


def _token_params(tokens: SealedTokens) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": tokens.token_type,
        "scopes": tokens.scopes,
        "expires_at": tokens.expires_at,
        "key_id": tokens.key_id,
    }


_KEY = "integration = :integration AND id = :id"
_SET_TOKENS = (
    "access_token = :access_token, refresh_token = :refresh_token, token_type = :token_type, scopes = :scopes, "
    "expires_at = :expires_at, key_id = :key_id"
)
_SELECT_ONE = f"SELECT {COLUMNS} FROM connections WHERE {_KEY}"  # noqa: S608 constant
_DELETE = f"DELETE FROM connections WHERE {_KEY} RETURNING id"  # noqa: S608 constant
_UPSERT = (
    f"INSERT INTO connections ({COLUMNS}) VALUES (:integration, :id, :status, :access_token, :refresh_token, "  # noqa: S608 constant
    ":token_type, :scopes, :expires_at, :key_id, 1, NULL, NULL, :now, :now) "
    f"ON CONFLICT (integration, id) DO UPDATE SET status = :status, {_SET_TOKENS}, "
    "version = connections.version + 1, refresh_owner = NULL, refresh_lease_until = NULL, updated_at = :now "
    f"RETURNING {COLUMNS}"
)
_LEASE = (
    "UPDATE connections SET refresh_owner = :owner, refresh_lease_until = :until, version = version + 1 "  # noqa: S608
    f"WHERE {_KEY} AND (refresh_owner IS NULL OR refresh_lease_until <= :now) RETURNING {COLUMNS}"
)
_STORE_REFRESHED = (
    f"UPDATE connections SET {_SET_TOKENS}, status = 'active', version = version + 1, "  # noqa: S608 constant
    "refresh_owner = NULL, refresh_lease_until = NULL, updated_at = :now "
    f"WHERE {_KEY} AND version = :version AND refresh_owner = :owner RETURNING {COLUMNS}"
)


class SQLConnectionRows:
    """The ``connections`` table on one :class:`Database`; each method is one transaction. Times are arguments."""

    __slots__ = ("_db",)

    def __init__(self, database: Database) -> None:
        self._db = database

    def upsert(self, integration: str, id: str, tokens: SealedTokens, *, status: str, now: float) -> SealedRow:
        """Store a connection: a new row at version 1, or replace an existing one's tokens (version + 1).

        Replacing clears any refresh lease, so a refresh that started before a re-authorization cannot overwrite it.
        """
        params = {"integration": integration, "id": id, "status": status, "now": now, **_token_params(tokens)}
        with self._db.transaction() as run:
            row = _first(run(_UPSERT, params))
        assert row is not None  # noqa: S101 - RETURNING always yields the written row
        return row

    def get(self, integration: str, id: str) -> SealedRow | None:
        """The row, or ``None``."""
        with self._db.transaction() as run:
            return _first(run(_SELECT_ONE, {"integration": integration, "id": id}))

    def list(self, *, integration: str | None, status: str | None, limit: int) -> list[SealedRow]:
        """Rows ordered by integration then id, optionally of one integration and status."""
        sql = f"SELECT {COLUMNS} FROM connections WHERE "  # noqa: S608 constant
        sql += "(CAST(:integration AS TEXT) IS NULL OR integration = :integration) "
        sql += "AND (CAST(:status AS TEXT) IS NULL OR status = :status) ORDER BY integration, id LIMIT :limit"
        with self._db.transaction() as run:
            rows = run(sql, {"integration": integration, "status": status, "limit": limit})
        return [_row(values) for values in rows]

    def delete(self, integration: str, id: str) -> bool:
        """Delete the row; whether there was one."""
        with self._db.transaction() as run:
            return bool(run(_DELETE, {"integration": integration, "id": id}))

    def set_status(
        self, integration: str, id: str, status: str, *, now: float, expected_version: int | None
    ) -> tuple[SealedRow | None, bool]:
        """Set the status (version + 1, lease cleared) if the row is at ``expected_version`` (any, when ``None``).

        ``(row, changed)``: the row after the write, or as it stands when the version did not match; ``None`` if
        there is no such row.
        """
        sql = (
            "UPDATE connections SET status = :status, version = version + 1, refresh_owner = NULL, "  # noqa: S608
            f"refresh_lease_until = NULL, updated_at = :now WHERE {_KEY} "
            f"AND (CAST(:version AS INTEGER) IS NULL OR version = :version) RETURNING {COLUMNS}"
        )
        params = {"integration": integration, "id": id, "status": status, "now": now, "version": expected_version}
        with self._db.transaction() as run:
            row = _first(run(sql, params))
            if row is not None:
                return row, True
            return _first(run(_SELECT_ONE, params)), False

    def try_lease(
        self, integration: str, id: str, *, owner: str, now: float, until: float
    ) -> tuple[SealedRow | None, bool]:
        """Take the refresh right unless another holds an unexpired lease: ``(row, granted)``; ``None`` if absent."""
        params = {"integration": integration, "id": id, "owner": owner, "now": now, "until": until}
        with self._db.transaction() as run:
            row = _first(run(_LEASE, params))
            if row is not None:
                return row, True
            return _first(run(_SELECT_ONE, params)), False

    def store_refreshed(
        self, integration: str, id: str, tokens: SealedTokens, *, owner: str, version: int, now: float
    ) -> tuple[SealedRow | None, bool]:
        """Write refreshed tokens (access and rotated refresh token together) if ``owner`` still holds the lease
        taken at ``version``; releases it. ``(row, written)``: when not written, the row as it stands (or ``None``).
        """  # noqa: D205
        params = {"integration": integration, "id": id, "owner": owner, "version": version, "now": now}
        params.update(_token_params(tokens))
        with self._db.transaction() as run:
            row = _first(run(_STORE_REFRESHED, params))
            if row is not None:
                return row, True
            return _first(run(_SELECT_ONE, params)), False

    def release(self, integration: str, id: str, *, owner: str, version: int) -> bool:
        """Give the refresh right back without writing tokens; whether ``owner`` still held it."""
        sql = (
            "UPDATE connections SET refresh_owner = NULL, refresh_lease_until = NULL "  # noqa: S608
            f"WHERE {_KEY} AND version = :version AND refresh_owner = :owner RETURNING id"
        )
        with self._db.transaction() as run:
            return bool(run(sql, {"integration": integration, "id": id, "owner": owner, "version": version}))

    def reseal_batch(self, *, key_id: str, limit: int, reseal: Callable[[SealedRow], SealedTokens]) -> int:
        """In one transaction, re-encrypt up to ``limit`` rows not under ``key_id`` with ``reseal``; how many.

        The version is left alone (the tokens did not change), but each write is guarded by it, so a row changed
        since it was read is never overwritten with older tokens. ``reseal`` raising rolls the batch back.
        """
        select = (
            f"SELECT {COLUMNS} FROM connections WHERE key_id <> :key_id "  # noqa: S608 constant
            f"ORDER BY integration, id LIMIT :limit{self._db.lock_rows}"
        )
        update = f"UPDATE connections SET {_SET_TOKENS} WHERE {_KEY} AND version = :version RETURNING id"  # noqa: S608
        done = 0
        with self._db.transaction() as run:
            for row in [_row(values) for values in run(select, {"key_id": key_id, "limit": limit})]:
                params = {"integration": row.integration, "id": row.id, "version": row.version}
                params.update(_token_params(reseal(row)))
                done += len(run(update, params))
        return done

    def count_by_key(self) -> dict[str, int]:
        """How many rows are under each key id."""
        with self._db.transaction() as run:
            rows = run("SELECT key_id, COUNT(*) FROM connections GROUP BY key_id", {})
        return {str(key_id): int(count) for key_id, count in rows}

    def close(self) -> None:
        """Release the database connection."""
        self._db.close()
