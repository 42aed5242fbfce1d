"""Static credentials: bearer tokens, API keys (header or query) and HTTP Basic.

Each keeps its secret out of ``repr`` and ``str``; the header it sets is one the redaction rules hide.
"""

from __future__ import annotations

import base64
from typing import Literal
from urllib.parse import quote

from tether._models import Request
from tether.auth._protocol import StaticAuth
from tether.errors import ConfigurationError

__all__ = ["APIKey", "Basic", "Bearer"]


class Bearer(StaticAuth):
    """``Authorization: Bearer <token>`` (RFC 6750)."""

    __slots__ = ("_header",)

    def __init__(self, token: str) -> None:
        if not token or any(c in token for c in "\r\n"):
            raise ConfigurationError("Bearer needs a non-empty token without line breaks")
        self._header = (("Authorization", f"Bearer {token}"),)

    def apply(self, request: Request) -> Request:
        """Set the ``Authorization`` header."""
        return request.with_headers(self._header)

    def fixed_headers(self) -> tuple[tuple[str, str], ...]:
        """The ``Authorization`` header."""
        return self._header

    def __repr__(self) -> str:
        return "Bearer(token=[REDACTED])"


class APIKey(StaticAuth):
    """An API key sent in a header (default ``X-API-Key``) or a query parameter.

    ``APIKey(key)`` sends ``X-API-Key: key``; ``APIKey(key, header="Authorization", prefix="Token ")`` sends
    ``Authorization: Token key``; ``APIKey(key, in_="query", name="api_key")`` appends ``?api_key=key``.
    """

    __slots__ = ("_in", "_key", "_name", "_prefix")

    def __init__(
        self,
        key: str,
        *,
        in_: Literal["header", "query"] = "header",
        name: str | None = None,
        header: str | None = None,
        prefix: str = "",
    ) -> None:
        if not key or any(c in key for c in "\r\n"):
            raise ConfigurationError("APIKey needs a non-empty key without line breaks")
        if in_ not in ("header", "query"):
            raise ConfigurationError(f"APIKey in_ must be 'header' or 'query', got {in_!r}")
        self._key = key
        self._in = in_
        self._prefix = prefix
        self._name = header or name or ("X-API-Key" if in_ == "header" else "api_key")

    def apply(self, request: Request) -> Request:
        """Set the header, or append the query parameter."""
        if self._in == "header":
            return request.with_headers(((self._name, f"{self._prefix}{self._key}"),))
        separator = "&" if "?" in request.url else "?"
        param = f"{quote(self._name, safe='')}={quote(self._prefix + self._key, safe='')}"
        fragment = ""
        url = request.url
        if "#" in url:
            url, _, fragment = url.partition("#")
            fragment = "#" + fragment
        return request.with_url(f"{url}{separator}{param}{fragment}")

    def fixed_headers(self) -> tuple[tuple[str, str], ...] | None:
        """The key header, when the key travels in a header."""
        return ((self._name, f"{self._prefix}{self._key}"),) if self._in == "header" else None

    def __repr__(self) -> str:
        return f"APIKey(key=[REDACTED], in_={self._in!r}, name={self._name!r})"


class Basic(StaticAuth):
    """HTTP Basic authentication (RFC 7617), UTF-8 encoded."""

    __slots__ = ("_header", "_username")

    def __init__(self, username: str, password: str) -> None:
        if ":" in username:
            raise ConfigurationError("Basic auth usernames cannot contain ':' (RFC 7617 §2)")
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._username = username
        self._header = (("Authorization", f"Basic {token}"),)

    def apply(self, request: Request) -> Request:
        """Set the ``Authorization`` header."""
        return request.with_headers(self._header)

    def fixed_headers(self) -> tuple[tuple[str, str], ...]:
        """The ``Authorization`` header."""
        return self._header

    def __repr__(self) -> str:
        return f"Basic(username={self._username!r}, password=[REDACTED])"
