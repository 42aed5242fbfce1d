"""Credentials: the auth protocol, static schemes (bearer token, API key, HTTP Basic), and the token vault.

The vault (:class:`Vault`) stores OAuth connections with their tokens encrypted at rest (AES-256-GCM, key ids,
rotation); :func:`load_keyring` decides at start-up where its keys come from (``TETHER_SECRET_KEY``).
"""

from tether.auth._protocol import Auth, StaticAuth
from tether.auth._static import APIKey, Basic, Bearer
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
    "ConnectionInfo",
    "ConnectionStatus",
    "Keyring",
    "RefreshLease",
    "RotationReport",
    "StaticAuth",
    "StoredConnection",
    "TokenSet",
    "Vault",
    "generate_key_setting",
    "load_keyring",
    "parse_keyring",
]
