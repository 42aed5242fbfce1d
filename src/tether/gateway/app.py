"""The gateway's ASGI application (Starlette).

State lives in SQLite in the working folder by default (``tether.db``); the file is created and checked at
start-up, so a gateway that cannot write its state fails at once rather than at the first webhook.
``GET /healthz`` answers ``200 {"status": "ok", ...}`` while the database answers, ``503`` otherwise.
``POST /webhooks/{NAME}`` receives the webhooks of each configured source into the durable inbox (in the same
SQLite file); any other NAME answers ``404``. The inbox worker runs handlers in a task owned by the lifespan.

At start-up the vault's keys are loaded by the environment's policy (:func:`load_gateway_keyring`: production
refuses to start without ``TETHER_SECRET_KEY``/``TETHER_SECRET_KEY_FILE``; development creates ``tether.key``
beside the database) and the vault is opened on the same database, always, whether or not integrations are
configured: ``GET /connections`` must show connections stored by the Python API or left by an integration since
removed from the config, and the key policy must not depend on what is configured today.
``GET /connections`` and ``GET /connections/{id}`` are in :mod:`tether.gateway.connections`;
``GET /connect/{integration}``, ``GET /oauth/callback``, ``DELETE /connections/{id}`` and ``POST .../test`` in
:mod:`tether.gateway.oauth`. Their outbound calls (discovery, token exchange, revocation) go through one
:class:`tether.AsyncClient` the lifespan creates and closes; the OAuth state store is opened on the same database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tether._clock import Clock
from tether._version import __version__
from tether.errors import ConfigurationError
from tether.gateway.config import GatewaySettings
from tether.gateway.connections import ConnectionsAPI
from tether.gateway.oauth import CallbackQueryFilter, OAuthRoutes
from tether.webhooks import Inbox
from tether.webhooks._inbox_asgi import InboxEndpoint, Receive, Scope, Send

if TYPE_CHECKING:
    from tether.auth import Keyring, Vault

__all__ = ["GatewaySettings", "check_database", "create_app", "load_gateway_keyring"]

logger = logging.getLogger("tether.gateway")

_SHUTDOWN_GRACE = 5.0
"""Seconds a stopping worker may take to finish the handler it is running before it is cancelled."""


def check_database(settings: GatewaySettings) -> None:
    """Open (creating) the gateway's SQLite database and run a query; raises :class:`sqlite3.Error` if it cannot."""
    connection = sqlite3.connect(settings.database, timeout=5)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("SELECT 1").fetchone()
    finally:
        connection.close()


def load_gateway_keyring(settings: GatewaySettings, environ: Mapping[str, str]) -> Keyring:
    """The vault's keys for ``settings.environment``: :func:`tether.auth.load_keyring` with ``settings.key_file``.

    Raises :class:`tether.errors.SecretKeyRequired` in production without ``TETHER_SECRET_KEY`` or
    ``TETHER_SECRET_KEY_FILE``, :class:`tether.errors.MalformedSecretKey` for a malformed setting (both are
    :class:`ConfigurationError`). In development it creates the key file (mode 0600) when missing, and logs a
    WARNING every time it uses it.
    """
    from tether.auth import load_keyring

    return load_keyring(environment=settings.environment, environ=environ, key_file=settings.key_file)


class _WebhookRouter:
    """ASGI app for ``/webhooks/{name}``: the configured source's inbox endpoint, or a JSON ``404``."""

    __slots__ = ("endpoints",)

    def __init__(self) -> None:
        self.endpoints: dict[str, InboxEndpoint] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope.get("path_params", {}).get("name", "")
        endpoint = self.endpoints.get(name)
        if endpoint is not None:
            await endpoint(scope, receive, send)
            return
        body = json.dumps({"status": "not_found", "reason": "no webhook source of that name"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 404, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _Gateway(Starlette):
    """The Starlette app, with ``POST /webhooks/NAME`` of a configured source dispatched before Starlette's stack.

    Why: webhook ingress is the gateway's hot path, and Starlette's error and exception middleware, router and
    send wrappers cost about as much per delivery as verifying it. The inbox endpoint answers every delivery
    itself (200/401/405/413/431/503) and raises nothing it would catch; unknown names, other paths and an app
    mounted under a ``root_path`` take the ordinary route.
    """

    webhooks: _WebhookRouter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.startswith(_WEBHOOKS_PREFIX):
                endpoint = self.webhooks.endpoints.get(path[len(_WEBHOOKS_PREFIX) :])
                if endpoint is not None:
                    await endpoint(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


_WEBHOOKS_PREFIX = "/webhooks/"


def _open_inbox(settings: GatewaySettings, router: _WebhookRouter) -> Inbox:
    # The database was checked by _open_vault. The gateway's worker is the only one and it has no handlers: its
    # deliveries are stored processed at once.
    inbox = Inbox(settings.database, unhandled="processed")
    for source in settings.sources:
        if not source.secrets:
            inbox.close()
            raise ConfigurationError(
                f"webhook source {source.name!r} has no secret: resolve secret_env with "
                "GatewaySettings.resolve_secrets() before creating the app"
            )
        router.endpoints[source.name] = inbox.asgi(source.name, source.scheme, secret=source.secrets, url=source.url)
    return inbox


def _open_vault(settings: GatewaySettings, keyring: Keyring | None) -> Vault:
    from tether.auth import Vault

    check_database(settings)
    keys = keyring if keyring is not None else load_gateway_keyring(settings, os.environ)
    return Vault(settings.database, keyring=keys)


def create_app(  # noqa: PLR0915 the lifespan and the routes are wired here, in one place
    settings: GatewaySettings | None = None,
    *,
    inbox: Inbox | None = None,
    keyring: Keyring | None = None,
    clock: Clock | None = None,
    state_ttl: float | None = None,
) -> Starlette:
    """Build the gateway app for ``settings``.

    At start-up the vault's keys are loaded (:func:`load_gateway_keyring` with ``os.environ``, unless ``keyring``
    is given: ``tether serve`` loads them before starting the server, to report a missing key without a
    traceback), then the vault and the inbox (both in ``settings.database``) are opened; both are closed at
    shutdown. Pass ``inbox`` to use one you own instead (its handlers run in the app's worker; the app does not
    close it). ``clock`` dates the OAuth flows and ``state_ttl`` is how long a started connection may take to
    come back (default 10 minutes); both are for tests and special deployments.
    """
    from tether.auth._oauth_app import DEFAULT_STATE_TTL
    from tether.client import AsyncClient

    settings = settings or GatewaySettings()
    router = _WebhookRouter()
    connections = ConnectionsAPI(settings)
    oauth = OAuthRoutes(
        settings, connections, clock=clock, state_ttl=state_ttl if state_ttl is not None else DEFAULT_STATE_TTL
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        vault = await asyncio.to_thread(_open_vault, settings, keyring)
        try:
            # Same database as the vault (already checked): the oauth_states table of the shared migrations.
            await asyncio.to_thread(oauth.open_states)
            if inbox is None:
                opened = await asyncio.to_thread(_open_inbox, settings, router)
            else:
                opened = inbox
                for source in settings.sources:
                    router.endpoints[source.name] = inbox.asgi(
                        source.name, source.scheme, secret=source.secrets, url=source.url
                    )
        except BaseException:
            oauth.close()
            vault.close()
            raise
        connections.vault = vault
        oauth.vault = vault
        oauth.client = AsyncClient()
        access_filter = CallbackQueryFilter()
        logging.getLogger("uvicorn.access").addFilter(access_filter)
        connections.log_access_policy()
        stop = asyncio.Event()
        worker = asyncio.create_task(opened.work(idle=settings.worker_idle, stop=stop), name="tether-webhook-worker")
        try:
            yield
        finally:
            stop.set()
            done, _ = await asyncio.wait({worker}, timeout=settings.worker_idle + _SHUTDOWN_GRACE)
            if not done:
                logger.warning("The webhook worker did not stop in time; cancelling it")
                worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("The webhook worker failed")
            router.endpoints.clear()
            connections.vault = None
            oauth.vault = None
            client, oauth.client = oauth.client, None
            if client is not None:
                await client.aclose()
            oauth.close()
            logging.getLogger("uvicorn.access").removeFilter(access_filter)
            if inbox is None:
                opened.close()
            vault.close()

    async def healthz(request: Request) -> JSONResponse:
        try:
            await asyncio.to_thread(check_database, settings)
        except sqlite3.Error as exc:
            return JSONResponse({"status": "unavailable", "database": "sqlite", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__, "database": "sqlite"})

    app = _Gateway(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/webhooks/{name}", router),
            Route("/connections", connections.list_endpoint, methods=["GET"]),
            Route("/connections/{connection_id}", connections.show_endpoint, methods=["GET"]),
            Route("/connections/{connection_id}", oauth.delete_endpoint, methods=["DELETE"]),
            Route("/connections/{connection_id}/test", oauth.test_endpoint, methods=["POST"]),
            Route("/connect/{integration}", oauth.connect, methods=["GET"]),
            Route("/oauth/callback", oauth.callback, methods=["GET"], name="oauth_callback"),
        ],
        lifespan=lifespan,
    )
    app.webhooks = router
    return app
