"""After a whole OAuth life cycle, no token appears in any log line, event, error, repr, or byte of the database."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import tether
from tests.auth._oauth_fixtures import WEB_SECRET, consent, server, web_app
from tests.auth._oauth_server import AuthServer
from tether.auth import OAuth2, SQLStateStore, TokenSet, Vault, generate_key_setting, parse_keyring, run_flow
from tether.errors import NeedsReauth, TetherError
from tether.events import Event

pytestmark = pytest.mark.integration

__all__ = ["server"]


async def test_no_token_in_logs_events_errors_or_the_database_file(
    server: AuthServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Connect (OIDC), call, refresh on expiry, refresh on 401, revoke, fail on a dead grant — then scan everything."""
    caplog.set_level(logging.DEBUG)
    location = tmp_path / "tether.db"
    events: list[Event] = []
    errors: list[TetherError] = []
    secrets_seen: set[str] = {WEB_SECRET}
    store = SQLStateStore(location)
    app = web_app(server, state_store=store)
    vault = Vault(location, keyring=parse_keyring(generate_key_setting("a")))
    params = consent(app.authorization_url(session="s", connection_id="user-1"))
    secrets_seen.add(params["code"])
    async with tether.AsyncClient() as http:
        connected = await run_flow(app.finish_flow(session="s", params=params), http)
    vault.save("user-1", "acme", connected.tokens)

    auth = OAuth2(app, vault=vault, connection_id="user-1", hooks=[events.append])
    stored = connected.tokens
    vault.save(
        "user-1",
        "acme",
        TokenSet(access_token=stored.access_token, refresh_token=stored.refresh_token, expires_at=time.time()),
    )
    async with tether.AsyncClient(server.url, auth=auth, hooks=[events.append]) as api:
        await api.get("/api/me")  # refresh ahead of expiry
        stored = vault.get("user-1", "acme").tokens
        server.revoke_access_token(vault.get("user-1", "acme").tokens.access_token)
        await api.get("/api/me")  # 401 → refresh → replay
        current = vault.get("user-1", "acme").tokens
        for tokens in (connected.tokens, stored, current):
            secrets_seen.update(t for t in (tokens.access_token, tokens.refresh_token) if t)
        assert current.refresh_token is not None
        async with tether.AsyncClient() as http:
            await run_flow(app.revoke_flow(current.refresh_token), http)
        vault.save(
            "user-1",
            "acme",
            TokenSet(access_token=current.access_token, refresh_token=current.refresh_token, expires_at=time.time()),
        )
        with pytest.raises(NeedsReauth) as caught:
            await api.get("/api/me")
        errors.append(caught.value)
        try:
            await api.get("/api/always401")
        except TetherError as error:
            errors.append(error)
    assert server.ledger.refreshes == 3
    vault.close()
    store.close()

    # Not ours: the provider's debug lines (Authlib logs the tokens it issues) and those of the test's browser
    # (httpx/httpcore log the callback URL with its code). tether's client here runs on aiohttp.
    others = ("authlib", "httpx", "httpcore")
    ours = [record for record in caplog.records if not record.name.startswith(others)]
    texts = [record.getMessage() for record in ours]
    texts += [str(event) for event in events] + [repr(event) for event in events]
    texts += [str(error) for error in errors] + [repr(error) for error in errors]
    texts += [repr(auth), repr(app), repr(connected), repr(current)]
    assert len(ours) > 10 and len(events) > 10
    raw = _database_bytes(tmp_path)
    assert len(secrets_seen) >= 8
    for secret in secrets_seen:
        leaks = [text for text in texts if secret in text]
        assert not leaks, f"a secret in a log line, event, error or repr: {leaks[:2]}"
        assert secret.encode() not in raw, "a secret in the database file"


def _database_bytes(folder: Path) -> bytes:
    """The raw bytes of the database and its WAL/shm files, as an attacker with the disk would read them."""
    return b"".join(path.read_bytes() for path in folder.iterdir() if path.name.startswith("tether.db"))
