"""The sans-IO pieces of OAuth on their own: state stores, discovery URLs, token responses, typed errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether._models import Headers, Response
from tether.auth import MemoryStateStore, PendingAuthorization, Provider, SQLStateStore, StateStore
from tether.auth._oauth_provider import metadata_urls
from tether.auth._oauth_state import state_key
from tether.auth._oauth_token_endpoint import ClientAuth, read_token_response, token_request
from tether.errors import DiscoveryFailed, InvalidClient, InvalidGrant, OAuthError, UnauthorizedClient


def pending(state: str, *, expires_at: float = 2e9) -> PendingAuthorization:
    return PendingAuthorization(
        state=state,
        session_hash=state_key("session"),
        integration="acme",
        connection_id="user-1",
        redirect_uri="https://app.example/callback",
        code_verifier="v" * 64,
        nonce="n",
        scopes=("openid", "read"),
        created_at=1.0,
        expires_at=expires_at,
    )


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """Each state store test runs on memory, SQLite and PostgreSQL (skipped, saying why, when unreachable)."""
    if request.param == "memory":
        yield MemoryStateStore()
        return
    location = tmp_path / "tether.db" if request.param == "sqlite" else request.getfixturevalue("postgres_schema")[0]
    sql = SQLStateStore(location)
    yield sql
    sql.close()


def test_a_state_is_taken_once_and_expired_ones_are_purged(store: StateStore) -> None:
    """Take returns the record once; an unknown state is None; expired records disappear on a later take."""
    store.put(pending("s1"))
    store.put(pending("old", expires_at=10.0))
    taken = store.take("s1", now=100.0)
    assert taken == pending("s1")
    assert "s1" not in repr(taken) and "v" * 64 not in repr(taken)
    assert store.take("s1", now=100.0) is None
    assert store.take("old", now=100.0) is None  # purged by the first take (expired at 10)
    assert store.take("forged", now=100.0) is None


def test_concurrent_takes_of_one_state_give_it_to_one_caller(store: StateStore) -> None:
    """Eight threads race to redeem the same state: exactly one gets it."""
    store.put(pending("contested"))
    won: list[PendingAuthorization] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        found = store.take("contested", now=100.0)
        if found is not None:
            won.append(found)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1


def test_metadata_urls_follow_oidc_and_rfc8414() -> None:
    """OIDC appends to the issuer; RFC 8414 inserts the well-known segment before the issuer's path."""
    assert metadata_urls("https://id.example") == (
        "https://id.example/.well-known/openid-configuration",
        "https://id.example/.well-known/oauth-authorization-server",
    )
    assert metadata_urls("https://id.example/tenant/") == (
        "https://id.example/tenant/.well-known/openid-configuration",
        "https://id.example/.well-known/oauth-authorization-server/tenant",
    )
    with pytest.raises(DiscoveryFailed):
        metadata_urls("ftp://id.example")


def test_metadata_for_another_issuer_is_refused() -> None:
    """A document whose issuer differs from the configured one could be an impersonation (RFC 8414 §3.3)."""
    with pytest.raises(DiscoveryFailed, match="names issuer"):
        Provider.from_metadata({"issuer": "https://evil.example", "token_endpoint": "x"}, issuer="https://id.example")


def _response(status: int, body: bytes, content_type: str = "application/json") -> Response:
    request = token_request("https://id.example/token", ClientAuth(client_id="c", client_secret="s3cret"), {})
    return Response(status, headers=Headers({"Content-Type": content_type}), content=body, request=request)


def test_client_secret_basic_form_encodes_before_base64() -> None:
    """RFC 6749 §2.3.1: id and secret are form-encoded, then Base64; the secret is not in the body or a repr."""
    client = ClientAuth(client_id="a b", client_secret="p:w")
    request = token_request("https://id.example/token", client, {"grant_type": "client_credentials"})
    assert request.headers["Authorization"] == "Basic YSUyMGI6cCUzQXc="
    assert request.content == b"grant_type=client_credentials"
    assert "p:w" not in repr(client)
    post = ClientAuth(client_id="c", client_secret="s", method="client_secret_post")
    assert token_request("https://x/t", post, {}).content == b"client_id=c&client_secret=s"


def test_token_responses_in_json_and_github_style() -> None:
    """JSON (RFC 6749 §5.1), GitHub's form-encoded body with comma-separated scopes, and GitHub's 200 errors."""
    granted = read_token_response(
        _response(200, b'{"access_token":"at","refresh_token":"rt","expires_in":60,"scope":"a b"}'),
        now=1000.0,
        doing="test",
    )
    assert granted.tokens.expires_at == 1060.0
    assert granted.tokens.scopes == ("a", "b")
    github = read_token_response(
        _response(200, b"access_token=gho_x&scope=repo%2Cuser&token_type=bearer", "application/x-www-form-urlencoded"),
        now=0.0,
        doing="test",
    )
    assert github.tokens.scopes == ("repo", "user")
    assert github.tokens.expires_at is None
    with pytest.raises(InvalidGrant):
        read_token_response(
            _response(200, b'{"error":"bad_verification_code"}'.replace(b"bad_verification_code", b"invalid_grant")),
            now=0.0,
            doing="t",
        )
    with pytest.raises(OAuthError, match="'bad_verification_code'"):
        read_token_response(_response(200, b'{"error":"bad_verification_code"}'), now=0.0, doing="t")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("invalid_grant", InvalidGrant),
        ("invalid_client", InvalidClient),
        ("unsupported_grant_type", UnauthorizedClient),
    ],
)
def test_token_errors_are_typed_and_free_of_secrets(code: str, kind: type[OAuthError]) -> None:
    """The error code picks the type; the message says what to do; no token or secret is echoed."""
    body = f'{{"error":"{code}","error_description":"refresh_token=rt-SECRET is bad"}}'.encode()
    with pytest.raises(kind) as caught:
        read_token_response(_response(400, body), now=time.time(), doing="the token refresh")
    error = caught.value
    assert error.error == code
    assert error.status_code == 400
    assert (
        "rt-SECRET" not in str(error)
        and "rt-SECRET" not in repr(error)
        and "rt-SECRET" not in (error.description or "")
    )
    assert "s3cret" not in str(error)
    assert type(error).advice and type(error).advice in str(error)
