"""A whole-exchange time limit for the blocking httpx transport.

Why: httpx's timeouts bound each socket operation, not the exchange. A server that trickles its response a
byte every 0.2 s never trips a 0.5 s read timeout, so a blocking call could outlive its deadline by as long as
the server cares to trickle. asyncio code bounds the exchange from outside (a cancelled task); blocking code
cannot be interrupted from outside, so the bound has to live inside every read and write.

:class:`DeadlineBackend` is an ``httpcore`` network backend that wraps the standard one: each connect, read,
write and TLS handshake gets ``min(its own timeout, time left in the attempt)``, and fails with the matching
``httpcore`` timeout once nothing is left. :func:`begin_attempt` sets the end of the current attempt for the
calling thread (a context variable, so threads never see each other's) and :func:`end_attempt` clears it.
Outside an attempt the backend behaves exactly like ``httpcore.SyncBackend``.
"""

from __future__ import annotations

import contextvars
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore

__all__ = ["DeadlineBackend", "begin_attempt", "end_attempt"]

_ends_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("tether_attempt_ends_at", default=None)

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


def begin_attempt(timeout: float | None) -> contextvars.Token[float | None]:
    """Bound this thread's socket operations to ``timeout`` seconds from now, in total, until :func:`end_attempt`."""
    return _ends_at.set(None if timeout is None else time.monotonic() + timeout)


def end_attempt(token: contextvars.Token[float | None]) -> None:
    """Lift the bound set by :func:`begin_attempt`."""
    _ends_at.reset(token)


def _bounded(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    ends_at = _ends_at.get()
    if ends_at is None:
        return timeout
    left = ends_at - time.monotonic()
    if left <= 0:
        raise expired("the attempt's time ran out")
    return left if timeout is None or left < timeout else timeout


class _Stream(httpcore.NetworkStream):
    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        return _Stream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """``httpcore.SyncBackend`` with every socket operation bounded by the current :func:`attempt`."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Open a TCP connection within the time left."""
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.NetworkStream:
        """Open a Unix socket connection within the time left."""
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (httpcore's connect retries)."""
        self._inner.sleep(seconds)
