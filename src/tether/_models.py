"""tether's own small ``Request``, ``Response`` and ``Headers`` types.

No transport's types cross the public API: transports translate to and from these. They are deliberately
small and httpx-like (``status_code``, ``headers``, ``content``, ``text``, ``json()``, ``raise_for_status()``),
and cheap to build, because one of each is made per attempt on the hot path. Headers are case-insensitive
and multi-valued, backed by ``multidict`` (a C extension already under aiohttp), so the aiohttp transport
wraps its response headers without copying them.
"""

from __future__ import annotations

import json as _json
from collections.abc import Container, Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Any, TypeVar, overload

from multidict import CIMultiDict, CIMultiDictProxy

from tether.errors import error_for_response

__all__ = ["Headers", "HeadersLike", "Request", "Response"]

_T = TypeVar("_T")

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]
"""What a caller may pass as headers: a mapping, ``Headers``, or (name, value) pairs."""


class Headers(Mapping[str, str]):
    """Immutable, case-insensitive, multi-valued HTTP headers.

    ``headers["content-type"]`` and ``get()`` return the first value; ``get_list()`` returns them all;
    ``items()`` yields every (name, value) pair in order, repeats included.
    """

    __slots__ = ("_data",)

    _data: CIMultiDictProxy[str]

    def __init__(self, headers: HeadersLike | None = None) -> None:
        if isinstance(headers, Headers):
            self._data = headers._settle()._data  # a copy of response headers gets their repaired values
            return
        # CIMultiDict builds from a mapping or from pairs in C, keeping repeated names
        self._data = CIMultiDictProxy(CIMultiDict(headers) if headers is not None else CIMultiDict())

    @classmethod
    def _wrap(cls, data: CIMultiDictProxy[str]) -> Headers:
        """Adopt an existing multidict proxy without copying (transport use)."""
        headers = cls.__new__(cls)
        headers._data = data
        return headers

    def __getitem__(self, name: str) -> str:
        return self._data[name]

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: _T) -> str | _T: ...
    def get(self, name: str, default: object = None) -> object:
        """The first value of header ``name``, or ``default`` (a C lookup: no exception for a missing header)."""
        return self._data.get(name, default)

    def _settle(self) -> Headers:
        """Ready to read: the same object (see :class:`UndecodedHeaders`)."""
        return self

    def get_list(self, name: str) -> list[str]:
        """Every value of header ``name``, in order (empty if absent)."""
        return self._data.getall(name, [])

    def __contains__(self, name: object) -> bool:
        return name in self._data

    @property
    def names(self) -> Container[str]:
        """The header names as a case-insensitive container: several membership tests cost one Python call."""
        return self._data

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(self._data.keys()))

    def __len__(self) -> int:
        return len(set(map(str.lower, self._data.keys())))

    def items(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        """Every (name, value) pair in order, repeated names included."""
        return iter(self._data.items())

    def merged(self, other: HeadersLike | None) -> Headers:
        """A copy where each header named in ``other`` replaces all of this one's values of that name."""
        if not other:
            return self
        data = CIMultiDict(self._data)
        pairs = other.items() if isinstance(other, Mapping) else other
        seen: set[str] = set()
        for name, value in pairs:
            key = name.lower()
            if key not in seen:
                data.popall(name, None)
                seen.add(key)
            data.add(name, value)
        return Headers._wrap(CIMultiDictProxy(data))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return list(self._data.items()) == list(other._data.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        from tether._redaction import redact_headers

        return f"Headers({redact_headers(self._data.items())!r})"


def _decodable(value: str) -> str:
    """``value`` as it was if it came from valid UTF-8; else its original bytes read as latin-1."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8, escaped by surrogateescape
        return value.encode("utf-8", "surrogateescape").decode("latin-1")
    return value


class UndecodedHeaders(Headers):
    """Response headers adopted from a transport that decodes values as UTF-8 with ``surrogateescape``.

    Such values may hold lone surrogates, which no encoder accepts. Checking every response for them would cost
    every call; instead the first read of a value repairs them all (bytes that were not UTF-8 are read as
    latin-1, as httpx does) and turns this object into a plain :class:`Headers`. Names need no repair: the
    parsers reject non-token names.
    """

    __slots__ = ()

    def _settle(self) -> Headers:
        data = self._data
        if not "".join(data.values()).isascii():
            self._data = CIMultiDictProxy(CIMultiDict([(name, _decodable(value)) for name, value in data.items()]))
        self.__class__ = Headers  # type: ignore[assignment]  # same slots: from now on a plain Headers
        return self

    def __getitem__(self, name: str) -> str:
        return self._settle()[name]

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        """The first value of header ``name``, or ``default``."""
        return self._settle()._data.get(name, default)

    def get_list(self, name: str) -> list[str]:
        """Every value of header ``name``, in order (empty if absent)."""
        return self._settle().get_list(name)

    def items(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        """Every (name, value) pair in order, repeated names included."""
        return self._settle().items()

    def merged(self, other: HeadersLike | None) -> Headers:
        """A copy where each header named in ``other`` replaces all of this one's values of that name."""
        return self._settle().merged(other)

    def __eq__(self, other: object) -> bool:
        return self._settle() == other

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self._settle())


_new = object.__new__


class Request:
    """An outgoing HTTP request: ``method``, absolute ``url``, ``headers`` and the encoded ``content``."""

    __slots__ = ("content", "headers", "method", "url")

    def __init__(self, method: str, url: str, *, headers: Headers | None = None, content: bytes | None = None):
        self.method = method
        self.url = url
        self.headers = headers if headers is not None else Headers()
        self.content = content

    @classmethod
    def _of(cls, method: str, url: str, headers: Headers, content: bytes | None) -> Request:
        """The same as the constructor, at half its cost (no keyword parsing, no ``__init__``): the call path."""
        request = _new(cls)
        request.method, request.url, request.headers, request.content = method, url, headers, content
        return request

    def with_headers(self, headers: HeadersLike) -> Request:
        """A copy with ``headers`` set (each replaces any existing header of the same name)."""
        return Request(self.method, self.url, headers=self.headers.merged(headers), content=self.content)

    def with_url(self, url: str) -> Request:
        """A copy aimed at ``url``."""
        return Request(self.method, url, headers=self.headers, content=self.content)

    def __repr__(self) -> str:
        from tether._redaction import redact_url

        return f"<Request {self.method} {redact_url(self.url)}>"


class Response:
    """A complete HTTP response, body read."""

    __slots__ = ("_reason", "content", "headers", "request", "status_code")

    def __init__(
        self,
        status_code: int,
        *,
        headers: Headers | None = None,
        content: bytes = b"",
        request: Request | None = None,
        reason_phrase: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers if headers is not None else Headers()
        self.content = content
        self.request = request
        self._reason = reason_phrase

    @classmethod
    def _of(cls, status_code: int, headers: Headers, content: bytes, request: Request, reason: str | None) -> Response:
        """The same as the constructor, at half its cost (no keyword parsing, no ``__init__``): for transports."""
        response = _new(cls)
        response.status_code, response.headers, response.content = status_code, headers, content
        response.request, response._reason = request, reason
        return response

    @property
    def reason_phrase(self) -> str:
        """The reason phrase the server sent, or the standard one for the status."""
        if self._reason:
            return self._reason
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status_code < 300

    @property
    def is_error(self) -> bool:
        """Whether the status is 4xx or 5xx."""
        return self.status_code >= 400

    @property
    def encoding(self) -> str:
        """The charset named by ``Content-Type``, else UTF-8."""
        content_type = self.headers.get("content-type", "")
        for param in content_type.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip('"').lower()
        return "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding` (undecodable bytes replaced)."""
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:  # unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; a ``ValueError`` saying so if it is not JSON."""
        try:
            return _json.loads(self.content)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            kind = self.headers.get("content-type", "no content type")
            raise ValueError(f"response body is not JSON ({kind}, {len(self.content)} bytes): {exc}") from None

    def raise_for_status(self) -> Response:
        """Raise the typed :mod:`tether.errors` exception for a 4xx/5xx status; return ``self`` otherwise."""
        if self.status_code >= 400:
            raise error_for_response(self)
        return self

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"
