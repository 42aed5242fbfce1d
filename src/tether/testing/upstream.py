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

This module holds the public names, the server loop and the command line. The protocol, the scripts and the
admin API live in private modules: ``_http11`` (parsing requests, serialising responses), ``_scripts`` (what
answers a request), ``_admin`` (the admin API) and ``_model`` (``Reply`` and ``Recorded``, re-exported here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tether.testing._admin import admin_reply, apply_routes
from tether.testing._http11 import MAX_HEAD, HTTPError, Request, parse_head, read_body, render
from tether.testing._model import Recorded, Reply
from tether.testing._scripts import (
    ADMIN_PREFIX,
    QUOTA_REPLY,
    Collection,
    Handler,
    Prepared,
    Quota,
    Script,
    Style,
    error_reply,
    no_route_reply,
    prepare,
    route_key,
)

__all__ = ["Recorded", "Reply", "Upstream", "main"]

_LINGER_SECONDS = 1.0  # how long to drain a refused client's input so our error reply is not lost to an RST
_READ_SIZE = 64 * 1024


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
        self._routes: dict[tuple[str, str], Handler] = {}
        self._recorded: list[Recorded] = []
        self._server: asyncio.Server | None = None
        self._url: str | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._stopping = False
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
            self._serve_connection, self._host, self._port, limit=MAX_HEAD, backlog=1024
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
        key = route_key(method, path)
        handler = Script(replies, repeat_last=repeat_last, method=key[0], path=path)
        with self._lock:
            self._routes[key] = handler

    def quota(self, method: str, path: str, *, limit: int, window: float, reply: Reply = QUOTA_REPLY) -> None:
        """Rate-limit ``method path``: ``limit`` requests per fixed ``window`` of seconds.

        The first request opens a window; the first ``limit`` requests in it get ``reply`` and the rest get 429
        ``{"error": "rate limited"}`` with ``Retry-After`` (whole seconds until the window resets, rounded up).
        The first request after the window opens the next one. Every response carries ``RateLimit-Limit``,
        ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until reset, rounded up), and
        ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix time of the reset, from
        ``time.time()``).
        """
        key = route_key(method, path)
        handler = Quota(reply, limit=limit, window=window)
        with self._lock:
            self._routes[key] = handler

    def collection(self, path: str, items: Sequence[object], *, style: Style, page_size: int = 10) -> None:
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
        key = route_key("GET", path)
        handler = Collection(path, items, style=style, page_size=page_size)
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
                writer.write(render(prepare(error_reply(500, "internal error")), b"", False, False))
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
                request = parse_head(head)
                if request is None:
                    continue  # only blank lines, which RFC 9112 §2.2 lets a server skip
                request.body = await read_body(reader, writer, request)
            except HTTPError as error:
                await self._refuse(reader, writer, error.status, error.message)
                return
            if request.path.startswith(ADMIN_PREFIX):
                keep_alive = await self._answer_admin(request, writer)
            else:
                keep_alive = await self._answer(request, reader, writer)
            if not keep_alive:
                return

    async def _answer(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Record ``request``, answer it from the script, and say whether the connection stays open."""
        recorded = Recorded(request.method, request.path, request.query, request.headers, request.body, self._now())
        with self._lock:
            self._recorded.append(recorded)
            handler = self._routes.get((request.method, request.path))
            answer = None if handler is None else handler.answer(request, recorded.received_at, self._url or "")
        prepared, extra = answer or (prepare(no_route_reply(request, "no route")), b"")
        if prepared.latency:
            await asyncio.sleep(prepared.latency)
        if prepared.fault is not None:
            await self._misbehave(prepared, extra, request, reader, writer)
            return False
        keep_alive = request.keep_alive and not prepared.closes
        writer.write(render(prepared, extra, keep_alive, request.http10, head_only=request.method == "HEAD"))
        await writer.drain()
        return keep_alive

    async def _answer_admin(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Serve one admin API call (never recorded) and say whether the connection stays open."""
        prepared = prepare(admin_reply(self, request))
        keep_alive = request.keep_alive
        writer.write(render(prepared, b"", keep_alive, request.http10, head_only=request.method == "HEAD"))
        await writer.drain()
        return keep_alive

    async def _misbehave(
        self,
        prepared: Prepared,
        extra: bytes,
        request: Request,
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
            writer.write(render(prepared, extra, False, request.http10, body=half))
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
        writer.write(render(prepare(error_reply(status, message)), b"", False, False))
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(_LINGER_SECONDS):
                while await reader.read(_READ_SIZE):
                    pass


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
            apply_routes(upstream, args.routes.read_text(encoding="utf-8"))
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
