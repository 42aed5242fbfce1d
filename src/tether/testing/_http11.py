"""HTTP/1.1 on the wire for the test upstream: parsing requests and serialising responses.

Requests are parsed strictly (RFC 9112): the request line, the header fields, then a body framed by
``Content-Length`` or chunked transfer coding. The request line and headers may take at most :data:`MAX_HEAD`
bytes and a body at most 10 MiB. Anything malformed or too large raises :class:`HTTPError` carrying the status
to refuse it with: 400, or 431, 413, 501 or 505 where they apply.

A response is serialised by :func:`render` from a :class:`Response` whose status line and header lines were
encoded ahead of time; only the ``Date`` and ``Connection`` lines are added per request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Protocol
from urllib.parse import parse_qs

__all__ = [
    "MAX_HEAD",
    "TCHARS",
    "HTTPError",
    "Request",
    "Response",
    "has_control_characters",
    "parse_head",
    "read_body",
    "render",
]

MAX_HEAD = 64 * 1024  # request line plus headers, and any one chunk-size or trailer line
TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # RFC 9110 §5.6.2
_MAX_BODY = 10 * 1024 * 1024
_HEXDIGITS = b"0123456789abcdefABCDEF"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CONNECTION_CLOSE = b"Connection: close\r\n"
_CONNECTION_KEEP_ALIVE = b"Connection: keep-alive\r\n"


def has_control_characters(value: str) -> bool:
    """Say whether ``value`` holds a control character other than a tab (not allowed in a field value)."""
    return any((char < " " and char != "\t") or char == "\x7f" for char in value)


# -- requests ---------------------------------------------------------------------------------------------------


class HTTPError(Exception):
    """A request we refuse with ``status``; the connection is closed afterwards."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    """A request as parsed: the head first, then the body once :func:`read_body` has read it."""

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


def parse_head(head: bytes) -> Request | None:
    """Parse a request line and header block ending in CRLF CRLF; ``None`` if it holds only blank lines."""
    text = head[:-4].decode("latin-1").lstrip("\r\n")
    if not text:
        return None
    lines = text.split("\r\n")
    separators = len(lines) - 1
    if text.count("\n") != separators or text.count("\r") != separators or "\x00" in text:
        raise HTTPError(400, "bare CR, bare LF or NUL in the request head")
    method, path, query, http10 = _parse_request_line(lines[0])
    request = Request(
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
        raise HTTPError(400, "malformed request line; expected 'METHOD target HTTP/1.1'")
    method, target, version = parts
    if not method or method.strip(TCHARS):
        raise HTTPError(400, "malformed method in the request line")
    if version == "HTTP/1.1":
        http10 = False
    elif version == "HTTP/1.0":
        http10 = True
    elif version.startswith("HTTP/") and version[5:6].isdigit():
        raise HTTPError(505, f"{version} is not supported; use HTTP/1.1")
    else:
        raise HTTPError(400, "malformed HTTP version in the request line")
    if target.startswith("/"):
        path, _, query = target.partition("?")
    elif target == "*":
        path, query = "*", ""
    elif target.startswith(("http://", "https://")):  # absolute form, as sent to a proxy
        scheme_end = target.index("//") + 2
        slash = target.find("/", scheme_end)
        path, _, query = (target[slash:] if slash >= 0 else "/").partition("?")
    else:
        raise HTTPError(400, "malformed request target")
    return method, path, query, http10


def _parse_fields(lines: list[str], request: Request) -> None:
    """Parse header lines into ``request.headers`` and its framing and connection fields."""
    content_length: int | None = None
    transfer_encoding = ""
    connection = ""
    headers = request.headers
    for line in lines[1:]:
        name, colon, raw_value = line.partition(":")
        if not colon or not name or name.strip(TCHARS):  # also rejects obs-fold and "Name :"
            raise HTTPError(400, f"malformed header line {line[:80]!r}")
        value = raw_value.strip(" \t")
        headers.append((name, value))
        lower = name.lower()
        if lower == "content-length":
            length = _parse_content_length(value)
            if content_length is not None and content_length != length:
                raise HTTPError(400, "conflicting Content-Length headers")
            content_length = length
        elif lower == "transfer-encoding":
            transfer_encoding = f"{transfer_encoding},{value}" if transfer_encoding else value
        elif lower == "connection":
            connection = f"{connection},{value}"
        elif lower == "expect":
            request.expect_continue = not request.http10 and value.lower() == "100-continue"
    if transfer_encoding:
        if request.http10 or content_length is not None:
            raise HTTPError(400, "Transfer-Encoding is not allowed with HTTP/1.0 or with Content-Length")
        if [coding.strip().lower() for coding in transfer_encoding.split(",")] != ["chunked"]:
            raise HTTPError(501, "only the chunked transfer coding is supported")
        request.chunked = True
    request.content_length = content_length or 0
    if connection:
        tokens = {token.strip().lower() for token in connection.split(",")}
        request.keep_alive = "keep-alive" in tokens if request.http10 else "close" not in tokens


def _parse_content_length(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise HTTPError(400, f"invalid Content-Length {value[:40]!r}")
    digits = value.lstrip("0")
    if len(digits) > 18:  # far beyond the body limit; also keeps int() away from huge digit strings
        raise HTTPError(413, "the request body exceeds 10 MiB")
    return int(digits or "0")


async def read_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request) -> bytes:
    """Read the request body as framed by ``Content-Length`` or chunked transfer coding."""
    if request.chunked:
        if request.expect_continue:
            writer.write(_CONTINUE)
        return await _read_chunked(reader)
    length = request.content_length
    if not length:
        return b""
    if length > _MAX_BODY:
        raise HTTPError(413, "the request body exceeds 10 MiB")
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
            raise HTTPError(400, "malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > _MAX_BODY:
            raise HTTPError(413, "the request body exceeds 10 MiB")
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HTTPError(400, "chunk data not followed by CRLF")
    trailer_size = 0
    while line := await _read_line(reader):
        trailer_size += len(line)
        if trailer_size > MAX_HEAD:
            raise HTTPError(431, "the trailer section exceeds 64 KiB")
    return b"".join(chunks)


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    """Read one CRLF-terminated line, without the CRLF."""
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise HTTPError(400, "a chunk-size or trailer line exceeds 64 KiB") from None
    return line[:-2]


# -- responses --------------------------------------------------------------------------------------------------


class Response(Protocol):
    """A response encoded ahead of time, as :func:`render` needs it."""

    @property
    def head(self) -> bytes:
        """The status line and header lines, each ending in CRLF, without the blank line."""
        ...

    @property
    def body(self) -> bytes:
        """The content, already framed by the head's ``Content-Length``."""
        ...

    @property
    def add_date(self) -> bool:
        """Whether to add a ``Date`` line (the head has none of its own)."""
        ...


def render(
    response: Response,
    extra: bytes,
    keep_alive: bool,
    http10: bool,
    *,
    head_only: bool = False,
    body: bytes | None = None,
) -> bytes:
    """Assemble the bytes of one response, to be sent with a single write.

    ``extra`` holds more header lines; ``head_only`` leaves the body out (a ``HEAD`` request) and ``body``
    replaces it (a truncated body).
    """
    if not keep_alive:
        connection = _CONNECTION_CLOSE
    elif http10:
        connection = _CONNECTION_KEEP_ALIVE
    else:
        connection = b""
    if head_only:
        body = b""
    elif body is None:
        body = response.body
    date = _date_line() if response.add_date else b""
    return b"".join((response.head, extra, date, connection, b"\r\n", body))


_date: tuple[int, bytes] = (0, b"")  # the second the Date line was formatted for, and the line


def _date_line() -> bytes:
    """Return the ``Date`` header line, formatted at most once a second."""
    global _date  # noqa: PLW0603  # one cache per process: the line is the same for every server in it
    now = int(time.time())
    cached = _date
    if cached[0] != now:
        cached = _date = (now, f"Date: {formatdate(now, usegmt=True)}\r\n".encode("ascii"))
    return cached[1]
