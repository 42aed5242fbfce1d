"""The default async transport, on aiohttp.

Why aiohttp: on this project's machines, against the same loopback upstream at 32 requests in flight, raw
``aiohttp`` served about 9,900 requests/s and raw ``httpx.AsyncClient`` about 870 (see
``shared/BENCHMARKING.md``); the default must be the fast one. The session is created lazily inside the
running event loop, pooled and kept alive; aiohttp's exceptions are translated here and never leak.

aiohttp silently sends an idempotent request a second time when the connection drops before the response
(``ClientSession._retry_connection``). tether owns retries: a hidden one would escape the retry budget and
double the load an outage sees (a server that accepts and closes every connection got 4 requests for 2
attempts), so it is switched off; a stale pooled connection then costs one ordinary, counted retry.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from tether._models import Headers, Request, Response, UndecodedHeaders
from tether._redaction import describe_exception as _describe
from tether.client._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    BodyLimit,
    TimeoutsByValue,
    check_max_response_bytes,
)
from tether.client._watchdog import Watchdog
from tether.errors import (
    ConfigurationError,
    ConnectError,
    ConnectTimeout,
    ReadError,
    TransportError,
    TransportTimeout,
)

__all__ = ["AiohttpTransport"]


class AiohttpTransport:
    """An :class:`~tether.client.AsyncTransport` on an ``aiohttp.ClientSession``.

    ``max_connections`` bounds the pool (0: unbounded), ``max_connections_per_host`` each host's share (0: no
    per-host bound), ``keepalive`` how long an idle connection is kept, in seconds; a body larger than
    ``max_response_bytes`` (after decompression; ``None``: no limit) is a ``ResponseTooLarge``. ``default_headers``,
    when given, become the default headers of a session used only for requests whose ``headers`` *is* that object,
    which are then sent without per-request headers, sparing aiohttp's per-call merge (the client passes its base
    headers here). Every other request goes through a second session on the same connection pool, with no default
    headers, so it carries exactly its own (a redirect to another origin must not regain credentials). Redirects are
    not followed here: the call flow follows them (:mod:`tether.client._redirects`).
    """

    __slots__ = (
        "_defaults",
        "_keepalive",
        "_limit",
        "_limit_per_host",
        "_loop",
        "_max_body",
        "_plain",
        "_session",
        "_timeouts",
        "_watchdog",
    )

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_connections_per_host: int = 0,
        keepalive: float = 15.0,
        default_headers: Headers | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ):
        if max_connections < 0 or max_connections_per_host < 0:
            raise ConfigurationError("connection limits must be >= 0 (0 means unbounded)")
        self._max_body = check_max_response_bytes(max_response_bytes)
        self._limit = max_connections
        self._limit_per_host = max_connections_per_host
        self._keepalive = keepalive
        self._defaults = default_headers
        self._session: aiohttp.ClientSession | None = None
        self._plain: aiohttp.ClientSession | None = None
        self._watchdog: Watchdog | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # aiohttp bounds only the opening of a new connection, exactly (no ceiling): it must fire before the watchdog
        self._timeouts = TimeoutsByValue(
            lambda timeout: aiohttp.ClientTimeout(total=None, sock_connect=timeout, ceil_threshold=math.inf)
        )

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=self._limit_per_host, keepalive_timeout=self._keepalive
        )
        options: dict[str, Any] = {
            "timeout": aiohttp.ClientTimeout(total=None),
            "auto_decompress": True,
            "raise_for_status": False,
            # tether keeps no cookies between calls: a request carries exactly its own headers
            "cookie_jar": aiohttp.DummyCookieJar(),
            # No skip_auto_headers: aiohttp then copies the headers on every request (about 5 % of throughput
            # here), and tether's requests always carry their own User-Agent, so aiohttp adds none of its own.
        }
        self._plain = aiohttp.ClientSession(connector=connector, **options)
        self._session = self._plain
        if self._defaults is not None:
            self._session = aiohttp.ClientSession(
                connector=connector, connector_owner=False, headers=self._defaults._data, **options
            )
        for session in (self._plain, self._session):
            session._retry_connection = False  # no setting exists; see the module docstring
        self._loop = asyncio.get_running_loop()
        self._watchdog = Watchdog(self._loop)
        return self._session

    async def send(self, request: Request, timeout: float | None) -> Response:  # noqa: PLR0912 - one branch per error kind
        """Perform one exchange; aiohttp's errors become :mod:`tether.errors` transport errors."""
        session = self._session or self._open()
        # The whole exchange is bounded by the watchdog's shared timers (see tether.client._watchdog); aiohttp
        # bounds only the opening of a new connection, so that a timeout there is known to be a connect timeout.
        client_timeout = self._timeouts[timeout]
        task: asyncio.Task[Any] | None = None
        if timeout is not None and (task := asyncio.current_task(self._loop)) is not None:
            cancelling = task.cancelling()
            alarm = self._watchdog.arm(task, timeout)  # type: ignore[union-attr]  # set by _open
        headers: CIMultiDictProxy[str] | None = None
        if request.headers is not self._defaults:
            session, headers = self._plain, request.headers._data  # type: ignore[assignment]  # set by _open
        try:
            async with session.request(
                request.method,
                request.url,
                headers=headers,
                data=request.content,
                timeout=client_timeout,
                allow_redirects=False,
            ) as raw:
                length = raw.content_length
                if self._max_body is None or (
                    length is not None and length <= self._max_body and "Content-Encoding" not in raw.headers
                ):
                    content = await raw.read()  # its length is known and, undecoded, within the limit
                else:
                    content = await _read_capped(raw, self._max_body, request)
                if raw.status < 100:
                    raise _error(ReadError, f"invalid status code {raw.status} in the response", request)
                return Response._of(raw.status, UndecodedHeaders._wrap(raw.headers), content, request, raw.reason)
        except asyncio.CancelledError:
            # ours (the attempt's time is up) unless someone else also asked to cancel the task
            if task is None or not Watchdog.disarm(alarm, task) or task.cancelling() > cancelling:
                raise
            raise _error(TransportTimeout, _timed_out(timeout), request) from None
        except aiohttp.ConnectionTimeoutError as exc:
            raise _error(ConnectTimeout, "timed out connecting", request) from exc
        except TimeoutError as exc:
            raise _error(TransportTimeout, _timed_out(timeout), request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise _error(ConnectError, f"could not connect: {_describe(exc, request)}", request) from exc
        except aiohttp.InvalidURL as exc:
            raise ConfigurationError(f"invalid URL: {exc}") from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise _error(ReadError, f"connection failed: {_describe(exc, request)}", request) from exc
        finally:
            if task is not None:
                Watchdog.disarm(alarm, task)

    async def aclose(self) -> None:
        """Close the session and its connections."""
        plain, session = self._plain, self._session
        self._session = self._plain = None
        if session is not None and session is not plain:
            await session.close()  # shares the pool: closing it leaves the connector open
        if plain is not None:
            await plain.close()  # owns the pool

    def __repr__(self) -> str:
        return f"AiohttpTransport(max_connections={self._limit}, max_connections_per_host={self._limit_per_host})"


async def _read_capped(raw: aiohttp.ClientResponse, limit: int, request: Request) -> bytes:
    """The (decompressed) body, or ``ResponseTooLarge`` as soon as it exceeds ``limit`` bytes."""
    body = BodyLimit(limit, request, declared=raw.content_length)
    async for chunk in raw.content.iter_chunked(1 << 16):
        body.add(chunk)
    return body.body()


def _error(cls: type[TransportError], summary: str, request: Request) -> TransportError:
    return cls(summary, method=request.method, url=request.url)


def _timed_out(timeout: float | None) -> str:
    return "no complete response in time" if timeout is None else f"no complete response within {timeout:.3g} s"
