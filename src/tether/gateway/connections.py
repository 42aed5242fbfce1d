"""The gateway's connections API: ``GET /connections`` and ``GET /connections/{id}`` (JSON, never a token).

``DELETE /connections/{id}`` (revoke, then delete) is in :mod:`tether.gateway.oauth`, behind :meth:`refuse`.

Both answer from the credentials vault the lifespan opens (:class:`tether.auth.Vault`, on the gateway's database),
through :meth:`~tether.auth.Vault.list` and :meth:`~tether.auth.Vault.info`, which decrypt nothing: the bodies are
:meth:`tether.auth.ConnectionInfo.to_json` documents. The vault's calls block, so they run in a worker thread.

Access: ``Authorization: Bearer <TETHER_ADMIN_TOKEN>``, compared in constant time. Without a configured admin
token, production answers ``403`` (the API is off until one is set) and development lets every request through
(the lifespan logs a WARNING saying so at start-up). Errors are JSON ``{"error": CODE, "reason": TEXT}``:
``error`` rather than ``status``, which in a connection's document is the connection's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from tether.auth import ConnectionInfo, ConnectionStatus
from tether.errors import ConnectionNotFound
from tether.gateway.config import ADMIN_TOKEN_ENV, GatewaySettings

if TYPE_CHECKING:
    from tether.auth import Vault

__all__ = ["ConnectionsAPI"]

T = TypeVar("T")

logger = logging.getLogger("tether.gateway")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MAX_NAME = 255
_STATUSES = [status.value for status in ConnectionStatus]


def _error(status_code: int, code: str, reason: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="tether"'} if status_code == 401 else None
    return JSONResponse({"error": code, "reason": reason, **extra}, status_code=status_code, headers=headers)


class ConnectionsAPI:
    """The two endpoints, bound to the settings; :attr:`vault` is set by the lifespan while the app runs."""

    __slots__ = ("_token", "settings", "vault")

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.vault: Vault | None = None
        self._token = settings.admin_token.encode("utf-8") if settings.admin_token else None

    def log_access_policy(self) -> None:
        """Say at start-up, once, when the API is open to anyone (development) or closed (production)."""
        if self._token is not None:
            return
        if self.settings.environment == "production":
            logger.warning(
                "The connections API answers 403 to every request: %s is not set (production settings)",
                ADMIN_TOKEN_ENV,
            )
        else:
            logger.warning(
                "The connections API (/connections) is open to anyone who can reach this gateway: %s is not set. "
                "Development settings allow this; set %s to require 'Authorization: Bearer <token>'.",
                ADMIN_TOKEN_ENV,
                ADMIN_TOKEN_ENV,
            )

    def refuse(self, request: Request) -> JSONResponse | None:
        """The error answer when ``request`` may not use the API, else ``None``."""
        if self._token is None:
            if self.settings.environment == "production":
                return _error(
                    403,
                    "admin_token_not_configured",
                    f"The connections API is disabled: set {ADMIN_TOKEN_ENV} on the gateway and send it as "
                    "'Authorization: Bearer <token>'",
                )
            return None
        header = request.headers.get("authorization")
        if header is None:
            return _error(401, "unauthorized", "Send the admin token as 'Authorization: Bearer <token>'")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode("utf-8"), self._token):
            return _error(401, "unauthorized", "The admin token is wrong")
        return None

    async def _run(self, call: Callable[[Vault], T]) -> T | JSONResponse:
        vault = self.vault
        if vault is None:
            return _error(503, "unavailable", "The vault is not open (the gateway is starting or stopping)")
        try:
            return await asyncio.to_thread(call, vault)
        except sqlite3.Error as exc:
            logger.warning("The vault's database failed: %s", exc)
            return _error(503, "unavailable", "The vault's database is not answering")

    def guarded(
        self, endpoint: Callable[[Request], Awaitable[JSONResponse]]
    ) -> Callable[[Request], Awaitable[JSONResponse]]:
        """``endpoint`` behind the admin token (:meth:`refuse`)."""

        async def checked(request: Request) -> JSONResponse:
            refused = self.refuse(request)
            return refused if refused is not None else await endpoint(request)

        return checked

    @property
    def list_endpoint(self) -> Callable[[Request], Awaitable[JSONResponse]]:
        """``GET /connections[?integration=NAME][&status=active][&limit=100]``."""
        return self.guarded(self._list)

    @property
    def show_endpoint(self) -> Callable[[Request], Awaitable[JSONResponse]]:
        """``GET /connections/{id}[?integration=NAME]``."""
        return self.guarded(self._show)

    async def _list(self, request: Request) -> JSONResponse:
        integration = request.query_params.get("integration")
        if integration is not None and not 0 < len(integration) <= _MAX_NAME:
            return _error(400, "bad_request", f"'integration' must be 1 to {_MAX_NAME} characters")
        status = request.query_params.get("status")
        if status is not None and status not in _STATUSES:
            return _error(400, "bad_request", f"'status' must be one of {_STATUSES}")
        try:
            limit = int(request.query_params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, "bad_request", f"'limit' must be an integer from 1 to {MAX_LIMIT}")
        chosen = ConnectionStatus(status) if status is not None else None
        found = await self._run(lambda vault: vault.list(integration=integration, status=chosen, limit=limit + 1))
        if isinstance(found, JSONResponse):
            return found
        return JSONResponse(
            {"connections": [info.to_json() for info in found[:limit]], "truncated": len(found) > limit}
        )

    async def _show(self, request: Request) -> JSONResponse:
        located = await self.locate(request)
        return located if isinstance(located, JSONResponse) else JSONResponse(located.to_json())

    async def locate(self, request: Request) -> ConnectionInfo | JSONResponse:
        """Connection ``{connection_id}`` under ``?integration=`` or else any configured integration (no secret).

        Or the answer saying why not: 400 for a bad ``integration``, 404, 409 when several integrations hold the
        id, 503 when the vault is not there. Shared by the routes that act on one connection.
        """
        connection_id: str = request.path_params["connection_id"]
        integration = request.query_params.get("integration")
        if integration is not None:
            if not 0 < len(integration) <= _MAX_NAME:
                return _error(400, "bad_request", f"'integration' must be 1 to {_MAX_NAME} characters")
            names = [integration]
        else:
            names = [configured.name for configured in self.settings.integrations]

        def lookup(vault: Vault) -> list[ConnectionInfo]:
            found = []
            for name in names:
                with contextlib.suppress(ConnectionNotFound):
                    found.append(vault.info(connection_id, name))
            return found

        found = await self._run(lookup)
        if isinstance(found, JSONResponse):
            return found
        if len(found) == 1:
            return found[0]
        if found:
            return _error(
                409,
                "ambiguous",
                f"Connection {connection_id!r} exists under several integrations; choose one with ?integration=NAME",
                integrations=[info.integration for info in found],
            )
        if integration is not None:
            return _error(404, "not_found", f"No connection {connection_id!r} for integration {integration!r}")
        return _error(
            404,
            "not_found",
            f"No connection {connection_id!r} under the configured integrations {names}; for an integration not "
            "in the gateway's config, pass ?integration=NAME",
        )
