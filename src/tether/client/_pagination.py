"""Pagination, pure: each style reads a page's items and the request for the next page from a response.

Styles (each a frozen value; pass one to ``client.paginate(url, paginator)``):

- :class:`LinkHeader` — RFC 8288 ``Link: <…>; rel="next"`` (GitHub, GitLab, Shopify REST).
- :class:`Cursor` — an opaque cursor in the body sent back as a query parameter (Slack, Notion, Twitter/X);
  with ``from_item`` the cursor is a field of the last item and ``has_more_path`` says whether to go on
  (Stripe's ``starting_after``).
- :class:`PageNumber` — ``?page=N``, until an empty or short page, or ``total_pages``.
- :class:`Offset` — ``?offset=N&limit=M``, until a short page or ``total``.
- :class:`NextURL` — the next page's URL in the body (DRF's ``next``, HAL-like APIs).

Paths into JSON bodies are dot-separated keys or list indices (``"meta.next_cursor"``, ``"data"``); ``None``
or ``""`` means the whole body. :class:`PageWalker` holds the per-walk state (counts, bounds, loop detection)
so the async and sync clients share it and each only loops over requests. Every page goes through the
client's full pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from tether._models import Request, Response
from tether._redaction import redact_url
from tether.errors import ConfigurationError, PaginationError

__all__ = [
    "Cursor",
    "LinkHeader",
    "NextURL",
    "Offset",
    "Page",
    "PageNumber",
    "PageWalker",
    "Paginator",
    "parse_link_header",
]


@dataclass(frozen=True, slots=True)
class Page:
    """One page: its ``items`` and the request for the next page (``None`` on the last)."""

    items: list[Any]
    next: Request | None


class Paginator(Protocol):
    """A pagination style."""

    def start(self, request: Request) -> Request:
        """The first page's request, built from the caller's."""
        ...

    def page(self, request: Request, response: Response) -> Page:
        """Read ``response`` (the answer to ``request``) as a page."""
        ...


_MISSING = object()


def _lookup(body: Any, path: str | None) -> Any:
    if not path:
        return body
    node = body
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            node = _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def _json(request: Request, response: Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise PaginationError(f"page is not JSON: {exc}", method=request.method, url=request.url) from None


def _items(request: Request, body: Any, path: str | None) -> list[Any]:
    items = _lookup(body, path)
    if isinstance(items, list):
        return items
    where = f"at {path!r}" if path else "as the body"
    found = "nothing" if items is _MISSING else type(items).__name__
    keys = f" (top-level keys: {sorted(body)[:20]})" if isinstance(body, Mapping) else ""
    raise PaginationError(
        f"expected a list of items {where}, found {found}{keys}", method=request.method, url=request.url
    )


def _with_params(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    pairs.extend(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(pairs), parts.fragment))


def _follow(request: Request, target: str) -> Request:
    """The request for ``target`` (absolute, or relative to ``request``'s URL), or a PaginationError."""
    try:
        url = urljoin(request.url, target)
        urlsplit(url).port  # noqa: B018 - raises ValueError on an out-of-range port
    except ValueError as exc:
        raise PaginationError(f"next page URL is invalid: {exc}", method=request.method, url=request.url) from None
    return request.with_url(url)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _param(url: str, name: str) -> str | None:
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == name:
            return value
    return None


def parse_link_header(values: list[str]) -> dict[str, str]:
    """Map each ``rel`` of RFC 8288 ``Link`` header values to its target URI (first one wins)."""
    links: dict[str, str] = {}
    for value in values:
        for link in _split_links(value):
            target, _, params = link.partition(">")
            target = target.strip().lstrip("<").strip()
            for param in params.split(";"):
                key, sep, raw = param.strip().partition("=")
                if sep and key.strip().lower() == "rel":
                    for rel in raw.strip().strip('"').lower().split():
                        links.setdefault(rel, target)
    return links


def _split_links(value: str) -> list[str]:
    """Split a Link value on the commas that separate links (not those inside ``<…>`` or quotes)."""
    parts, start, in_uri, in_quote = [], 0, False, False
    for index, char in enumerate(value):
        if char == "<" and not in_quote:
            in_uri = True
        elif char == ">" and not in_quote:
            in_uri = False
        elif char == '"' and not in_uri:
            in_quote = not in_quote
        elif char == "," and not in_uri and not in_quote:
            parts.append(value[start:index])
            start = index + 1
    parts.append(value[start:])
    return [part for part in (p.strip() for p in parts) if part.startswith("<")]


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkHeader:
    """Follow ``Link: <url>; rel="next"``; items are the body (or the list at ``items_path``)."""

    items_path: str | None = None
    rel: str = "next"

    def start(self, request: Request) -> Request:
        """The caller's request, unchanged."""
        return request

    def page(self, request: Request, response: Response) -> Page:
        """Items from the body; next from the ``Link`` header."""
        items = _items(request, _json(request, response), self.items_path)
        target = parse_link_header(response.headers.get_list("link")).get(self.rel)
        return Page(items, _follow(request, target) if target else None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cursor:
    """Send back a cursor from the body as query parameter ``param``.

    The cursor is read at ``cursor_path``, or, with ``from_item``, from that field of the page's last item
    (Stripe: ``Cursor(param="starting_after", from_item="id", has_more_path="has_more")``). The walk stops at
    an empty/null cursor, an empty page, or a false ``has_more_path``. ``limit_param``/``limit`` set a page size.
    """

    param: str = "cursor"
    cursor_path: str | None = "next_cursor"
    items_path: str | None = "data"
    from_item: str | None = None
    has_more_path: str | None = None
    limit_param: str | None = None
    limit: int | None = None

    def start(self, request: Request) -> Request:
        """Add the page size, if one is set."""
        if self.limit_param and self.limit:
            return request.with_url(_with_params(request.url, {self.limit_param: str(self.limit)}))
        return request

    def page(self, request: Request, response: Response) -> Page:
        """Items and cursor from the body."""
        body = _json(request, response)
        items = _items(request, body, self.items_path)
        if self.has_more_path is not None and _lookup(body, self.has_more_path) is not True:
            return Page(items, None)
        if self.from_item is not None:
            cursor = _lookup(items[-1], self.from_item) if items else None
        else:
            cursor = _lookup(body, self.cursor_path)
        if cursor is _MISSING or cursor is None or cursor == "" or not items:
            return Page(items, None)
        if not isinstance(cursor, str | int):
            raise PaginationError(
                f"cursor must be a string or number, found {type(cursor).__name__}",
                method=request.method,
                url=request.url,
            )
        return Page(items, request.with_url(_with_params(request.url, {self.param: str(cursor)})))


@dataclass(frozen=True, slots=True, kw_only=True)
class PageNumber:
    """``?page=N`` from ``start``, until an empty page, a page shorter than ``size``, or ``total_pages_path``."""

    param: str = "page"
    start_at: int = 1
    items_path: str | None = "results"
    size_param: str | None = None
    size: int | None = None
    total_pages_path: str | None = None

    def start(self, request: Request) -> Request:
        """Ask for the first page (and the page size, if set)."""
        params = {self.param: str(self.start_at)}
        if self.size_param and self.size:
            params[self.size_param] = str(self.size)
        return request.with_url(_with_params(request.url, params))

    def page(self, request: Request, response: Response) -> Page:
        """Items from the body; the next page number, unless this was the last."""
        body = _json(request, response)
        items = _items(request, body, self.items_path)
        current = int(_param(request.url, self.param) or self.start_at)
        total = _lookup(body, self.total_pages_path) if self.total_pages_path else _MISSING
        last = (
            not items
            or (self.size is not None and len(items) < self.size)
            or (isinstance(total, int) and current >= total)
        )
        return Page(
            items,
            None if last else request.with_url(_with_params(request.url, {self.param: str(current + 1)})),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Offset:
    """``?offset=N&limit=M``, until a page shorter than ``limit`` or ``total_path``'s total."""

    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = 100
    items_path: str | None = "items"
    total_path: str | None = None

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ConfigurationError(f"Offset.limit must be >= 1, got {self.limit}")

    def start(self, request: Request) -> Request:
        """Ask for the first ``limit`` items."""
        return request.with_url(_with_params(request.url, {self.offset_param: "0", self.limit_param: str(self.limit)}))

    def page(self, request: Request, response: Response) -> Page:
        """Items from the body; the next offset, unless this was the last page."""
        body = _json(request, response)
        items = _items(request, body, self.items_path)
        offset = int(_param(request.url, self.offset_param) or 0) + len(items)
        total = _lookup(body, self.total_path) if self.total_path else _MISSING
        last = len(items) < self.limit or (isinstance(total, int) and offset >= total)
        return Page(
            items,
            None if last else request.with_url(_with_params(request.url, {self.offset_param: str(offset)})),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NextURL:
    """Follow the URL at ``next_path`` in the body (absolute, or relative to the page's URL)."""

    next_path: str = "next"
    items_path: str | None = "results"

    def start(self, request: Request) -> Request:
        """The caller's request, unchanged."""
        return request

    def page(self, request: Request, response: Response) -> Page:
        """Items and next URL from the body."""
        body = _json(request, response)
        items = _items(request, body, self.items_path)
        target = _lookup(body, self.next_path)
        if target is _MISSING or not target:
            return Page(items, None)
        if not isinstance(target, str):
            raise PaginationError(
                f"next URL at {self.next_path!r} must be a string, found {type(target).__name__}",
                method=request.method,
                url=request.url,
            )
        return Page(items, _follow(request, target))


class PageWalker:
    """The state of one walk: bounds (``max_items``, ``max_pages``) and loop detection.

    Drive it with ``next_request()`` → send → ``accept(response)`` until ``next_request()`` is ``None``. A next page
    on another origin (scheme, host or port) than the first is refused with :class:`PaginationError`: the client
    would send it with its credentials, and a hostile or compromised page must not redirect them elsewhere.
    """

    __slots__ = ("_items", "_max_items", "_max_pages", "_next", "_origin", "_pages", "_paginator", "_seen")

    def __init__(
        self,
        paginator: Paginator,
        first: Request,
        *,
        max_items: int | None = None,
        max_pages: int | None = None,
    ) -> None:
        for name, bound in (("max_items", max_items), ("max_pages", max_pages)):
            if bound is not None and bound < 1:
                raise ConfigurationError(f"{name} must be >= 1 or None, got {bound}")
        self._paginator = paginator
        self._next: Request | None = paginator.start(first)
        self._origin = _origin(first.url)
        self._max_items = max_items
        self._max_pages = max_pages
        self._items = 0
        self._pages = 0
        self._seen: set[str] = set()

    def next_request(self) -> Request | None:
        """The next page's request, or ``None`` when the walk is over."""
        request = self._next
        if request is not None:
            if request.url in self._seen:
                raise PaginationError(
                    f"pagination loops: {redact_url(request.url)} was already fetched",
                    method=request.method,
                    url=request.url,
                )
            if _origin(request.url) != self._origin:
                raise PaginationError(
                    f"next page is on another origin ({redact_url(request.url)}); refusing to send credentials there",
                    method=request.method,
                    url=request.url,
                )
            self._seen.add(request.url)
        return request

    def accept(self, response: Response) -> list[Any]:
        """Read the response to the last request; return its items, cut to the bound."""
        request = self._next
        assert request is not None, "accept() follows next_request()"  # noqa: S101
        page = self._paginator.page(request, response)
        self._pages += 1
        items = page.items
        if self._max_items is not None:
            items = items[: self._max_items - self._items]
        self._items += len(items)
        done = (self._max_items is not None and self._items >= self._max_items) or (
            self._max_pages is not None and self._pages >= self._max_pages
        )
        self._next = None if done else page.next
        return items
