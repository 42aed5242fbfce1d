"""Credentials: the auth protocol, static schemes (bearer token, API key, HTTP Basic), OAuth 2.0, and the token vault.

OAuth 2.0 / OpenID Connect: an :class:`OAuthApp` is one client registration at a :class:`Provider` (given by hand or
found by :func:`discover`); it starts and finishes the authorization code + PKCE flow with a single-use ``state``
kept in a :class:`StateStore`, and runs the client credentials, refresh, JWT bearer (:class:`JWTBearer`) and
revocation grants. :class:`OAuth2` is the client ``auth=`` that attaches the access token and refreshes it —
once per connection at a time, across processes through the vault — and :func:`connection_client` builds an
``AsyncClient`` for a stored connection. These load Authlib and joserfc, so they too are imported on first use.

The vault (:class:`Vault`) stores OAuth connections with their tokens encrypted at rest (AES-256-GCM, key ids,
rotation); :func:`load_keyring` decides at start-up where its keys come from (``TETHER_SECRET_KEY``). The vault's
names are imported on first use: ``cryptography`` and the database drivers are not something ``import tether`` (a
script using only a bearer token) should pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tether.auth._protocol import Auth, Signal, StaticAuth, WaitFor
from tether.auth._static import APIKey, Basic, Bearer

if TYPE_CHECKING:
    from tether.auth._oauth2 import OAuth2
    from tether.auth._oauth_app import Connected, OAuthApp
    from tether.auth._oauth_id_token import JWKSCache
    from tether.auth._oauth_jwt_bearer import JWTBearer
    from tether.auth._oauth_provider import Provider
    from tether.auth._oauth_run import (
        connection_client,
        disconnect,
        disconnect_sync,
        discover,
        discover_sync,
        run_flow,
        run_flow_sync,
    )
    from tether.auth._oauth_state import MemoryStateStore, PendingAuthorization, StateStore
    from tether.auth._oauth_state_sql import SQLStateStore
    from tether.auth._vault import Vault
    from tether.auth._vault_keys import Keyring, generate_key_setting, parse_keyring
    from tether.auth._vault_policy import load_keyring
    from tether.auth._vault_records import ConnectionInfo, ConnectionStatus, RefreshLease, StoredConnection, TokenSet
    from tether.auth._vault_rotation import RotationReport

__all__ = [
    "APIKey",
    "Auth",
    "Basic",
    "Bearer",
    "Connected",
    "ConnectionInfo",
    "ConnectionStatus",
    "JWKSCache",
    "JWTBearer",
    "Keyring",
    "MemoryStateStore",
    "OAuth2",
    "OAuthApp",
    "PendingAuthorization",
    "Provider",
    "RefreshLease",
    "RotationReport",
    "SQLStateStore",
    "Signal",
    "StateStore",
    "StaticAuth",
    "StoredConnection",
    "TokenSet",
    "Vault",
    "WaitFor",
    "connection_client",
    "disconnect",
    "disconnect_sync",
    "discover",
    "discover_sync",
    "generate_key_setting",
    "load_keyring",
    "parse_keyring",
    "run_flow",
    "run_flow_sync",
]

_LAZY = {
    "Connected": "tether.auth._oauth_app",
    "JWKSCache": "tether.auth._oauth_id_token",
    "JWTBearer": "tether.auth._oauth_jwt_bearer",
    "MemoryStateStore": "tether.auth._oauth_state",
    "OAuth2": "tether.auth._oauth2",
    "OAuthApp": "tether.auth._oauth_app",
    "PendingAuthorization": "tether.auth._oauth_state",
    "Provider": "tether.auth._oauth_provider",
    "SQLStateStore": "tether.auth._oauth_state_sql",
    "StateStore": "tether.auth._oauth_state",
    "connection_client": "tether.auth._oauth_run",
    "disconnect": "tether.auth._oauth_run",
    "disconnect_sync": "tether.auth._oauth_run",
    "discover": "tether.auth._oauth_run",
    "discover_sync": "tether.auth._oauth_run",
    "run_flow": "tether.auth._oauth_run",
    "run_flow_sync": "tether.auth._oauth_run",
    "ConnectionInfo": "tether.auth._vault_records",
    "ConnectionStatus": "tether.auth._vault_records",
    "Keyring": "tether.auth._vault_keys",
    "RefreshLease": "tether.auth._vault_records",
    "RotationReport": "tether.auth._vault_rotation",
    "StoredConnection": "tether.auth._vault_records",
    "TokenSet": "tether.auth._vault_records",
    "Vault": "tether.auth._vault",
    "generate_key_setting": "tether.auth._vault_keys",
    "load_keyring": "tether.auth._vault_policy",
    "parse_keyring": "tether.auth._vault_keys",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tether.auth' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
