"""Pending authorizations in the vault's database (SQLite or PostgreSQL): a :class:`StateStore` for many processes.

The ``oauth_states`` table comes from the shared migrations (:mod:`tether.store._migrations`, step 3). ``take``
is one ``DELETE ... RETURNING``: atomic on both databases, so a state is redeemed at most once however many
gateway processes receive the callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tether._clock import Clock, SystemClock
from tether.auth._oauth_state import PendingAuthorization, state_key
from tether.auth._vault_postgres import PostgresDatabase
from tether.auth._vault_sqlite import SQLiteDatabase
from tether.store._postgres import is_postgres_url

__all__ = ["SQLStateStore"]

_INSERT = (
    "INSERT INTO oauth_states (state_key, session_hash, integration, connection_id, redirect_uri, code_verifier, "
    "nonce, scopes, created_at, expires_at) VALUES (:state_key, :session_hash, :integration, :connection_id, "
    ":redirect_uri, :code_verifier, :nonce, :scopes, :created_at, :expires_at)"
)
_TAKE = (
    "DELETE FROM oauth_states WHERE state_key = :state_key RETURNING session_hash, integration, connection_id, "
    "redirect_uri, code_verifier, nonce, scopes, created_at, expires_at"
)
_PURGE = "DELETE FROM oauth_states WHERE expires_at < :now"


class SQLStateStore:
    """A :class:`tether.auth.StateStore` in a SQLite file (path or ``sqlite:///PATH``) or ``postgresql://`` database.

    Use the vault's location: the table lives next to ``connections``. ``clock`` dates nothing here (records carry
    their own times) but is accepted for symmetry with :class:`tether.auth.Vault`.
    """

    __slots__ = ("_database",)

    def __init__(self, location: str | Path, *, clock: Clock | None = None, busy_timeout: float = 5.0) -> None:
        now = (clock or SystemClock()).time()
        if is_postgres_url(location):
            self._database: SQLiteDatabase | PostgresDatabase = PostgresDatabase(
                str(location), connect_timeout=busy_timeout, now=now
            )
        else:
            self._database = SQLiteDatabase(location, busy_timeout=busy_timeout, now=now)

    def put(self, pending: PendingAuthorization) -> None:
        """Remember ``pending`` (one transaction)."""
        params: dict[str, Any] = {
            "state_key": state_key(pending.state),
            "session_hash": pending.session_hash,
            "integration": pending.integration,
            "connection_id": pending.connection_id,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
            "nonce": pending.nonce,
            "scopes": " ".join(pending.scopes),
            "created_at": pending.created_at,
            "expires_at": pending.expires_at,
        }
        with self._database.transaction() as run:
            run(_INSERT, params)

    def take(self, state: str, *, now: float) -> PendingAuthorization | None:
        """Delete and return the record for ``state``; expired records are purged in the same transaction."""
        with self._database.transaction() as run:
            rows = run(_TAKE, {"state_key": state_key(state)})
            run(_PURGE, {"now": now})
        if not rows:
            return None
        row = rows[0]
        return PendingAuthorization(
            state=state,
            session_hash=row[0],
            integration=row[1],
            connection_id=row[2],
            redirect_uri=row[3],
            code_verifier=row[4],
            nonce=row[5],
            scopes=tuple(row[6].split()),
            created_at=float(row[7]),
            expires_at=float(row[8]),
        )

    def close(self) -> None:
        """Close the database connection."""
        self._database.close()

    def __repr__(self) -> str:
        return "SQLStateStore()"
