"""The gateway's ASGI application (Starlette).

State lives in SQLite in the working folder by default (``tether.db``); the file is created and checked at
start-up, so a gateway that cannot write its state fails at once rather than at the first webhook.
``GET /healthz`` answers ``200 {"status": "ok", ...}`` while the database answers, ``503`` otherwise.
``POST /webhooks/{NAME}`` receives the webhooks of each configured source into the durable inbox (in the same
SQLite file); any other NAME answers ``404``. The inbox worker runs handlers in a task owned by the lifespan.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tether._version import __version__
from tether.errors import ConfigurationError
from tether.gateway.config import GatewaySettings
from tether.webhooks import Inbox
from tether.webhooks._inbox_asgi import InboxEndpoint, Receive, Scope, Send

__all__ = ["GatewaySettings", "create_app"]

logger = logging.getLogger("tether.gateway")

_SHUTDOWN_GRACE = 5.0
"""Seconds a stopping worker may take to finish the handler it is running before it is cancelled."""


def _check_database(settings: GatewaySettings) -> None:
    connection = sqlite3.connect(settings.database, timeout=5)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("SELECT 1").fetchone()
    finally:
        connection.close()


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
    _check_database(settings)
    # The gateway's worker is the only one and it has no handlers: its deliveries are stored processed at once.
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


def create_app(settings: GatewaySettings | None = None, *, inbox: Inbox | None = None) -> Starlette:
    """Build the gateway app for ``settings``.

    The inbox (``settings.database``) is opened at start-up and closed at shutdown; pass ``inbox`` to use one
    you own instead (its handlers run in the app's worker; the app does not close it).
    """
    settings = settings or GatewaySettings()
    router = _WebhookRouter()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if inbox is None:
            opened = await asyncio.to_thread(_open_inbox, settings, router)
        else:
            await asyncio.to_thread(_check_database, settings)
            opened = inbox
            for source in settings.sources:
                router.endpoints[source.name] = inbox.asgi(
                    source.name, source.scheme, secret=source.secrets, url=source.url
                )
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
            if inbox is None:
                opened.close()

    async def healthz(request: Request) -> JSONResponse:
        try:
            await asyncio.to_thread(_check_database, settings)
        except sqlite3.Error as exc:
            return JSONResponse({"status": "unavailable", "database": "sqlite", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__, "database": "sqlite"})

    app = _Gateway(
        routes=[Route("/healthz", healthz, methods=["GET"]), Route("/webhooks/{name}", router)],
        lifespan=lifespan,
    )
    app.webhooks = router
    return app
