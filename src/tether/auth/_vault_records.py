"""The vault's values: a connection's status, its tokens, the public view without secrets, and a refresh lease.

All frozen. Token strings are excluded from every ``repr`` (``field(repr=False)``), so printing, logging or an
assertion message showing one of these values never shows a token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["ConnectionInfo", "ConnectionStatus", "RefreshLease", "StoredConnection", "TokenSet"]


class ConnectionStatus(StrEnum):
    """Where a connection stands.

    ``active``: its tokens are usable or refreshable. ``needs_reauth``: the grant is confirmed dead (the provider
    answered ``invalid_grant`` to the current refresh token, or the account was suspended); a person must connect
    again. ``revoked``: disconnected on purpose.
    """

    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSet:
    """What a token endpoint granted. ``expires_at`` is Unix time; ``scopes`` as granted. Tokens never in a repr."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    token_type: str = "Bearer"  # noqa: S105 the RFC 6750 token type, not a secret
    scopes: tuple[str, ...] = ()
    expires_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """A connection without its secrets: what ``GET /connections`` and ``tether connections list`` may show.

    ``version`` counts writes to the row (saves, refreshes, status changes, refresh leases); compare-and-swap
    writes name the version they read.
    """

    id: str
    integration: str
    status: ConnectionStatus
    expires_at: float | None
    token_type: str
    scopes: tuple[str, ...]
    has_refresh_token: bool
    version: int
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (times as Unix seconds); never a token."""
        return {
            "id": self.id,
            "integration": self.integration,
            "status": self.status.value,
            "expires_at": self.expires_at,
            "token_type": self.token_type,
            "scopes": list(self.scopes),
            "has_refresh_token": self.has_refresh_token,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredConnection:
    """A connection with its decrypted tokens, for tether's own use (the client attaching the access token).

    ``key_id`` names the key its tokens are encrypted under at rest.
    """

    info: ConnectionInfo
    tokens: TokenSet
    key_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshLease:
    """The right to refresh one connection, held by ``owner`` until ``until`` (Unix time) or until it writes.

    ``connection`` is the row as the lease was taken, read in the same statement: its refresh token is the one to
    send, and its ``info.version`` is what :meth:`tether.auth.Vault.store_refreshed` compares against.
    """

    connection: StoredConnection
    owner: str
    until: float
