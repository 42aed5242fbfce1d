"""Transports on httpx: the sync default, and an async option for code that already holds an ``httpx.AsyncClient``.

httpx's exceptions are translated here and never leak; a client passed in by the caller stays theirs
(closing the transport does not close it).
"""

from __future__ import annotations

import asyncio
import http.cookiejar

import httpx

from tether._models import Headers, Request, Response
from tether._redaction import describe_exception as _describe
from tether.client._exchange_deadline import DeadlineBackend, begin_attempt, end_attempt
from tether.client._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    BodyLimit,
    TimeoutsByValue,
    check_max_response_bytes,
)
from tether.client._watchdog import GRACE, tick
from tether.errors import (
    ConfigurationError,
    ConnectError,
    ConnectTimeout,
    ReadError,
    TransportTimeout,
)

__all__ = ["HttpxAsyncTransport", "HttpxTransport"]


def _limits(max_connections: int, keepalive: float) -> httpx.Limits:
    if max_connections < 0:
        raise ConfigurationError("max_connections must be >= 0 (0 means unbounded)")
    bound = max_connections or None
    return httpx.Limits(max_connections=bound, max_keepalive_connections=bound, keepalive_expiry=keepalive)


def _response(raw: httpx.Response, content: bytes, request: Request) -> Response:
    return Response(
        raw.status_code,
        headers=Headers(raw.headers.multi_items()),
        content=content,
        request=request,
        reason_phrase=raw.reason_phrase,
    )


def _outgoing(request: Request, timeout: httpx.Timeout) -> httpx.Request:
    """The httpx request for ``request``: exactly its method, URL, headers and body."""
    return httpx.Request(
        request.method,
        request.url,
        headers=list(request.headers.items()),
        content=request.content,
        extensions={"timeout": timeout.as_dict()},
    )


def _limit(raw: httpx.Response, limit: int, request: Request) -> BodyLimit:
    """A :class:`BodyLimit` for ``raw``, refusing at once a ``Content-Length`` over ``limit``."""
    declared = raw.headers.get("content-length", "")
    return BodyLimit(limit, request, declared=int(declared) if declared.isdigit() else None)


def _read(raw: httpx.Response, limit: int | None, request: Request) -> bytes:
    """The streamed response's decoded body, or ``ResponseTooLarge`` as soon as it exceeds ``limit``."""
    if limit is None:
        return raw.read()
    body = _limit(raw, limit, request)
    for chunk in raw.iter_bytes():
        body.add(chunk)
    return body.body()


async def _aread(raw: httpx.Response, limit: int | None, request: Request) -> bytes:
    """:func:`_read` for an async response."""
    if limit is None:
        return await raw.aread()
    body = _limit(raw, limit, request)
    async for chunk in raw.aiter_bytes():
        body.add(chunk)
    return body.body()


def _translate(exc: Exception, request: Request, timeout: float | None) -> Exception:
    """The tether error for an httpx exception."""
    method, url = request.method, request.url
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectTimeout("timed out connecting", method=method, url=url)
    if isinstance(exc, httpx.TimeoutException):
        limit = "in time" if timeout is None else f"within {timeout:.3g} s"
        return TransportTimeout(f"no complete response {limit} ({type(exc).__name__})", method=method, url=url)
    if isinstance(exc, httpx.ConnectError):
        return ConnectError(f"could not connect: {_describe(exc, request)}", method=method, url=url)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigurationError(f"invalid URL: {_describe(exc, request)}")
    return ReadError(f"connection failed: {_describe(exc, request)}", method=method, url=url)


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that keeps nothing: tether sends exactly the request's headers, never state left by earlier calls."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _bound_exchanges(client: httpx.Client) -> httpx.Client:
    """Put the deadline backend (see :mod:`tether.client._exchange_deadline`) under every pool of ``client``.

    httpx has no parameter for the network backend, and passing it a transport of our own would switch off the
    proxies it reads from the environment; so the backend is set on the pools it built, the direct one and
    one per proxy, before any connection exists.
    """
    backend = DeadlineBackend()
    for transport in (client._transport, *client._mounts.values()):
        pool = getattr(transport, "_pool", None)
        if pool is None or not hasattr(pool, "_network_backend"):
            raise RuntimeError(f"this httpx version's transport {transport!r} has no network backend to bound")
        pool._network_backend = backend
    return client


class HttpxTransport:
    """A :class:`~tether.client.SyncTransport` on ``httpx.Client`` (pooled, keep-alive).

    ``default_headers``, when given and tether creates the ``httpx.Client``, become that client's headers, and a
    request whose ``headers`` *is* that object is sent without per-request headers, sparing httpx's per-call
    header merge (the :class:`~tether.Client` passes its base headers here). Any other request is sent with
    exactly its own headers, not merged with the client's (a redirect to another origin must not regain
    credentials). Redirects are not followed here: the call flow follows them (:mod:`tether.client._redirects`).

    The timeout bounds the whole exchange, not each socket read (:mod:`tether.client._exchange_deadline`), on the
    connections of the ``httpx.Client`` tether creates; a client passed in keeps httpx's per-read timeouts. A body
    larger than ``max_response_bytes`` (decoded; ``None``: no limit) is a ``ResponseTooLarge``.

    A client passed in provides connections only (pool, TLS, proxies): its own auth, headers, params and cookies
    are not applied, since a redirect hop tether strips of credentials must not regain them from the client.
    Configure credentials on the tether client instead. tether keeps no cookies between calls.
    """

    __slots__ = ("_client", "_defaults", "_max_body", "_owned", "_timeouts")

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        max_connections: int = 100,
        keepalive: float = 15.0,
        default_headers: Headers | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ):
        self._max_body = check_max_response_bytes(max_response_bytes)
        self._owned = client is None
        self._defaults = default_headers if client is None else None
        self._timeouts = TimeoutsByValue(httpx.Timeout)
        self._client = client or _bound_exchanges(
            httpx.Client(
                limits=_limits(max_connections, keepalive),
                follow_redirects=False,
                headers=list(default_headers.items()) if default_headers is not None else None,
                cookies=_no_cookies(),
            )
        )

    def send(self, request: Request, timeout: float | None) -> Response:
        """Perform one exchange; httpx's errors become :mod:`tether.errors` transport errors."""
        client = self._client
        bound = begin_attempt(timeout)
        try:
            if request.headers is self._defaults:  # tether's own client, whose headers are these
                outgoing = client.build_request(
                    request.method, request.url, content=request.content, timeout=self._timeouts[timeout]
                )
            else:  # built by hand, so that httpx adds nothing of the client's
                outgoing = _outgoing(request, self._timeouts[timeout])
            raw = client.send(outgoing, stream=True, follow_redirects=False, auth=None)
            try:
                content = _read(raw, self._max_body, request)
            finally:
                raw.close()
        except (httpx.HTTPError, httpx.InvalidURL, OSError, OverflowError, ExceptionGroup) as exc:
            raise _translate(exc, request, timeout) from exc
        finally:
            end_attempt(bound)
        return _response(raw, content, request)

    def close(self) -> None:
        """Close the client's connections, if tether created the client."""
        if self._owned:
            self._client.close()

    def __repr__(self) -> str:
        return f"HttpxTransport(owned={self._owned})"


class HttpxAsyncTransport:
    """An :class:`~tether.client.AsyncTransport` on ``httpx.AsyncClient``.

    A body larger than ``max_response_bytes`` (decoded; ``None``: no limit) is a ``ResponseTooLarge``. A client
    passed in provides connections only (pool, TLS, proxies): its own auth, headers, params and cookies are not
    applied, since a redirect hop tether strips of credentials must not regain them from the client.
    """

    __slots__ = ("_client", "_max_body", "_owned")

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        max_connections: int = 100,
        keepalive: float = 15.0,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ):
        self._max_body = check_max_response_bytes(max_response_bytes)
        self._owned = client is None
        self._client = client or httpx.AsyncClient(limits=_limits(max_connections, keepalive), cookies=_no_cookies())

    async def send(self, request: Request, timeout: float | None) -> Response:
        """Perform one exchange; httpx's errors become :mod:`tether.errors` transport errors."""
        try:
            # httpx's timeout bounds each socket read; asyncio.timeout bounds the whole exchange, so a server that
            # trickles its answer byte by byte cannot outlive the attempt.
            # grace for httpx's own connect timeout (of the same length) to fire first, through anyio's cancel scope
            async with asyncio.timeout(None if timeout is None else timeout + GRACE + tick(timeout)):
                outgoing = _outgoing(request, httpx.Timeout(timeout))  # by hand: nothing of the client's is added
                raw = await self._client.send(outgoing, stream=True, follow_redirects=False, auth=None)
                try:
                    content = await _aread(raw, self._max_body, request)
                finally:
                    await raw.aclose()
        except TimeoutError as exc:
            raise _translate(httpx.ReadTimeout("the exchange outlived its timeout"), request, timeout) from exc
        except (httpx.HTTPError, httpx.InvalidURL, OSError, OverflowError, ExceptionGroup) as exc:
            raise _translate(exc, request, timeout) from exc
        return _response(raw, content, request)

    async def aclose(self) -> None:
        """Close the client's connections, if tether created the client."""
        if self._owned:
            await self._client.aclose()

    def __repr__(self) -> str:
        return f"HttpxAsyncTransport(owned={self._owned})"
