"""OAuth 2.0 / OIDC flows against a real Authlib authorization server on loopback (no mocks of tether's code)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import tether
from tests.auth._oauth_fixtures import REDIRECT, WEB_SECRET, consent, provider_of, server, web_app
from tests.auth._oauth_server import AuthServer, RegisteredClient
from tether.auth import (
    JWTBearer,
    OAuth2,
    OAuthApp,
    SQLStateStore,
    TokenSet,
    Vault,
    connection_client,
    disconnect,
    discover,
    discover_sync,
    generate_key_setting,
    parse_keyring,
    run_flow,
    run_flow_sync,
)
from tether.auth._oauth_pkce import PKCE, s256_challenge
from tether.auth._oauth_state import PendingAuthorization
from tether.errors import (
    AccessDenied,
    ConfigurationError,
    InvalidGrant,
    InvalidState,
    NeedsReauth,
    Unauthorized,
)
from tether.events import ConnectionNeedsReauth, Event
from tether.testing import FakeClock

pytestmark = pytest.mark.integration

__all__ = ["server"]  # the fixture, re-exported for pytest


@pytest.fixture
def vault(location: str | Path) -> Iterator[Vault]:
    """A vault on this test's database: each vault-backed test runs on SQLite and on PostgreSQL (``location``)."""
    opened = Vault(location, keyring=parse_keyring(generate_key_setting("a")))
    yield opened
    opened.close()


async def test_discovery_reads_the_providers_metadata(server: AuthServer) -> None:
    """Discovery fetches /.well-known/openid-configuration and keeps the endpoints it names."""
    async with tether.AsyncClient() as http:
        provider = await discover(server.url, http)
    assert provider.token_url == server.url + "/token"
    assert provider.authorize_url == server.url + "/authorize"
    assert provider.revocation_url == server.url + "/revoke"
    assert provider.jwks_uri == server.url + "/jwks"
    assert provider.code_challenge_methods == ("S256",)
    with tether.Client() as sync_http:
        assert discover_sync(server.url, sync_http) == provider


async def test_discovery_falls_back_to_rfc8414_metadata() -> None:
    """A plain OAuth server (no OIDC document): the RFC 8414 location is tried next."""
    plain = AuthServer(rfc8414_only=True)
    try:
        async with tether.AsyncClient() as http:
            provider = await discover(plain.url, http)
        assert provider.token_url == plain.url + "/token"
    finally:
        plain.close()


async def test_code_flow_with_pkce_and_oidc_then_a_call_with_the_stored_connection(
    server: AuthServer, vault: Vault
) -> None:
    """Authorize URL (S256 challenge, state, nonce) → consent → code exchange → ID token checked → stored → used."""
    app = web_app(server)
    url = app.authorization_url(session="browser-1", connection_id="user-1")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert "code_verifier" not in query
    assert len(query["state"][0]) >= 43
    assert query["nonce"]
    params = consent(url)
    async with tether.AsyncClient() as http:
        connected = await run_flow(app.finish_flow(session="browser-1", params=params), http)
    assert connected.connection_id == "user-1"
    assert connected.id_claims is not None
    assert connected.id_claims["sub"] == "alice"
    assert connected.tokens.refresh_token is not None
    assert "[REDACTED]" not in repr(connected) and connected.tokens.access_token not in repr(connected)
    vault.save(connected.connection_id, app.integration, connected.tokens)
    async with connection_client(app, vault, "user-1", server.url) as api:
        response = await api.get("/api/me")
    assert response.json() == {"user": "alice", "client": "web"}
    assert server.ledger.refreshes == 0


def test_code_flow_with_the_sync_client_and_a_sql_state_store(server: AuthServer, location: str | Path) -> None:
    """The same flow, written once, driven by the blocking client; the state lives in SQLite or PostgreSQL."""
    store = SQLStateStore(location)
    app = web_app(server, scopes=("read",), state_store=store)
    url = app.authorization_url(session="browser-1", connection_id="user-2")
    assert "nonce" not in parse_qs(urlsplit(url).query)
    params = consent(url, user="bob")
    with tether.Client() as http:
        connected = run_flow_sync(app.finish_flow(session="browser-1", params=params), http)
        assert connected.id_claims is None
        assert connected.tokens.scopes == ("read",)
        api = tether.Client(server.url, auth=OAuth2(app, tokens=connected.tokens))
        assert api.get("/api/me").json()["user"] == "bob"
        api.close()
    store.close()


# -- hostile input ------------------------------------------------------------------------------------------


async def test_forged_replayed_foreign_and_expired_states_are_refused(server: AuthServer) -> None:
    """A state tether never issued, one already used, one from another session, one past its 10 minutes."""
    clock = FakeClock(wall_start=time.time())
    app = web_app(server, scopes=("read",), clock=clock)
    async with tether.AsyncClient() as http:
        with pytest.raises(InvalidState, match="unknown or was already used"):
            await run_flow(app.finish_flow(session="s", params={"code": "x", "state": "forged"}), http)
        with pytest.raises(InvalidState, match="no state"):
            await run_flow(app.finish_flow(session="s", params={"code": "x"}), http)

        params = consent(app.authorization_url(session="s", connection_id="c"))
        await run_flow(app.finish_flow(session="s", params=params), http)
        with pytest.raises(InvalidState, match="already used"):  # replayed callback
            await run_flow(app.finish_flow(session="s", params=params), http)

        params = consent(app.authorization_url(session="s", connection_id="c"))
        with pytest.raises(InvalidState, match="another browser session"):
            await run_flow(app.finish_flow(session="attacker", params=params), http)
        with pytest.raises(InvalidState, match="already used"):  # the failed attempt consumed it
            await run_flow(app.finish_flow(session="s", params=params), http)

        params = consent(app.authorization_url(session="s", connection_id="c"))
        clock.advance(601)
        with pytest.raises(InvalidState, match="expired"):
            await run_flow(app.finish_flow(session="s", params=params), http)
    assert server.ledger.grants == ["authorization_code"]  # no code was exchanged for a refused state


async def test_a_code_issued_to_another_client_is_refused(server: AuthServer) -> None:
    """A code obtained by client ``other`` and injected into ``web``'s callback: invalid_grant, typed."""
    server.register(RegisteredClient("other", "other-secret", redirect_uris=(REDIRECT,)))
    app = web_app(server, scopes=("read",))
    other = OAuthApp(
        "acme", provider=provider_of(server), client_id="other", client_secret="other-secret", redirect_uri=REDIRECT
    )
    stolen = consent(other.authorization_url(session="s", connection_id="c"))
    ours = consent(app.authorization_url(session="s", connection_id="c"))
    async with tether.AsyncClient() as http:
        with pytest.raises(InvalidGrant) as caught:
            await run_flow(app.finish_flow(session="s", params={**ours, "code": stolen["code"]}), http)
    assert caught.value.error == "invalid_grant"
    assert WEB_SECRET not in str(caught.value)
    assert stolen["code"] not in str(caught.value)
    assert "connect" in str(caught.value) or "start the flow again" in str(caught.value)


async def test_a_wrong_pkce_verifier_is_refused(server: AuthServer) -> None:
    """The pending record's verifier swapped for another one: the server refuses the exchange."""
    app = web_app(server, scopes=("read",))
    params = consent(app.authorization_url(session="s", connection_id="c"))
    pending = app.state_store.take(params["state"], now=time.time())
    assert pending is not None
    app.state_store.put(
        PendingAuthorization(
            state=pending.state,
            session_hash=pending.session_hash,
            integration=pending.integration,
            connection_id=pending.connection_id,
            redirect_uri=pending.redirect_uri,
            code_verifier=PKCE.generate().verifier,
            created_at=pending.created_at,
            expires_at=pending.expires_at,
        )
    )
    async with tether.AsyncClient() as http:
        with pytest.raises(InvalidGrant):
            await run_flow(app.finish_flow(session="s", params=params), http)


async def test_denied_consent_is_access_denied(server: AuthServer) -> None:
    """The person said no: AccessDenied, and the state is spent."""
    app = web_app(server, scopes=("read",))
    params = consent(app.authorization_url(session="s", connection_id="c"), deny=True)
    async with tether.AsyncClient() as http:
        with pytest.raises(AccessDenied, match="access_denied"):
            await run_flow(app.finish_flow(session="s", params=params), http)


def test_plain_pkce_is_refused() -> None:
    """Only S256: asking for 'plain' is a configuration error that says why."""
    verifier = PKCE.generate().verifier
    with pytest.raises(ConfigurationError, match="plain"):
        s256_challenge(verifier, "plain")
    assert PKCE.generate().method == "S256"
    assert "verifier" not in repr(PKCE.generate()).replace("verifier=", "")


# -- other grants -------------------------------------------------------------------------------------------


async def test_client_credentials_token_is_fetched_and_attached(server: AuthServer) -> None:
    """OAuth2(app) with no tokens runs the client credentials grant once and reuses the token."""
    app = web_app(server, scopes=("read",))
    async with tether.AsyncClient(server.url, auth=OAuth2(app)) as api:
        first = await api.get("/api/me")
        second = await api.get("/api/me")
    assert first.json() == second.json() == {"user": None, "client": "web"}
    assert server.ledger.grants == ["client_credentials"]


async def test_jwt_bearer_assertion_for_a_service_account(server: AuthServer) -> None:
    """RFC 7523: a signed assertion exchanged for an access token, used for a call."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048)
    server.register(RegisteredClient("svc@example", "unused", public_key=key))
    app = OAuthApp(
        "acme-svc",
        provider=provider_of(server),
        client_id="svc@example",
        client_secret="unused",
        jwt_bearer=JWTBearer(key=key, issuer="svc@example", subject="robot"),
    )
    async with tether.AsyncClient(server.url, auth=OAuth2(app)) as api:
        response = await api.get("/api/me")
    assert response.json() == {"user": "robot", "client": "svc@example"}
    assert server.ledger.grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]


async def _connect(server: AuthServer, app: OAuthApp, vault: Vault, connection_id: str = "user-1") -> TokenSet:
    params = consent(app.authorization_url(session="s", connection_id=connection_id))
    async with tether.AsyncClient() as http:
        connected = await run_flow(app.finish_flow(session="s", params=params), http)
    vault.save(connection_id, app.integration, connected.tokens)
    return connected.tokens


def _expire(vault: Vault, app: OAuthApp, connection_id: str = "user-1") -> TokenSet:
    stored = vault.get(connection_id, app.integration).tokens
    expired = TokenSet(
        access_token=stored.access_token,
        refresh_token=stored.refresh_token,
        scopes=stored.scopes,
        expires_at=time.time() - 1,
    )
    vault.save(connection_id, app.integration, expired)
    return expired


async def test_refresh_rotates_and_the_old_refresh_token_is_dead(server: AuthServer, vault: Vault) -> None:
    """An expired stored token is refreshed before the call; the rotated refresh token is stored with it."""
    app = web_app(server, scopes=("read",))
    await _connect(server, app, vault)
    old = _expire(vault, app)
    async with connection_client(app, vault, "user-1", server.url) as api:
        assert (await api.get("/api/me")).status_code == 200
    stored = vault.get("user-1", "acme")
    assert stored.tokens.refresh_token != old.refresh_token
    assert stored.tokens.access_token != old.access_token
    assert stored.tokens.expires_at is not None and stored.tokens.expires_at > time.time() + 3000
    assert server.ledger.refreshes == 1
    assert old.refresh_token is not None
    async with tether.AsyncClient() as http:
        with pytest.raises(InvalidGrant):  # the server rejects a reused refresh token
            await run_flow(app.refresh_flow(old.refresh_token), http)


async def test_revocation_on_disconnect(server: AuthServer, vault: Vault) -> None:
    """disconnect(): RFC 7009 revokes the refresh token, then the connection is forgotten; the grant is dead."""
    app = web_app(server, scopes=("read",))
    tokens = await _connect(server, app, vault)
    assert tokens.refresh_token is not None
    async with tether.AsyncClient() as http:
        assert await disconnect(app, vault, "user-1", http) is True
        assert await disconnect(app, vault, "user-1", http) is False  # already gone: nothing sent
        with pytest.raises(InvalidGrant):
            await run_flow(app.refresh_flow(tokens.refresh_token), http)
    assert vault.list() == []
    assert server.ledger.revocations == ["refresh_token"]
    async with tether.AsyncClient(server.url, auth=tether.Bearer(tokens.access_token)) as api:
        with pytest.raises(Unauthorized):
            await api.get("/api/me")


async def test_401_refreshes_once_and_replays(server: AuthServer, vault: Vault) -> None:
    """A token the resource server stopped accepting (not expired locally): refresh, replay, success."""
    app = web_app(server, scopes=("read",))
    tokens = await _connect(server, app, vault)
    server.revoke_access_token(tokens.access_token)
    async with connection_client(app, vault, "user-1", server.url) as api:
        response = await api.get("/api/me")
    assert response.status_code == 200
    assert server.ledger.refreshes == 1
    assert server.ledger.api_calls == 2


async def test_a_second_401_raises_unauthorized_without_looping(server: AuthServer, vault: Vault) -> None:
    """401 → one refresh → replay → 401 again: Unauthorized, after exactly two calls and one refresh."""
    app = web_app(server, scopes=("read",))
    await _connect(server, app, vault)
    async with connection_client(app, vault, "user-1", server.url) as api:
        with pytest.raises(Unauthorized):
            await api.get("/api/always401")
    assert server.ledger.api_calls == 2
    assert server.ledger.refreshes == 1


async def test_a_dead_grant_marks_the_connection_and_emits_an_event(server: AuthServer, vault: Vault) -> None:
    """The refresh token was revoked upstream: invalid_grant, nothing changed locally → needs_reauth, one event."""
    app = web_app(server, scopes=("read",))
    tokens = await _connect(server, app, vault)
    assert tokens.refresh_token is not None
    async with tether.AsyncClient() as http:
        await run_flow(app.revoke_flow(tokens.refresh_token), http)
    _expire(vault, app)
    events: list[Event] = []
    async with connection_client(app, vault, "user-1", server.url, oauth={"hooks": [events.append]}) as api:
        with pytest.raises(NeedsReauth) as caught:
            await api.get("/api/me")
        with pytest.raises(NeedsReauth):  # at once, without asking the provider again
            await api.get("/api/me")
    assert server.ledger.refreshes == 1
    assert vault.info("user-1", "acme").status == "needs_reauth"
    assert [type(event) for event in events] == [ConnectionNeedsReauth]
    assert isinstance(events[0], ConnectionNeedsReauth) and events[0].connection_id == "user-1"
    assert tokens.refresh_token not in str(caught.value)


def test_invalid_grant_after_another_writer_changed_the_connection_uses_its_tokens(
    server: AuthServer, vault: Vault
) -> None:
    """invalid_grant while the stored connection changed under us is not a dead grant: the stored tokens are used.

    Interleaved by hand, without mocks: the auth flow is sans-IO, so the test steps it and sends each request it
    yields with a real client. After the flow leased the connection and yielded its refresh request, "another
    process" rotates the refresh token at the provider and stores the result; the flow's refresh then gets
    invalid_grant, re-reads the connection, finds it changed, and replays the call with the stored token.
    """
    app = web_app(server, scopes=("read",))
    with tether.Client() as http:
        params = consent(app.authorization_url(session="s", connection_id="user-1"))
        vault.save("user-1", "acme", run_flow_sync(app.finish_flow(session="s", params=params), http).tokens)
        old = _expire(vault, app)
        assert old.refresh_token is not None
        auth = OAuth2(app, vault=vault, connection_id="user-1")
        flow = auth.auth_flow(tether.Request("GET", server.url + "/api/me"))
        lenient = tether.Policy(raise_for_status=False)
        refresh = next(flow)
        assert isinstance(refresh, tether.Request) and refresh.url.endswith("/token")
        rotated = run_flow_sync(app.refresh_flow(old.refresh_token), http)  # the other process ...
        vault.save("user-1", "acme", rotated)  # ... stores its result (a newer version than our lease)
        call = flow.send(http.send(refresh, policy=lenient))  # our refresh: invalid_grant, then a re-read
        assert isinstance(call, tether.Request)
        assert call.headers["Authorization"] == f"Bearer {rotated.access_token}"
        response = http.send(call, policy=lenient)
        assert response.status_code == 200
        with pytest.raises(StopIteration):
            flow.send(response)
    assert server.ledger.invalid_grants == 1
    assert vault.info("user-1", "acme").status == "active"


def test_threads_of_a_sync_client_share_one_refresh(server: AuthServer) -> None:
    """16 threads calling with an expired in-memory token: one refresh, every call succeeds, rotation kept."""
    import threading

    app = web_app(server, scopes=("read",))
    with tether.Client() as http:
        params = consent(app.authorization_url(session="s", connection_id="c"))
        tokens = run_flow_sync(app.finish_flow(session="s", params=params), http).tokens
    expired = TokenSet(access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_at=time.time())
    auth = OAuth2(app, tokens=expired)
    statuses: list[int] = []
    barrier = threading.Barrier(16)
    with tether.Client(server.url, auth=auth) as api:

        def call() -> None:
            barrier.wait()
            statuses.append(api.get("/api/me").status_code)

        threads = [threading.Thread(target=call) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 16
    assert server.ledger.refreshes == 1
    assert auth.tokens is not None and auth.tokens.refresh_token not in (None, tokens.refresh_token)
    assert "at-" not in repr(auth)


async def test_in_memory_tokens_with_a_dead_refresh_token_raise_needs_reauth(server: AuthServer) -> None:
    """No vault: invalid_grant is final at once (nothing to re-read), and later calls do not ask again."""
    app = web_app(server, scopes=("read",))
    auth = OAuth2(app, tokens=TokenSet(access_token="at-x", refresh_token="rt-unknown", expires_at=time.time()))
    async with tether.AsyncClient(server.url, auth=auth) as api:
        with pytest.raises(NeedsReauth, match="connect the account again"):
            await api.get("/api/me")
        with pytest.raises(NeedsReauth):
            await api.get("/api/me")
    assert server.ledger.refreshes == 1


async def test_a_callback_naming_another_issuer_is_refused(server: AuthServer) -> None:
    """RFC 9207 mix-up defence: an ``iss`` parameter that is not our provider's stops the flow before the exchange."""
    app = web_app(server, scopes=("read",))
    params = consent(app.authorization_url(session="s", connection_id="c"))
    async with tether.AsyncClient() as http:
        with pytest.raises(InvalidState, match="names issuer"):
            await run_flow(app.finish_flow(session="s", params={**params, "iss": "https://evil.example"}), http)
    assert server.ledger.grants == []
