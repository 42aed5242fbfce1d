"""OIDC ID token validation against the loopback server's JWKS: good, tampered, wrong audience, expired, nonce,
unknown ``kid`` with key rollover (one rate-limited re-fetch)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

import tether
from tests.auth._oauth_fixtures import server, web_app
from tests.auth._oauth_server import AuthServer
from tether.auth import run_flow
from tether.auth._oauth_token_endpoint import Granted
from tether.auth._vault_records import TokenSet
from tether.errors import IDTokenInvalid
from tether.testing import FakeClock

pytestmark = pytest.mark.integration

__all__ = ["server"]

NONCE = "n-0123456789"


def mint(server: AuthServer, key: RSAKey | None = None, **overrides: Any) -> str:
    """An ID token as the server would sign it, with ``overrides`` applied to the claims."""
    key = key or server.signing_key
    now = int(time.time())
    claims = {"iss": server.url, "aud": "web", "sub": "alice", "iat": now, "exp": now + 300, "nonce": NONCE}
    claims.update(overrides)
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


async def check(
    server: AuthServer, id_token: str, *, clock: FakeClock | None = None, app: Any = None
) -> dict[str, Any]:
    app = app or web_app(server, clock=clock or FakeClock(wall_start=time.time()))
    granted = Granted(tokens=TokenSet(access_token="unused"), id_token=id_token)
    async with tether.AsyncClient() as http:
        return await run_flow(app.validate_id_token(granted, nonce=NONCE), http)


async def test_a_good_id_token_passes(server: AuthServer) -> None:
    """Signature, issuer, audience, expiry, nonce all right: its claims come back."""
    assert (await check(server, mint(server)))["sub"] == "alice"


async def test_a_tampered_id_token_fails(server: AuthServer) -> None:
    """The payload changed after signing (another subject): the signature no longer verifies."""
    header, payload, signature = mint(server).split(".")
    forged = mint(server, sub="mallory").split(".")[1]
    with pytest.raises(IDTokenInvalid, match="signature"):
        await check(server, f"{header}.{forged}.{signature}")
    with pytest.raises(IDTokenInvalid, match="signature"):  # signed by a key the provider does not have
        await check(server, mint(server, RSAKey.generate_key(2048, parameters={"kid": str(server.signing_key.kid)})))
    with pytest.raises(IDTokenInvalid, match="'none'"):
        await check(server, f"{'eyJhbGciOiJub25lIn0'}.{payload}.")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "another-client"}, "aud"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nonce": "replayed"}, "nonce"),
    ],
)
async def test_claims_that_are_not_for_us_fail(server: AuthServer, claims: dict[str, Any], reason: str) -> None:
    """Wrong audience, wrong issuer, expired beyond the 60 s leeway, another flow's nonce."""
    with pytest.raises(IDTokenInvalid, match=reason):
        await check(server, mint(server, **claims))


async def test_expiry_allows_a_small_leeway(server: AuthServer) -> None:
    """Expired 30 s ago with the default 60 s leeway: accepted (clock skew)."""
    assert await check(server, mint(server, exp=int(time.time()) - 30))


async def test_unknown_kid_refetches_the_jwks_once_then_fails(server: AuthServer) -> None:
    """Rollover: a new kid makes tether re-fetch the JWKS (rate-limited to once a minute); a made-up kid fails."""
    clock = FakeClock(wall_start=time.time())
    app = web_app(server, clock=clock)
    assert await check(server, mint(server), app=app)  # fetches the JWKS (k1)
    new_key = server.rotate_signing_key()  # the provider rolls over to k2
    with pytest.raises(IDTokenInvalid, match="not in the provider's JWKS"):  # within a minute: no re-fetch yet
        await check(server, mint(server, new_key), app=app)
    clock.advance(61)
    assert (await check(server, mint(server, new_key), app=app))["sub"] == "alice"  # re-fetched: k2 known
    unknown = RSAKey.generate_key(2048, parameters={"kid": "k-unknown"})
    clock.advance(61)
    with pytest.raises(IDTokenInvalid, match="even after a re-fetch"):
        await check(server, mint(server, unknown), app=app)
    assert app.jwks is not None and app.jwks.kids() == {"k1", "k2"}
