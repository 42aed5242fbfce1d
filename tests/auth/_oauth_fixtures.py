"""Shared pieces of the OAuth tests: the server fixture, apps registered at it, and a consenting browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.auth._oauth_server import AuthServer, RegisteredClient
from tether.auth import OAuthApp, Provider

REDIRECT = "http://127.0.0.1:9/callback"
WEB_SECRET = "web-secret-0123456789"


@pytest.fixture
def server() -> Iterator[AuthServer]:
    """A fresh authorization server on loopback, with the confidential client ``web`` registered."""
    auth_server = AuthServer()
    auth_server.register(RegisteredClient("web", WEB_SECRET, redirect_uris=(REDIRECT,)))
    try:
        yield auth_server
    finally:
        auth_server.close()


def provider_of(server: AuthServer) -> Provider:
    """The server's endpoints, read from its metadata as discovery would."""
    return Provider.from_metadata(server.metadata(), issuer=server.url)


def web_app(server: AuthServer, **options: Any) -> OAuthApp:
    """An app for the ``web`` client."""
    options.setdefault("scopes", ("openid", "read"))
    return OAuthApp(
        "acme",
        provider=provider_of(server),
        client_id="web",
        client_secret=WEB_SECRET,
        redirect_uri=REDIRECT,
        **options,
    )


def consent(url: str, *, user: str = "alice", deny: bool = False) -> dict[str, str]:
    """Play the person's browser: open the authorization URL, consent, return the callback's query parameters."""
    extra = "&deny=1" if deny else f"&user={user}"
    response = httpx.get(url + extra, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return dict(parse_qsl(urlsplit(location).query))
