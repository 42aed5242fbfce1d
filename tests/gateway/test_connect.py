"""The gateway's OAuth routes end to end: ``/connect/NAME`` → the provider's consent → ``/oauth/callback`` → vault.

A real Authlib authorization server runs on loopback (:mod:`tests.auth._oauth_server`); the gateway is the real
app under Starlette's TestClient (its lifespan opens the vault, the state store and the outbound client). The
person's browser is played by the TestClient (it keeps the session cookie) and by plain ``httpx`` for the hop to
the provider.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.auth._oauth_server import AuthServer, RegisteredClient
from tether.auth import generate_key_setting
from tether.gateway import GatewaySettings, Integration, create_app
from tether.gateway.oauth import SESSION_COOKIE
from tether.testing import FakeClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # see test_webhooks_gateway.py: TestClient over httpx is deprecated, still works
    from starlette.testclient import TestClient

ADMIN = "admin-token-TOPSECRET"
CLIENT_SECRET = "gw-client-secret-TOPSECRET"
CALLBACK = "http://testserver/oauth/callback"


@pytest.fixture
def server() -> Iterator[AuthServer]:
    auth_server = AuthServer()
    auth_server.register(RegisteredClient("gw", CLIENT_SECRET, redirect_uris=(CALLBACK,)))
    try:
        yield auth_server
    finally:
        auth_server.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=time.time())


@pytest.fixture
def gateway(
    tmp_path: Path, server: AuthServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    for name in ("TETHER_SECRET_KEY_FILE", "TETHER_ENV", "TETHER_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TETHER_SECRET_KEY", generate_key_setting("k"))
    settings = GatewaySettings(
        database=tmp_path / "gw.db",
        integrations=(
            Integration(  # OIDC-style: discovered, ID token checked
                name="acme", client_id="gw", client_secret=CLIENT_SECRET, scopes=("openid", "read"), issuer=server.url
            ),
            Integration(  # GitHub-style: endpoints given, no revocation endpoint
                name="plain",
                client_id="gw",
                client_secret=CLIENT_SECRET,
                scopes=("read",),
                authorize_url=server.url + "/authorize",
                token_url=server.url + "/token",
            ),
            Integration(  # endpoints given, with a test URL the resource server always refuses
                name="strict",
                client_id="gw",
                client_secret=CLIENT_SECRET,
                scopes=("read",),
                authorize_url=server.url + "/authorize",
                token_url=server.url + "/token",
                test_url=server.url + "/api/always401",
            ),
        ),
        admin_token=ADMIN,
        worker_idle=0.02,
    )
    with TestClient(create_app(settings, clock=clock), follow_redirects=False) as client:
        yield client


def _start(gateway: TestClient, integration: str = "acme", connection_id: str = "user-1") -> str:
    """``GET /connect``: the provider's authorize URL it redirects to."""
    response = gateway.get(f"/connect/{integration}", params={"connection_id": connection_id})
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


def _consent(url: str, *, deny: bool = False) -> str:
    """The person at the provider: the callback path + query the provider sends the browser back to."""
    response = httpx.get(url + ("&deny=1" if deny else "&user=alice"), follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return location.removeprefix("http://testserver")


def _tokens(server: AuthServer) -> list[str]:
    return [*server.by_access, *server.by_refresh]


def test_connect_consent_callback_stores_an_active_connection_and_shows_no_token(
    gateway: TestClient, server: AuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    response = gateway.get("/connect/acme", params={"connection_id": "user-1"})
    assert response.status_code == 302
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # http here
    authorize = response.headers["location"]
    query = dict(parse_qsl(urlsplit(authorize).query))
    assert authorize.startswith(server.url + "/authorize?")
    assert query["code_challenge_method"] == "S256" and query["redirect_uri"] == CALLBACK
    assert query["client_id"] == "gw" and query["scope"] == "openid read" and "nonce" in query
    callback = _consent(authorize)
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    done = gateway.get(callback)
    assert done.status_code == 200, done.text
    assert "text/html" in done.headers["content-type"] and "Connected" in done.text
    assert done.headers["cache-control"] == "no-store"
    texts += [done.text, str(done.headers)]
    shown = gateway.get("/connections/user-1", headers={"Authorization": f"Bearer {ADMIN}"})
    assert shown.status_code == 200
    assert shown.json()["status"] == "active" and shown.json()["integration"] == "acme"
    assert shown.json()["has_refresh_token"] is True
    texts += [shown.text, gateway.get("/connections", headers={"Authorization": f"Bearer {ADMIN}"}).text]
    tokens = _tokens(server)
    assert len(tokens) == 2
    # The gateway's own log lines (the test's browser, httpx, and the test server, authlib, log what they like).
    logs = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("tether"))
    assert "Connection stored" in logs
    for secret in [*tokens, CLIENT_SECRET, code, query["state"], query["nonce"]]:
        assert secret not in logs
    for secret in [*tokens, CLIENT_SECRET]:
        assert not any(secret in text for text in texts)


def test_default_redirect_uri_follows_the_request_and_cookie_is_secure_on_https(gateway: TestClient) -> None:
    response = gateway.get("https://gw.example/connect/plain", params={"connection_id": "u"})
    assert response.status_code == 302
    assert "Secure" in response.headers["set-cookie"]
    query = dict(parse_qsl(urlsplit(response.headers["location"]).query))
    assert query["redirect_uri"] == "https://gw.example/oauth/callback"
    assert "nonce" not in query  # no openid scope


def test_denied_consent_is_a_clear_page(gateway: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    done = gateway.get(_consent(_start(gateway), deny=True))
    assert done.status_code == 403
    assert "text/html" in done.headers["content-type"] and "Access was not granted" in done.text
    assert "Traceback" not in done.text
    assert "consent denied" in caplog.text and "user-1" in caplog.text
    assert gateway.get("/connections/user-1", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 404


def test_a_replayed_state_is_refused(gateway: TestClient, server: AuthServer) -> None:
    callback = _consent(_start(gateway))
    assert gateway.get(callback).status_code == 200
    grants = list(server.ledger.grants)
    again = gateway.get(callback)
    assert again.status_code == 400 and "already used" in again.text
    assert server.ledger.grants == grants  # the code was not exchanged again


def test_an_expired_state_is_refused(gateway: TestClient, server: AuthServer, clock: FakeClock) -> None:
    callback = _consent(_start(gateway))
    clock.advance(601)
    done = gateway.get(callback)
    assert done.status_code == 400 and "expired" in done.text
    assert "authorization_code" not in server.ledger.grants


def test_a_state_from_another_browser_session_is_refused(gateway: TestClient, server: AuthServer) -> None:
    callback = _consent(_start(gateway))
    gateway.cookies.clear()
    _start(gateway, connection_id="mallory")  # another browser: its own session cookie
    done = gateway.get(callback)
    assert done.status_code == 400 and "another browser session" in done.text
    assert "authorization_code" not in server.ledger.grants


def test_a_callback_without_the_cookie_is_refused(gateway: TestClient, server: AuthServer) -> None:
    callback = _consent(_start(gateway))
    gateway.cookies.clear()
    done = gateway.get(callback)
    assert done.status_code == 400 and "another browser session" in done.text
    assert "authorization_code" not in server.ledger.grants


def test_unknown_integration_and_bad_connection_id(gateway: TestClient) -> None:
    unknown = gateway.get("/connect/nope", params={"connection_id": "u"})
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]
    assert "Unknown integration" in unknown.text
    for params in ({}, {"connection_id": ""}, {"connection_id": "x" * 256}, {"connection_id": "a\nb"}):
        bad = gateway.get("/connect/acme", params=params)
        assert bad.status_code == 400 and "connection_id" in bad.text
    forged = gateway.get("/oauth/callback", params={"code": "c", "state": "forged"})
    assert forged.status_code == 400 and "text/html" in forged.headers["content-type"]
    assert gateway.get("/oauth/callback").status_code == 400


def test_a_failed_token_exchange_is_a_clear_page(gateway: TestClient, server: AuthServer) -> None:
    callback = _consent(_start(gateway))
    server.codes.clear()  # the provider forgot the code: invalid_grant at the exchange
    done = gateway.get(callback)
    assert done.status_code == 502 and "Connection failed" in done.text and "Traceback" not in done.text


def test_delete_revokes_then_deletes(gateway: TestClient, server: AuthServer) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert gateway.get(_consent(_start(gateway))).status_code == 200
    assert gateway.delete("/connections/user-1").status_code == 401  # the admin token is required
    deleted = gateway.delete("/connections/user-1", params={"integration": "acme"}, headers=admin)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": "user-1", "integration": "acme", "deleted": True, "revoked": True}
    assert server.ledger.revocations == ["refresh_token"]
    assert all(token.revoked for token in server.by_refresh.values())
    assert gateway.get("/connections/user-1", headers=admin).status_code == 404
    assert gateway.delete("/connections/user-1", headers=admin).status_code == 404


def test_delete_without_a_revocation_endpoint_deletes(gateway: TestClient, server: AuthServer) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert gateway.get(_consent(_start(gateway, "plain", "user-9"))).status_code == 200
    deleted = gateway.delete("/connections/user-9", headers=admin)
    assert deleted.status_code == 200
    assert deleted.json() == {"id": "user-9", "integration": "plain", "deleted": True, "revoked": False}
    assert server.ledger.revocations == []


def test_the_access_log_hides_the_callback_query() -> None:
    from tether.gateway.oauth import CallbackQueryFilter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/oauth/callback?code=CODE-SECRET&state=STATE-SECRET", "1.1", 200),
        None,
    )
    assert CallbackQueryFilter().filter(record) is True
    assert record.getMessage() == '127.0.0.1:5 - "GET /oauth/callback?[redacted] HTTP/1.1" 200'


def test_a_refused_revocation_keeps_the_connection(gateway: TestClient, server: AuthServer) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert gateway.get(_consent(_start(gateway))).status_code == 200
    server.clients["gw"].client_secret = "rotated-at-the-provider"  # the gateway's secret is now wrong
    refused = gateway.delete("/connections/user-1", headers=admin)
    assert refused.status_code == 502 and refused.json()["error"] == "revocation_failed"
    assert CLIENT_SECRET not in refused.text
    assert gateway.get("/connections/user-1", headers=admin).json()["status"] == "active"


def test_discovery_runs_once_per_integration(gateway: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tether")
    for connection_id in ("a", "b", "c"):
        _start(gateway, connection_id=connection_id)
    fetched = [
        record
        for record in caplog.records
        if record.name == "tether" and "openid-configuration: 200" in record.getMessage()
    ]
    assert len(fetched) == 1


# -- POST /connections/{id}/test ------------------------------------------------------------------------------

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def _test(gateway: TestClient, connection_id: str = "user-1", **params: str) -> httpx.Response:
    response: httpx.Response = gateway.post(f"/connections/{connection_id}/test", params=params, headers=ADMIN_HEADERS)
    return response


def test_a_connection_test_calls_userinfo_and_shows_no_token(gateway: TestClient, server: AuthServer) -> None:
    assert gateway.get(_consent(_start(gateway))).status_code == 200
    assert gateway.post("/connections/user-1/test").status_code == 401  # the admin token is required
    calls = server.ledger.api_calls
    tested = _test(gateway)
    assert tested.status_code == 200, tested.text
    assert tested.json() == {"id": "user-1", "integration": "acme", "ok": True, "status": 200, "status_after": "active"}
    assert server.ledger.api_calls == calls + 1 and server.ledger.refreshes == 0
    assert "alice" not in tested.text  # not the provider's body
    assert not any(token in tested.text for token in _tokens(server))


def test_a_connection_test_refreshes_an_expired_token_then_calls(
    gateway: TestClient, server: AuthServer, clock: FakeClock
) -> None:
    assert gateway.get(_consent(_start(gateway))).status_code == 200
    clock.advance(3601)  # the stored access token has expired (by the gateway's clock)
    tested = _test(gateway, integration="acme")
    assert tested.json() == {"id": "user-1", "integration": "acme", "ok": True, "status": 200, "status_after": "active"}
    assert server.ledger.refreshes == 1
    assert not any(token in tested.text for token in _tokens(server))


def test_a_connection_test_after_a_401_refreshes_and_replays(gateway: TestClient, server: AuthServer) -> None:
    assert gateway.get(_consent(_start(gateway))).status_code == 200
    for token in list(server.by_access.values()):
        token.access_revoked = True  # the resource server stopped accepting it; the refresh token still works
    tested = _test(gateway)
    assert tested.json()["ok"] is True and tested.json()["status"] == 200
    assert server.ledger.refreshes == 1


def test_a_connection_test_with_a_revoked_grant_marks_it_needs_reauth(gateway: TestClient, server: AuthServer) -> None:
    assert gateway.get(_consent(_start(gateway))).status_code == 200
    for token in list(server.by_refresh.values()):
        token.revoked = token.access_revoked = True  # the person revoked the app at the provider
    tested = _test(gateway)
    assert tested.status_code == 200, tested.text
    assert tested.json() == {
        "id": "user-1",
        "integration": "acme",
        "ok": False,
        "status": None,
        "status_after": "needs_reauth",
    }
    assert server.ledger.refreshes == 1 and server.ledger.invalid_grants == 1
    shown = gateway.get("/connections/user-1", headers=ADMIN_HEADERS).json()
    assert shown["status"] == "needs_reauth"


def test_a_connection_test_answered_401_after_a_refresh_is_not_ok(gateway: TestClient, server: AuthServer) -> None:
    assert gateway.get(_consent(_start(gateway, "strict", "user-7"))).status_code == 200
    tested = _test(gateway, "user-7")
    assert tested.json() == {
        "id": "user-7",
        "integration": "strict",
        "ok": False,
        "status": 401,
        "status_after": "active",  # the refresh worked: the grant is alive, the resource refused
    }
    assert server.ledger.refreshes == 1 and server.ledger.api_calls == 2


def test_a_connection_test_without_a_test_url_says_to_set_one(gateway: TestClient, server: AuthServer) -> None:
    assert gateway.get(_consent(_start(gateway, "plain", "user-9"))).status_code == 200
    refused = _test(gateway, "user-9")
    assert refused.status_code == 400
    assert refused.json()["error"] == "no_test_url" and "test_url" in refused.json()["reason"]
    assert server.ledger.api_calls == 0
    assert _test(gateway, "nobody").status_code == 404
    assert _test(gateway, "user-9", integration="").status_code == 400
