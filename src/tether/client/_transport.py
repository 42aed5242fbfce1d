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

from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

from tether._models import Request, Response
from tether.errors import ConfigurationError, ResponseTooLarge

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "AsyncTransport",
    "BodyLimit",
    "SyncTransport",
    "TimeoutsByValue",
    "check_max_response_bytes",
]

T = TypeVar("T")

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""64 MiB: far above any API response, far below what endangers a process."""


def check_max_response_bytes(value: int | None) -> int | None:
    """``value`` if it is a valid body limit (a positive ``int`` or ``None``), else ``ConfigurationError``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"max_response_bytes must be a positive int or None, got {value!r}")
    return value


class BodyLimit:
    """A body read in chunks, counted against ``limit``: ``ResponseTooLarge`` as soon as it is exceeded.

    ``declared`` is the ``Content-Length``, when the response gave one: a body it says is too large is refused
    before a byte of it is read.
    """

    __slots__ = ("_chunks", "_limit", "_request", "_total")

    def __init__(self, limit: int, request: Request, declared: int | None = None) -> None:
        self._limit = limit
        self._request = request
        self._chunks: list[bytes] = []
        self._total = 0
        if declared is not None and declared > limit:
            raise self._refusal(f"Content-Length is {declared}")

    def add(self, chunk: bytes) -> None:
        """Take the next (decoded) chunk."""
        self._total += len(chunk)
        if self._total > self._limit:
            raise self._refusal("the body went past it")
        self._chunks.append(chunk)

    def body(self) -> bytes:
        """The whole body read so far."""
        return b"".join(self._chunks)

    def _refusal(self, how: str) -> ResponseTooLarge:
        summary = f"response body larger than max_response_bytes={self._limit:,} ({how})"
        return ResponseTooLarge(summary, method=self._request.method, url=self._request.url)


class TimeoutsByValue(dict[float | None, T]):
    """A transport's timeout objects by value, made by ``make``: most attempts share the policy's attempt timeout.

    Shrinking near-deadline timeouts are one-offs, so the cache is emptied when it grows past 32 entries.
    """

    def __init__(self, make: Callable[[float | None], T]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, timeout: float | None) -> T:
        if len(self) > 32:
            self.clear()
        value = self[timeout] = self._make(timeout)
        return value


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
