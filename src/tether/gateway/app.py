"""The gateway's ASGI application (Starlette).

State lives in SQLite in the working folder by default (``tether.db``); the file is created and checked at
start-up, so a gateway that cannot write its state fails at once rather than at the first webhook.
``GET /healthz`` answers ``200 {"status": "ok", ...}`` while the database answers, ``503`` otherwise.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tether._version import __version__

__all__ = ["GatewaySettings", "create_app"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    """Gateway settings: ``database`` is the SQLite file holding the gateway's state."""

    database: Path = Path("tether.db")


def _check_database(path: Path) -> None:
    connection = sqlite3.connect(path, timeout=5)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("SELECT 1").fetchone()
    finally:
        connection.close()


def create_app(settings: GatewaySettings | None = None) -> Starlette:
    """Build the gateway app for ``settings``."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(_check_database, settings.database)
        yield

    async def healthz(request: Request) -> JSONResponse:
        try:
            await asyncio.to_thread(_check_database, settings.database)
        except sqlite3.Error as exc:
            return JSONResponse({"status": "unavailable", "database": "sqlite", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__, "database": "sqlite"})

    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"])], lifespan=lifespan)
