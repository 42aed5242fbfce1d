"""Hostile and broken upstreams: whatever bytes a server sends, tether answers with one of its own errors.

A raw-socket server (:class:`RawServer`) answers each connection with scripted bytes — garbage status lines,
lying framing, oversized or undecodable headers, trickles, silence, hostile ``Retry-After`` values, redirect
loops — things no well-behaved server (nor :class:`tether.testing.Upstream`) sends. Every case runs on the
three client kinds of ``make_client`` (see conftest.py) and pins down that the error is a
:class:`~tether.errors.TetherError` (which one, where that is determined), that the call ends within its
deadline, and that no secret the server echoes reaches an error message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import tether
from tether import Backoff, Policy
from tether.errors import (
    DeadlineExceeded,
    PaginationError,
    ReadError,
    RetryAfterTooLong,
    ServerError,
    TetherError,
    TransportTimeout,
)
from tether.testing import FakeClock

pytestmark = pytest.mark.integration

IO_TIMEOUT = 5.0  # no socket operation of the server blocks longer than this
MAX_HEAD = 64 * 1024  # the most request head the server reads


@dataclass(frozen=True, slots=True)
class Trickle:
    """Send ``data`` one byte every ``interval`` seconds, cycling, for at most ``for_seconds``."""

    data: bytes
    interval: float
    for_seconds: float


@dataclass(frozen=True, slots=True)
class Hold:
    """Send nothing until the client goes away, for at most ``for_seconds``."""

    for_seconds: float


Action = bytes | Trickle | Hold
Script = Sequence[Action]


@dataclass(frozen=True, slots=True)
class Seen:
    """A request as the raw server read it: method, target and headers (names lower-cased, latin-1)."""

    method: str
    target: str
    headers: dict[str, str]
    raw: bytes


Responder = Callable[[int, Seen], Script]
"""Picks the script for the ``n``-th request (0-based) the server reads."""


class RawServer:
    """A thread-per-connection server on loopback answering each request with a scripted byte sequence.

    One request per connection: after its script the server closes the connection. Everything is bounded:
    socket operations time out after ``IO_TIMEOUT``, trickles and holds after their own limit, and
    :meth:`stop` wakes and joins every thread.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._listener = socket.create_server((host, 0))
        self._wake_reader, self._wake_writer = socket.socketpair()
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.seen: list[Seen] = []
        self._responder: Responder = lambda _index, _seen: [response(404)]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    def script(self, *scripts: Script | bytes) -> None:
        """Answer the n-th request with the n-th script (the last one repeats); ``bytes`` is a one-step script."""
        steps = [[script] if isinstance(script, bytes) else script for script in scripts]
        self._responder = lambda index, _seen: steps[min(index, len(steps) - 1)]

    def respond(self, responder: Responder) -> None:
        """Answer each request with the script ``responder`` picks."""
        self._responder = responder

    def start(self) -> None:
        """Start accepting connections in a background thread."""
        self._spawn(self._accept_loop)

    def stop(self) -> None:
        """Stop accepting, break every open connection and join every thread."""
        self._stop.set()
        self._wake_writer.send(b"x")
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=IO_TIMEOUT)
        for sock in (self._listener, self._wake_reader, self._wake_writer):
            sock.close()

    @classmethod
    @contextlib.contextmanager
    def running(cls, host: str = "127.0.0.1") -> Iterator[RawServer]:
        """A started server, stopped on exit."""
        server = cls(host)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while True:
            readable, _, _ = select.select([self._listener, self._wake_reader], [], [], IO_TIMEOUT)
            if self._stop.is_set():
                return
            if not readable:
                continue
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(IO_TIMEOUT)
            try:
                seen = self._read_request(conn)
                if seen is None:
                    return
                with self._lock:
                    index = len(self.seen)
                    self.seen.append(seen)
                for action in self._responder(index, seen):
                    if self._stop.is_set() or not self._perform(conn, action):
                        return
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_WR)
            except OSError:
                return

    @staticmethod
    def _read_request(conn: socket.socket) -> Seen | None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk or len(buffer) > MAX_HEAD:
                return None
            buffer += chunk
        raw = buffer.split(b"\r\n\r\n", 1)[0]
        head = raw.decode("latin-1")
        request_line, *lines = head.split("\r\n")
        method, _, rest = request_line.partition(" ")
        target = rest.partition(" ")[0]
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Seen(method, target, headers, raw + b"\r\n\r\n")

    def _perform(self, conn: socket.socket, action: Action) -> bool:
        """Carry out one action; ``False`` when the connection is over."""
        if isinstance(action, bytes):
            conn.sendall(action)
            return True
        if isinstance(action, Trickle):
            ends = time.monotonic() + action.for_seconds
            position = 0
            while time.monotonic() < ends:
                conn.sendall(action.data[position : position + 1])
                position = (position + 1) % len(action.data)
                if self._stop.wait(action.interval):
                    return False
            return True
        if not isinstance(action, Hold):
            raise TypeError(f"not a script action: {action!r}")
        ends = time.monotonic() + action.for_seconds
        while time.monotonic() < ends and not self._stop.is_set():
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable and not conn.recv(65536):
                return False  # the client went away
        return True


def response(
    status: int = 200,
    headers: Sequence[tuple[str, str] | bytes] = (),
    body: bytes = b"",
    *,
    reason: bytes = b"X",
) -> bytes:
    """A well-framed raw HTTP/1.1 response (correct ``Content-Length``, ``Connection: close``).

    A header given as ``bytes`` is sent as that raw line, so it may be as broken as the test needs.
    """
    lines = [f"HTTP/1.1 {status} ".encode() + reason]
    lines.extend(
        header if isinstance(header, bytes) else f"{header[0]}: {header[1]}".encode("latin-1") for header in headers
    )
    lines.append(f"Content-Length: {len(body)}".encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.fixture
def raw() -> Iterator[RawServer]:
    """A fresh raw server for the test, stopped (threads joined) after it."""
    with RawServer.running() as server:
        yield server


@pytest.fixture
def elsewhere() -> Iterator[RawServer]:
    """A raw server on another host, 127.0.0.2 (another origin than ``raw``'s 127.0.0.1)."""
    try:
        server = RawServer("127.0.0.2")
    except OSError as exc:  # pragma: no cover - loopback is not all of 127/8 here (macOS)
        pytest.skip(f"cannot listen on 127.0.0.2: {exc}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


POLICY = Policy(budget=None, retries=1, deadline=5)
"""Two attempts at most, five (fake) seconds: every case here is settled long before."""
TIMED = Policy(budget=None, retries=1, deadline=1, attempt_timeout=0.5)
"""For the cases about time, on the real clock."""
SECRET = "sk_live_XYZ"
OK = response(200, [("Content-Type", "application/json")], b"{}")


def hostile(make_client: Any, url: str, **options: Any) -> Any:
    """A client of the parametrised kind with the module's policy and a fake clock, unless overridden."""
    options.setdefault("policy", POLICY)
    options.setdefault("clock", FakeClock())
    return make_client(url, **options)


def failure(api: Any, path: str = "/x") -> TetherError:
    """GET ``path`` and return the tether error it raises; anything else propagates and fails the test."""
    with pytest.raises(TetherError) as caught:
        api.get(path)
    return caught.value


def texts(error: BaseException) -> dict[str, str]:
    """Everything of an error a log line or a traceback may show."""
    return {"str": str(error), "repr": repr(error), "body_excerpt": getattr(error, "body_excerpt", "")}


# --- status line -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b"HELLO\r\n\r\n", id="garbage"),
        pytest.param(b'{"ok": true}', id="http09-bare-body"),
        pytest.param(b"HTTP/1.1 99 X\r\nContent-Length: 0\r\n\r\n", id="two-digit-status"),
        pytest.param(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n", id="non-numeric-status"),
        pytest.param(b"HTTP/1.1 1000 X\r\nContent-Length: 0\r\n\r\n", id="four-digit-status"),
    ],
)
def test_unreadable_status_line_is_a_read_error_after_the_retry(raw: RawServer, make_client: Any, reply: bytes) -> None:
    """A status line that is not HTTP is a ReadError, retried once for a GET."""
    raw.script(reply)
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ReadError
    assert error.attempts == 2
    assert len(raw.seen) == 2


@pytest.mark.parametrize("status", [b"000", b"099"])
def test_three_digit_status_below_100_is_never_a_success(raw: RawServer, make_client: Any, status: bytes) -> None:
    """A three-digit status under 100 is a ReadError, not a response (status 0 would pass as a success)."""
    raw.script(b"HTTP/1.1 " + status + b" X\r\nContent-Length: 0\r\n\r\n")
    assert type(failure(hostile(make_client, raw.url))) is ReadError


@pytest.mark.parametrize("status", [600, 999])
def test_three_digit_status_above_599_is_a_server_error_not_retried(
    raw: RawServer, make_client: Any, status: int
) -> None:
    """A status from 600 to 999 is a ServerError carrying it, and is not retried (not a retry status)."""
    raw.script(response(status, body=b"odd"))
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ServerError
    assert error.status_code == status
    assert error.attempts == 1


# --- framing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a":', id="content-length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", id="chunked"),
    ],
)
def test_truncated_body_is_a_read_error_after_the_retry(raw: RawServer, make_client: Any, reply: bytes) -> None:
    """A body cut short by the server closing is a ReadError once the one retry is spent."""
    raw.script(reply)
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ReadError
    assert error.attempts == 2
    assert len(raw.seen) == 2


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"Content-Length: -5", id="negative-length"),
        pytest.param(b"Content-Length: abc", id="non-numeric-length"),
        pytest.param(b"Content-Length: 2\r\nContent-Length: 3", id="conflicting-lengths"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0", id="non-hex-chunk-size"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0", id="negative-chunk-size"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\nabc\r\n0", id="huge-chunk-size"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0", id="chunk-longer-than-size"),
    ],
)
def test_malformed_framing_is_a_read_error(raw: RawServer, make_client: Any, head: bytes) -> None:
    """Content-Length or chunk sizes that cannot be trusted are a ReadError, never a guessed body."""
    raw.script(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\n{}x")
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ReadError
    assert error.attempts == 2


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", id="repeated-equal-lengths"),
        pytest.param(
            b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\n{}\r\n0\r\n\r\n", id="chunked-and-length"
        ),
        pytest.param(b"Transfer-Encoding: bogus\r\n\r\n{}", id="unknown-transfer-coding"),
    ],
)
def test_ambiguous_framing_is_a_response_or_a_read_error(raw: RawServer, make_client: Any, reply: bytes) -> None:
    """Framing RFC 9112 lets a client accept or refuse gives the intended body or a ReadError, nothing else."""
    raw.script(b"HTTP/1.1 200 OK\r\n" + reply)
    api = hostile(make_client, raw.url)
    with contextlib.suppress(ReadError):  # any other error propagates and fails the test
        outcome = api.get("/x")
        assert outcome.status_code == 200
        assert outcome.content == b"{}"


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b"Content-Encoding: gzip\r\nContent-Length: 8\r\n\r\nnot-gzip", id="gzip"),
        pytest.param(b"Content-Encoding: deflate\r\nContent-Length: 8\r\n\r\nnot-zlib", id="deflate"),
    ],
)
def test_undecodable_content_encoding_is_a_read_error(raw: RawServer, make_client: Any, reply: bytes) -> None:
    """A body that does not decode as its Content-Encoding says is a ReadError."""
    raw.script(b"HTTP/1.1 200 OK\r\n" + reply)
    assert type(failure(hostile(make_client, raw.url))) is ReadError


def test_connection_closed_without_a_response_is_sent_retries_plus_one_times(raw: RawServer, make_client: Any) -> None:
    """A server that closes without answering is a ReadError after exactly ``retries + 1`` requests."""
    raw.script(b"")
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ReadError
    assert error.attempts == 2
    assert len(raw.seen) == 2


# --- headers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"NoColonHere", id="no-colon"),
        pytest.param(b"X-Name : a", id="space-before-colon"),
        pytest.param(b"X-Caf\xe9: 1", id="latin-1-name"),
        pytest.param(b"X-Name: a\x00b", id="nul-in-value"),
        pytest.param(b"X-Name: a\rb", id="bare-cr-in-value"),
    ],
)
def test_malformed_header_line_is_a_read_error(raw: RawServer, make_client: Any, line: bytes) -> None:
    """A header line that is not ``token: value`` is a ReadError."""
    raw.script(response(200, [line], b"{}"))
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ReadError
    assert error.attempts == 2


@pytest.mark.parametrize(
    ("value", "utf8"),
    [
        pytest.param(b"caf\xe9", False, id="latin-1"),
        pytest.param(b"\xff\xfe\x80", False, id="not-utf-8"),
        pytest.param("café ☃".encode(), True, id="utf-8"),
    ],
)
def test_non_ascii_header_value_gives_a_usable_response(
    raw: RawServer, make_client: Any, value: bytes, utf8: bool
) -> None:
    """Non-ASCII bytes in a header value give a response whose header is an ordinary, encodable string.

    Valid UTF-8 reads as UTF-8; other bytes read as latin-1, so no byte is lost.
    """
    raw.script(response(200, [b"X-Name: " + value], b"{}"))
    outcome = hostile(make_client, raw.url).get("/x")
    assert outcome.status_code == 200
    header = outcome.headers["x-name"]
    header.encode("utf-8")
    assert header == (value.decode() if utf8 else value.decode("latin-1"))
    assert outcome.headers.get_list("X-Name") == [header]
    assert [v for k, v in outcome.headers.items() if k.lower() == "x-name"] == [header]


def test_non_ascii_reason_phrase_gives_a_printable_error(raw: RawServer, make_client: Any) -> None:
    """A latin-1 reason phrase on a 500 gives a ServerError whose message can be printed and logged."""
    raw.script(response(500, body=b"{}", reason=b"Erreur interne \xe9\xff"))
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ServerError
    str(error).encode("utf-8")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([b"X-Big: " + b"a" * 200_000], id="one-200KB-header"),
        pytest.param([b"X-H%d: %s" % (n, b"v" * 40) for n in range(4_000)], id="4000-headers-200KB"),
    ],
)
def test_enormous_header_block_is_a_prompt_read_error(raw: RawServer, make_client: Any, headers: list[bytes]) -> None:
    """200 KB of response headers is a ReadError, promptly: the client neither buffers it all nor hangs."""
    raw.script(response(200, headers, b"{}"))
    started = time.monotonic()
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ReadError
    assert time.monotonic() - started < 2


# --- time --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([b"HTTP/1.1 200 OK\r\n", Trickle(b"X-Slow: aaaaaaaaaaaaaaaa\r\n", 0.2, 2.1)], id="headers"),
        pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n", Trickle(b"a" * 64, 0.2, 2.1)], id="body"),
    ],
)
def test_slowloris_response_cannot_outlive_the_deadline(raw: RawServer, make_client: Any, script: list[Any]) -> None:
    """Real time: a response trickling a byte every 0.2 s ends in a timeout error within the 1 s deadline."""
    raw.script(script)
    api = make_client(raw.url, policy=TIMED)
    started = time.monotonic()
    with pytest.raises((DeadlineExceeded, TransportTimeout)):
        api.get("/x")
    assert time.monotonic() - started < 1.0 + 0.4  # the deadline, plus scheduling slack


def test_silent_server_times_out_within_the_deadline(raw: RawServer, make_client: Any) -> None:
    """Real time: a server that accepts and never answers ends in a timeout error within the 1 s deadline."""
    raw.script([Hold(3.0)])
    api = make_client(raw.url, policy=TIMED)
    started = time.monotonic()
    with pytest.raises((DeadlineExceeded, TransportTimeout)):
        api.get("/x")
    assert time.monotonic() - started < 1.0 + 0.4  # the deadline, plus scheduling slack
    assert len(raw.seen) == 2


RETRY_CEILING = Backoff().ceiling(1)


@pytest.mark.parametrize(
    ("name", "value", "too_long"),
    [
        pytest.param("Retry-After", b"-1", False, id="negative"),
        pytest.param("Retry-After", b"1e309", False, id="overflows-to-inf"),
        pytest.param("Retry-After", b"nan", False, id="nan"),
        pytest.param("Retry-After", b"Fri, 31 Dec 9999 23:59:59 GMT", True, id="year-9999"),
        pytest.param("Retry-After", b"Sat, 01 Jan 0000 00:00:00 GMT", False, id="year-0"),
        pytest.param("Retry-After", b"junk " * 2_000, False, id="10KB-junk"),
        pytest.param("Retry-After", b"\xff\xfe\x80", False, id="not-utf-8"),
        pytest.param("Retry-After", b"1e308", True, id="1e308-beyond-cap"),
        pytest.param("Retry-After", b"30", True, id="beyond-deadline-within-cap"),
        pytest.param("X-RateLimit-Reset", b"99999999999999", True, id="reset-epoch-ms-year-5138"),
        pytest.param("RateLimit", b"limit=1, remaining=0, reset=nan", False, id="ratelimit-nan"),
        pytest.param("RateLimit", b'"q";r=0;t=' + b"9" * 400, False, id="ratelimit-400-digits"),
    ],
)
def test_hostile_retry_after_never_crashes_and_the_wait_stays_bounded(
    raw: RawServer, make_client: Any, name: str, value: bytes, too_long: bool
) -> None:
    """A 429 asking for an absurd wait: backoff when unreadable, RetryAfterTooLong past the cap or deadline."""
    raw.script(response(429, [name.encode() + b": " + value]), OK)
    clock = FakeClock()
    api = hostile(make_client, raw.url, clock=clock)
    if too_long:
        error = failure(api)
        assert type(error) is RetryAfterTooLong
        assert error.retry_after > 5
        assert clock.sleeps == []
        assert len(raw.seen) == 1
    else:
        assert api.get("/x").status_code == 200
        assert len(clock.sleeps) == 1
        assert 0 <= clock.sleeps[0] <= RETRY_CEILING


# --- secrets -----------------------------------------------------------------------------------------------


def test_huge_error_body_is_bounded_and_redacted(raw: RawServer, make_client: Any) -> None:
    """A 500 with a 5 MB body holding a token: the ServerError shows under 2 KB of it, token redacted."""
    body = b'{"access_token": "sk_live_XYZ", "padding": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    raw.script(response(500, [("Content-Type", "application/json")], body))
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ServerError
    assert error.attempts == 2
    for where, text in texts(error).items():
        assert len(text) < 2048, where
        assert SECRET not in text, where


def test_token_longer_than_the_excerpt_is_redacted(raw: RawServer, make_client: Any) -> None:
    """A token value that runs past the 1 KB body excerpt (a long JWT, say) is still redacted."""
    body = b'{"access_token": "sk_live_XYZ' + b"Q" * 2_000 + b'"}'
    raw.script(response(500, [("Content-Type", "application/json")], body))
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ServerError
    for where, text in texts(error).items():
        assert SECRET not in text, where


def test_secret_in_the_reason_phrase_is_redacted(raw: RawServer, make_client: Any) -> None:
    """A reason phrase echoing ``access_token=...`` is redacted like a body would be."""
    raw.script(response(503, reason=b"access_token=" + SECRET.encode()))
    error = failure(hostile(make_client, raw.url))
    assert type(error) is ServerError
    for where, text in texts(error).items():
        assert SECRET not in text, where


def test_echoing_server_does_not_leak_a_query_api_key(raw: RawServer, make_client: Any) -> None:
    """A server (or misrouted port) that echoes the request back: the ReadError hides the query API key."""
    raw.respond(lambda _index, seen: [seen.raw])
    error = failure(hostile(make_client, raw.url, auth=tether.APIKey(SECRET, in_="query")))
    assert type(error) is ReadError
    for where, text in texts(error).items():
        assert SECRET not in text, where


def test_protocol_error_does_not_leak_a_query_api_key(raw: RawServer, make_client: Any) -> None:
    """A garbage status line while the URL carries an API key: the ReadError hides the key."""
    raw.script(b"HELLO\r\n\r\n")
    error = failure(hostile(make_client, raw.url, auth=tether.APIKey(SECRET, in_="query")))
    assert type(error) is ReadError
    for where, text in texts(error).items():
        assert SECRET not in text, where


# --- redirects ---------------------------------------------------------------------------------------------


def test_redirect_loop_is_a_tether_error(raw: RawServer, make_client: Any) -> None:
    """A 302 to itself ends in a tether error after a bounded number of requests."""
    raw.script(response(302, [("Location", "/x")]))
    failure(hostile(make_client, raw.url))
    assert len(raw.seen) <= 2 * 21


@pytest.mark.parametrize("location", ["ftp://127.0.0.1/x", "javascript:alert(1)"])
def test_redirect_to_a_non_http_scheme_is_a_tether_error(raw: RawServer, make_client: Any, location: str) -> None:
    """A redirect to a non-HTTP URL ends in a tether error, without following it."""
    raw.script(response(302, [("Location", location)]))
    failure(hostile(make_client, raw.url))
    assert len(raw.seen) <= 2


def test_redirect_to_an_invalid_port_is_a_tether_error(raw: RawServer, make_client: Any) -> None:
    """A redirect to port 99999 ends in a tether error."""
    raw.script(response(302, [("Location", "http://127.0.0.1:99999/x")]))
    failure(hostile(make_client, raw.url))


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(tether.Bearer(SECRET), id="bearer"),
        pytest.param(tether.Basic("user", SECRET), id="basic"),
        pytest.param(tether.APIKey(SECRET), id="api-key-header"),
        pytest.param(tether.APIKey(SECRET, name="X-Shop"), id="api-key-custom-header"),
        pytest.param(tether.APIKey(SECRET, in_="query"), id="api-key-query"),
    ],
)
def test_redirect_to_another_host_does_not_carry_credentials(
    raw: RawServer, elsewhere: RawServer, make_client: Any, auth: tether.Auth
) -> None:
    """A redirect to another host (127.0.0.2) reaches it without the client's credentials."""
    elsewhere.script(OK)
    raw.script(response(302, [("Location", elsewhere.url + "/landing")]))
    assert hostile(make_client, raw.url, auth=auth).get("/x").status_code == 200
    (landed,) = elsewhere.seen
    assert SECRET.encode() not in landed.raw


# --- pagination --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["{url}/items", "./items"])
def test_pagination_link_back_to_the_same_page_is_a_loop_error(raw: RawServer, make_client: Any, target: str) -> None:
    """A Link header whose next page is the page itself is a PaginationError, after one request."""
    link = f'<{target.format(url=raw.url)}>; rel="next"'
    raw.script(response(200, [("Link", link)], b"[1]"))
    api = hostile(make_client, raw.url)
    with pytest.raises(PaginationError, match="loops"):
        api.paginate("/items", tether.LinkHeader())
    assert len(raw.seen) == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>Service Unavailable</html>", id="html"),
        pytest.param(b"\xff\xfe\x00[1]", id="not-utf-8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_pagination_page_that_is_not_json_is_a_pagination_error(raw: RawServer, make_client: Any, body: bytes) -> None:
    """A 200 page whose body is not JSON is a PaginationError saying so."""
    raw.script(response(200, [("Content-Type", "application/json")], body))
    api = hostile(make_client, raw.url)
    with pytest.raises(PaginationError, match="not JSON"):
        api.paginate("/items", tether.LinkHeader())


def test_pagination_deeply_nested_json_is_a_pagination_error(raw: RawServer, make_client: Any) -> None:
    """A page of 100,000 nested arrays is a PaginationError, not a RecursionError."""
    raw.script(response(200, [("Content-Type", "application/json")], b"[" * 100_000 + b"]" * 100_000))
    api = hostile(make_client, raw.url)
    with pytest.raises(PaginationError):
        api.paginate("/items", tether.LinkHeader())


def test_pagination_unparseable_next_link_is_a_tether_error(raw: RawServer, make_client: Any) -> None:
    """A Link header whose next URL cannot be parsed is a tether error, not a ValueError from urllib."""
    raw.script(response(200, [("Link", '<http://[::1/items>; rel="next"')], b"[1]"))
    api = hostile(make_client, raw.url)
    with pytest.raises(TetherError):
        api.paginate("/items", tether.LinkHeader())


def test_pagination_next_link_to_another_host_does_not_carry_credentials(
    raw: RawServer, elsewhere: RawServer, make_client: Any
) -> None:
    """A next link to another host (127.0.0.2) is refused or followed without the client's credentials."""
    elsewhere.script(response(200, body=b"[2]"))
    raw.script(response(200, [("Link", f'<{elsewhere.url}/items?page=2>; rel="next"')], b"[1]"))
    api = hostile(make_client, raw.url, auth=tether.Bearer(SECRET))
    with contextlib.suppress(PaginationError):
        api.paginate("/items", tether.LinkHeader())
    assert not any(SECRET.encode() in seen.raw for seen in elsewhere.seen)


# --- oversized bodies --------------------------------------------------------------------------------------

LIMIT = 64 * 1024


def _chunked(body: bytes, size: int = 8192) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(response(200, [], b"a" * (LIMIT + 1)), id="content-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + _chunked(b"a" * 300_000),
            id="chunked",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"a" * 300_000,
            id="until-close",
        ),
        pytest.param(
            response(200, [("Content-Encoding", "gzip")], gzip.compress(b"\0" * 4_000_000)),
            id="gzip-bomb",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\ntiny",
            id="lying-content-length",
        ),
    ],
)
def test_a_body_over_max_response_bytes_is_refused_and_not_retried(
    raw: RawServer, make_client: Any, reply: bytes
) -> None:
    """A body past the client's limit, however it is framed or compressed, is ResponseTooLarge after one attempt."""
    raw.script(reply)
    error = failure(hostile(make_client, raw.url, max_response_bytes=LIMIT))
    assert type(error) is tether.ResponseTooLarge
    assert "max_response_bytes=65,536" in str(error)
    assert error.attempts == 1
    assert len(raw.seen) == 1


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_body_of_exactly_max_response_bytes_is_read(raw: RawServer, make_client: Any, encoding: str) -> None:
    body = bytes(range(256)) * (LIMIT // 256)
    headers = [] if encoding == "identity" else [("Content-Encoding", "gzip")]
    raw.script(response(200, headers, body if encoding == "identity" else gzip.compress(body)))
    assert hostile(make_client, raw.url, max_response_bytes=LIMIT).get("/x").content == body


def test_no_limit_when_max_response_bytes_is_none(raw: RawServer, make_client: Any) -> None:
    body = b"z" * 300_000
    raw.script(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + _chunked(body))
    assert hostile(make_client, raw.url, max_response_bytes=None).get("/x").content == body


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "1000"])
def test_max_response_bytes_must_be_a_positive_int_or_none(bad: Any) -> None:
    for build in (
        lambda: tether.AsyncClient(max_response_bytes=bad),
        lambda: tether.Client(max_response_bytes=bad),
        lambda: tether.HttpxAsyncTransport(max_response_bytes=bad),
    ):
        with pytest.raises(tether.ConfigurationError, match="max_response_bytes"):
            build()


# --- an httpx client of the caller's: connections only ----------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_callers_httpx_client_lends_no_credentials_to_a_redirect_hop(
    raw: RawServer, elsewhere: RawServer, kind: str
) -> None:
    """The caller's httpx client may carry auth, headers, params and cookies: none reach the other origin."""
    elsewhere.script(OK)
    raw.script(response(302, [("Location", elsewhere.url + "/landing")]))
    loaded: dict[str, Any] = {
        "auth": ("user", SECRET),
        "headers": {"X-API-Key": SECRET},
        "params": {"token": SECRET},
        "cookies": {"sid": SECRET},
    }
    if kind == "sync":
        with tether.Client(raw.url, transport=tether.HttpxTransport(httpx.Client(**loaded))) as api:
            assert api.get("/x").status_code == 200
    else:

        async def go() -> None:
            async with (
                httpx.AsyncClient(**loaded) as mine,
                tether.AsyncClient(raw.url, transport=tether.HttpxAsyncTransport(mine)) as api,
            ):
                assert (await api.get("/x")).status_code == 200

        asyncio.run(go())
    (landed,) = elsewhere.seen
    assert SECRET.encode() not in landed.raw
    assert base64.b64encode(f"user:{SECRET}".encode()) not in landed.raw  # the client's Basic auth
