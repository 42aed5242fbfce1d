"""A real OAuth 2.0 / OIDC authorization server on loopback, built from Authlib's server components (test aid).

One WSGI app in a thread (``wsgiref``, a thread per request) serves, on ``127.0.0.1``:

- ``/.well-known/openid-configuration`` and ``/jwks`` (RS256 keys; :meth:`AuthServer.rotate_signing_key` rolls over);
- ``/authorize``: consent is automatic for the user named by the test-only ``user`` parameter (``deny=1`` refuses);
  PKCE is required (S256 or plain, as RFC 7636 allows; tether must only send S256);
- ``/token``: authorization code (+ PKCE, + OIDC ID token for ``openid``), client credentials, refresh token with
  **rotation** (every refresh issues a new refresh token and revokes the one used; a reused one is answered
  ``invalid_grant``), and RFC 7523 JWT bearer;
- ``/revoke`` (RFC 7009);
- ``/api/me``: a resource that answers 200 for a live access token and 401 otherwise; ``/api/always401``;
- ``/userinfo`` (the OIDC ``userinfo_endpoint``): ``{"sub": USER}`` for a live access token, 401 otherwise.

It counts what it received (``refreshes``, ``invalid_grants``, ``grants``) so tests can assert on the wire.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeGrant, ClientCredentialsGrant, OAuth2Request, RefreshTokenGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import KeySet, RSAKey

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on loopback

_Reply = tuple[int, bytes, list[tuple[str, str]]]

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


@dataclass
class RegisteredClient:
    """An app registered at the server."""

    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...] = ()
    scope: str = "openid profile read write"
    grant_types: tuple[str, ...] = (
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    )
    public_key: RSAKey | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and hmac.compare_digest(self.client_secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.client_secret is None else method != "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class Code:
    """An authorization code."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    issued_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.issued_at)

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class Token:
    """An issued token pair."""

    client_id: str
    access_token: str
    refresh_token: str | None
    scope: str
    user: str | None
    issued_at: float
    expires_in: int
    revoked: bool = False
    access_revoked: bool = False

    def check_client(self, client: RegisteredClient) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str | None:
        return self.user

    def get_client(self) -> Any:
        raise NotImplementedError


class _WSGIRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, uri: str, headers: dict[str, str], args: dict[str, str], form: dict[str, str]):
        super().__init__(method, uri, headers=headers)
        self._args, self._form = args, form
        self.payload = BasicOAuth2Payload({**args, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass
class Ledger:
    """What the server saw."""

    grants: list[str] = field(default_factory=list)
    refreshes: int = 0
    invalid_grants: int = 0
    revocations: list[str] = field(default_factory=list)
    api_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, owner: AuthServer) -> None:
        super().__init__(scopes_supported=["openid", "profile", "read", "write"])
        self.owner = owner

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.owner.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        saved = Token(
            client_id=request.client.client_id,
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            scope=token.get("scope", ""),
            user=request.user,
            issued_at=time.time(),
            expires_in=int(token.get("expires_in", 3600)),
        )
        with self.owner.lock:
            self.owner.by_access[saved.access_token] = saved
            if saved.refresh_token:
                self.owner.by_refresh[saved.refresh_token] = saved

    def create_oauth2_request(self, request: _WSGIRequest) -> _WSGIRequest:
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError

    def handle_response(
        self, status: int, body: Any, headers: Iterable[tuple[str, str]]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        payload = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
        if isinstance(payload, str):
            payload = payload.encode()
        return status, payload, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        owner: AuthServer = self.server.owner
        owner.codes[code] = Code(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=data.get("redirect_uri", ""),
            scope=request.client.get_allowed_scope(data.get("scope")),
            user=request.user,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            nonce=data.get("nonce"),
            issued_at=time.time(),
        )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> Code | None:
        found: Code | None = self.server.owner.codes.get(code)
        if found is not None and found.client_id == client.client_id and time.time() - found.issued_at < 300:
            return found
        return None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.owner.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> str:
        return authorization_code.user


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        owner: AuthServer = self.server.owner
        with owner.lock:
            found = owner.by_refresh.get(refresh_token)
            if found is None or found.revoked:
                owner.ledger.invalid_grants += 1
                return None
            return found

    def authenticate_user(self, refresh_token: Token) -> str | None:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.revoked = True  # rotation: the refresh token just used is dead


class _ClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


class _JWTBearerGrant(JWTBearerGrant):  # type: ignore[misc]
    def resolve_issuer_client(self, issuer: str) -> RegisteredClient | None:
        found: RegisteredClient | None = self.server.owner.clients.get(issuer)
        return found

    def resolve_client_public_key(self, client: RegisteredClient) -> RSAKey | None:
        return client.public_key

    def authenticate_user(self, subject: str) -> str:
        return subject

    def has_granted_permission(self, client: RegisteredClient, user: str) -> bool:
        return True

    def get_audiences(self) -> list[str]:
        return [self.server.owner.url + "/token"]


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, owner: AuthServer) -> None:
        super().__init__(require_nonce=True)
        self.owner = owner

    def resolve_client_private_key(self, client: RegisteredClient) -> RSAKey:
        return self.owner.signing_key

    def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
        return {"iss": self.owner.url, "aud": [client.client_id]}

    def get_client_algorithm(self, client: RegisteredClient) -> str:
        return "RS256"

    def get_encode_header(self, client: RegisteredClient) -> dict[str, Any]:
        return {"alg": "RS256", "kid": self.owner.signing_key.kid}

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False

    def generate_user_info(self, user: str, scope: str) -> UserInfo:
        return UserInfo(sub=user, name=user.title())


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        owner: AuthServer = self.server.owner
        return owner.by_refresh.get(token_string) or owner.by_access.get(token_string)

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        token.revoked = True
        token.access_revoked = True
        self.server.owner.ledger.revocations.append(request.form.get("token_type_hint") or "")


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 1024  # the race test opens hundreds of connections at once


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class AuthServer:
    """The server; ``url`` is its origin (``http://127.0.0.1:PORT``), which is also its issuer."""

    def __init__(self, *, access_lifetime: int = 3600, rfc8414_only: bool = False) -> None:
        self.rfc8414_only = rfc8414_only  # serve /.well-known/oauth-authorization-server instead of the OIDC one
        self.lock = threading.Lock()
        self.clients: dict[str, RegisteredClient] = {}
        self.codes: dict[str, Code] = {}
        self.by_access: dict[str, Token] = {}
        self.by_refresh: dict[str, Token] = {}
        self.ledger = Ledger()
        self.access_lifetime = access_lifetime
        self.keys: list[RSAKey] = []
        self.signing_key = self._new_key()
        self._httpd = make_server("127.0.0.1", 0, self._app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        self._server = _Server(self)
        self._server.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: "at-" + secrets.token_urlsafe(24),
                refresh_token_generator=lambda **_: "rt-" + secrets.token_urlsafe(24),
                expires_generator=lambda client, grant_type: self.access_lifetime,
            ),
        )
        self._server.register_grant(_CodeGrant, [CodeChallenge(required=True), _OpenIDCode(self)])
        self._server.register_grant(_RefreshGrant)
        self._server.register_grant(_ClientCredentialsGrant)
        self._server.register_grant(_JWTBearerGrant)
        self._server.register_endpoint(_Revocation)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oauth-server", daemon=True)
        self._thread.start()

    def _new_key(self) -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"kid": f"k{len(self.keys) + 1}", "use": "sig", "alg": "RS256"})
        self.keys.append(key)
        return key

    def rotate_signing_key(self, *, drop_old: bool = False) -> RSAKey:
        """Sign with a new key from now on (published in the JWKS, with the old ones unless ``drop_old``)."""
        key = self._new_key()
        if drop_old:
            self.keys = [key]
        self.signing_key = key
        return key

    def register(self, client: RegisteredClient) -> RegisteredClient:
        self.clients[client.client_id] = client
        return client

    def revoke_access_token(self, access_token: str) -> None:
        """Make the resource server refuse ``access_token`` (as if revoked upstream)."""
        self.by_access[access_token].access_revoked = True

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    # -- WSGI ---------------------------------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        status, body, headers = self._route(environ)
        reasons = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
        start_response(f"{status} {reasons.get(status, 'Status')}", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _request(self, environ: dict[str, Any]) -> _WSGIRequest:
        method = environ["REQUEST_METHOD"]
        query = environ.get("QUERY_STRING", "")
        uri = f"{self.url}{environ['PATH_INFO']}" + (f"?{query}" if query else "")
        headers = {
            key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length).decode() if length else ""
        return _WSGIRequest(method, uri, headers, dict(parse_qsl(query)), dict(parse_qsl(raw)))

    def _route(self, environ: dict[str, Any]) -> tuple[int, bytes, list[tuple[str, str]]]:  # noqa: PLR0911
        path = environ["PATH_INFO"]
        request = self._request(environ)
        if path == "/.well-known/openid-configuration" and not self.rfc8414_only:
            return _json(200, self.metadata())
        if path == "/.well-known/oauth-authorization-server" and self.rfc8414_only:
            return _json(200, self.metadata())
        if path == "/jwks":
            return _json(200, KeySet(list(self.keys)).as_dict(private=False))
        if path == "/authorize":
            if request.args.get("deny"):
                location = (
                    request.args["redirect_uri"]
                    + "?"
                    + urlencode({"error": "access_denied", "state": request.args.get("state", "")})
                )
                return 302, b"", [("Location", location)]
            grant = self._server.get_consent_grant(request=request, end_user=request.args.get("user", "alice"))
            return cast(
                "_Reply",
                self._server.create_authorization_response(request=request, grant_user=grant.request.user, grant=grant),
            )
        if path == "/token":
            grant_type = request.form.get("grant_type", "")
            with self.ledger.lock:
                self.ledger.grants.append(grant_type)
                if grant_type == "refresh_token":
                    self.ledger.refreshes += 1
            return cast("_Reply", self._server.create_token_response(request))
        if path == "/revoke":
            return cast("_Reply", self._server.create_endpoint_response("revocation", request))
        if path in ("/api/me", "/api/always401", "/userinfo"):
            with self.ledger.lock:
                self.ledger.api_calls += 1
            authorization = request.headers.get("Authorization", "")
            token = self.by_access.get(authorization.removeprefix("Bearer "))
            if path != "/api/always401" and token is not None and not token.access_revoked and not token.is_expired():
                if path == "/userinfo":
                    return _json(200, {"sub": token.user})
                return _json(200, {"user": token.user, "client": token.client_id})
            return 401, b'{"error": "invalid_token"}', [("WWW-Authenticate", 'Bearer error="invalid_token"')]
        return 404, b"{}", [("Content-Type", "application/json")]

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "revocation_endpoint": self.url + "/revoke",
            "jwks_uri": self.url + "/jwks",
            "userinfo_endpoint": self.url + "/userinfo",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }


def _json(status: int, body: object) -> tuple[int, bytes, list[tuple[str, str]]]:
    return status, json.dumps(body).encode(), [("Content-Type", "application/json")]
