"""The transport interface: one method to send a request, one to close.

A transport performs a single HTTP exchange and returns a complete :class:`~tether.Response` (body read).
It raises only :class:`~tether.errors.TransportError` subclasses — ``ConnectError`` when nothing was sent,
``ReadError`` when the exchange broke after sending, ``TransportTimeout`` when ``timeout`` passed,
``ResponseTooLarge`` when the body exceeds its limit — having translated its library's own exceptions; no
foreign type crosses this boundary. Retries, deadlines and policies are not its business.

A hostile or broken server can send an endless body, or a small compressed one that inflates without end; the
transports tether ships therefore stop reading at ``max_response_bytes`` of decoded body
(:data:`DEFAULT_MAX_RESPONSE_BYTES` unless set).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tether._models import Request, Response
from tether.errors import ConfigurationError

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "AsyncTransport", "SyncTransport", "check_max_response_bytes", "too_large"]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""64 MiB: far above any API response, far below what endangers a process."""


def check_max_response_bytes(value: int | None) -> int | None:
    """``value`` if it is a valid body limit (a positive ``int`` or ``None``), else ``ConfigurationError``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"max_response_bytes must be a positive int or None, got {value!r}")
    return value


def too_large(limit: int, how: str) -> str:
    """The message of a ``ResponseTooLarge``."""
    return f"response body larger than max_response_bytes={limit:,} ({how})"


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
