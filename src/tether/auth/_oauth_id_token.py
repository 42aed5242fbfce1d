"""OpenID Connect ID token validation (OIDC Core §3.1.3.7) against the provider's JWKS, with key rollover.

:func:`id_token_flow` is sans-IO: it yields the JWKS ``GET`` when it needs keys and receives the response. The
signature is checked by joserfc against the key the token's ``kid`` names, with the algorithms allowed (RS256 and
ES256 by default; never ``none`` nor an HMAC keyed with a public key); then ``iss`` must equal the issuer, ``aud``
contain the client id (and ``azp`` name it when there are several audiences), ``exp`` be in the future and ``iat``
present (both with a small leeway for clock skew, 60 s by default), and ``nonce`` equal the one sent in the
authorization request.

**Rollover.** A :class:`JWKSCache` keeps one provider's keys. A ``kid`` it does not know triggers one re-fetch
(the provider may have rotated its keys), at most once per ``min_refetch_interval`` (60 s) so that tokens with
made-up ``kid`` values cannot make tether hammer the provider; a ``kid`` still unknown after that fails.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Generator, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tether._models import Request, Response
from tether._redaction import redact_url
from tether.errors import IDTokenInvalid

__all__ = ["JWKSCache", "id_token_flow"]

DEFAULT_ALGORITHMS = ("RS256", "ES256")


class JWKSCache:
    """One provider's signing keys, fetched on first use and again (rate-limited) when a token names an unknown kid.

    Thread-safe; share one per provider. ``min_refetch_interval`` seconds must pass between fetches triggered by
    an unknown ``kid``.
    """

    __slots__ = ("_fetched_at", "_keys", "_lock", "jwks_uri", "min_refetch_interval")

    def __init__(self, jwks_uri: str, *, min_refetch_interval: float = 60.0) -> None:
        self.jwks_uri = jwks_uri
        self.min_refetch_interval = min_refetch_interval
        self._keys: KeySet | None = None
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    @property
    def keys(self) -> KeySet | None:
        """The keys last fetched (``None``: never fetched)."""
        return self._keys

    def kids(self) -> frozenset[str]:
        """The key ids known now."""
        keys = self._keys
        return frozenset(key.kid for key in keys.keys if key.kid) if keys is not None else frozenset()

    def may_fetch(self, now: float) -> bool:
        """Whether a fetch is allowed at ``now`` (never fetched, or the interval has passed); claims it if so."""
        with self._lock:
            if self._fetched_at is not None and now - self._fetched_at < self.min_refetch_interval:
                return False
            self._fetched_at = now
            return True

    def fetch_flow(self) -> Generator[Request, Response, None]:
        """Fetch the JWKS and keep it (a failed fetch keeps the previous keys and raises)."""
        response = yield Request("GET", self.jwks_uri)
        if response.status_code != 200:
            raise IDTokenInvalid(f"the provider's JWKS at {redact_url(self.jwks_uri)} answered {response.status_code}")
        try:
            keys = KeySet.import_key_set(json.loads(response.content))
        except (ValueError, KeyError, TypeError, JoseError) as exc:
            raise IDTokenInvalid(
                f"the provider's JWKS at {redact_url(self.jwks_uri)} is not a usable key set ({type(exc).__name__})"
            ) from None
        self._keys = keys

    def __repr__(self) -> str:
        return f"JWKSCache({redact_url(self.jwks_uri)!r}, kids={sorted(self.kids())!r})"


def _header(id_token: str) -> Mapping[str, Any]:
    """The JOSE header, read without verifying anything (to pick the key)."""
    try:
        segment = id_token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise IDTokenInvalid("the ID token is not a compact JWS") from None
    if not isinstance(header, dict):
        raise IDTokenInvalid("the ID token's header is not a JSON object")
    return header


def id_token_flow(
    id_token: str,
    *,
    jwks: JWKSCache,
    issuer: str,
    client_id: str,
    nonce: str | None,
    now: float,
    leeway: float = 60.0,
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS,
) -> Generator[Request, Response, dict[str, Any]]:
    """Validate ``id_token`` (see the module docstring): its claims, or IDTokenInvalid naming the failed check."""
    header = _header(id_token)
    algorithm = header.get("alg")
    if algorithm not in algorithms:
        raise IDTokenInvalid(f"the ID token is signed with {algorithm!r}; allowed: {', '.join(algorithms)}")
    kid = header.get("kid")
    unknown = jwks.keys is None or (isinstance(kid, str) and kid not in jwks.kids())
    if unknown and jwks.may_fetch(now):  # first use, or a rollover: one fetch, rate-limited
        yield from jwks.fetch_flow()
    keys = jwks.keys
    if keys is None:
        raise IDTokenInvalid("the provider's JWKS has not been fetched (a fetch was made too recently)")
    if isinstance(kid, str) and kid not in jwks.kids():
        raise IDTokenInvalid(f"the ID token's signing key {kid!r} is not in the provider's JWKS, even after a re-fetch")
    try:
        token = jwt.decode(id_token, keys, algorithms=list(algorithms))
    except JoseError as exc:
        raise IDTokenInvalid(f"the ID token's signature does not verify ({type(exc).__name__})") from None
    claims: dict[str, Any] = dict(token.claims)
    registry = jwt.JWTClaimsRegistry(
        now=int(now),
        leeway=int(leeway),
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise IDTokenInvalid(f"the ID token's claims are not valid for this client: {exc.description or exc}") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IDTokenInvalid("the ID token has several audiences and its azp is not this client (OIDC Core §3.1.3.7)")
    if nonce is not None and claims.get("nonce") != nonce:
        raise IDTokenInvalid("the ID token's nonce does not match the authorization request's (a replayed token?)")
    return claims
