"""A scriptable, fault-injecting HTTP/1.1 upstream server for tests and benchmarks.

:class:`Upstream` listens on loopback and answers from a script you write: a sequence of :class:`Reply` values
per route, a rate-limited route (:meth:`Upstream.quota`) or a paginated collection
(:meth:`Upstream.collection`). A reply can wait first (``latency``) or misbehave instead of answering
(``fault``): reset the connection, truncate the body, hang, or close cleanly. Every request is recorded as a
:class:`Recorded` value so a test can assert on exactly what the client sent.

In an async test, run the server in the test's own event loop::

    async with Upstream() as up:
        up.route("GET", "/v1/charges", Reply(status=503), Reply(fault="reset"), Reply(json={"id": 1}))
        ...  # point the client at up.url
        assert len(up.requests_for("/v1/charges")) == 3

For synchronous clients, or tests that are not async, run it in a background thread::

    with Upstream().running() as up:
        up.quota("GET", "/search", limit=2, window=60)
        ...

From another process (benchmarks, multi-process tests), start it from the command line and script it over
HTTP through the admin API under the reserved prefix ``/__upstream__/``::

    $ python -m tether.testing.upstream --port 0 --routes routes.json
    listening on http://127.0.0.1:54321

    POST /__upstream__/routes      {"method": "GET", "path": "/x", "replies": [...], "repeat_last": true}  -> 204
    POST /__upstream__/quota       {"method": "GET", "path": "/x", "limit": 10, "window": 1.0}  -> 204
    POST /__upstream__/collection  {"path": "/items", "items": [...], "style": "cursor", "page_size": 10}  -> 204
    GET  /__upstream__/requests    -> every recorded request as JSON, headers as pairs, body as a latin-1 string
    GET  /__upstream__/count?path=/x  -> {"count": n} (all requests without ``path``)
    POST /__upstream__/reset       -> 204

Each reply object takes the fields of :class:`Reply`: ``{"status": 503, "json": {...}, "body": "...",
"headers": {...}, "latency": 0.1, "fault": "reset"}``, all optional; a quota object may add a ``"reply"``. A
``--routes`` file holds a JSON list of route objects. Admin calls are not recorded; an invalid one gets 400
with a message naming the offending field.

The server is written on raw asyncio streams, not on a framework, precisely so that it can break the protocol
on purpose. It parses requests strictly and defensively (request line and headers at most 64 KiB, bodies at
most 10 MiB, Content-Length or chunked): malformed input gets a 400 (431, 413, 501 or 505 where they apply)
and the connection is closed; nothing a client sends can crash it. Every request is recorded, so call
:meth:`Upstream.reset` between phases of a long benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar, cast, get_args
from urllib.parse import parse_qs

__all__ = ["Recorded", "Reply", "Upstream", "main"]

_Fault = Literal["reset", "truncate", "hang", "close"]
_Style = Literal["link", "cursor", "page", "offset", "next_url"]
_FAULTS: frozenset[str] = frozenset(get_args(_Fault))
_STYLES: frozenset[str] = frozenset(get_args(_Style))

_ADMIN_PREFIX = "/__upstream__/"
_MAX_HEAD = 64 * 1024  # request line plus headers, and any one chunk-size or trailer line
_MAX_BODY = 10 * 1024 * 1024
_LINGER_SECONDS = 1.0  # how long to drain a refused client's input so our error reply is not lost to an RST
_READ_SIZE = 64 * 1024
_TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # RFC 9110 §5.6.2
_HEXDIGITS = b"0123456789abcdefABCDEF"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CONNECTION_CLOSE = b"Connection: close\r\n"
_CONNECTION_KEEP_ALIVE = b"Connection: keep-alive\r\n"
_JSON_SEPARATORS = (",", ":")


def _has_control_characters(value: str) -> bool:
    return any((char < " " and char != "\t") or char == "\x7f" for char in value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One scripted answer from the upstream.

    ``body`` is sent as is (a ``str`` is UTF-8 encoded); if ``json`` is not ``None`` it is serialised as the body
    instead, with ``Content-Type: application/json``. ``headers`` are added to the defaults
    (``Content-Length``, ``Content-Type`` when there is a body, ``Date``) and replace any default of the same
    name, so a test can even send a lying ``Content-Length``. The server waits ``latency`` seconds (real time)
    before answering or misbehaving. ``fault``, when set, replaces the answer:

    * ``"reset"``: close the socket abruptly with a TCP RST (``SO_LINGER`` 0), without answering;
    * ``"truncate"``: send the headers with the full ``Content-Length`` but only half the body, then close
      (needs a non-empty body);
    * ``"hang"``: never answer, until the client goes away or the server stops;
    * ``"close"``: close the connection cleanly (FIN) without answering.

    Invalid values raise ``ValueError`` (or ``TypeError``) at construction.
    """

    status: int = 200
    body: bytes | str = b""
    json: object = None
    headers: Mapping[str, str] = field(default_factory=dict)
    latency: float = 0.0
    fault: _Fault | None = None

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise TypeError(f"Reply.status must be an int, not {type(self.status).__name__}")
        if not 100 <= self.status <= 999:
            raise ValueError(f"Reply.status must be a three-digit HTTP status, not {self.status}")
        if not isinstance(self.body, bytes | str):
            raise TypeError(f"Reply.body must be bytes or str, not {type(self.body).__name__}")
        if self.json is not None and self.body:
            raise ValueError("give Reply either body or json, not both")
        if not (isinstance(self.latency, int | float) and 0 <= self.latency < math.inf):
            raise ValueError(f"Reply.latency must be a finite number of seconds >= 0, not {self.latency!r}")
        if self.fault is not None and self.fault not in _FAULTS:
            raise ValueError(f"Reply.fault must be one of {sorted(_FAULTS)} or None, not {self.fault!r}")
        if self.fault == "truncate" and self.json is None and not self.body:
            raise ValueError('Reply(fault="truncate") needs a body (or json) to cut in half')
        for name, value in self.headers.items():
            if not isinstance(name, str) or not name or name.strip(_TCHARS):
                raise ValueError(f"invalid header name in Reply.headers: {name!r}")
            if not isinstance(value, str) or _has_control_characters(value) or not value.isascii():
                raise ValueError(f"header {name!r} in Reply.headers needs a printable ASCII value: {value!r}")


_QUOTA_REPLY = Reply(json={"ok": True})


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the upstream received it.

    ``path`` is the request target's path exactly as sent (still percent-encoded), without the query;
    ``query`` maps each query parameter to all its values, in order; ``headers`` are the header fields in the
    order received, with their names as sent. ``received_at`` is a reading of the server's clock (the ``now``
    given to :class:`Upstream`, ``time.monotonic`` by default).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    body: bytes
    received_at: float

    def header(self, name: str) -> str | None:
        """Return the first value of the header ``name`` (case-insensitive), or ``None`` if absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


class Upstream:
    """A scriptable HTTP/1.1 server on loopback; see the module documentation for a tour.

    Run it in the caller's event loop with ``async with Upstream() as up`` (or :meth:`start` and
    :meth:`stop`), or in a background thread with ``with Upstream().running() as up`` (or
    :meth:`start_in_thread` and :meth:`stop_thread`). ``host`` should be an IP literal; ``port`` 0 picks a free
    port, read it back from :attr:`url`. ``now`` is the server's clock: it stamps :attr:`Recorded.received_at`
    and drives the quota windows, so a test can pass a fake clock's reading to move windows without sleeping.

    The scripting methods (:meth:`route`, :meth:`quota`, :meth:`collection`, :meth:`reset`) and the recorded
    requests are thread-safe and may be used while the server runs, from any thread. Scripting a method and
    path again replaces its script and starts it from the beginning.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, now: Callable[[], float] = time.monotonic) -> None:
        self._host = host
        self._port = port
        self._now = now
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], _Handler] = {}
        self._recorded: list[Recorded] = []
        self._server: asyncio.Server | None = None
        self._url: str | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._date: tuple[int, bytes] = (0, b"")
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop: asyncio.Event | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL clients should use, such as ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("the upstream has no URL until it is started")
        return self._url

    async def start(self) -> None:
        """Start listening, in the running event loop."""
        if self._server is not None or self._thread is not None:
            raise RuntimeError("this Upstream is already running")
        self._stopping = False
        server = await asyncio.start_server(
            self._serve_connection, self._host, self._port, limit=_MAX_HEAD, backlog=1024
        )
        address = server.sockets[0].getsockname()
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        self._url = f"http://{host}:{address[1]}"
        self._server = server

    async def stop(self) -> None:
        """Stop listening and drop every open connection, including hanging ones. Does nothing if stopped."""
        server = self._server
        if server is None:
            return
        self._server = None
        self._stopping = True
        server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def start_in_thread(self) -> None:
        """Start serving from a background thread with its own event loop; return once it is listening."""
        if self._server is not None or self._thread is not None:
            raise RuntimeError("this Upstream is already running")
        ready = threading.Event()
        failures: list[Exception] = []
        thread = threading.Thread(
            target=lambda: asyncio.run(self._serve_in_thread(ready, failures)), name="tether-upstream", daemon=True
        )
        thread.start()
        ready.wait()
        if failures:
            thread.join()
            raise failures[0]
        self._thread = thread

    def stop_thread(self) -> None:
        """Stop the server started by :meth:`start_in_thread` and wait for its thread. Does nothing if stopped."""
        thread, loop, stop = self._thread, self._thread_loop, self._thread_stop
        if thread is None or loop is None or stop is None:
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._thread = self._thread_loop = self._thread_stop = None

    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        """Serve from a background thread for the duration of a ``with`` block."""
        self.start_in_thread()
        try:
            yield self
        finally:
            self.stop_thread()

    async def _serve_in_thread(self, ready: threading.Event, failures: list[Exception]) -> None:
        stop = asyncio.Event()
        try:
            await self.start()
        except Exception as error:  # handed to the starting thread, which raises it
            failures.append(error)
            return
        else:
            self._thread_loop, self._thread_stop = asyncio.get_running_loop(), stop
        finally:
            ready.set()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- scripting -------------------------------------------------------------------------------------------

    def route(self, method: str, path: str, *replies: Reply, repeat_last: bool = True) -> None:
        """Answer ``method path`` with ``replies`` in sequence, one per request to that route.

        After the last reply, repeat it, or answer 404 ``{"error": "script exhausted", ...}`` if ``repeat_last``
        is false. With no replies, the route answers ``Reply()``: 200 with an empty body.
        """
        key = _route_key(method, path)
        prepared = tuple(_prepare(reply) for reply in replies) or (_prepare(Reply()),)
        handler = _Script(prepared, repeat_last=repeat_last, method=key[0], path=path)
        with self._lock:
            self._routes[key] = handler

    def quota(self, method: str, path: str, *, limit: int, window: float, reply: Reply = _QUOTA_REPLY) -> None:
        """Rate-limit ``method path``: ``limit`` requests per fixed ``window`` of seconds.

        The first request opens a window; the first ``limit`` requests in it get ``reply`` and the rest get 429
        ``{"error": "rate limited"}`` with ``Retry-After`` (whole seconds until the window resets, rounded up).
        The first request after the window opens the next one. Every response carries ``RateLimit-Limit``,
        ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until reset, rounded up), and
        ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix time of the reset, from
        ``time.time()``).
        """
        key = _route_key(method, path)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"quota limit must be an int >= 0, not {limit!r}")
        if not (isinstance(window, int | float) and 0 < window < math.inf):
            raise ValueError(f"quota window must be a finite number of seconds > 0, not {window!r}")
        handler = _Quota(_prepare(reply), limit=limit, window=float(window))
        with self._lock:
            self._routes[key] = handler

    def collection(self, path: str, items: Sequence[object], *, style: _Style, page_size: int = 10) -> None:
        """Serve ``items`` (JSON values, snapshotted now) as a paginated collection at ``GET path``.

        One pagination style per collection, with these shapes (``S`` is the page size):

        * ``"link"``: the body is a JSON array of the page's items; ``Link`` carries
          ``<{url}{path}?page=N&per_page=S>`` with ``rel="next"`` and ``rel="last"`` (absent on the last page)
          and ``rel="first"`` and ``rel="prev"`` (absent on the first). Query: ``page`` (1-based), ``per_page``.
        * ``"cursor"``: ``{"data": [...], "meta": {"next_cursor": "<opaque>" | null}}``; query ``cursor``
          (absent at the start) and ``limit``. An invalid cursor gets 400.
        * ``"page"``: ``{"results": [...], "page": N, "total_pages": T}``; query ``page`` (1-based) and
          ``per_page``; a page past the end has empty results.
        * ``"offset"``: ``{"items": [...], "total": T}``; query ``offset`` (default 0) and ``limit``.
        * ``"next_url"``: ``{"results": [...], "next": "<absolute URL of the next page>" | null}``; query
          ``page`` (1-based).

        A malformed query parameter gets 400 ``{"error": ...}``.
        """
        key = _route_key("GET", path)
        if style not in _STYLES:
            raise ValueError(f"collection style must be one of {sorted(_STYLES)}, not {style!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"collection page_size must be an int >= 1, not {page_size!r}")
        encoded = tuple(json.dumps(item, separators=_JSON_SEPARATORS) for item in items)
        handler = _Collection(path, encoded, style=style, page_size=page_size)
        with self._lock:
            self._routes[key] = handler

    @property
    def requests(self) -> list[Recorded]:
        """Every request received so far (except admin API calls), oldest first; a copy."""
        with self._lock:
            return list(self._recorded)

    def requests_for(self, path: str) -> list[Recorded]:
        """The recorded requests whose path (without query) is ``path``, oldest first."""
        with self._lock:
            return [request for request in self._recorded if request.path == path]

    def reset(self) -> None:
        """Forget every route, quota and collection, and every recorded request."""
        with self._lock:
            self._routes.clear()
            self._recorded.clear()

    # -- serving ---------------------------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            return  # the client went away, perhaps mid-request: nothing to answer
        except asyncio.CancelledError:
            # stop() (or the loop's shutdown) cancels us, and nothing awaits this task. End it normally: some
            # CPython patch releases (3.11.7 among them) call task.exception() on a cancelled connection task
            # and log a spurious traceback.
            return
        except Exception:  # a bug must cost one connection, never the server
            with contextlib.suppress(Exception):
                writer.write(self._render(_prepare(_error_reply(500, "internal error")), b"", False, False))
        finally:
            self._connections.discard(task)
            if self._stopping:
                writer.transport.abort()
            else:
                writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve requests on one connection until it should close."""
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                await self._refuse(reader, writer, 431, "the request line and headers exceed 64 KiB")
                return
            try:
                request = _parse_head(head)
                if request is None:
                    continue  # only blank lines, which RFC 9112 §2.2 lets a server skip
                request.body = await _read_body(reader, writer, request)
            except _HTTPError as error:
                await self._refuse(reader, writer, error.status, error.message)
                return
            if request.path.startswith(_ADMIN_PREFIX):
                keep_alive = await self._answer_admin(request, writer)
            else:
                keep_alive = await self._answer(request, reader, writer)
            if not keep_alive:
                return

    async def _answer(self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Record ``request``, answer it from the script, and say whether the connection stays open."""
        recorded = Recorded(request.method, request.path, request.query, request.headers, request.body, self._now())
        with self._lock:
            self._recorded.append(recorded)
            handler = self._routes.get((request.method, request.path))
            answer = None if handler is None else handler.answer(request, recorded.received_at, self._url or "")
        prepared, extra = answer or (_prepare(_no_route_reply(request, "no route")), b"")
        if prepared.latency:
            await asyncio.sleep(prepared.latency)
        if prepared.fault is not None:
            await self._misbehave(prepared, extra, request, reader, writer)
            return False
        keep_alive = request.keep_alive and not prepared.closes
        writer.write(self._render(prepared, extra, keep_alive, request.http10, head_only=request.method == "HEAD"))
        await writer.drain()
        return keep_alive

    async def _misbehave(
        self,
        prepared: _Prepared,
        extra: bytes,
        request: _Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Inject ``prepared.fault`` instead of answering; the connection is closed afterwards."""
        fault = prepared.fault
        if fault == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:  # SO_LINGER on, timeout 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif fault == "truncate":
            half = prepared.body[: len(prepared.body) // 2]
            writer.write(self._render(prepared, extra, False, request.http10, body=half))
            await writer.drain()
        elif fault == "hang":
            while await reader.read(_READ_SIZE):
                pass  # discard whatever the client sends until it gives up; stop() cancels us
        # "close": the caller closes the connection cleanly

    async def _refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int, message: str
    ) -> None:
        """Answer a request we cannot serve with ``status``, then close the connection.

        The client may still be sending (an oversized header block or body). Closing a socket with unread input
        makes the kernel send an RST that can destroy our answer before the client reads it, so we half-close,
        then read and discard the client's input for a moment before the caller closes.
        """
        writer.write(self._render(_prepare(_error_reply(status, message)), b"", False, False))
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(_LINGER_SECONDS):
                while await reader.read(_READ_SIZE):
                    pass

    def _render(
        self,
        prepared: _Prepared,
        extra: bytes,
        keep_alive: bool,
        http10: bool,
        *,
        head_only: bool = False,
        body: bytes | None = None,
    ) -> bytes:
        """Assemble the bytes of one response, to be sent with a single write."""
        if not keep_alive:
            connection = _CONNECTION_CLOSE
        elif http10:
            connection = _CONNECTION_KEEP_ALIVE
        else:
            connection = b""
        if head_only:
            body = b""
        elif body is None:
            body = prepared.body
        date = self._date_line() if prepared.add_date else b""
        return b"".join((prepared.head, extra, date, connection, b"\r\n", body))

    def _date_line(self) -> bytes:
        """Return the ``Date`` header line, formatted at most once a second."""
        now = int(time.time())
        cached = self._date
        if cached[0] != now:
            cached = (now, f"Date: {formatdate(now, usegmt=True)}\r\n".encode("ascii"))
            self._date = cached
        return cached[1]

    # -- admin API -------------------------------------------------------------------------------------------

    async def _answer_admin(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Serve one admin API call (never recorded) and say whether the connection stays open."""
        try:
            reply = self._admin(request)
        except _SpecError as error:
            reply = _error_reply(400, str(error))
        prepared = _prepare(reply)
        keep_alive = request.keep_alive
        writer.write(self._render(prepared, b"", keep_alive, request.http10, head_only=request.method == "HEAD"))
        await writer.drain()
        return keep_alive

    def _admin(self, request: _Request) -> Reply:
        endpoint = request.path[len(_ADMIN_PREFIX) :]
        method = _ADMIN_METHODS.get(endpoint)
        if method is None:
            return _error_reply(404, f"unknown admin endpoint {request.path!r}; try {sorted(_ADMIN_METHODS)}")
        if request.method != method:
            return Reply(
                status=405,
                json={"error": f"{request.path} accepts {method} only"},
                headers={"Allow": method},
            )
        if endpoint == "requests":
            return Reply(json=[_recorded_to_json(recorded) for recorded in self.requests])
        if endpoint == "count":
            paths = request.query.get("path")
            count = len(self.requests_for(paths[0]) if paths else self.requests)
            return Reply(json={"count": count})
        if endpoint == "reset":
            self.reset()
        else:
            spec = _load_json(request.body)
            if endpoint == "routes":
                self._apply_route(spec)
            elif endpoint == "quota":
                self._apply_quota(spec)
            else:
                self._apply_collection(spec)
        return Reply(status=204)

    def _apply_route(self, spec: object, what: str = "route") -> None:
        """Script a route from its admin JSON form (also the form of a ``--routes`` file's entries)."""
        obj = _object(spec, what, required=("method", "path"), optional=("replies", "repeat_last"))
        replies = _typed(obj.get("replies", []), list, f"{what}.replies")
        parsed = [_reply_from_json(item, f"{what}.replies[{i}]") for i, item in enumerate(replies)]
        method = _typed(obj["method"], str, f"{what}.method")
        path = _typed(obj["path"], str, f"{what}.path")
        repeat_last = _typed(obj.get("repeat_last", True), bool, f"{what}.repeat_last")
        with _as_spec_error(what):
            self.route(method, path, *parsed, repeat_last=repeat_last)

    def _apply_quota(self, spec: object) -> None:
        obj = _object(spec, "quota", required=("method", "path", "limit", "window"), optional=("reply",))
        reply = _reply_from_json(obj["reply"], "quota.reply") if "reply" in obj else _QUOTA_REPLY
        method = _typed(obj["method"], str, "quota.method")
        path = _typed(obj["path"], str, "quota.path")
        limit = _typed(obj["limit"], int, "quota.limit")
        window = _number(obj["window"], "quota.window")
        with _as_spec_error("quota"):
            self.quota(method, path, limit=limit, window=window, reply=reply)

    def _apply_collection(self, spec: object) -> None:
        obj = _object(spec, "collection", required=("path", "items", "style"), optional=("page_size",))
        path = _typed(obj["path"], str, "collection.path")
        items = _typed(obj["items"], list, "collection.items")
        style = _typed(obj["style"], str, "collection.style")
        page_size = _typed(obj.get("page_size", 10), int, "collection.page_size")
        with _as_spec_error("collection"):
            self.collection(path, items, style=cast(_Style, style), page_size=page_size)  # checked there


# -- requests ---------------------------------------------------------------------------------------------------


class _HTTPError(Exception):
    """A request we refuse with ``status``; the connection is closed afterwards."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    http10: bool
    keep_alive: bool
    content_length: int
    chunked: bool
    expect_continue: bool
    body: bytes = b""


def _parse_head(head: bytes) -> _Request | None:
    """Parse a request line and header block ending in CRLF CRLF; ``None`` if it holds only blank lines."""
    text = head[:-4].decode("latin-1").lstrip("\r\n")
    if not text:
        return None
    lines = text.split("\r\n")
    separators = len(lines) - 1
    if text.count("\n") != separators or text.count("\r") != separators or "\x00" in text:
        raise _HTTPError(400, "bare CR, bare LF or NUL in the request head")
    method, path, query, http10 = _parse_request_line(lines[0])
    request = _Request(
        method=method,
        path=path,
        query=parse_qs(query, keep_blank_values=True) if query else {},
        headers=[],
        http10=http10,
        keep_alive=not http10,
        content_length=0,
        chunked=False,
        expect_continue=False,
    )
    _parse_fields(lines, request)
    return request


def _parse_request_line(line: str) -> tuple[str, str, str, bool]:
    """Split a request line into method, path, query string and whether it is HTTP/1.0."""
    parts = line.split(" ")
    if len(parts) != 3:
        raise _HTTPError(400, "malformed request line; expected 'METHOD target HTTP/1.1'")
    method, target, version = parts
    if not method or method.strip(_TCHARS):
        raise _HTTPError(400, "malformed method in the request line")
    if version == "HTTP/1.1":
        http10 = False
    elif version == "HTTP/1.0":
        http10 = True
    elif version.startswith("HTTP/") and version[5:6].isdigit():
        raise _HTTPError(505, f"{version} is not supported; use HTTP/1.1")
    else:
        raise _HTTPError(400, "malformed HTTP version in the request line")
    if target.startswith("/"):
        path, _, query = target.partition("?")
    elif target == "*":
        path, query = "*", ""
    elif target.startswith(("http://", "https://")):  # absolute form, as sent to a proxy
        scheme_end = target.index("//") + 2
        slash = target.find("/", scheme_end)
        path, _, query = (target[slash:] if slash >= 0 else "/").partition("?")
    else:
        raise _HTTPError(400, "malformed request target")
    return method, path, query, http10


def _parse_fields(lines: list[str], request: _Request) -> None:
    """Parse header lines into ``request.headers`` and its framing and connection fields."""
    content_length: int | None = None
    transfer_encoding = ""
    connection = ""
    headers = request.headers
    for line in lines[1:]:
        name, colon, raw_value = line.partition(":")
        if not colon or not name or name.strip(_TCHARS):  # also rejects obs-fold and "Name :"
            raise _HTTPError(400, f"malformed header line {line[:80]!r}")
        value = raw_value.strip(" \t")
        headers.append((name, value))
        lower = name.lower()
        if lower == "content-length":
            length = _parse_content_length(value)
            if content_length is not None and content_length != length:
                raise _HTTPError(400, "conflicting Content-Length headers")
            content_length = length
        elif lower == "transfer-encoding":
            transfer_encoding = f"{transfer_encoding},{value}" if transfer_encoding else value
        elif lower == "connection":
            connection = f"{connection},{value}"
        elif lower == "expect":
            request.expect_continue = not request.http10 and value.lower() == "100-continue"
    if transfer_encoding:
        if request.http10 or content_length is not None:
            raise _HTTPError(400, "Transfer-Encoding is not allowed with HTTP/1.0 or with Content-Length")
        if [coding.strip().lower() for coding in transfer_encoding.split(",")] != ["chunked"]:
            raise _HTTPError(501, "only the chunked transfer coding is supported")
        request.chunked = True
    request.content_length = content_length or 0
    if connection:
        tokens = {token.strip().lower() for token in connection.split(",")}
        request.keep_alive = "keep-alive" in tokens if request.http10 else "close" not in tokens


def _parse_content_length(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise _HTTPError(400, f"invalid Content-Length {value[:40]!r}")
    digits = value.lstrip("0")
    if len(digits) > 18:  # far beyond the body limit; also keeps int() away from huge digit strings
        raise _HTTPError(413, "the request body exceeds 10 MiB")
    return int(digits or "0")


async def _read_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: _Request) -> bytes:
    """Read the request body as framed by ``Content-Length`` or chunked transfer coding."""
    if request.chunked:
        if request.expect_continue:
            writer.write(_CONTINUE)
        return await _read_chunked(reader)
    length = request.content_length
    if not length:
        return b""
    if length > _MAX_BODY:
        raise _HTTPError(413, "the request body exceeds 10 MiB")
    if request.expect_continue:
        writer.write(_CONTINUE)
    return await reader.readexactly(length)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """Read a chunked body (RFC 9112 §7.1), discarding chunk extensions and trailers."""
    chunks: list[bytes] = []
    total = 0
    while True:
        size_text = (await _read_line(reader)).split(b";", 1)[0].strip(b" \t")
        if not size_text or size_text.strip(_HEXDIGITS) or len(size_text) > 16:
            raise _HTTPError(400, "malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > _MAX_BODY:
            raise _HTTPError(413, "the request body exceeds 10 MiB")
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise _HTTPError(400, "chunk data not followed by CRLF")
    trailer_size = 0
    while line := await _read_line(reader):
        trailer_size += len(line)
        if trailer_size > _MAX_HEAD:
            raise _HTTPError(431, "the trailer section exceeds 64 KiB")
    return b"".join(chunks)


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    """Read one CRLF-terminated line, without the CRLF."""
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise _HTTPError(400, "a chunk-size or trailer line exceeds 64 KiB") from None
    return line[:-2]


# -- responses --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A reply encoded once, when scripted: everything but the per-request Date and Connection lines."""

    head: bytes  # the status line and header lines
    body: bytes
    latency: float
    fault: _Fault | None
    add_date: bool
    closes: bool  # the reply's own headers ask to close the connection


def _prepare(reply: Reply) -> _Prepared:
    if reply.json is not None:
        body = json.dumps(reply.json, separators=_JSON_SEPARATORS).encode()
        content_type = "application/json"
    elif isinstance(reply.body, str):
        body = reply.body.encode()
        content_type = "text/plain; charset=utf-8"
    else:
        body = bytes(reply.body)
        content_type = "application/octet-stream"
    own = {name.lower() for name in reply.headers}
    try:
        reason = HTTPStatus(reply.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {reply.status} {reason}\r\n"]
    if reply.status < 200 or reply.status in (204, 304):
        body = b""  # RFC 9110 §15.2, §15.3.5, §15.4.5: these responses have no content
    else:
        if "content-length" not in own:
            lines.append(f"Content-Length: {len(body)}\r\n")
        if body and "content-type" not in own:
            lines.append(f"Content-Type: {content_type}\r\n")
    lines.extend(f"{name}: {value}\r\n" for name, value in reply.headers.items())
    closes = any(name.lower() == "connection" and "close" in value.lower() for name, value in reply.headers.items())
    return _Prepared(
        head="".join(lines).encode("ascii"),
        body=body,
        latency=float(reply.latency),
        fault=reply.fault,
        add_date="date" not in own,
        closes=closes,
    )


def _error_reply(status: int, message: str) -> Reply:
    return Reply(status=status, json={"error": message})


def _no_route_reply(request: _Request, error: str) -> Reply:
    return Reply(status=404, json={"error": error, "method": request.method, "path": request.path})


def _route_key(method: str, path: str) -> tuple[str, str]:
    """Validate a scripted method and path; return the key requests are looked up by."""
    if not isinstance(method, str) or not method or method.strip(_TCHARS):
        raise ValueError(f"invalid HTTP method {method!r}")
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or not path.isascii()
        or _has_control_characters(path)
        or any(char in path for char in " ?#")
    ):
        raise ValueError(
            f"a route path starts with '/' and holds printable ASCII without spaces, '?' or '#', not {path!r}"
            " (routes match the path only; the query is recorded)"
        )
    if path.startswith(_ADMIN_PREFIX):
        raise ValueError(f"paths under {_ADMIN_PREFIX} are reserved for the admin API")
    return method.upper(), path


# -- scripts ----------------------------------------------------------------------------------------------------


class _Handler(Protocol):
    """What a route does with a request: choose the reply, plus any extra header lines."""

    def answer(self, request: _Request, now: float, base_url: str) -> tuple[_Prepared, bytes]:
        """Return the reply to ``request``, received at ``now``; called under the upstream's lock."""
        ...


class _Script:
    """Replies served in sequence, then the last one again (or a 404)."""

    __slots__ = ("_exhausted", "_next", "_repeat_last", "_replies")

    def __init__(self, replies: tuple[_Prepared, ...], *, repeat_last: bool, method: str, path: str) -> None:
        self._replies = replies
        self._next = 0
        self._repeat_last = repeat_last
        self._exhausted = _prepare(
            Reply(status=404, json={"error": "script exhausted", "method": method, "path": path})
        )

    def answer(self, request: _Request, now: float, base_url: str) -> tuple[_Prepared, bytes]:
        index = self._next
        if index < len(self._replies):
            self._next = index + 1
            return self._replies[index], b""
        return (self._replies[-1] if self._repeat_last else self._exhausted), b""


class _Quota:
    """A fixed-window rate limit: windows open at the first request after the previous one ended."""

    __slots__ = ("_count", "_limit", "_limited", "_reply", "_start", "_window")

    def __init__(self, reply: _Prepared, *, limit: int, window: float) -> None:
        self._reply = reply
        self._limited = _prepare(_error_reply(429, "rate limited"))
        self._limit = limit
        self._window = window
        self._start: float | None = None
        self._count = 0

    def answer(self, request: _Request, now: float, base_url: str) -> tuple[_Prepared, bytes]:
        start = self._start
        if start is None or now >= start + self._window:
            start = self._start = now
            self._count = 0
        self._count += 1
        until_reset = start + self._window - now
        reset = math.ceil(until_reset)
        allowed = self._count <= self._limit
        remaining = self._limit - self._count if allowed else 0
        lines = (
            f"RateLimit-Limit: {self._limit}\r\nRateLimit-Remaining: {remaining}\r\nRateLimit-Reset: {reset}\r\n"
            f"X-RateLimit-Limit: {self._limit}\r\nX-RateLimit-Remaining: {remaining}\r\n"
            f"X-RateLimit-Reset: {math.ceil(time.time() + until_reset)}\r\n"
        )
        if allowed:
            return self._reply, lines.encode("ascii")
        return self._limited, f"{lines}Retry-After: {reset}\r\n".encode("ascii")


class _Collection:
    """A paginated JSON collection in one of the styles documented on :meth:`Upstream.collection`."""

    __slots__ = ("_items", "_page_size", "_path", "_style")

    def __init__(self, path: str, items: tuple[str, ...], *, style: str, page_size: int) -> None:
        self._path = path
        self._items = items  # each item already JSON-encoded
        self._style = style
        self._page_size = page_size

    def answer(self, request: _Request, now: float, base_url: str) -> tuple[_Prepared, bytes]:
        try:
            body, link = self._page(request.query, f"{base_url}{self._path}")
        except _HTTPError as error:
            return _prepare(_error_reply(error.status, error.message)), b""
        headers = {"Content-Type": "application/json", "Link": link} if link else {"Content-Type": "application/json"}
        return _prepare(Reply(body=body, headers=headers)), b""

    def _page(self, query: Mapping[str, list[str]], base: str) -> tuple[str, str]:
        """Return the JSON body and the ``Link`` header value (empty if none) of the requested page."""
        items, style, size = self._items, self._style, self._page_size
        if style == "cursor":
            offset = _decode_cursor(query["cursor"][0]) if "cursor" in query else 0
            end = offset + _int_param(query, "limit", size, minimum=1)
            next_cursor = json.dumps(_encode_cursor(end)) if end < len(items) else "null"
            return f'{{"data":{_array(items[offset:end])},"meta":{{"next_cursor":{next_cursor}}}}}', ""
        if style == "offset":
            offset = _int_param(query, "offset", 0, minimum=0)
            end = offset + _int_param(query, "limit", size, minimum=1)
            return f'{{"items":{_array(items[offset:end])},"total":{len(items)}}}', ""
        page = _int_param(query, "page", 1, minimum=1)
        per_page = size if style == "next_url" else _int_param(query, "per_page", size, minimum=1)
        start = (page - 1) * per_page
        chunk = _array(items[start : start + per_page])
        pages = -(-len(items) // per_page)
        if style == "page":
            return f'{{"results":{chunk},"page":{page},"total_pages":{pages}}}', ""
        if style == "next_url":
            next_url = json.dumps(f"{base}?page={page + 1}") if page < pages else "null"
            return f'{{"results":{chunk},"next":{next_url}}}', ""
        return chunk, _link_header(base, page, per_page, max(pages, 1))


def _array(encoded_items: tuple[str, ...]) -> str:
    return f"[{','.join(encoded_items)}]"


def _link_header(base: str, page: int, per_page: int, last: int) -> str:
    """Build a GitHub-style ``Link`` header value (RFC 8288) for ``page`` of ``last``."""
    links = []
    if page > 1:
        links.append(f'<{base}?page=1&per_page={per_page}>; rel="first"')
        links.append(f'<{base}?page={min(page - 1, last)}&per_page={per_page}>; rel="prev"')
    if page < last:
        links.append(f'<{base}?page={page + 1}&per_page={per_page}>; rel="next"')
        links.append(f'<{base}?page={last}&per_page={per_page}>; rel="last"')
    return ", ".join(links)


def _int_param(query: Mapping[str, list[str]], name: str, default: int, *, minimum: int) -> int:
    values = query.get(name)
    if not values:
        return default
    value = values[0]
    if not (value.isascii() and value.isdigit() and len(value) <= 18 and int(value) >= minimum):
        raise _HTTPError(400, f"query parameter {name!r} must be an integer >= {minimum}, not {value[:40]!r}")
    return int(value)


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    """Decode a cursor made by :func:`_encode_cursor`; anything else is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:  # binascii.Error, or a non-ASCII cursor
        raw = b""
    prefix, _, digits = raw.partition(b":")
    if prefix == b"offset" and digits.isdigit() and len(digits) <= 18:
        offset = int(digits)
        if _encode_cursor(offset) == cursor:
            return offset
    raise _HTTPError(400, f"invalid cursor {cursor[:40]!r}")


# -- admin payloads ---------------------------------------------------------------------------------------------

_T = TypeVar("_T")

_ADMIN_METHODS: dict[str, str] = {
    "collection": "POST",
    "count": "GET",
    "quota": "POST",
    "requests": "GET",
    "reset": "POST",
    "routes": "POST",
}
_KIND_NAMES: dict[type[object], str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


class _SpecError(ValueError):
    """An admin API payload or ``--routes`` entry that does not describe a valid script."""


def _load_json(body: bytes) -> object:
    try:
        return cast(object, json.loads(body))
    except (ValueError, RecursionError) as error:
        raise _SpecError(f"the request body is not valid JSON: {error}") from None


def _typed(value: object, kind: type[_T], what: str) -> _T:
    """Return ``value`` if it is a ``kind`` (an int is never a bool here); raise a clear error otherwise."""
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise _SpecError(f"{what} must be {_KIND_NAMES[kind]}, not {_KIND_NAMES.get(type(value), 'that')}")


def _number(value: object, what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _SpecError(f"{what} must be a number, not {_KIND_NAMES.get(type(value), 'that')}")


def _object(spec: object, what: str, *, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, object]:
    """Check that ``spec`` is a JSON object with all ``required`` fields and no unknown ones."""
    obj: dict[str, object] = _typed(spec, dict, what)
    missing = [name for name in required if name not in obj]
    if missing:
        raise _SpecError(f"{what} is missing {', '.join(missing)}")
    unknown = sorted(obj.keys() - {*required, *optional})
    if unknown:
        raise _SpecError(
            f"{what} has unknown field(s) {', '.join(unknown)}; expected {', '.join((*required, *optional))}"
        )
    return obj


def _reply_from_json(spec: object, what: str) -> Reply:
    fields = ("status", "json", "body", "headers", "latency", "fault")
    obj = _object(spec, what, required=(), optional=fields)
    headers = _typed(obj.get("headers", {}), dict, f"{what}.headers")
    for name, value in headers.items():
        _typed(value, str, f"{what}.headers[{name!r}]")
    status = _typed(obj.get("status", 200), int, f"{what}.status")
    body = _typed(obj.get("body", ""), str, f"{what}.body")
    latency = _number(obj.get("latency", 0), f"{what}.latency")
    with _as_spec_error(what):
        return Reply(
            status=status,
            body=body,
            json=obj.get("json"),
            headers=headers,
            latency=latency,
            fault=cast(_Fault | None, obj.get("fault")),  # checked by Reply
        )


@contextlib.contextmanager
def _as_spec_error(what: str) -> Iterator[None]:
    """Report a ``ValueError``/``TypeError`` from the scripting API as an invalid ``what``."""
    try:
        yield
    except _SpecError:
        raise
    except (TypeError, ValueError) as error:
        raise _SpecError(f"invalid {what}: {error}") from error


def _recorded_to_json(recorded: Recorded) -> dict[str, object]:
    return {
        "method": recorded.method,
        "path": recorded.path,
        "query": recorded.query,
        "headers": [list(pair) for pair in recorded.headers],
        "body": recorded.body.decode("latin-1"),
        "received_at": recorded.received_at,
    }


# -- command line -----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Serve from the command line until SIGTERM or SIGINT; return the process exit status.

    Prints exactly one line, ``listening on http://HOST:PORT``, to standard output once listening. Exits 0 after
    a signal, 2 if the routes file is invalid and 1 if the address cannot be bound.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tether.testing.upstream",
        description="Run tether's scriptable, fault-injecting HTTP/1.1 upstream until SIGTERM or SIGINT. "
        "Script it over HTTP under /__upstream__/ (see the module documentation).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default: 0)")
    parser.add_argument(
        "--routes", type=Path, metavar="FILE.json", help="a JSON list of route objects, in the admin API format"
    )
    args = parser.parse_args(argv)
    upstream = Upstream(args.host, args.port)
    if args.routes is not None:
        try:
            specs = _typed(json.loads(args.routes.read_text(encoding="utf-8")), list, "the routes file")
            for index, spec in enumerate(specs):
                upstream._apply_route(spec, f"routes[{index}]")
        except (OSError, ValueError, RecursionError) as error:
            print(f"{parser.prog}: error: {args.routes}: {error}", file=sys.stderr)
            return 2
    try:
        asyncio.run(_serve_until_signalled(upstream))
    except OSError as error:
        print(f"{parser.prog}: error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # only where asyncio cannot install signal handlers (Windows)
        return 0
    return 0


async def _serve_until_signalled(upstream: Upstream) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows; SIGINT then raises KeyboardInterrupt
            loop.add_signal_handler(signum, stop.set)
    await upstream.start()
    try:
        print(f"listening on {upstream.url}", flush=True)
        await stop.wait()
    finally:
        await upstream.stop()


if __name__ == "__main__":
    raise SystemExit(main())
