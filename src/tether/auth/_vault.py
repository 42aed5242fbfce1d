"""The credentials vault: OAuth connections stored with their tokens encrypted at rest.

:class:`Vault` is the only place tokens are sealed and unsealed (:mod:`tether.auth._vault_cipher`); below it the
``connections`` rows hold ciphertexts only (:mod:`tether.auth._vault_storage`), in SQLite by default or PostgreSQL
(a ``postgresql://`` URL), in the same database and migrations as the webhook inbox.

A connection is keyed by ``(integration, id)``: the id is the caller's (typically their user id). Each of its
sealed fields is bound to that identity and the field's name, so a ciphertext moved to another row or column
fails to decrypt (:class:`tether.errors.DecryptionFailed`).

Refreshing across processes (the rotation-safe refresh the OAuth client builds on) uses three calls::

    lease = vault.try_begin_refresh(user_id, "github")     # None: another process is refreshing; re-read later
    if lease is not None:
        granted = ...  # POST to the token endpoint with lease.connection.tokens.refresh_token
        vault.store_refreshed(lease, granted)               # access + rotated refresh token, one transaction
        # or vault.release_refresh(lease) after a transient failure, vault.mark_needs_reauth(...) on invalid_grant

``store_refreshed`` is a compare-and-swap on the version the lease took; a holder that lost its lease (it
expired and another process took over, or the account was re-connected meanwhile) gets
:class:`tether.errors.StaleConnection` and nothing is written.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from tether._clock import Clock, SystemClock
from tether.auth._vault_cipher import SealedField, seal, unseal
from tether.auth._vault_keys import Keyring
from tether.auth._vault_postgres import PostgresDatabase
from tether.auth._vault_records import ConnectionInfo, ConnectionStatus, RefreshLease, StoredConnection, TokenSet
from tether.auth._vault_rotation import RotationReport, rotate
from tether.auth._vault_sqlite import SQLiteDatabase
from tether.auth._vault_storage import SealedRow, SealedTokens, SQLConnectionRows
from tether.errors import ConnectionNotFound, StaleConnection
from tether.store._postgres import is_postgres_url

__all__ = ["Vault"]

_ACCESS = "access_token"
_REFRESH = "refresh_token"


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise ValueError(f"a connection's {what} is a non-empty string of at most 255 characters")


def _info(row: SealedRow) -> ConnectionInfo:
    return ConnectionInfo(
        id=row.id,
        integration=row.integration,
        status=ConnectionStatus(row.status),
        expires_at=row.tokens.expires_at,
        token_type=row.tokens.token_type,
        scopes=tuple(row.tokens.scopes.split()),
        has_refresh_token=row.tokens.refresh_token is not None,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _not_found(integration: str, connection_id: str) -> ConnectionNotFound:
    return ConnectionNotFound(f"No connection {connection_id!r} for integration {integration!r}")


class Vault:
    """Connections and their encrypted tokens in a database (a SQLite path, ``sqlite:///PATH`` or ``postgresql://``).

    ``keyring`` (from :func:`tether.auth.load_keyring` or :func:`tether.auth.parse_keyring`) seals every write
    under its newest key and opens any configured key's ciphertexts. ``clock`` (default: the system clock) dates
    rows and refresh leases; ``busy_timeout`` is how long a SQLite write waits for another writer, and the connect
    timeout on PostgreSQL. Safe to share between threads; any number of processes may open the same database.
    """

    __slots__ = ("_clock", "_keyring", "_rows")

    def __init__(
        self, location: str | Path, *, keyring: Keyring, clock: Clock | None = None, busy_timeout: float = 5.0
    ) -> None:
        self._keyring = keyring
        self._clock: Clock = clock if clock is not None else SystemClock()
        now = self._clock.time()
        if is_postgres_url(location):
            database: SQLiteDatabase | PostgresDatabase = PostgresDatabase(
                str(location), connect_timeout=busy_timeout, now=now
            )
        else:
            database = SQLiteDatabase(location, busy_timeout=busy_timeout, now=now)
        self._rows = SQLConnectionRows(database)

    def __repr__(self) -> str:
        return f"Vault(keys={self._keyring.key_ids!r})"

    # -- sealing ---------------------------------------------------------------------------------------------

    def _seal(self, integration: str, connection_id: str, tokens: TokenSet) -> SealedTokens:
        def place(field: str) -> SealedField:
            return SealedField(integration=integration, connection_id=connection_id, field=field)

        return SealedTokens(
            access_token=seal(self._keyring, tokens.access_token, place(_ACCESS)),
            refresh_token=(
                seal(self._keyring, tokens.refresh_token, place(_REFRESH)) if tokens.refresh_token is not None else None
            ),
            token_type=tokens.token_type,
            scopes=" ".join(tokens.scopes),
            expires_at=tokens.expires_at,
            key_id=self._keyring.current_id,
        )

    def _open(self, row: SealedRow) -> StoredConnection:
        def place(field: str) -> SealedField:
            return SealedField(integration=row.integration, connection_id=row.id, field=field)

        sealed_refresh = row.tokens.refresh_token
        tokens = TokenSet(
            access_token=unseal(self._keyring, row.tokens.access_token, place(_ACCESS)),
            refresh_token=unseal(self._keyring, sealed_refresh, place(_REFRESH))
            if sealed_refresh is not None
            else None,
            token_type=row.tokens.token_type,
            scopes=tuple(row.tokens.scopes.split()),
            expires_at=row.tokens.expires_at,
        )
        return StoredConnection(info=_info(row), tokens=tokens, key_id=row.tokens.key_id)

    # -- connections -----------------------------------------------------------------------------------------

    def save(
        self,
        connection_id: str,
        integration: str,
        tokens: TokenSet,
        *,
        status: ConnectionStatus = ConnectionStatus.ACTIVE,
    ) -> ConnectionInfo:
        """Store a connection's tokens: a new connection, or new tokens for an existing one (re-authorization).

        Replacing bumps the version and cancels any refresh in progress (its ``store_refreshed`` will lose).
        """
        _check_name(connection_id, "id")
        _check_name(integration, "integration")
        sealed = self._seal(integration, connection_id, tokens)
        row = self._rows.upsert(
            integration, connection_id, sealed, status=ConnectionStatus(status).value, now=self._clock.time()
        )
        return _info(row)

    def get(self, connection_id: str, integration: str) -> StoredConnection:
        """The connection with its decrypted tokens, for tether's own use; never show it to a person.

        Raises :class:`ConnectionNotFound`, or :class:`UnknownKeyId`/:class:`DecryptionFailed` for a row that
        cannot be opened with the configured keys.
        """
        row = self._rows.get(integration, connection_id)
        if row is None:
            raise _not_found(integration, connection_id)
        return self._open(row)

    def info(self, connection_id: str, integration: str) -> ConnectionInfo:
        """The connection without its secrets (nothing is decrypted). Raises :class:`ConnectionNotFound`."""
        row = self._rows.get(integration, connection_id)
        if row is None:
            raise _not_found(integration, connection_id)
        return _info(row)

    def list(
        self, *, integration: str | None = None, status: ConnectionStatus | None = None, limit: int = 1000
    ) -> list[ConnectionInfo]:
        """Connections without their secrets, by integration then id; optionally of one integration and status."""
        rows = self._rows.list(
            integration=integration, status=ConnectionStatus(status).value if status is not None else None, limit=limit
        )
        return [_info(row) for row in rows]

    def delete(self, connection_id: str, integration: str) -> bool:
        """Forget a connection and its tokens; whether it existed. Revoking the grant upstream is the caller's job."""
        return self._rows.delete(integration, connection_id)

    def set_status(
        self,
        connection_id: str,
        integration: str,
        status: ConnectionStatus,
        *,
        expected_version: int | None = None,
    ) -> ConnectionInfo:
        """Change a connection's status, releasing any refresh lease.

        With ``expected_version``, only if the connection is still at that version, else :class:`StaleConnection`
        (carrying the current version). Raises :class:`ConnectionNotFound`.
        """
        row, changed = self._rows.set_status(
            integration,
            connection_id,
            ConnectionStatus(status).value,
            now=self._clock.time(),
            expected_version=expected_version,
        )
        if row is None:
            raise _not_found(integration, connection_id)
        if not changed:
            raise StaleConnection(
                f"Connection {connection_id!r} ({integration}) is at version {row.version}, not {expected_version}",
                current_version=row.version,
            )
        return _info(row)

    def mark_needs_reauth(
        self, connection_id: str, integration: str, *, expected_version: int | None = None
    ) -> ConnectionInfo:
        """Record that the grant is confirmed dead: a person must connect again. See :meth:`set_status`."""
        return self.set_status(
            connection_id, integration, ConnectionStatus.NEEDS_REAUTH, expected_version=expected_version
        )

    # -- refresh ---------------------------------------------------------------------------------------------

    def try_begin_refresh(self, connection_id: str, integration: str, *, lease: float = 60.0) -> RefreshLease | None:
        """Take the right to refresh this connection for ``lease`` seconds, across threads and processes.

        Returns ``None`` at once when another holder's lease has not expired (wait for its result: re-read with
        :meth:`get`). ``lease`` should exceed the refresh call's own deadline. Raises :class:`ConnectionNotFound`.
        """
        if lease <= 0:
            raise ValueError("lease must be positive")
        now = self._clock.time()
        owner = secrets.token_hex(8)
        row, granted = self._rows.try_lease(integration, connection_id, owner=owner, now=now, until=now + lease)
        if row is None:
            raise _not_found(integration, connection_id)
        if not granted:
            return None
        return RefreshLease(connection=self._open(row), owner=owner, until=now + lease)

    def store_refreshed(self, lease: RefreshLease, tokens: TokenSet) -> StoredConnection:
        """Write the refreshed access token and the rotated refresh token in one transaction, ending the lease.

        A ``tokens.refresh_token`` of ``None`` means the provider did not rotate it, and empty ``scopes`` that it
        did not restate them: the lease's refresh token and scopes are kept. The write happens only if the
        connection is still at the lease's version and the lease still held; otherwise nothing is written and
        :class:`StaleConnection` is raised: another process refreshed (or the account was re-connected), and its
        tokens are the ones to use.
        """
        current = lease.connection
        info = current.info
        if tokens.refresh_token is None or not tokens.scopes:
            # RFC 6749 §6 and §5.1: an omitted refresh_token leaves the old one valid; an omitted scope means the
            # scope is unchanged.
            tokens = TokenSet(
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token
                if tokens.refresh_token is not None
                else current.tokens.refresh_token,
                token_type=tokens.token_type,
                scopes=tokens.scopes or current.tokens.scopes,
                expires_at=tokens.expires_at,
            )
        sealed = self._seal(info.integration, info.id, tokens)
        row, written = self._rows.store_refreshed(
            info.integration, info.id, sealed, owner=lease.owner, version=info.version, now=self._clock.time()
        )
        if row is None:
            raise StaleConnection(f"Connection {info.id!r} ({info.integration}) was deleted during the refresh")
        if not written:
            raise StaleConnection(
                f"Connection {info.id!r} ({info.integration}) changed during the refresh (version {info.version} "
                f"leased, {row.version} now); the refreshed tokens were not stored",
                current_version=row.version,
            )
        return self._open(row)

    def release_refresh(self, lease: RefreshLease) -> bool:
        """Give the refresh right back without storing tokens (the refresh failed transiently); whether still held."""
        info = lease.connection.info
        return self._rows.release(info.integration, info.id, owner=lease.owner, version=info.version)

    # -- keys ------------------------------------------------------------------------------------------------

    def _reseal(self, row: SealedRow) -> SealedTokens:
        return self._seal(row.integration, row.id, self._open(row).tokens)

    def rotate_keys(
        self, *, batch_size: int = 100, progress: Callable[[RotationReport], None] | None = None
    ) -> RotationReport:
        """Re-encrypt every connection under the newest key, ``batch_size`` rows per transaction (resumable).

        Rows already under the newest key are skipped, so an interrupted run is finished by running it again.
        ``progress`` receives a report after each committed batch. A row that cannot be opened (its key is no
        longer configured, or it was tampered with) stops the run with that error; earlier batches stay done.
        """
        return rotate(
            self._rows, key_id=self._keyring.current_id, reseal=self._reseal, batch_size=batch_size, progress=progress
        )

    def close(self) -> None:
        """Close the database connection."""
        self._rows.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
