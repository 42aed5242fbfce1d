"""What one circuit or one rate limit covers: a host, an endpoint, or a whole client."""

from __future__ import annotations

from typing import Literal

__all__ = ["SCOPES", "Scope", "scope_key"]

Scope = Literal["host", "endpoint", "client"]
SCOPES: tuple[Scope, ...] = ("host", "endpoint", "client")


def scope_key(scope: Scope, method: str, url: str) -> str:
    """The key of a call to ``method url`` under ``scope``.

    ``scheme://host:port`` for ``host`` (credentials in the URL left out), the method and URL path for
    ``endpoint``, ``""`` for ``client``.
    """
    if scope == "client":
        return ""
    start = url.find("//") + 2
    if scope == "host":  # on every call's path: the common shape first
        slash = url.find("/", start)
        origin = url if slash < 0 else url[:slash]
        if "?" not in origin and "#" not in origin and "@" not in origin:
            return origin
    end = len(url)
    for mark in "/?#":
        found = url.find(mark, start)
        if 0 <= found < end:
            end = found
    origin = url[:end]
    if "@" in origin:  # never a password in a key (keys appear in events, logs and errors)
        origin = url[:start] + origin.rpartition("@")[2]
    if scope == "host":
        return origin
    return f"{method} {origin}{url[end:].partition('?')[0].partition('#')[0]}"
