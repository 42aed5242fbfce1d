"""The transport interface: one method to send a request, one to close.

A transport performs a single HTTP exchange and returns a complete :class:`~tether.Response` (body read).
It raises only :class:`~tether.errors.TransportError` subclasses — ``ConnectError`` when nothing was sent,
``ReadError`` when the exchange broke after sending, ``TransportTimeout`` when ``timeout`` passed — having
translated its library's own exceptions; no foreign type crosses this boundary. Retries, deadlines and
policies are not its business.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tether._models import Request, Response

__all__ = ["AsyncTransport", "SyncTransport"]


@runtime_checkable
class AsyncTransport(Protocol):
    """Sends requests with asyncio."""

    async def send(self, request: Request, timeout: float | None) -> Response:
        """Perform one exchange within ``timeout`` seconds (``None``: no limit)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class SyncTransport(Protocol):
    """Sends requests with blocking I/O."""

    def send(self, request: Request, timeout: float | None) -> Response:
        """Perform one exchange within ``timeout`` seconds (``None``: no limit)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
