"""JWT bearer assertions (RFC 7523 §2.1, §3) for service accounts: a signed JWT exchanged for an access token.

The assertion says who the client acts as (``iss``, ``sub``), for which token endpoint (``aud``), and is short-
lived (``exp`` five minutes after ``iat`` by default) with a unique ``jti``. Google service accounts add ``scope``
as a claim; pass it in ``claims``. Signed with joserfc; the private key never leaves the :class:`JWTBearer`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from tether.errors import ConfigurationError

__all__ = ["JWT_BEARER_GRANT", "JWTBearer"]

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_Key = RSAKey | ECKey | OKPKey | OctKey


@dataclass(frozen=True, slots=True, kw_only=True)
class JWTBearer:
    """How to sign assertions for one service account.

    ``key`` is a joserfc key or a PEM string (private); ``issuer`` the account (e.g. a Google service account's
    ``client_email``); ``subject`` defaults to the issuer (set it to impersonate a user where the provider allows
    it); ``audience`` defaults to the token endpoint. ``key_id`` goes in the header as ``kid``.
    """

    key: _Key | str = field(repr=False)
    issuer: str
    subject: str | None = None
    audience: str | None = None
    algorithm: str = "RS256"
    key_id: str | None = None
    lifetime: float = 300.0
    claims: Mapping[str, Any] = field(default_factory=dict)

    def assertion(self, *, token_url: str, now: float) -> str:
        """A fresh signed assertion for ``token_url``, issued at ``now`` (Unix time)."""
        if self.lifetime <= 0 or self.lifetime > 3600:
            raise ConfigurationError("a JWT bearer assertion's lifetime is between 0 and 3600 seconds")
        key: _Key
        if isinstance(self.key, str):
            key = RSAKey.import_key(self.key) if self.algorithm.startswith(("RS", "PS")) else ECKey.import_key(self.key)
        else:
            key = self.key
        header: dict[str, Any] = {"alg": self.algorithm}
        if self.key_id:
            header["kid"] = self.key_id
        issued = int(now)
        claims = {
            **self.claims,
            "iss": self.issuer,
            "sub": self.subject or self.issuer,
            "aud": self.audience or token_url,
            "iat": issued,
            "exp": issued + int(self.lifetime),
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode(header, claims, key, algorithms=[self.algorithm])
