"""What the test upstream answers: scripted reply sequences, rate-limit quotas and paginated collections.

Each scripted route has a :class:`Handler` that picks the answer to each request: a :class:`Script`, a
:class:`Quota` or a :class:`Collection`. Handlers are built, and validated, when a test scripts the route, and
every :class:`~tether.testing.upstream.Reply` they can send is prepared then (:func:`prepare` encodes its status
line and headers once), so answering a request only picks bytes. The ``cursor`` pagination style hands out
opaque cursors (URL-safe base64 of ``offset:N``) and refuses any other with a 400.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal, Protocol, get_args

from tether.testing._http11 import TCHARS, HTTPError, Request, has_control_characters
from tether.testing._model import Fault, Reply

__all__ = [
    "ADMIN_PREFIX",
    "QUOTA_REPLY",
    "Collection",
    "Handler",
    "Prepared",
    "Quota",
    "Script",
    "Style",
    "error_reply",
    "no_route_reply",
    "prepare",
    "route_key",
]

Style = Literal["link", "cursor", "page", "offset", "next_url"]
_STYLES: frozenset[str] = frozenset(get_args(Style))

ADMIN_PREFIX = "/__upstream__/"  # reserved for the admin API: no route may be scripted under it
QUOTA_REPLY = Reply(json={"ok": True})
_JSON_SEPARATORS = (",", ":")


# -- prepared replies -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    """A reply encoded once, when scripted: everything but the per-request Date and Connection lines."""

    head: bytes  # the status line and header lines
    body: bytes
    latency: float
    fault: Fault | None
    add_date: bool
    closes: bool  # the reply's own headers ask to close the connection


def prepare(reply: Reply) -> Prepared:
    """Encode ``reply`` for sending, with the default ``Content-Length`` and ``Content-Type`` it lacks."""
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
    return Prepared(
        head="".join(lines).encode("ascii"),
        body=body,
        latency=float(reply.latency),
        fault=reply.fault,
        add_date="date" not in own,
        closes=closes,
    )


def error_reply(status: int, message: str) -> Reply:
    """A ``status`` reply with the JSON body ``{"error": message}``."""
    return Reply(status=status, json={"error": message})


def no_route_reply(request: Request, error: str) -> Reply:
    """A 404 for ``request``, naming its method and path."""
    return Reply(status=404, json={"error": error, "method": request.method, "path": request.path})


def route_key(method: str, path: str) -> tuple[str, str]:
    """Validate a scripted method and path; return the key requests are looked up by."""
    if not isinstance(method, str) or not method or method.strip(TCHARS):
        raise ValueError(f"invalid HTTP method {method!r}")
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or not path.isascii()
        or has_control_characters(path)
        or any(char in path for char in " ?#")
    ):
        raise ValueError(
            f"a route path starts with '/' and holds printable ASCII without spaces, '?' or '#', not {path!r}"
            " (routes match the path only; the query is recorded)"
        )
    if path.startswith(ADMIN_PREFIX):
        raise ValueError(f"paths under {ADMIN_PREFIX} are reserved for the admin API")
    return method.upper(), path


# -- handlers ---------------------------------------------------------------------------------------------------


class Handler(Protocol):
    """What a route does with a request: choose the reply, plus any extra header lines."""

    def answer(self, request: Request, now: float, base_url: str) -> tuple[Prepared, bytes]:
        """Return the reply to ``request``, received at ``now``; called under the upstream's lock."""
        ...


class Script:
    """Replies served in sequence, then the last one again (or a 404); ``Reply()`` if there are none."""

    __slots__ = ("_exhausted", "_next", "_repeat_last", "_replies")

    def __init__(self, replies: Sequence[Reply], *, repeat_last: bool, method: str, path: str) -> None:
        self._replies = tuple(prepare(reply) for reply in replies) or (prepare(Reply()),)
        self._next = 0
        self._repeat_last = repeat_last
        self._exhausted = prepare(Reply(status=404, json={"error": "script exhausted", "method": method, "path": path}))

    def answer(self, request: Request, now: float, base_url: str) -> tuple[Prepared, bytes]:
        """Return the next reply of the sequence."""
        index = self._next
        if index < len(self._replies):
            self._next = index + 1
            return self._replies[index], b""
        return (self._replies[-1] if self._repeat_last else self._exhausted), b""


class Quota:
    """A fixed-window rate limit: windows open at the first request after the previous one ended."""

    __slots__ = ("_count", "_limit", "_limited", "_reply", "_start", "_window")

    def __init__(self, reply: Reply, *, limit: int, window: float) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"quota limit must be an int >= 0, not {limit!r}")
        if not (isinstance(window, int | float) and 0 < window < math.inf):
            raise ValueError(f"quota window must be a finite number of seconds > 0, not {window!r}")
        self._reply = prepare(reply)
        self._limited = prepare(error_reply(429, "rate limited"))
        self._limit = limit
        self._window = float(window)
        self._start: float | None = None
        self._count = 0

    def answer(self, request: Request, now: float, base_url: str) -> tuple[Prepared, bytes]:
        """Count the request in its window; return the reply or a 429, with the rate-limit headers."""
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


class Collection:
    """A paginated JSON collection in one of the styles documented on ``Upstream.collection``."""

    __slots__ = ("_items", "_page_size", "_path", "_style")

    def __init__(self, path: str, items: Sequence[object], *, style: str, page_size: int) -> None:
        if style not in _STYLES:
            raise ValueError(f"collection style must be one of {sorted(_STYLES)}, not {style!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"collection page_size must be an int >= 1, not {page_size!r}")
        self._path = path
        self._items = tuple(json.dumps(item, separators=_JSON_SEPARATORS) for item in items)  # encoded once
        self._style = style
        self._page_size = page_size

    def answer(self, request: Request, now: float, base_url: str) -> tuple[Prepared, bytes]:
        """Return the page the query asks for, or a 400 for a malformed query."""
        try:
            body, link = self._page(request.query, f"{base_url}{self._path}")
        except HTTPError as error:
            return prepare(error_reply(error.status, error.message)), b""
        headers = {"Content-Type": "application/json", "Link": link} if link else {"Content-Type": "application/json"}
        return prepare(Reply(body=body, headers=headers)), b""

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
        raise HTTPError(400, f"query parameter {name!r} must be an integer >= {minimum}, not {value[:40]!r}")
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
    raise HTTPError(400, f"invalid cursor {cursor[:40]!r}")
