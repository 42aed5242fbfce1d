"""Credentials: the auth protocol, static schemes (bearer token, API key, HTTP Basic), and the token vault.

The vault (:class:`Vault`) stores OAuth connections with their tokens encrypted at rest (AES-256-GCM, key ids,
rotation); :func:`load_keyring` decides at start-up where its keys come from (``TETHER_SECRET_KEY``). The vault's
names are imported on first use: ``cryptography`` and the database drivers are not something ``import tether`` (a
script using only a bearer token) should pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tether.auth._protocol import Auth, StaticAuth
from tether.auth._static import APIKey, Basic, Bearer

if TYPE_CHECKING:
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

_LAZY = {
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
