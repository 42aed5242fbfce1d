"""One registered OAuth 2.0 / OIDC client at one provider, and the grants it can run — each a sans-IO flow.

Every grant is a generator that yields the HTTP requests it needs and receives their responses, so it is written
once and run by the async or the sync client (:func:`tether.auth.run_flow` / :func:`tether.auth.run_flow_sync`,
or inside an :class:`tether.auth.OAuth2` auth flow, which sends a refresh through the same retry pipeline as the
call it serves).

**Authorization code + PKCE** (RFC 6749 §4.1, RFC 7636): :meth:`OAuthApp.authorization_url` files a
:class:`~tether.auth.PendingAuthorization` under a fresh ``state`` in the state store and returns the URL to send
the person to; :meth:`OAuthApp.finish_flow` takes the callback's query parameters and the session id, redeems the
``state`` (unknown, replayed, expired or from another session: :class:`tether.errors.InvalidState`, and the code
is not exchanged), checks RFC 9207's ``iss`` when present, exchanges the code with the PKCE verifier, and for
OpenID Connect validates the ID token and its nonce.

The others: client credentials (§4.4), refresh (§6), JWT bearer assertion (RFC 7523), revocation (RFC 7009).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from tether._clock import Clock, SystemClock
from tether._models import Request, Response
from tether._redaction import redact_url
from tether.auth._oauth_id_token import JWKSCache, id_token_flow
from tether.auth._oauth_jwt_bearer import JWT_BEARER_GRANT, JWTBearer
from tether.auth._oauth_pkce import PKCE
from tether.auth._oauth_provider import Provider
from tether.auth._oauth_state import MemoryStateStore, PendingAuthorization, StateStore, state_key
from tether.auth._oauth_token_endpoint import (
    AuthMethod,
    ClientAuth,
    Granted,
    error_from_fields,
    read_token_response,
    revocation_request,
    token_request,
)
from tether.auth._vault_records import TokenSet
from tether.errors import ConfigurationError, IDTokenInvalid, InvalidState, OAuthError

__all__ = ["Connected", "OAuthApp"]

DEFAULT_STATE_TTL = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected:
    """A completed authorization: where to store it, the tokens, and the validated ID token's claims (OIDC)."""

    integration: str
    connection_id: str
    tokens: TokenSet
    id_claims: Mapping[str, Any] | None = field(default=None, repr=False)


class OAuthApp:
    """A client registration (``client_id``, ``client_secret``) at a :class:`Provider`, named ``integration``.

    ``auth_method``: how the client authenticates at the token endpoint (``client_secret_basic`` by default,
    ``client_secret_post``, or ``none`` for a public client). ``scopes`` are requested unless a call names others.
    ``state_store`` keeps pending authorizations (default: in memory; use :class:`tether.auth.SQLStateStore` when
    several processes serve callbacks); ``state_ttl`` is their lifetime (10 minutes). ``jwt_bearer`` signs RFC
    7523 assertions for a service account. ``id_token_leeway`` is the clock skew allowed on ``exp``/``iat``.
    """

    __slots__ = (
        "_client",
        "clock",
        "id_token_leeway",
        "integration",
        "jwks",
        "jwt_bearer",
        "provider",
        "redirect_uri",
        "scopes",
        "state_store",
        "state_ttl",
    )

    def __init__(
        self,
        integration: str,
        *,
        provider: Provider,
        client_id: str,
        client_secret: str | None = None,
        auth_method: AuthMethod = "client_secret_basic",
        redirect_uri: str | None = None,
        scopes: Sequence[str] = (),
        state_store: StateStore | None = None,
        state_ttl: float = DEFAULT_STATE_TTL,
        jwt_bearer: JWTBearer | None = None,
        id_token_leeway: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        if not integration or not client_id:
            raise ConfigurationError("an OAuthApp needs an integration name and a client_id")
        if auth_method not in ("client_secret_basic", "client_secret_post", "none"):
            raise ConfigurationError(f"unsupported token endpoint auth method {auth_method!r}")
        if state_ttl <= 0:
            raise ConfigurationError("state_ttl must be positive")
        self.integration = integration
        self.provider = provider
        self._client = ClientAuth(client_id=client_id, client_secret=client_secret, method=auth_method)
        self.redirect_uri = redirect_uri
        self.scopes = tuple(scopes)
        self.state_store: StateStore = state_store if state_store is not None else MemoryStateStore()
        self.state_ttl = state_ttl
        self.jwt_bearer = jwt_bearer
        self.id_token_leeway = id_token_leeway
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.jwks = JWKSCache(provider.jwks_uri) if provider.jwks_uri else None

    @property
    def client_id(self) -> str:
        """The registered client id."""
        return self._client.client_id

    def __repr__(self) -> str:
        return f"OAuthApp({self.integration!r}, client_id={self.client_id!r}, token_url={self.provider.token_url!r})"

    # -- authorization code + PKCE --------------------------------------------------------------------------

    def authorization_url(
        self,
        *,
        session: str,
        connection_id: str,
        scopes: Sequence[str] | None = None,
        redirect_uri: str | None = None,
        extra_params: Mapping[str, str] | None = None,
    ) -> str:
        """File a pending authorization for ``connection_id`` started from ``session``; the URL to send the person to.

        ``session`` is the id of the caller's browser session (a cookie): the callback must come from the same one.
        A nonce is added when ``openid`` is among the scopes. ``extra_params`` (e.g. ``{"prompt": "consent",
        "access_type": "offline"}``) may not override the protocol's own parameters.
        """
        authorize_url = self.provider.authorize_url
        if not authorize_url:
            raise ConfigurationError(f"integration {self.integration!r} has no authorize_url")
        if not session:
            raise ConfigurationError("authorization_url needs the caller's session id, to bind the state to it")
        redirect = redirect_uri or self.redirect_uri
        if not redirect:
            raise ConfigurationError(f"integration {self.integration!r} has no redirect_uri")
        requested = tuple(scopes) if scopes is not None else self.scopes
        pkce = PKCE.generate()
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32) if "openid" in requested else None
        now = self.clock.time()
        self.state_store.put(
            PendingAuthorization(
                state=state,
                session_hash=state_key(session),
                integration=self.integration,
                connection_id=connection_id,
                redirect_uri=redirect,
                code_verifier=pkce.verifier,
                nonce=nonce,
                scopes=requested,
                created_at=now,
                expires_at=now + self.state_ttl,
            )
        )
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect,
            "state": state,
            "code_challenge": pkce.challenge,
            "code_challenge_method": pkce.method,
        }
        if requested:
            params["scope"] = " ".join(requested)
        if nonce is not None:
            params["nonce"] = nonce
        for name, value in (extra_params or {}).items():
            if name in params or name == "code_challenge_method":
                raise ConfigurationError(f"extra_params may not set {name!r}: tether sets it")
            params[name] = value
        separator = "&" if urlsplit(authorize_url).query else "?"
        return f"{authorize_url}{separator}{urlencode(params)}"

    def _redeem_state(self, params: Mapping[str, str], session: str) -> PendingAuthorization:
        state = params.get("state")
        if not state:
            raise InvalidState("the callback has no state parameter: it did not come from a flow tether started")
        pending = self.state_store.take(state, now=self.clock.time())
        if pending is None:
            raise InvalidState("the callback's state is unknown or was already used (forged or replayed)")
        if not hmac.compare_digest(pending.session_hash, state_key(session)):
            raise InvalidState("the callback's state belongs to another browser session")
        if pending.integration != self.integration:
            raise InvalidState(f"the callback's state was issued for integration {pending.integration!r}")
        if self.clock.time() > pending.expires_at:
            raise InvalidState(f"the callback's state expired ({self.state_ttl:g} s after the flow started)")
        return pending

    def finish_flow(self, *, session: str, params: Mapping[str, str]) -> Generator[Request, Response, Connected]:
        """Complete an authorization from its callback's query ``params``, in the ``session`` that started it."""
        pending = self._redeem_state(params, session)
        if "error" in params:
            raise error_from_fields(params, status=None, url=self.provider.authorize_url or "", doing="authorization")
        issuer = self.provider.issuer
        if "iss" in params and issuer is not None and params["iss"] != issuer:
            raise InvalidState(f"the callback names issuer {params['iss']!r}, not {issuer!r} (RFC 9207 mix-up defence)")
        code = params.get("code")
        if not code:
            raise OAuthError("the callback has neither a code nor an error")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        response = yield token_request(self.provider.token_url, self._client, form)
        granted = read_token_response(response, now=self.clock.time(), doing="the authorization code exchange")
        claims = None
        if pending.nonce is not None:
            claims = yield from self.validate_id_token(granted, nonce=pending.nonce)
        tokens = granted.tokens
        if not tokens.scopes and pending.scopes:  # RFC 6749 §5.1: omitted scope means as requested
            tokens = TokenSet(
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                token_type=tokens.token_type,
                scopes=pending.scopes,
                expires_at=tokens.expires_at,
            )
        return Connected(
            integration=self.integration, connection_id=pending.connection_id, tokens=tokens, id_claims=claims
        )

    def validate_id_token(self, granted: Granted, *, nonce: str | None) -> Generator[Request, Response, dict[str, Any]]:
        """Validate the response's ID token (required: the flow asked for ``openid``); its claims."""
        if granted.id_token is None:
            raise IDTokenInvalid("the provider granted an openid scope without an id_token")
        if self.jwks is None or self.provider.issuer is None:
            raise ConfigurationError(
                f"integration {self.integration!r} needs an issuer and a jwks_uri to check ID tokens"
            )
        return (
            yield from id_token_flow(
                granted.id_token,
                jwks=self.jwks,
                issuer=self.provider.issuer,
                client_id=self.client_id,
                nonce=nonce,
                now=self.clock.time(),
                leeway=self.id_token_leeway,
            )
        )

    # -- other grants ---------------------------------------------------------------------------------------

    def _grant(self, form: dict[str, str], doing: str) -> Generator[Request, Response, TokenSet]:
        response = yield token_request(self.provider.token_url, self._client, form)
        return read_token_response(response, now=self.clock.time(), doing=doing).tokens

    def client_credentials_flow(self, scopes: Sequence[str] | None = None) -> Generator[Request, Response, TokenSet]:
        """Client credentials grant (RFC 6749 §4.4): a token for the client itself."""
        form = {"grant_type": "client_credentials"}
        requested = tuple(scopes) if scopes is not None else self.scopes
        if requested:
            form["scope"] = " ".join(requested)
        return (yield from self._grant(form, "the client credentials grant"))

    def refresh_flow(
        self, refresh_token: str, scopes: Sequence[str] | None = None
    ) -> Generator[Request, Response, TokenSet]:
        """Refresh grant (RFC 6749 §6); the result's ``refresh_token`` is ``None`` if the provider did not rotate it."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scopes:
            form["scope"] = " ".join(scopes)
        return (yield from self._grant(form, "the token refresh"))

    def jwt_bearer_flow(self, scopes: Sequence[str] | None = None) -> Generator[Request, Response, TokenSet]:
        """JWT bearer grant (RFC 7523 §2.1) with a fresh assertion signed by ``jwt_bearer``."""
        if self.jwt_bearer is None:
            raise ConfigurationError(f"integration {self.integration!r} has no jwt_bearer signer")
        assertion = self.jwt_bearer.assertion(token_url=self.provider.token_url, now=self.clock.time())
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
        requested = tuple(scopes) if scopes is not None else self.scopes
        if requested:
            form["scope"] = " ".join(requested)
        return (yield from self._grant(form, "the JWT bearer grant"))

    def service_token_flow(self) -> Generator[Request, Response, TokenSet]:
        """A token without a person: the JWT bearer grant when a signer is configured, else client credentials."""
        if self.jwt_bearer is not None:
            return (yield from self.jwt_bearer_flow())
        return (yield from self.client_credentials_flow())

    def revoke_flow(self, token: str, hint: str | None = "refresh_token") -> Generator[Request, Response, bool]:
        """Revoke ``token`` (RFC 7009); whether the provider has a revocation endpoint (``False``: nothing sent).

        Per RFC 7009 §2.2 an unknown or already-revoked token is answered 200 too; an error raises.
        """
        url = self.provider.revocation_url
        if not url:
            return False
        response = yield revocation_request(url, self._client, token, hint)
        if response.status_code != 200:
            raise error_from_fields(
                _json_fields(response), status=response.status_code, url=url, doing=f"revocation at {redact_url(url)}"
            )
        return True


def _json_fields(response: Response) -> dict[str, object]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
