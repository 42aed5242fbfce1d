"""PKCE (RFC 7636): a one-time code verifier and its S256 challenge. ``plain`` is refused.

The verifier stays with tether (in the state store, next to the ``state`` it belongs to); only the challenge goes
in the authorization URL. ``plain`` would put the verifier itself there, so a code intercepted with the URL would
be redeemable: RFC 7636 §4.2 allows it only for clients that cannot hash, and every client can.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tether.errors import ConfigurationError

__all__ = ["PKCE", "s256_challenge"]

_VERIFIER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def s256_challenge(verifier: str, method: str = "S256") -> str:
    """The ``code_challenge`` for ``verifier`` (RFC 7636 §4.2); any method but ``S256`` is a configuration error."""
    if method != "S256":
        raise ConfigurationError(
            f"PKCE code_challenge_method {method!r} is refused: tether sends S256 only (RFC 7636 §4.2; 'plain' "
            "exposes the verifier in the authorization URL)"
        )
    if not 43 <= len(verifier) <= 128 or not set(verifier) <= _VERIFIER_CHARS:
        raise ConfigurationError("a PKCE code_verifier is 43-128 characters of [A-Z a-z 0-9 - . _ ~] (RFC 7636 §4.1)")
    return str(create_s256_code_challenge(verifier))


@dataclass(frozen=True, slots=True, kw_only=True)
class PKCE:
    """A code verifier (never in a repr) and its S256 challenge."""

    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls) -> PKCE:
        """A fresh verifier: 64 URL-safe characters from 48 random bytes (RFC 7636 §7.1 asks for 256 bits)."""
        verifier = secrets.token_urlsafe(48)
        return cls(verifier=verifier, challenge=s256_challenge(verifier))
