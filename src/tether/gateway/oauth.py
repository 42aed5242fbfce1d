"""The gateway's OAuth routes: ``/connect/NAME``, ``/oauth/callback``, and DELETE and test on a connection.

``GET /connect/NAME?connection_id=ID`` starts an authorization code + PKCE (S256) flow for the configured
integration ``NAME`` and answers ``302`` to the provider's authorize URL. The flow's ``state`` is bound to the
browser's session: a random session id in an HttpOnly, SameSite=Lax cookie (``Secure`` on https), of which the
state store (:class:`tether.auth.SQLStateStore` on the gateway's database) keeps only a hash, as it keeps only
the state's hash. ``GET /oauth/callback`` redeems the state (single-use, expiring, same session), exchanges the
code and stores the connection in the vault under the chosen id; the person sees a small HTML page, never a token.
Every refusal is a plain HTML page with the right status, and a log line with details but no secret.

Provider endpoints come from ``authorize_url``/``token_url`` or, with ``issuer``, from discovery, done once per
integration for the app's life (a failed discovery is retried at the next request). The default ``redirect_uri``
is this gateway's ``/oauth/callback`` under the request's base URL.

``DELETE /connections/{id}[?integration=NAME]`` (admin token, as the read-only routes) revokes the grant at the
provider (RFC 7009; the refresh token, else the access token) when it has a revocation endpoint, then deletes
the connection; a failed revocation keeps the connection (``502``) so the call can be retried.

``POST /connections/{id}/test[?integration=NAME]`` (admin token) makes one authenticated ``GET`` with the stored
connection (refreshing it first if it expired, and once more after a ``401``, as :class:`tether.auth.OAuth2` does)
to the integration's ``test_url``, else its provider's OIDC ``userinfo_endpoint``, else answers ``400``. The answer
is ``{"id", "integration", "ok", "status", "status_after"}``: the call's HTTP status (``null`` when no call could
be made, e.g. a dead grant) and the connection's status in the vault afterwards; never a token or the body.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tether._clock import Clock, SystemClock
from tether.auth import OAuthApp, PendingAuthorization, Provider, SQLStateStore, discover, run_flow
from tether.auth._oauth_app import DEFAULT_STATE_TTL
from tether.auth._oauth_state import state_key
from tether.errors import (
    AccessDenied,
    ConfigurationError,
    ConnectionNotFound,
    InvalidState,
    NeedsReauth,
    OAuthError,
    TetherError,
    VaultError,
)
from tether.gateway.config import GatewaySettings, Integration

if TYPE_CHECKING:
    from tether.auth import Vault
    from tether.client import AsyncClient
    from tether.gateway.connections import ConnectionsAPI

__all__ = ["SESSION_COOKIE", "CallbackQueryFilter", "OAuthRoutes"]

logger = logging.getLogger("tether.gateway")

SESSION_COOKIE = "tether_oauth_session"
"""The cookie holding the browser's session id, to which each flow's ``state`` is bound."""

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_MAX_NAME = 255
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_TEST_DEADLINE = 20.0  # seconds for POST /connections/{id}/test's call, a refresh included
_PAGE_HEADERS = {**_NO_STORE, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


def page(status_code: int, title: str, message: str) -> HTMLResponse:
    """A small HTML page for the person in the browser; ``title`` and ``message`` are escaped here."""
    body = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>\n"
    )
    return HTMLResponse(body, status_code=status_code, headers=_PAGE_HEADERS)


class CallbackQueryFilter(logging.Filter):
    """Hides the callback's query string (a one-time code and a state) in access-log records (``uvicorn.access``).

    uvicorn logs each request's path with its query; the lifespan attaches this filter to ``uvicorn.access`` so
    ``/oauth/callback?code=...&state=...`` is logged as ``/oauth/callback?[redacted]``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's string arguments that hold a callback URL; keep every record."""
        if isinstance(record.args, tuple) and any(
            isinstance(arg, str) and _CALLBACK_PATH in arg for arg in record.args
        ):
            record.args = tuple(
                arg.split("?", 1)[0] + "?[redacted]" if isinstance(arg, str) and _CALLBACK_PATH in arg else arg
                for arg in record.args
            )
        return True


_CALLBACK_PATH = "/oauth/callback?"


def _json_error(status_code: int, code: str, reason: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": code, "reason": reason, **extra}, status_code=status_code)


class _PrefetchedStates:
    """The gateway's :class:`tether.auth.StateStore`: new states go to the database; a callback's is taken first.

    The callback must read a state's record to learn its integration (and so which :class:`OAuthApp` finishes
    it) before the app redeems it; it takes the record from the database (single-use there) and parks it here,
    keyed by the state's hash, for the app's own :meth:`take` a moment later.
    """

    __slots__ = ("_lock", "_parked", "database")

    def __init__(self, database: SQLStateStore) -> None:
        self.database = database
        self._parked: dict[str, PendingAuthorization] = {}
        self._lock = threading.Lock()

    def put(self, pending: PendingAuthorization) -> None:
        """File ``pending`` in the database."""
        self.database.put(pending)

    def take(self, state: str, *, now: float) -> PendingAuthorization | None:
        """The parked record for ``state`` (removed), else the database's."""
        with self._lock:
            parked = self._parked.pop(state_key(state), None)
        return parked if parked is not None else self.database.take(state, now=now)

    def park(self, pending: PendingAuthorization) -> None:
        """Keep ``pending`` (just taken from the database) for the app's :meth:`take`."""
        with self._lock:
            self._parked[state_key(pending.state)] = pending

    def drop(self, state: str) -> None:
        """Forget a parked record the app did not take (the flow stopped before redeeming it)."""
        with self._lock:
            self._parked.pop(state_key(state), None)


class OAuthRoutes:
    """The four endpoints, bound to the settings; the lifespan sets :attr:`vault`, :attr:`client`, :meth:`open_states`.

    ``clock`` dates the flows (state expiry, token expiry); ``state_ttl`` is a state's lifetime in seconds.
    """

    __slots__ = ("_apps", "_locks", "client", "clock", "connections", "settings", "state_ttl", "states", "vault")

    def __init__(
        self,
        settings: GatewaySettings,
        connections: ConnectionsAPI,
        *,
        clock: Clock | None = None,
        state_ttl: float = DEFAULT_STATE_TTL,
    ) -> None:
        self.settings = settings
        self.connections = connections
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.state_ttl = state_ttl
        self.vault: Vault | None = None
        self.client: AsyncClient | None = None
        self.states: _PrefetchedStates | None = None
        self._apps: dict[str, OAuthApp] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def open_states(self) -> None:
        """Open the state store on the gateway's database (blocking; the lifespan runs it in a thread)."""
        self.states = _PrefetchedStates(SQLStateStore(self.settings.database, clock=self.clock))

    def close(self) -> None:
        """Close the state store and forget the apps (the lifespan closes the client and the vault)."""
        if self.states is not None:
            self.states.database.close()
            self.states = None
        self._apps.clear()
        self._locks.clear()

    # -- apps -----------------------------------------------------------------------------------------------

    async def app_for(self, integration: Integration) -> OAuthApp:
        """The integration's :class:`OAuthApp`, discovering its provider at first use (then cached)."""
        app = self._apps.get(integration.name)
        if app is not None:
            return app
        lock = self._locks.setdefault(integration.name, asyncio.Lock())
        async with lock:
            app = self._apps.get(integration.name)
            if app is not None:
                return app
            if self.client is None or self.states is None:
                raise ConfigurationError("the gateway is starting or stopping")
            if integration.issuer is not None:
                provider = await discover(integration.issuer, self.client)
                if integration.revocation_url is not None:
                    provider = replace(provider, revocation_url=integration.revocation_url)
            else:
                provider = Provider(
                    token_url=integration.token_url or "",
                    authorize_url=integration.authorize_url,
                    revocation_url=integration.revocation_url,
                )
            app = OAuthApp(
                integration.name,
                provider=provider,
                client_id=integration.client_id,
                client_secret=integration.client_secret or None,
                redirect_uri=integration.redirect_uri,
                scopes=integration.scopes,
                state_store=self.states,
                state_ttl=self.state_ttl,
                clock=self.clock,
            )
            self._apps[integration.name] = app
            return app

    # -- GET /connect/{integration} -------------------------------------------------------------------------

    async def connect(self, request: Request) -> Response:
        """``GET /connect/NAME?connection_id=ID``: ``302`` to the provider, with the session cookie set."""
        name: str = request.path_params["integration"]
        integration = self.settings.integration(name)
        if integration is None:
            logger.info("Connect refused: no integration %r is configured", name[:_MAX_NAME])
            return page(404, "Unknown integration", f"This gateway has no integration called {name[:_MAX_NAME]!r}.")
        connection_id = request.query_params.get("connection_id", "")
        if not 0 < len(connection_id) <= _MAX_NAME or not connection_id.isprintable():
            return page(
                400,
                "Missing connection id",
                f"Start the connection with ?connection_id=ID: 1 to {_MAX_NAME} printable characters naming it.",
            )
        session = request.cookies.get(SESSION_COOKIE, "")
        if not _SESSION_ID.fullmatch(session):
            session = secrets.token_urlsafe(32)
        try:
            app = await self.app_for(integration)
        except TetherError as exc:
            logger.warning("Connect for integration %r failed: the provider's metadata: %s", name, exc)
            return page(502, "Provider unavailable", "The provider could not be reached. Try again in a moment.")
        redirect_uri = integration.redirect_uri or str(request.url_for("oauth_callback"))
        try:
            url = await asyncio.to_thread(
                app.authorization_url, session=session, connection_id=connection_id, redirect_uri=redirect_uri
            )
        except ConfigurationError as exc:
            logger.warning("Connect for integration %r is misconfigured: %s", name, exc)
            return page(500, "Integration misconfigured", "This integration is not set up correctly on the gateway.")
        except sqlite3.Error as exc:
            logger.warning("Connect for integration %r: the state store failed: %s", name, exc)
            return page(503, "Temporarily unavailable", "The gateway cannot start a connection now. Try again.")
        logger.info("Connect started for integration %r, connection %r", name, connection_id)
        response = RedirectResponse(url, status_code=302, headers=_NO_STORE)
        response.set_cookie(
            SESSION_COOKIE,
            session,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    # -- GET /oauth/callback --------------------------------------------------------------------------------

    async def callback(self, request: Request) -> Response:  # noqa: PLR0911 one answer per failure
        """``GET /oauth/callback?code=&state=``: finish the flow, store the connection, a small HTML page."""
        params = dict(request.query_params)
        state = params.get("state", "")
        states = self.states
        vault = self.vault
        client = self.client
        if states is None or vault is None or client is None:
            return page(503, "Temporarily unavailable", "The gateway is starting or stopping. Try again.")
        if not state:
            logger.warning("OAuth callback refused: no state parameter")
            return page(
                400,
                "Invalid sign-in response",
                "This page was not reached from a connection this gateway started. Start the connection again.",
            )
        try:
            pending = await asyncio.to_thread(states.database.take, state, now=self.clock.time())
        except sqlite3.Error as exc:
            logger.warning("OAuth callback: the state store failed: %s", exc)
            return page(503, "Temporarily unavailable", "The gateway cannot finish the connection now. Try again.")
        if pending is None:
            logger.warning("OAuth callback refused: the state is unknown, already used or long expired")
            return page(
                400,
                "Link expired or already used",
                "This sign-in response is unknown, was already used, or expired. Start the connection again.",
            )
        where = f"integration {pending.integration!r}, connection {pending.connection_id!r}"
        integration = self.settings.integration(pending.integration)
        if integration is None:
            logger.warning("OAuth callback refused (%s): the integration is no longer configured", where)
            return page(404, "Unknown integration", "The integration of this connection is no longer configured.")
        states.park(pending)
        session = request.cookies.get(SESSION_COOKIE, "")
        try:
            app = await self.app_for(integration)
            connected = await run_flow(app.finish_flow(session=session, params=params), client)
            await asyncio.to_thread(vault.save, connected.connection_id, connected.integration, connected.tokens)
        except InvalidState as exc:
            logger.warning("OAuth callback refused (%s): %s", where, exc.summary)
            return page(400, "Connection not completed", _state_message(exc.summary))
        except AccessDenied as exc:
            logger.info("OAuth consent denied (%s): %s", where, exc.summary)
            return page(
                403, "Access was not granted", "The connection was cancelled at the provider. You can start it again."
            )
        except OAuthError as exc:
            logger.warning("OAuth callback failed (%s): %s (error=%s)", where, exc, exc.error)
            return page(
                502,
                "Connection failed",
                "The provider did not complete the connection. Start it again; if this persists, contact the "
                "gateway's administrator.",
            )
        except ConfigurationError as exc:
            logger.warning("OAuth callback (%s): misconfigured: %s", where, exc)
            return page(500, "Integration misconfigured", "This integration is not set up correctly on the gateway.")
        except (sqlite3.Error, VaultError) as exc:
            logger.warning("OAuth callback (%s): the vault failed: %s", where, exc)
            return page(503, "Temporarily unavailable", "The connection could not be saved. Start it again.")
        except TetherError as exc:
            logger.warning("OAuth callback (%s): the provider could not be reached: %s", where, exc)
            return page(502, "Provider unavailable", "The provider could not be reached. Start the connection again.")
        finally:
            states.drop(state)
        logger.info("Connection stored (%s)", where)
        return page(
            200,
            "Connected",
            f"{integration.name} is connected as {connected.connection_id!r}. You can close this window.",
        )

    # -- DELETE /connections/{id} ---------------------------------------------------------------------------

    @property
    def delete_endpoint(self) -> Callable[[Request], Awaitable[JSONResponse]]:
        """``DELETE /connections/{id}[?integration=NAME]``, behind the connections API's admin token."""
        return self.connections.guarded(self._delete)

    async def _delete(self, request: Request) -> JSONResponse:
        connection_id: str = request.path_params["connection_id"]
        vault, client = self.vault, self.client
        if vault is None or client is None:
            return _json_error(503, "unavailable", "The vault is not open (the gateway is starting or stopping)")
        located = await self.connections.locate(request)
        if isinstance(located, JSONResponse):
            return located
        name = located.integration
        integration = self.settings.integration(name)
        revoked = False
        if integration is None:
            logger.warning(
                "Deleting connection %r of integration %r without revoking: not configured", connection_id, name
            )
        else:
            outcome = await self._revoke(integration, connection_id, vault, client)
            if isinstance(outcome, JSONResponse):
                return outcome
            revoked = outcome
        try:
            deleted = await asyncio.to_thread(vault.delete, connection_id, name)
        except sqlite3.Error as exc:
            logger.warning("The vault's database failed: %s", exc)
            return _json_error(503, "unavailable", "The vault's database is not answering")
        if not deleted:
            return _json_error(404, "not_found", f"No connection {connection_id!r} for integration {name!r}")
        logger.info(
            "Connection %r of integration %r deleted (revoked at the provider: %s)", connection_id, name, revoked
        )
        return JSONResponse({"id": connection_id, "integration": name, "deleted": True, "revoked": revoked})

    async def _revoke(
        self, integration: Integration, connection_id: str, vault: Vault, client: AsyncClient
    ) -> bool | JSONResponse:
        """Revoke the stored grant at the provider: whether a revocation was sent, or the error answer."""
        name = integration.name
        try:
            app = await self.app_for(integration)
            tokens = (await asyncio.to_thread(vault.get, connection_id, name)).tokens
            token, hint = (
                (tokens.refresh_token, "refresh_token")
                if tokens.refresh_token is not None
                else (tokens.access_token, "access_token")
            )
            return await run_flow(app.revoke_flow(token, hint), client)
        except ConnectionNotFound:
            return _json_error(404, "not_found", f"No connection {connection_id!r} for integration {name!r}")
        except VaultError as exc:
            logger.warning("Connection %r of integration %r cannot be opened: %s", connection_id, name, exc)
            return _json_error(
                500,
                "vault_error",
                "The connection's tokens cannot be read with the configured keys; it was not revoked and is kept",
            )
        except sqlite3.Error as exc:
            logger.warning("The vault's database failed: %s", exc)
            return _json_error(503, "unavailable", "The vault's database is not answering")
        except TetherError as exc:
            logger.warning("Revoking connection %r of integration %r failed: %s", connection_id, name, exc)
            return _json_error(
                502,
                "revocation_failed",
                "The provider did not confirm the revocation; the connection is kept. Try again.",
            )

    # -- POST /connections/{id}/test ------------------------------------------------------------------------

    @property
    def test_endpoint(self) -> Callable[[Request], Awaitable[JSONResponse]]:
        """``POST /connections/{id}/test[?integration=NAME]``, behind the connections API's admin token."""
        return self.connections.guarded(self._test)

    async def _test(self, request: Request) -> JSONResponse:  # noqa: PLR0911 one answer per failure
        connection_id: str = request.path_params["connection_id"]
        vault = self.vault
        if vault is None or self.client is None:
            return _json_error(503, "unavailable", "The vault is not open (the gateway is starting or stopping)")
        located = await self.connections.locate(request)
        if isinstance(located, JSONResponse):
            return located
        name = located.integration
        integration = self.settings.integration(name)
        if integration is None:
            return _json_error(
                400, "not_configured", f"Integration {name!r} is not in the gateway's config; it cannot be tested"
            )
        try:
            app = await self.app_for(integration)
        except TetherError as exc:
            logger.warning(
                "Testing connection %r of integration %r: the provider's metadata: %s", connection_id, name, exc
            )
            return _json_error(502, "provider_unavailable", "The provider's metadata could not be fetched; try again")
        url = integration.test_url or app.provider.userinfo_url
        if url is None:
            return _json_error(
                400,
                "no_test_url",
                f"Integration {name!r} names no URL to test a connection with: set 'test_url' in "
                f"[integrations.{name}] (its provider publishes no OIDC userinfo_endpoint)",
            )
        status = await asyncio.to_thread(self._call, app, vault, connection_id, url)
        if isinstance(status, JSONResponse):
            return status
        try:
            after = (await asyncio.to_thread(vault.info, connection_id, name)).status
        except ConnectionNotFound:
            return _json_error(404, "not_found", f"No connection {connection_id!r} for integration {name!r}")
        except sqlite3.Error as exc:
            logger.warning("The vault's database failed: %s", exc)
            return _json_error(503, "unavailable", "The vault's database is not answering")
        ok = status is not None and 200 <= status < 300
        logger.info(
            "Connection %r of integration %r tested: %s (HTTP status %s, connection %s)",
            connection_id,
            name,
            "ok" if ok else "failed",
            status,
            after.value,
        )
        return JSONResponse(
            {"id": connection_id, "integration": name, "ok": ok, "status": status, "status_after": after.value}
        )

    def _call(self, app: OAuthApp, vault: Vault, connection_id: str, url: str) -> int | JSONResponse | None:
        """One ``GET url`` with the stored connection's token (refreshed if needed): the status, ``None``, or an error.

        Blocking, in a worker thread: :class:`tether.auth.OAuth2` reads and writes the vault as it goes.
        """
        from tether.auth import OAuth2
        from tether.client import Client
        from tether.policies import Policy

        where = f"connection {connection_id!r} of integration {app.integration!r}"
        auth = OAuth2(app, vault=vault, connection_id=connection_id)
        policy = Policy(raise_for_status=False, deadline=_TEST_DEADLINE)
        try:
            with Client(auth=auth, policy=policy) as http:
                return http.get(url).status_code
        except ConnectionNotFound:
            return _json_error(404, "not_found", f"No connection {connection_id!r} for integration {app.integration!r}")
        except NeedsReauth as exc:
            logger.info("Testing %s: the grant is dead: %s", where, exc.summary)
            return None
        except VaultError as exc:
            logger.warning("Testing %s: the connection cannot be opened: %s", where, exc)
            return _json_error(500, "vault_error", "The connection's tokens cannot be read with the configured keys")
        except sqlite3.Error as exc:
            logger.warning("The vault's database failed: %s", exc)
            return _json_error(503, "unavailable", "The vault's database is not answering")
        except TetherError as exc:
            logger.warning("Testing %s: the call failed: %s", where, exc)
            return None


def _state_message(summary: str) -> str:
    if "another browser session" in summary:
        return "This sign-in response belongs to another browser session. Start the connection again in this browser."
    if "expired" in summary:
        return "The sign-in took too long and expired. Start the connection again."
    return "This sign-in response could not be verified. Start the connection again."
